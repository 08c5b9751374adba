//! Infrastructure, the lowest layer: settings, errors, the Citus boundary, subtransactions,
//! privileges, the clock, the SPI row loops (spi) and what the worker reports in
//! pg_stat_activity (activity). It imports nothing from the layers above.

pub mod activity;
pub mod citus;
pub mod clock;
pub mod errors;
pub mod fanout;
pub mod pgcompat;
pub mod privilege;
pub mod settings;
pub mod spi;
pub mod subxact;
pub mod versions;
