//! Rollups of node samples: 1-minute and 1-hour buckets with avg, max and p95 of every metric,
//! per node and for the cluster (nodename 'cluster', nodeport 0: per sample the average over the
//! reachable data nodes, as the policies read them: autoscale_core::policy::datanodes::counted),
//! filled incrementally by the tick with bounded work and pruned per level. The hourly cluster
//! rows feed the forecast's seasonal profile and the capacity plan.

use std::time::Duration;

use autoscale_core::capacity::{self, MetricHistory, PlanRow};
use autoscale_core::policy::backtest::spreads_over_workers;
use autoscale_core::policy::{Metric, Policy, PolicyKind, DEFAULT_MAX_WORKERS};
use pgrx::prelude::*;
use pgrx::spi::SpiResult;

/// Columns of node_samples that are rolled up (each gets _avg, _max and _p95); constants only.
pub const METRICS: [&str; 13] = [
    "cpu_busy_pct",
    "load1",
    "mem_used_pct",
    "disk_used_pct",
    "connections",
    "active_connections",
    "commits_per_sec",
    "tps",
    "cache_hit_ratio",
    "connection_saturation",
    "replication_lag",
    "mean_statement_ms",
    "database_size",
];

/// A rollup level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Minute,
    Hour,
}

impl Level {
    pub fn table(self) -> &'static str {
        match self {
            Level::Minute => "autoscale.node_samples_1min",
            Level::Hour => "autoscale.node_samples_1hour",
        }
    }
    fn unit(self) -> &'static str {
        match self {
            Level::Minute => "minute",
            Level::Hour => "hour",
        }
    }
    fn width_secs(self) -> f64 {
        match self {
            Level::Minute => 60.0,
            Level::Hour => 3600.0,
        }
    }
    /// Buckets filled per tick at most: an hour of raw samples for either level.
    pub fn batch(self) -> i64 {
        match self {
            Level::Minute => 60,
            Level::Hour => 1,
        }
    }
    fn retention(self) -> Option<Duration> {
        match self {
            Level::Minute => crate::settings::rollup_minute_retention(),
            Level::Hour => crate::settings::rollup_hour_retention(),
        }
    }
}

/// Fills the next complete buckets of `level` after the newest one already there (at most
/// [`Level::batch`] of them); returns the rows written.
pub fn fill_level(level: Level) -> SpiResult<i64> {
    let table = level.table();
    let mut raw = String::new();
    let mut avg = String::new();
    let mut cols = String::new();
    let mut stats = String::new();
    let mut metric_cols = String::new();
    for m in METRICS {
        metric_cols.push_str(&format!(", n.{m}"));
        raw.push_str(&format!(", n.{m}::float8 AS {m}"));
        avg.push_str(&format!(", avg(n.{m}) FILTER (WHERE n.reachable)::float8"));
        cols.push_str(&format!(", {m}_avg, {m}_max, {m}_p95"));
        stats.push_str(&format!(
            ", avg({m}), max({m}), percentile_cont(0.95) WITHIN GROUP (ORDER BY {m})"
        ));
    }
    // table and columns are the constants above, never user input
    let sql = format!(
        "WITH lo AS (
            SELECT pg_catalog.date_trunc($1, min(n.sampled_at), 'UTC') AS lo
              FROM autoscale.node_samples n
             WHERE n.sampled_at >= coalesce((SELECT max(bucket) FROM {table}) + pg_catalog.make_interval(secs => $2),
                                            '-infinity')
         ), win AS (
            SELECT lo, LEAST(lo + pg_catalog.make_interval(secs => $2 * $3),
                             pg_catalog.date_trunc($1, pg_catalog.now(), 'UTC')) AS hi
              FROM lo WHERE lo IS NOT NULL
         ), nodes AS (
            -- the nodes of each sample with what decides whether their load counts (datanodes::counted:
            -- the data nodes when the sample knows any, else the workers, else the coordinator)
            SELECT w.sample_id, w.sampled_at AS at, w.worker_count, n.is_coordinator, n.data_node,
                   n.reachable{metric_cols},
                   coalesce(bool_or(n.data_node) OVER s, false) AS any_data_node,
                   bool_or(NOT n.is_coordinator) OVER s AS any_worker
              FROM win, autoscale.worker_count w
              JOIN autoscale.node_samples n ON n.sample_id = w.sample_id
             WHERE w.sampled_at >= win.lo AND w.sampled_at < win.hi
            WINDOW s AS (PARTITION BY w.sample_id)
         ), per_sample AS (
            SELECT n.sampled_at, n.nodename, n.nodeport, NULL::float8 AS workers, NULL::float8 AS data_nodes{raw}
              FROM autoscale.node_samples n, win
             WHERE n.reachable AND n.sampled_at >= win.lo AND n.sampled_at < win.hi
            UNION ALL
            SELECT n.at, 'cluster', 0, n.worker_count::float8, count(*)::float8{avg}
              FROM nodes n
             WHERE CASE WHEN n.any_data_node THEN n.data_node IS TRUE
                        WHEN n.any_worker THEN NOT n.is_coordinator
                        ELSE n.is_coordinator END
             GROUP BY n.sample_id, n.at, n.worker_count
         ), ins AS (
            INSERT INTO {table} (bucket, nodename, nodeport, samples, workers, data_nodes{cols})
            SELECT pg_catalog.date_trunc($1, sampled_at, 'UTC'), nodename, nodeport, count(*), avg(workers),
                   avg(data_nodes){stats}
              FROM per_sample GROUP BY 1, 2, 3
            RETURNING 1)
         SELECT count(*) FROM ins"
    );
    Spi::connect_mut(|c| {
        c.update(
            sql.as_str(),
            None,
            &[
                level.unit().into(),
                level.width_secs().into(),
                level.batch().into(),
            ],
        )?
        .first()
        .get_one::<i64>()
    })
    .map(|n| n.unwrap_or(0))
}

/// Deletes at most `batch` rows of `level` older than its retention; returns how many.
pub fn prune_level(level: Level, batch: i64) -> SpiResult<i64> {
    let Some(retention) = level.retention() else {
        return Ok(0);
    };
    let table = level.table();
    let sql = format!(
        "WITH gone AS (
            DELETE FROM {table}
             WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table}
                                      WHERE bucket < pg_catalog.now() - pg_catalog.make_interval(secs => $1)
                                      LIMIT $2))
            RETURNING 1)
         SELECT count(*) FROM gone"
    );
    Spi::connect_mut(|c| {
        c.update(
            sql.as_str(),
            None,
            &[retention.as_secs_f64().into(), batch.into()],
        )?
        .first()
        .get_one::<i64>()
    })
    .map(|n| n.unwrap_or(0))
}

/// One tick's rollup work: fill both levels, prune both; returns rows written and deleted.
pub fn run() -> SpiResult<(i64, i64)> {
    let written = fill_level(Level::Minute)? + fill_level(Level::Hour)?;
    let pruned = prune_level(Level::Minute, crate::history::PRUNE_BATCH)?
        + prune_level(Level::Hour, crate::history::PRUNE_BATCH)?;
    Ok((written, pruned))
}

/// The hourly-rollup expression of a policy metric's cluster average; `None` for custom metrics.
fn hourly_column(metric: Metric) -> Option<&'static str> {
    Some(match metric {
        Metric::Cpu => "cpu_busy_pct_avg",
        Metric::Memory => "mem_used_pct_avg",
        Metric::Disk => "disk_used_pct_avg",
        Metric::Connections => "connections_avg",
        Metric::ActiveConnections => "active_connections_avg",
        Metric::CommitsPerSec => "commits_per_sec_avg",
        Metric::Load1 => "load1_avg",
        Metric::Tps => "tps_avg",
        Metric::ConnectionSaturation => "connection_saturation_avg",
        Metric::ReplicationLag => "replication_lag_avg",
        Metric::MeanStatementMs => "mean_statement_ms_avg",
        Metric::CacheMissRatio => "(100 - cache_hit_ratio_avg)",
        Metric::Custom => return None,
    })
}

/// The cluster's hourly load of a policy's metric over the last `span_secs`: `(hour start,
/// load)`, load = average x data nodes for metrics that spread over them. Only the shape of it
/// matters to the forecast's profile (it is normalised), so `max` policies use it too.
pub fn hourly_load(p: &Policy, span_secs: f64) -> SpiResult<Vec<(f64, f64)>> {
    let Some(col) = hourly_column(p.metric) else {
        return Ok(Vec::new());
    };
    let spreads = spreads_over_workers(p.metric);
    let sql = format!(
        "SELECT extract(epoch FROM bucket)::float8, {col}::float8, coalesce(data_nodes, workers)::float8
           FROM autoscale.node_samples_1hour
          WHERE nodename = 'cluster' AND nodeport = 0
            AND bucket >= pg_catalog.now() - pg_catalog.make_interval(secs => $1)
          ORDER BY bucket"
    );
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(sql.as_str(), None, &[span_secs.into()])? {
            let (Some(t), Some(v)) = (r.get::<f64>(1)?, r.get::<f64>(2)?) else {
                continue;
            };
            let w = r.get::<f64>(3)?.unwrap_or(0.0);
            out.push((t, if spreads && w > 0.0 { v * w } else { v }));
        }
        Ok(out)
    })
}

/// The scale-out threshold of `metric` from the policies (the lowest), else a default.
fn threshold(
    policies: &[Policy],
    metric: Metric,
    default: Option<f64>,
) -> (Option<f64>, Option<String>) {
    let from_policies = policies
        .iter()
        .filter(|p| p.metric == metric)
        .map(|p| {
            let t = match p.kind {
                PolicyKind::Threshold {
                    scale_out_above, ..
                } => scale_out_above,
                PolicyKind::Target { target, tolerance } => target * (1.0 + tolerance),
            };
            (t, p.name.clone())
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    match (from_policies, default) {
        (Some((t, name)), _) => (Some(t), Some(format!("policy {name}"))),
        (None, Some(d)) => (Some(d), Some("default".into())),
        (None, None) => (None, None),
    }
}

/// The capacity plan from the last year of hourly cluster rollups.
pub fn capacity_plan() -> SpiResult<(Vec<PlanRow>, f64)> {
    let policies: Vec<Policy> = crate::policies::load()?
        .into_iter()
        .map(|p| p.policy)
        .collect();
    let now = Spi::get_one::<f64>("SELECT extract(epoch FROM pg_catalog.now())::float8")?
        .unwrap_or_default();
    let workers = Spi::get_one::<i32>(
        "SELECT (SELECT worker_count FROM autoscale.worker_count ORDER BY sampled_at DESC LIMIT 1)",
    )?
    .unwrap_or(0);
    let max_workers = policies
        .iter()
        .map(|p| p.max_workers)
        .max()
        .unwrap_or(DEFAULT_MAX_WORKERS);
    let rows: Vec<(f64, f64, [Option<f64>; 6])> = Spi::connect(|c| {
        let mut v = Vec::new();
        for r in c.select(
            "SELECT extract(epoch FROM bucket)::float8, coalesce(workers, 0)::float8,
                    cpu_busy_pct_avg::float8, mem_used_pct_avg::float8, disk_used_pct_avg::float8,
                    connections_avg::float8, commits_per_sec_avg::float8,
                    database_size_avg * GREATEST(workers, 1)
               FROM autoscale.node_samples_1hour
              WHERE nodename = 'cluster' AND nodeport = 0
                AND bucket >= pg_catalog.now() - interval '365 days'
              ORDER BY bucket",
            None,
            &[],
        )? {
            let t = r.get::<f64>(1)?.unwrap_or_default();
            let w = r.get::<f64>(2)?.unwrap_or_default();
            let mut vals = [None; 6];
            for (k, val) in vals.iter_mut().enumerate() {
                *val = r.get::<f64>(3 + k)?;
            }
            v.push((t, w, vals));
        }
        Ok::<_, pgrx::spi::SpiError>(v)
    })?;
    let series = |k: usize| -> Vec<(f64, f64, f64)> {
        rows.iter()
            .filter_map(|(t, w, v)| v[k].map(|x| (*t, x, *w)))
            .collect()
    };
    let defs: [(&'static str, &'static str, bool, Metric, Option<f64>); 6] = [
        ("cpu", "% per worker", true, Metric::Cpu, Some(80.0)),
        ("memory", "% per node", false, Metric::Memory, Some(90.0)),
        ("disk", "% per worker", true, Metric::Disk, Some(85.0)),
        ("connections", "per worker", true, Metric::Connections, None),
        (
            "commits_per_sec",
            "per worker",
            true,
            Metric::CommitsPerSec,
            None,
        ),
        (
            "database_bytes",
            "bytes, cluster",
            false,
            Metric::Custom,
            None,
        ),
    ];
    let plan = defs
        .iter()
        .enumerate()
        .map(|(k, (name, unit, spreads, metric, default))| {
            let (thr, from) = if *metric == Metric::Custom {
                (None, None)
            } else {
                threshold(&policies, *metric, *default)
            };
            capacity::plan(
                &MetricHistory {
                    metric: name,
                    unit,
                    spreads: *spreads,
                    points: series(k),
                    threshold: thr,
                    threshold_from: from,
                },
                now,
                f64::from(workers.max(0)),
                f64::from(max_workers),
            )
        })
        .collect();
    Ok((plan, now))
}
