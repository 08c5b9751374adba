//! autoscale.node_samples_1min and autoscale.node_samples_1hour: rollups of node samples: 1-minute and 1-hour buckets with avg, max and p95 of every metric,
//! per node and for the cluster (nodename 'cluster', nodeport 0: per sample the average over the
//! reachable data nodes, as the policies read them: autoscale_core::policy::datanodes::counted),
//! filled incrementally by the tick with bounded work and pruned per level. The hourly cluster
//! rows feed the forecast's seasonal profile and the capacity plan (services::capacity). Reads
//! autoscale.node_samples and autoscale.worker_count: a rollup is made from them.

use std::time::Duration;

use pgrx::prelude::*;

use crate::infra::errors::Result;
use crate::infra::spi::select_rows;

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
            Level::Minute => crate::infra::settings::rollup_minute_retention(),
            Level::Hour => crate::infra::settings::rollup_hour_retention(),
        }
    }
}

/// Fills the next complete buckets of `level` after the newest one already there (at most
/// [`Level::batch`] of them); returns the rows written.
pub fn fill_level(level: Level) -> Result<i64> {
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
              FROM autoscale.node_history n
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
               AND n.sampled_at >= win.lo AND n.sampled_at < win.hi
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
    Ok(Spi::connect_mut(|c| {
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
    })?
    .unwrap_or(0))
}

/// Deletes at most `batch` rows of `level` older than its retention; returns how many.
pub fn prune_level(level: Level, batch: i64) -> Result<i64> {
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
    Ok(Spi::connect_mut(|c| {
        c.update(
            sql.as_str(),
            None,
            &[retention.as_secs_f64().into(), batch.into()],
        )?
        .first()
        .get_one::<i64>()
    })?
    .unwrap_or(0))
}

/// One tick's rollup work: fill both levels, prune both (at most `batch` rows each); returns rows
/// written and deleted.
pub fn run(batch: i64) -> Result<(i64, i64)> {
    let written = fill_level(Level::Minute)? + fill_level(Level::Hour)?;
    let pruned = prune_level(Level::Minute, batch)? + prune_level(Level::Hour, batch)?;
    Ok((written, pruned))
}

/// The cluster rows of the `level` rollups of the last `span_secs`: `(bucket start, expr, data
/// nodes)`, `expr` one of the caller's fixed expressions over the table's columns, never user input.
pub fn cluster_series(
    level: Level,
    expr: &str,
    span_secs: f64,
) -> Result<Vec<(f64, Option<f64>, f64)>> {
    let sql = format!(
        "SELECT extract(epoch FROM bucket)::float8, ({expr})::float8, coalesce(data_nodes, workers)::float8
           FROM {}
          WHERE nodename = 'cluster' AND nodeport = 0
            AND bucket >= pg_catalog.now() - pg_catalog.make_interval(secs => $1)
          ORDER BY bucket",
        level.table()
    );
    Ok(select_rows(sql.as_str(), &[span_secs.into()], |r| {
        Ok((
            r.get::<f64>(1)?.unwrap_or_default(),
            r.get::<f64>(2)?,
            r.get::<f64>(3)?.unwrap_or(0.0),
        ))
    })?)
}

/// One hour of the capacity plan's input: `(hour start, data nodes (the workers where not
/// recorded), [cpu, memory, disk, connections, commits/s averages over the data nodes, database
/// bytes of the cluster])`.
pub type PlanInputRow = (f64, f64, [Option<f64>; 6]);

/// The capacity plan's input: the last year of hourly cluster rows.
pub fn plan_rows() -> Result<Vec<PlanInputRow>> {
    Ok(Spi::connect(|c| {
        let mut v = Vec::new();
        for r in c.select(
            "SELECT extract(epoch FROM bucket)::float8, coalesce(data_nodes, workers, 0)::float8,
                    cpu_busy_pct_avg::float8, mem_used_pct_avg::float8, disk_used_pct_avg::float8,
                    connections_avg::float8, commits_per_sec_avg::float8,
                    database_size_avg * GREATEST(coalesce(data_nodes, workers), 1)
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
    })?)
}
