//! The compact node history in SQL: history_readings() decodes one sample's `bytea` for the
//! autoscale.node_samples view; record_node_samples() writes node rows (the view's INSTEAD OF
//! INSERT and UPDATE triggers, and the 0.5.0 update's conversion of the old table) and
//! forget_node_samples() removes them (its DELETE and UPDATE triggers).

use autoscale_core::history;
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::infra::errors::{AutoscaleError, OrReport};
use crate::store::history as store;

/// The node readings of one sample of autoscale.node_history, as the columns of
/// autoscale.node_samples (node_key names the node in autoscale.history_nodes).
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature itself
#[pg_extern(immutable, strict, parallel_safe)]
fn history_readings(
    nodes: &[u8],
) -> TableIterator<
    'static,
    (
        name!(node_key, i32),
        name!(reachable, bool),
        name!(data_node, Option<bool>),
        name!(error, Option<String>),
        name!(cpu_busy_pct, Option<f32>),
        name!(load1, Option<f32>),
        name!(load5, Option<f32>),
        name!(load15, Option<f32>),
        name!(mem_used_pct, Option<f32>),
        name!(disk_used_pct, Option<f32>),
        name!(disk_free_bytes, Option<i64>),
        name!(connections, Option<i32>),
        name!(active_connections, Option<i32>),
        name!(commits_per_sec, Option<f32>),
        name!(rollbacks_per_sec, Option<f32>),
        name!(database_size, Option<i64>),
        name!(shard_count, Option<i32>),
        name!(shard_bytes, Option<i64>),
        name!(cpu_cores, Option<f32>),
        name!(shard_load, Option<f64>),
        name!(cache_hit_ratio, Option<f32>),
        name!(replication_lag, Option<i64>),
        name!(tps, Option<f32>),
        name!(connection_saturation, Option<f32>),
        name!(mean_statement_ms, Option<f32>),
    ),
> {
    let readings = history::decode(nodes)
        .map_err(|e| AutoscaleError::Failed(e.to_string()))
        .or_report();
    TableIterator::new(readings.into_iter().map(|r| {
        let f = |name: &str| r.get(name);
        let real = |name: &str| f(name).map(|v| v as f32);
        let big = |name: &str| f(name).map(|v| v as i64);
        let int = |name: &str| f(name).map(|v| v.clamp(i32::MIN as f64, i32::MAX as f64) as i32);
        (
            r.key as i32,
            r.reachable,
            r.data_node,
            r.error.clone(),
            real("cpu_busy_pct"),
            real("load1"),
            real("load5"),
            real("load15"),
            real("mem_used_pct"),
            real("disk_used_pct"),
            big("disk_free_bytes"),
            int("connections"),
            int("active_connections"),
            real("commits_per_sec"),
            real("rollbacks_per_sec"),
            big("database_size"),
            int("shard_count"),
            big("shard_bytes"),
            real("cpu_cores"),
            f("shard_load"),
            real("cache_hit_ratio"),
            big("replication_lag"),
            real("tps"),
            real("connection_saturation"),
            real("mean_statement_ms"),
        )
    }))
}

/// Writes node rows (a json array of autoscale.node_samples rows, or one row; the counters of
/// the old table are taken when present) into the compact history, and with `latest` each node's
/// latest reading; returns how many.
#[pg_extern(volatile)]
fn record_node_samples(rows: JsonB, latest: default!(bool, true)) -> i32 {
    let rows = store::rows_from_json(rows.0).or_report();
    store::write_rows(&rows, latest).or_report();
    rows.len() as i32
}

/// Removes node rows (a json array of autoscale.node_samples rows, or one row: sample_id,
/// nodename, nodeport, nodeid and is_coordinator name the reading) from the compact history;
/// returns how many rows were given.
#[pg_extern(volatile)]
fn forget_node_samples(rows: JsonB) -> i32 {
    let rows = store::rows_from_json(rows.0).or_report();
    store::forget_rows(&rows).or_report();
    rows.len() as i32
}
