//! Infrastructure, the lowest layer: settings, errors, the Citus boundary, subtransactions,
//! privileges, the clock and the SPI row loops (spi). It imports nothing from the layers above.

pub mod citus;
pub mod clock;
pub mod errors;
pub mod privilege;
pub mod settings;
pub mod spi;
pub mod subxact;
