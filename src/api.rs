//! The SQL functions of schema `autoscale`: check arguments, call into the modules, convert.
//! No logic of its own lives here.

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::sampler::{cluster, local};
use crate::tick;

/// This node's raw load as one json value (cumulative counters; the coordinator computes rates).
#[pg_extern(volatile, parallel_safe)]
fn node_stats() -> JsonB {
    match local::read_node_stats() {
        Ok(s) => JsonB(serde_json::to_value(s).expect("node stats serialize")),
        Err(e) => error!("citus_autoscale: reading this node's load failed: {e}"),
    }
}

/// Samples every active node now (one parallel fan-out) and writes history; returns a summary.
#[pg_extern(volatile)]
fn sample() -> JsonB {
    match cluster::sample("sql") {
        Ok(s) => JsonB(serde_json::to_value(s).expect("summary serializes")),
        Err(e) => error!("citus_autoscale: {e}"),
    }
}

/// One autoscaler cycle: sample when due, prune history. For psql and pg_cron.
#[pg_extern(volatile)]
fn tick() -> JsonB {
    JsonB(serde_json::to_value(tick::run(tick::sql_driver())).expect("tick report serializes"))
}
