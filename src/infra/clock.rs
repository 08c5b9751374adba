//! The one clock every layer reads: the database server's wall clock, as seconds since the epoch.

use pgrx::prelude::*;

use super::errors::Result;

/// Seconds since the epoch, now (clock_timestamp(): not frozen at the transaction's start).
pub fn now() -> Result<f64> {
    Ok(
        Spi::get_one::<f64>("SELECT extract(epoch FROM pg_catalog.clock_timestamp())::float8")?
            .unwrap_or_default(),
    )
}
