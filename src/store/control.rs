//! autoscale.control: the one row of the autopilot's own state (pause, the last decision, the
//! worker watch of the rebalance trigger, when a plan was last checked). Owns the table's SQL.

use autoscale_core::operations::WorkerWatch;
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::infra::errors::Result;

/// Pauses decisions for `secs` from now; returns the end of the pause (ISO 8601 text).
pub fn pause(secs: f64) -> Result<Option<TimestampWithTimeZone>> {
    Ok(Spi::get_one_with_args::<TimestampWithTimeZone>(
        "UPDATE autoscale.control SET paused_until = pg_catalog.now() + pg_catalog.make_interval(secs => $1) RETURNING paused_until",
        &[secs.into()],
    )?)
}

/// Ends a pause; whether one was in force.
pub fn resume() -> Result<bool> {
    Ok(Spi::get_one::<bool>(
        "WITH o AS (SELECT paused_until > pg_catalog.now() AS p FROM autoscale.control)
         UPDATE autoscale.control SET paused_until = NULL RETURNING (SELECT p FROM o)",
    )?
    .unwrap_or(false))
}

/// The end of the pause in force (epoch seconds), if any was set.
pub fn paused_until() -> Result<Option<f64>> {
    Ok(Spi::get_one::<f64>(
        "SELECT extract(epoch FROM paused_until)::float8 FROM autoscale.control",
    )?)
}

/// 1 while decisions are paused, else 0.
pub fn paused_now() -> Result<Option<f64>> {
    Ok(Spi::get_one::<f64>(
        "SELECT (coalesce(paused_until > pg_catalog.now(), false))::int::float8 FROM autoscale.control",
    )?)
}

/// Whether `key` (direction and desired size) differs from the last decision recorded.
pub fn decision_differs(key: &serde_json::Value) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT last_decision IS NULL OR NOT last_decision @> $1 FROM autoscale.control",
        &[JsonB(key.clone()).into()],
    )?
    .unwrap_or(true))
}

/// Records the last decision: at once when its direction or desired size (`changed`) differ
/// from the stored one, else only when its reasons differ and the stored ones are older than
/// [`DECISION_REFRESH_SECS`] (the reasons carry live figures), so a steady state does not write a
/// new `control` tuple every tick. `decided_at` is when the stored decision was written.
pub fn set_decision(decision: serde_json::Value, changed: bool) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.control SET last_decision = $1, decided_at = pg_catalog.now()
          WHERE $2 OR (last_decision IS DISTINCT FROM $1
                       AND (decided_at IS NULL
                            OR decided_at < pg_catalog.now() - pg_catalog.make_interval(secs => $3)))",
        &[
            JsonB(decision).into(),
            changed.into(),
            DECISION_REFRESH_SECS.into(),
        ],
    )?)
}

/// How often a steady decision's reasons (live figures) are written again, in seconds.
pub const DECISION_REFRESH_SECS: f64 = 60.0;

/// The rebalance trigger's view of the workers.
pub fn load_watch() -> Result<WorkerWatch> {
    Ok(
        Spi::get_one::<JsonB>("SELECT worker_watch FROM autoscale.control")?
            .and_then(|j| serde_json::from_value(j.0).ok())
            .unwrap_or_default(),
    )
}

/// Writes the watch only when it changed: no new `control` tuple every tick.
pub fn save_watch(w: &WorkerWatch) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.control SET worker_watch = $1 WHERE worker_watch IS DISTINCT FROM $1",
        &[JsonB(serde_json::to_value(w).expect("watch serializes")).into()],
    )?)
}

/// When a rebalance was last reported in observe mode, and when a plan was last checked (epoch
/// seconds).
pub fn rebalance_marks() -> Result<(Option<f64>, Option<f64>)> {
    Ok(Spi::get_two::<f64, f64>(
        "SELECT extract(epoch FROM observed_rebalance_at)::float8, extract(epoch FROM plan_checked_at)::float8
           FROM autoscale.control",
    )?)
}

pub fn set_plan_checked() -> Result<()> {
    Ok(Spi::run(
        "UPDATE autoscale.control SET plan_checked_at = pg_catalog.now()",
    )?)
}

pub fn set_rebalance_observed() -> Result<()> {
    Ok(Spi::run(
        "UPDATE autoscale.control SET observed_rebalance_at = pg_catalog.clock_timestamp()",
    )?)
}
