//! autoscale.events: the event log. Owns the table's SQL.

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::infra::errors::Result;

/// Appends an event.
pub fn record(kind: &str, message: &str, detail: Option<serde_json::Value>) -> Result<()> {
    Ok(Spi::run_with_args(
        "INSERT INTO autoscale.events (kind, message, detail) VALUES ($1, $2, $3)",
        &[kind.into(), message.into(), detail.map(JsonB).into()],
    )?)
}

/// Whether an event of `kind` with exactly `message` was recorded within the last hour.
pub fn recorded_within_hour(kind: &str, message: &str) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM autoscale.events WHERE kind = $1 AND message = $2
                          AND at > pg_catalog.now() - interval '1 hour')",
        &[kind.into(), message.into()],
    )?
    .unwrap_or(false))
}

/// Deletes at most `batch` events older than `retention_secs`; returns how many.
pub fn prune(retention_secs: f64, batch: i64) -> Result<i64> {
    super::delete_older("autoscale.events", "at", retention_secs, batch)
}
