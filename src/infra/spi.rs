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

thread_local! {
    /// Plans prepared once per session and kept (`SPI_keepplan`), by their SQL text; PostgreSQL's
    /// plan cache revalidates them when what they read changes.
    static KEPT: std::cell::RefCell<std::collections::HashMap<&'static str, pgrx::spi::OwnedPreparedStatement>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The first row of `sql`, one boolean parameter `arg`, read with `read`, through a plan this
/// session prepared once and keeps: for the statements of every sample, so that a session that
/// answers every sample (the background worker's own connection) plans them once.
pub fn select_first_kept<T>(
    sql: &'static str,
    arg: bool,
    read: impl Fn(&SpiHeapTupleData) -> SpiResult<T>,
) -> SpiResult<Option<T>> {
    Spi::connect(|c| {
        KEPT.with(|kept| {
            if !kept.borrow().contains_key(sql) {
                let plan = c
                    .prepare(sql, &[PgOid::BuiltIn(PgBuiltInOids::BOOLOID)])?
                    .keep();
                kept.borrow_mut().insert(sql, plan);
            }
            let kept = kept.borrow();
            let plan = kept.get(sql).expect("prepared above");
            c.select(plan, Some(1), &[arg.into()])?
                .next()
                .map(|r| read(&r))
                .transpose()
        })
    })
}
