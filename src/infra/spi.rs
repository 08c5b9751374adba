//! Reading rows through SPI: the loops every store and the Citus boundary would otherwise write
//! again. No SQL of its own.

use autoscale_core::operations::NodeAddr;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{SpiHeapTupleData, SpiResult};

/// Runs the read-only `sql` with `args` and reads every row with `read`.
pub fn select_rows<T>(
    sql: &str,
    args: &[DatumWithOid],
    read: impl Fn(&SpiHeapTupleData) -> SpiResult<T>,
) -> SpiResult<Vec<T>> {
    Spi::connect(|c| c.select(sql, None, args)?.map(|r| read(&r)).collect())
}

/// The first row of the read-only `sql` read with `read`, or None when there is no row.
pub fn select_first<T>(
    sql: &str,
    args: &[DatumWithOid],
    read: impl Fn(&SpiHeapTupleData) -> SpiResult<T>,
) -> SpiResult<Option<T>> {
    Spi::connect(|c| {
        c.select(sql, Some(1), args)?
            .next()
            .map(|r| read(&r))
            .transpose()
    })
}

/// The node named by columns `host` and `host + 1` (nodename, nodeport) of a row.
pub fn node_at(r: &SpiHeapTupleData, host: usize) -> SpiResult<NodeAddr> {
    Ok(NodeAddr::new(
        r.get::<String>(host)?.unwrap_or_default(),
        r.get::<i32>(host + 1)?.unwrap_or_default(),
    ))
}
