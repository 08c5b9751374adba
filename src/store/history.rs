//! The compact node history (0.5.0): autoscale.node_history (one row per sample, every node's
//! reading in one `bytea`, encoded by `autoscale_core::history`), autoscale.history_nodes (the
//! nodes those readings name) and autoscale.node_latest (each node's latest reading: health, shard
//! bytes and the cumulative counters the next sample's rates come from). autoscale.node_samples is
//! a view over them, with an INSTEAD OF INSERT trigger that writes through [`write_rows`].
//! Owns these tables' SQL; decides nothing.

use std::collections::HashMap;

use autoscale_core::history::{self, NodeReading};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;

use crate::infra::errors::{AutoscaleError, Result};
use serde::{Deserialize, Serialize};

/// One row of autoscale.node_samples (field names are the column names), with the cumulative
/// counters autoscale.node_latest keeps for the next sample's rates.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SampleRow {
    pub sample_id: i64,
    pub sampled_at: String,
    pub nodeid: Option<i32>,
    pub nodename: String,
    pub nodeport: i32,
    pub is_coordinator: bool,
    pub reachable: bool,
    pub data_node: Option<bool>,
    pub error: Option<String>,
    pub cpu_busy_pct: Option<f64>,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    pub mem_used_pct: Option<f64>,
    pub disk_used_pct: Option<f64>,
    pub disk_free_bytes: Option<u64>,
    pub connections: Option<i64>,
    pub active_connections: Option<i64>,
    pub commits_per_sec: Option<f64>,
    pub rollbacks_per_sec: Option<f64>,
    pub database_size: Option<i64>,
    pub shard_count: Option<i64>,
    pub shard_bytes: Option<i64>,
    pub node_time: Option<f64>,
    pub cpu_busy_seconds: Option<f64>,
    pub cpu_capacity_seconds: Option<f64>,
    pub cpu_cores: Option<f64>,
    pub xact_commit: Option<i64>,
    pub xact_rollback: Option<i64>,
    /// Sum of the smoothed load of the shard groups on the node (operations/s).
    pub shard_load: Option<f64>,
    pub cache_hit_ratio: Option<f64>,
    pub replication_lag: Option<i64>,
    pub tps: Option<f64>,
    pub connection_saturation: Option<f64>,
    pub mean_statement_ms: Option<f64>,
    pub blks_hit: Option<i64>,
    pub blks_read: Option<i64>,
    pub stmt_calls: Option<i64>,
    pub stmt_total_ms: Option<f64>,
}

/// (nodename, nodeport, nodeid, is_coordinator): what a key of autoscale.history_nodes names.
type NodeName = (String, i32, Option<i32>, bool);

fn name_of(r: &SampleRow) -> NodeName {
    (r.nodename.clone(), r.nodeport, r.nodeid, r.is_coordinator)
}

/// The keys of the nodes of `rows` in autoscale.history_nodes, adding the ones not there yet (only
/// those: an INSERT that meets a conflict still takes a value of the key's sequence, and small keys
/// are one byte in every reading).
fn node_keys(c: &mut SpiClient<'_>, rows: &[SampleRow]) -> Result<HashMap<NodeName, u32>> {
    let mut wanted: Vec<NodeName> = rows.iter().map(name_of).collect();
    wanted.sort();
    wanted.dedup();
    let json = serde_json::Value::Array(
        wanted
            .iter()
            .map(|(n, p, id, co)| {
                serde_json::json!({"nodename": n, "nodeport": p, "nodeid": id, "is_coordinator": co})
            })
            .collect(),
    );
    c.update(
        "INSERT INTO autoscale.history_nodes (nodename, nodeport, nodeid, is_coordinator)
         SELECT w.nodename, w.nodeport, w.nodeid, w.is_coordinator
           FROM pg_catalog.jsonb_to_recordset($1) AS w(nodename text, nodeport int, nodeid int, is_coordinator boolean)
          WHERE NOT EXISTS (SELECT FROM autoscale.history_nodes h
                             WHERE h.nodename = w.nodename AND h.nodeport = w.nodeport
                               AND h.nodeid IS NOT DISTINCT FROM w.nodeid AND h.is_coordinator = w.is_coordinator)
         ON CONFLICT DO NOTHING",
        None,
        &[JsonB(json.clone()).into()],
    )?;
    let mut keys = HashMap::new();
    for r in c.select(
        "SELECT h.node_key, h.nodename, h.nodeport, h.nodeid, h.is_coordinator
           FROM pg_catalog.jsonb_to_recordset($1) AS w(nodename text, nodeport int, nodeid int, is_coordinator boolean)
           JOIN autoscale.history_nodes h
             ON h.nodename = w.nodename AND h.nodeport = w.nodeport AND h.nodeid IS NOT DISTINCT FROM w.nodeid
            AND h.is_coordinator = w.is_coordinator",
        None,
        &[JsonB(json).into()],
    )? {
        let key = r.get::<i32>(1)?.unwrap_or_default();
        keys.insert(
            (
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<i32>(3)?.unwrap_or_default(),
                r.get::<i32>(4)?,
                r.get::<bool>(5)?.unwrap_or(false),
            ),
            key.max(0) as u32,
        );
    }
    Ok(keys)
}

/// The readings of sample `id` in the history, locked until the transaction ends; None when the
/// sample has no row.
fn locked_sample(c: &mut SpiClient<'_>, id: i64) -> Result<Option<Vec<u8>>> {
    let mut existing = None;
    // a read-write statement: pgrx runs select() read-only, where FOR UPDATE is refused
    for r in c.update(
        "SELECT nodes FROM autoscale.node_history WHERE sample_id = $1 FOR UPDATE",
        None,
        &[id.into()],
    )? {
        existing = r.get::<Vec<u8>>(1)?;
    }
    Ok(existing)
}

/// One row as a reading of the compact history (the counters are not kept there).
fn reading(r: &SampleRow, key: u32) -> NodeReading {
    let mut n = NodeReading {
        key,
        reachable: r.reachable,
        data_node: r.data_node,
        error: r.error.clone(),
        ..NodeReading::default()
    };
    let int = |v: Option<i64>| v.map(|v| v as f64);
    for (name, v) in [
        ("cpu_busy_pct", r.cpu_busy_pct),
        ("load1", r.load1),
        ("load5", r.load5),
        ("load15", r.load15),
        ("mem_used_pct", r.mem_used_pct),
        ("disk_used_pct", r.disk_used_pct),
        ("disk_free_bytes", r.disk_free_bytes.map(|v| v as f64)),
        ("connections", int(r.connections)),
        ("active_connections", int(r.active_connections)),
        ("commits_per_sec", r.commits_per_sec),
        ("rollbacks_per_sec", r.rollbacks_per_sec),
        ("database_size", int(r.database_size)),
        ("shard_count", int(r.shard_count)),
        ("shard_bytes", int(r.shard_bytes)),
        ("cpu_cores", r.cpu_cores),
        ("shard_load", r.shard_load),
        ("cache_hit_ratio", r.cache_hit_ratio),
        ("replication_lag", int(r.replication_lag)),
        ("tps", r.tps),
        ("connection_saturation", r.connection_saturation),
        ("mean_statement_ms", r.mean_statement_ms),
    ] {
        n.set(name, v);
    }
    n
}

/// Each node's latest reading: the newest row of a node wins; health (when it last answered, the
/// first sample it failed since), its shard bytes and counters from its latest reachable row.
const LATEST_UPSERT: &str = "
INSERT INTO autoscale.node_latest AS l
       (nodename, nodeport, last_sample_id, last_seen_at, last_reachable_at, first_failed_at, shard_bytes, node_time,
        cpu_busy_seconds, cpu_capacity_seconds, xact_commit, xact_rollback, blks_hit, blks_read, stmt_calls,
        stmt_total_ms)
SELECT r.nodename, r.nodeport, r.sample_id, r.sampled_at,
       CASE WHEN r.reachable THEN r.sampled_at END, CASE WHEN NOT r.reachable THEN r.sampled_at END,
       r.shard_bytes, r.node_time, r.cpu_busy_seconds, r.cpu_capacity_seconds, r.xact_commit, r.xact_rollback,
       r.blks_hit, r.blks_read, r.stmt_calls, r.stmt_total_ms
  FROM pg_catalog.jsonb_to_recordset($1) AS r(nodename text, nodeport int, sample_id bigint, sampled_at timestamptz,
       reachable boolean, shard_bytes bigint, node_time float8, cpu_busy_seconds float8, cpu_capacity_seconds float8,
       xact_commit bigint, xact_rollback bigint, blks_hit bigint, blks_read bigint, stmt_calls bigint,
       stmt_total_ms float8)
ON CONFLICT (nodename, nodeport) DO UPDATE SET
       last_sample_id = EXCLUDED.last_sample_id,
       last_seen_at = EXCLUDED.last_seen_at,
       last_reachable_at = coalesce(EXCLUDED.last_reachable_at, l.last_reachable_at),
       first_failed_at = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN coalesce(l.first_failed_at, EXCLUDED.first_failed_at) END,
       shard_bytes = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.shard_bytes ELSE EXCLUDED.shard_bytes END,
       node_time = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.node_time ELSE EXCLUDED.node_time END,
       cpu_busy_seconds = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.cpu_busy_seconds ELSE EXCLUDED.cpu_busy_seconds END,
       cpu_capacity_seconds = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.cpu_capacity_seconds ELSE EXCLUDED.cpu_capacity_seconds END,
       xact_commit = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.xact_commit ELSE EXCLUDED.xact_commit END,
       xact_rollback = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.xact_rollback ELSE EXCLUDED.xact_rollback END,
       blks_hit = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.blks_hit ELSE EXCLUDED.blks_hit END,
       blks_read = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.blks_read ELSE EXCLUDED.blks_read END,
       stmt_calls = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.stmt_calls ELSE EXCLUDED.stmt_calls END,
       stmt_total_ms = CASE WHEN EXCLUDED.last_reachable_at IS NULL THEN l.stmt_total_ms ELSE EXCLUDED.stmt_total_ms END
 WHERE EXCLUDED.last_seen_at >= l.last_seen_at";

/// Writes node rows (of one sample or several) into the compact history and, with `latest`, each
/// node's latest reading. A sample already in the history keeps its readings; a row for a node it
/// already has replaces that node's reading. (The 0.5.0 update converts without `latest`: one
/// transaction updating the same rows of node_latest at every sample makes a version chain that
/// every later update walks; it fills node_latest once at the end.)
pub fn write_rows(rows: &[SampleRow], latest: bool) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // the samples in the order their first row comes
    let mut samples: Vec<(i64, &str, Vec<&SampleRow>)> = Vec::new();
    for r in rows {
        match samples.iter_mut().find(|s| s.0 == r.sample_id) {
            Some(s) => s.2.push(r),
            None => samples.push((r.sample_id, &r.sampled_at, vec![r])),
        }
    }
    Spi::connect_mut(|c| -> Result<()> {
        let keys = node_keys(c, rows)?;
        for (id, at, group) in samples {
            let readings: Vec<NodeReading> = group
                .iter()
                .map(|r| reading(r, keys.get(&name_of(r)).copied().unwrap_or(0)))
                .collect();
            // a new sample (the sampler's every time) is one INSERT; a sample already recorded is
            // locked, merged and written back
            let fresh = history::merge(None, &readings)
                .map_err(|e| AutoscaleError::Failed(format!("sample {id}: {e}")))?;
            let inserted = c.update(
                "INSERT INTO autoscale.node_history (sample_id, sampled_at, nodes) VALUES ($1, $2::timestamptz, $3)
                 ON CONFLICT (sample_id) DO NOTHING RETURNING 1",
                None,
                &[id.into(), at.into(), fresh.into()],
            )?;
            if inserted.is_empty() {
                let existing = locked_sample(c, id)?;
                let bytes = history::merge(existing.as_deref(), &readings)
                    .map_err(|e| AutoscaleError::Failed(format!("sample {id}: {e}")))?;
                c.update(
                    "UPDATE autoscale.node_history SET nodes = $2 WHERE sample_id = $1",
                    None,
                    &[id.into(), bytes.into()],
                )?;
            }
            if latest {
                let json = serde_json::to_value(&group).expect("sample rows serialize");
                c.update(LATEST_UPSERT, None, &[JsonB(json).into()])?;
            }
        }
        Ok(())
    })
}

/// Removes the readings of node rows from the compact history (the view's DELETE and UPDATE): a
/// sample left without readings goes, and so does a node's latest reading when it was the one
/// removed (the node's next sample starts its rates again).
pub fn forget_rows(rows: &[SampleRow]) -> Result<()> {
    Spi::connect_mut(|c| -> Result<()> {
        let mut keys: HashMap<NodeName, u32> = HashMap::new();
        for r in c.select(
            "SELECT node_key, nodename, nodeport, nodeid, is_coordinator FROM autoscale.history_nodes",
            None,
            &[],
        )? {
            keys.insert(
                (
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<i32>(3)?.unwrap_or_default(),
                    r.get::<i32>(4)?,
                    r.get::<bool>(5)?.unwrap_or(false),
                ),
                r.get::<i32>(1)?.unwrap_or_default().max(0) as u32,
            );
        }
        let mut samples: Vec<(i64, Vec<u32>)> = Vec::new();
        for r in rows {
            let Some(key) = keys.get(&name_of(r)).copied() else {
                continue;
            };
            match samples.iter_mut().find(|s| s.0 == r.sample_id) {
                Some(s) => s.1.push(key),
                None => samples.push((r.sample_id, vec![key])),
            }
        }
        for (id, drop) in samples {
            let existing = locked_sample(c, id)?;
            let Some(existing) = existing else { continue };
            match history::remove(&existing, &drop)
                .map_err(|e| AutoscaleError::Failed(format!("sample {id}: {e}")))?
            {
                Some(left) => c.update(
                    "UPDATE autoscale.node_history SET nodes = $2 WHERE sample_id = $1",
                    None,
                    &[id.into(), left.into()],
                )?,
                None => c.update(
                    "DELETE FROM autoscale.node_history WHERE sample_id = $1",
                    None,
                    &[id.into()],
                )?,
            };
        }
        let json = serde_json::to_value(rows).expect("sample rows serialize");
        c.update(
            "DELETE FROM autoscale.node_latest l
              USING pg_catalog.jsonb_to_recordset($1) AS r(nodename text, nodeport int, sample_id bigint)
              WHERE l.nodename = r.nodename AND l.nodeport = r.nodeport AND l.last_sample_id = r.sample_id",
            None,
            &[JsonB(json).into()],
        )?;
        Ok(())
    })
}

/// The rows of `json` (an array of node_samples rows, or one row) as [`SampleRow`]s.
pub fn rows_from_json(json: serde_json::Value) -> Result<Vec<SampleRow>> {
    let items = match json {
        serde_json::Value::Array(a) => a,
        one => vec![one],
    };
    items
        .into_iter()
        .map(|v| {
            serde_json::from_value::<SampleRow>(v)
                .map_err(|e| {
                    AutoscaleError::Invalid(format!(
                        "invalid row for autoscale.node_samples: {e}; a row needs sample_id, sampled_at, nodename, \
                         nodeport, is_coordinator and reachable"
                    ))
                })
                .and_then(|r| {
                    if r.nodename.is_empty() || r.sampled_at.is_empty() {
                        Err(AutoscaleError::Invalid(format!(
                            "invalid row for autoscale.node_samples (sample {}): nodename and sampled_at must not \
                             be empty",
                            r.sample_id
                        )))
                    } else {
                        Ok(r)
                    }
                })
        })
        .collect()
}

/// Deletes at most `batch` samples of the history older than `retention_secs`, and the latest
/// readings of nodes not seen since; returns how many samples went (the history's rows).
pub fn prune(retention_secs: f64, batch: i64) -> Result<i64> {
    super::delete_older(
        "autoscale.node_latest",
        "last_seen_at",
        retention_secs,
        batch,
    )?;
    super::delete_older(
        "autoscale.node_history",
        "sampled_at",
        retention_secs,
        batch,
    )
}
