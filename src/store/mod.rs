//! Stores: one module per table of schema `autoscale`. Each owns its table's SQL and row types and
//! decides nothing. Stores import only from [`crate::infra`] (and never from each other, except
//! where a statement spans two tables, which the module header says; [`samples`] writes its node
//! rows through [`history`]).

pub mod control;
pub mod dead_nodes;
pub mod events;
pub mod history;
pub mod load;
pub mod operations;
pub mod policies;
pub mod pool;
pub mod provision;
pub mod rollups;
pub mod samples;
pub mod schedules;

use pgrx::prelude::*;

use crate::infra::errors::Result;

/// Deletes at most `batch` rows of `table` whose `column` is older than `retention_secs`; returns
/// how many. `table` and `column` are constants of the calling store, never user input.
fn delete_older(table: &str, column: &str, retention_secs: f64, batch: i64) -> Result<i64> {
    let sql = format!(
        "WITH gone AS (
            DELETE FROM {table}
             WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table}
                                      WHERE {column} < pg_catalog.now() - pg_catalog.make_interval(secs => $1)
                                      LIMIT $2))
            RETURNING 1)
         SELECT count(*) FROM gone"
    );
    Ok(Spi::connect_mut(|c| {
        c.update(sql.as_str(), None, &[retention_secs.into(), batch.into()])?
            .first()
            .get_one::<i64>()
    })?
    .unwrap_or(0))
}

/// Runs `sql`, whose first two columns are nodename and nodeport, and maps each node to `read` of
/// its row (the columns after those two).
fn by_node<T>(
    sql: &str,
    read: impl Fn(&pgrx::spi::SpiHeapTupleData) -> pgrx::spi::SpiResult<T>,
) -> Result<std::collections::HashMap<(String, i32), T>> {
    Ok(Spi::connect(|c| {
        let mut out = std::collections::HashMap::new();
        for r in c.select(sql, None, &[])? {
            out.insert(
                (
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<i32>(2)?.unwrap_or_default(),
                ),
                read(&r)?,
            );
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })?)
}
