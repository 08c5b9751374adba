//! Infrastructure, the lowest layer: settings, errors, the Citus boundary, subtransactions,
//! privileges and the clock. It imports nothing from the layers above.

pub mod citus;
pub mod clock;
pub mod errors;
pub mod privilege;
pub mod settings;
pub mod subxact;
