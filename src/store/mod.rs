//! Stores: one module per table of schema `autoscale`. Each owns its table's SQL and row types and
//! decides nothing. Stores import only from [`crate::infra`] (and never from each other, except
//! where a statement spans two tables, which the module header says).

pub mod control;
pub mod events;
pub mod operations;
pub mod policies;
pub mod pool;
pub mod provision;
pub mod samples;

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
