//! The sample tables: autoscale.node_samples (one row per node per sample: a view over the compact
//! history of [`super::history`]), autoscale.worker_count (one row per sample) and
//! autoscale.metric_samples (custom metric values per sample): their row types, inserts, the
//! readings the policies and metrics need, and retention. Owns these tables' SQL; decides nothing.

use std::collections::HashMap;

use autoscale_core::policy::datanodes::NodeRole;
use autoscale_core::rates::Counters;
use pgrx::prelude::*;

use crate::infra::errors::Result;
use crate::infra::spi::select_rows;

pub use super::history::SampleRow;

/// A new sample id and the sample's timestamp (ISO 8601 text).
pub fn next_sample_id() -> Result<(i64, String)> {
    let (id, at) = Spi::get_two::<i64, String>(
        "SELECT pg_catalog.nextval('autoscale.sample_id_seq'), pg_catalog.to_json(pg_catalog.clock_timestamp()) #>> '{}'",
    )?;
    Ok((id.unwrap_or(0), at.unwrap_or_default()))
}

/// How far back the previous reading of a node is looked for (rates need one): an hour, or three
/// sample intervals when they are longer, so that no sample_interval gives NULL rates.
pub fn rate_lookback_secs() -> f64 {
    (3.0 * crate::infra::settings::sample_interval().as_secs_f64()).max(3600.0)
}

/// The latest reachable reading of each node within [`rate_lookback_secs`], keyed by
/// (nodename, nodeport), from autoscale.node_latest.
pub fn previous_counters() -> Result<HashMap<(String, i32), Counters>> {
    Ok(Spi::connect(|c| {
        let rows = c.select(
            "SELECT nodename, nodeport, node_time, cpu_busy_seconds, cpu_capacity_seconds, xact_commit, xact_rollback,
                    blks_hit, blks_read, stmt_calls, stmt_total_ms
               FROM autoscale.node_latest
              WHERE last_reachable_at > pg_catalog.now() - pg_catalog.make_interval(secs => $1)",
            None,
            &[rate_lookback_secs().into()],
        )?;
        let mut out = HashMap::new();
        for r in rows {
            let key = (
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<i32>(2)?.unwrap_or_default(),
            );
            out.insert(
                key,
                Counters {
                    at: r.get(3)?.unwrap_or(0.0),
                    cpu_busy_seconds: r.get(4)?.unwrap_or(0.0),
                    cpu_capacity_seconds: r.get(5)?.unwrap_or(0.0),
                    commits: r.get(6)?.unwrap_or(0),
                    rollbacks: r.get(7)?.unwrap_or(0),
                    blocks: r.get::<i64>(8)?.zip(r.get::<i64>(9)?),
                    statements: r.get::<i64>(10)?.zip(r.get::<f64>(11)?),
                },
            );
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })?)
}

/// Writes one sample: its node rows into the compact history, and its worker_count row.
pub fn insert_sample(
    rows: &[SampleRow],
    workers: usize,
    unreachable: usize,
    inactive: usize,
    driver: &str,
    sample_ms: f64,
) -> Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    super::history::write_rows(rows, true)?;
    Ok(Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO autoscale.worker_count
                 (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers, inactive_workers, driver,
                  sample_ms)
             VALUES ($1::timestamptz, $2, $3, $4, $5, $6, $7, $8)",
            None,
            &[
                first.sampled_at.clone().into(),
                first.sample_id.into(),
                (workers as i32).into(),
                ((workers - unreachable.min(workers)) as i32).into(),
                (unreachable as i32).into(),
                (inactive as i32).into(),
                driver.into(),
                (sample_ms as f32).into(),
            ],
        )?;
        Ok::<_, pgrx::spi::SpiError>(())
    })?)
}

/// Seconds since the last sample, or `None` if there is none.
pub fn secs_since_last_sample() -> Result<Option<f64>> {
    Ok(Spi::get_one::<f64>(
        "SELECT extract(epoch FROM pg_catalog.clock_timestamp() - max(sampled_at))::float8 FROM autoscale.worker_count",
    )?)
}

/// Deletes at most `batch` rows per sample table older than `retention_secs`; returns how many.
pub fn prune(retention_secs: f64, batch: i64) -> Result<i64> {
    let mut total = super::history::prune(retention_secs, batch)?;
    for table in [
        "autoscale.worker_count",
        "autoscale.metric_samples",
        "autoscale.shard_group_load_history",
    ] {
        total += super::delete_older(table, "sampled_at", retention_secs, batch)?;
    }
    Ok(total)
}

/// Records one custom metric's value (or its error) for a sample.
pub fn insert_metric_sample(
    sample_id: i64,
    sampled_at: &str,
    policy: &str,
    value: Option<f64>,
    error: Option<String>,
) -> Result<()> {
    Ok(Spi::run_with_args(
        "INSERT INTO autoscale.metric_samples (sample_id, sampled_at, policy, value, error)
         VALUES ($1, $2::timestamptz, $3, $4, $5)",
        &[
            sample_id.into(),
            sampled_at.into(),
            policy.into(),
            value.into(),
            error.into(),
        ],
    )?)
}

/// One recorded sample within a window, with its node rows: each node's role and the values of
/// the requested node_samples columns, in their order.
pub struct WindowSample {
    pub id: i64,
    pub at: f64,
    pub workers: u32,
    pub unreachable: u32,
    pub nodes: Vec<(NodeRole, Vec<Option<f64>>)>,
}

/// Custom metric values by (sample_id, policy name).
pub type CustomValues = HashMap<(i64, String), Option<f64>>;

/// The samples of the last `window_secs`, oldest first, with the node_samples `columns` (fixed
/// column names from the caller's list, never user input), and the custom metric values.
/// `min_workers` floors each sample's worker count (1 without Citus: the node itself works).
pub fn window(
    window_secs: f64,
    columns: &[&str],
    min_workers: u32,
) -> Result<(Vec<WindowSample>, CustomValues)> {
    let mut select = String::new();
    for c in columns {
        select.push_str(&format!(", ({c})::float8"));
    }
    // one row per node per sample (a sample without node rows still gives one row, all NULL)
    let sql = format!(
        "SELECT w.sample_id, extract(epoch FROM w.sampled_at)::float8, w.worker_count, w.unreachable_workers,
                s.is_coordinator, s.data_node, s.reachable{select}
           FROM autoscale.worker_count w
           LEFT JOIN autoscale.node_samples s
                  ON s.sample_id = w.sample_id
                 AND s.sampled_at >= pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $1)
          WHERE w.sampled_at >= pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $1)
          ORDER BY w.sampled_at, w.sample_id"
    );
    Ok(Spi::connect(|c| {
        let mut samples: Vec<WindowSample> = Vec::new();
        for r in c.select(sql.as_str(), None, &[window_secs.into()])? {
            let id = r.get::<i64>(1)?.unwrap_or_default();
            if samples.last().is_none_or(|s| s.id != id) {
                samples.push(WindowSample {
                    id,
                    at: r.get::<f64>(2)?.unwrap_or_default(),
                    workers: (r.get::<i32>(3)?.unwrap_or(0).max(0) as u32).max(min_workers),
                    unreachable: r.get::<i32>(4)?.unwrap_or(0).max(0) as u32,
                    nodes: Vec::new(),
                });
            }
            if let Some(is_coordinator) = r.get::<bool>(5)? {
                let role = NodeRole {
                    is_coordinator,
                    data_node: r.get::<bool>(6)?,
                    reachable: r.get::<bool>(7)?.unwrap_or(false),
                };
                let mut v = Vec::with_capacity(columns.len());
                for k in 0..columns.len() {
                    v.push(r.get::<f64>(8 + k)?);
                }
                samples
                    .last_mut()
                    .expect("pushed above")
                    .nodes
                    .push((role, v));
            }
        }
        let mut custom = HashMap::new();
        for r in c.select(
            "SELECT sample_id, policy, value FROM autoscale.metric_samples
              WHERE sampled_at >= pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $1)",
            None,
            &[window_secs.into()],
        )? {
            custom.insert(
                (
                    r.get::<i64>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                ),
                r.get::<f64>(3)?,
            );
        }
        Ok::<_, pgrx::spi::SpiError>((samples, custom))
    })?)
}

/// At the latest sample: the coordinator's free disk bytes, and the workers' shard bytes (None
/// unless every worker answered with them).
pub fn latest_coordinator_free_and_worker_bytes() -> Result<(Option<f64>, Option<f64>)> {
    Ok(Spi::get_two::<f64, f64>(
        "SELECT max(disk_free_bytes) FILTER (WHERE is_coordinator)::float8,
                CASE WHEN bool_and(shard_bytes IS NOT NULL AND reachable) FILTER (WHERE NOT is_coordinator)
                     IS NOT FALSE
                     THEN coalesce(sum(shard_bytes) FILTER (WHERE NOT is_coordinator), 0)::float8 END
           FROM autoscale.node_samples
          WHERE sample_id = (SELECT max(sample_id) FROM autoscale.worker_count)",
    )?)
}

/// The nodes of the latest sample, coordinator first: `host:port` and role.
pub fn latest_nodes() -> Result<Vec<(String, i32, NodeRole)>> {
    Ok(select_rows(
        "SELECT nodename, nodeport, is_coordinator, data_node, reachable FROM autoscale.node_samples
              WHERE sample_id = (SELECT max(sample_id) FROM autoscale.worker_count)
              ORDER BY is_coordinator DESC, nodename, nodeport",
&[],
|r| Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<i32>(2)?.unwrap_or_default(),
                NodeRole {
                    is_coordinator: r.get::<bool>(3)?.unwrap_or(false),
                    data_node: r.get::<bool>(4)?,
                    reachable: r.get::<bool>(5)?.unwrap_or(false),
                },
            )),
)?)
}

/// Each node's shard bytes at its latest reachable sample, keyed by (nodename, nodeport).
pub fn latest_shard_bytes() -> Result<HashMap<(String, i32), Option<i64>>> {
    super::by_node(
        "SELECT nodename, nodeport, shard_bytes FROM autoscale.node_latest WHERE last_reachable_at IS NOT NULL",
        |r| r.get::<i64>(3),
    )
}

/// The latest row of autoscale.worker_count.
pub struct LatestCount {
    pub sample_id: i64,
    pub workers: Option<i32>,
    pub unreachable: Option<i32>,
    pub inactive: Option<i32>,
    pub age_secs: Option<f64>,
}

pub fn latest_count() -> Result<Option<LatestCount>> {
    Ok(Spi::connect(|c| {
        let mut latest = None;
        for r in c.select(
            "SELECT sample_id, worker_count, unreachable_workers, inactive_workers,
                    extract(epoch FROM pg_catalog.now() - sampled_at)::float8
               FROM autoscale.worker_count ORDER BY sampled_at DESC LIMIT 1",
            None,
            &[],
        )? {
            latest = Some(LatestCount {
                sample_id: r.get::<i64>(1)?.unwrap_or_default(),
                workers: r.get(2)?,
                unreachable: r.get(3)?,
                inactive: r.get(4)?,
                age_secs: r.get(5)?,
            });
        }
        Ok::<_, pgrx::spi::SpiError>(latest)
    })?)
}

/// The node rows of sample `sample_id` for the metrics: `host:port`, role name, reachable, and
/// the values of `columns` (fixed column names from the caller, never user input).
pub type GaugeRow = (String, String, Option<bool>, Vec<Option<f64>>);

pub fn node_gauges(sample_id: i64, columns: &[&str]) -> Result<Vec<GaugeRow>> {
    let columns: Vec<String> = columns.iter().map(|c| format!("{c}::float8")).collect();
    let sql = format!(
        "SELECT nodename || ':' || nodeport, CASE WHEN is_coordinator THEN 'coordinator' ELSE 'worker' END,
                reachable, {}
           FROM autoscale.node_samples WHERE sample_id = $1 ORDER BY nodename, nodeport",
        columns.join(", ")
    );
    Ok(Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(&sql, None, &[sample_id.into()])? {
            let mut v = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                v.push(r.get::<f64>(4 + i)?);
            }
            out.push((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<bool>(3)?,
                v,
            ));
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })?)
}

/// Each reachable node's CPU busy % at its latest sample (which worker is the busiest).
pub fn latest_cpu() -> Result<HashMap<autoscale_core::operations::NodeAddr, f64>> {
    let mut load = HashMap::new();
    Spi::connect(|c| -> std::result::Result<(), pgrx::spi::SpiError> {
        for r in c.select(
            "SELECT nodename, nodeport, cpu_busy_pct::float8 FROM autoscale.latest_node_load WHERE reachable",
            None,
            &[],
        )? {
            if let (Some(h), Some(p), Some(v)) =
                (r.get::<String>(1)?, r.get::<i32>(2)?, r.get::<f64>(3)?)
            {
                load.insert(autoscale_core::operations::NodeAddr::new(h, p), v);
            }
        }
        Ok(())
    })?;
    Ok(load)
}

/// Each sampled node's health at the latest samples, keyed by (nodename, nodeport): whether its
/// latest sample reached it, and the first failed sample after its last answer (epoch s; None
/// when the latest answered).
/// (latest sample reached it, first failed sample since its last answer).
pub type Health = (bool, Option<f64>);

pub fn health() -> Result<HashMap<(String, i32), Health>> {
    super::by_node(
        "SELECT nodename, nodeport, last_reachable_at IS NOT DISTINCT FROM last_seen_at,
                CASE WHEN last_reachable_at IS DISTINCT FROM last_seen_at
                     THEN extract(epoch FROM first_failed_at)::float8 END
           FROM autoscale.node_latest",
        |r| Ok((r.get::<bool>(3)?.unwrap_or(true), r.get::<f64>(4)?)),
    )
}

/// Each reachable data node's samples of the last `window_secs` (oldest first), for the vertical
/// scaling advice: CPU busy %, memory used %, cache hit ratio %, its cores at the latest sample,
/// and the share of its measured load carried by its busiest shard group.
pub fn resize_windows(window_secs: f64) -> Result<Vec<autoscale_core::resize::NodeWindow>> {
    let opt = |v: Option<Vec<Option<f64>>>| v.unwrap_or_default();
    Ok(select_rows(
        "SELECT s.nodename, s.nodeport,
                array_agg(s.cpu_busy_pct::float8 ORDER BY s.sampled_at),
                array_agg(s.mem_used_pct::float8 ORDER BY s.sampled_at),
                array_agg(s.cache_hit_ratio::float8 ORDER BY s.sampled_at),
                (array_agg(s.cpu_cores::float8 ORDER BY s.sampled_at DESC))[1],
                (SELECT max(l.load_per_sec) / NULLIF(sum(l.load_per_sec), 0) FROM autoscale.shard_group_load l
                  WHERE l.nodename = s.nodename AND l.nodeport = s.nodeport)::float8
           FROM autoscale.node_samples s
          WHERE s.data_node AND s.reachable
            AND s.sampled_at > pg_catalog.now() - pg_catalog.make_interval(secs => $1)
          GROUP BY s.nodename, s.nodeport
          ORDER BY s.nodename, s.nodeport",
        &[window_secs.into()],
        |r| {
            Ok(autoscale_core::resize::NodeWindow {
                node: Some(crate::infra::spi::node_at(r, 1)?),
                cpu_busy_pct: opt(r.get::<Vec<Option<f64>>>(3)?),
                mem_used_pct: opt(r.get::<Vec<Option<f64>>>(4)?),
                cache_hit_ratio: opt(r.get::<Vec<Option<f64>>>(5)?),
                cpu_cores: r.get::<f64>(6)?,
                hot_group_share: r.get::<f64>(7)?,
            })
        },
    )?)
}

/// Whether the latest sample's workers reach the highest max_workers of the policies (no
/// scale-out can spread the load further); false without policies or samples.
pub fn at_max_workers() -> Result<bool> {
    Ok(Spi::get_one::<bool>(
        "SELECT coalesce((SELECT worker_count FROM autoscale.worker_count ORDER BY sampled_at DESC LIMIT 1)
                         >= (SELECT max(max_workers) FROM autoscale.policy_config), false)",
    )?
    .unwrap_or(false))
}
