//! The capacity plan (`autoscale.capacity_plan()`) and the hourly load a forecast's profile is
//! fitted on, from the 1-hour rollups (store::rollups); the plan itself is pure
//! (autoscale_core::capacity).

use std::borrow::Cow;

use autoscale_core::capacity::{self, Fleet, MetricHistory, PlanRow};
use autoscale_core::policy::backtest::spreads_over_workers;
use autoscale_core::policy::datanodes;
use autoscale_core::policy::{Aggregate, Metric, Policy, PolicyKind, DEFAULT_MAX_WORKERS};

use crate::infra::clock;
use crate::infra::errors::Result;
use crate::store::rollups::Level;
use crate::store::{policies, rollups, samples};

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
pub fn hourly_load(p: &Policy, span_secs: f64) -> Result<Vec<(f64, f64)>> {
    rollup_load(
        Level::Hour,
        hourly_column(p.metric).map(Cow::Borrowed),
        p,
        span_secs,
    )
}

/// The cluster's load of a policy's metric per minute over the last `span_secs`, from the
/// 1-minute rollups, on the scale of the recorded samples' load (so that a forecast's cycle series
/// can run from these into the samples): `max` policies read the rollups' max.
pub fn minute_load(p: &Policy, span_secs: f64) -> Result<Vec<(f64, f64)>> {
    let col = hourly_column(p.metric).map(|c| match (p.aggregate, c.strip_suffix("_avg")) {
        (Aggregate::Max, Some(stem)) => Cow::Owned(format!("{stem}_max")),
        _ => Cow::Borrowed(c),
    });
    rollup_load(Level::Minute, col, p, span_secs)
}

/// `col`: one of [`hourly_column`]'s fixed expressions (or its `_max` column), never user input.
fn rollup_load(
    level: Level,
    col: Option<Cow<'static, str>>,
    p: &Policy,
    span_secs: f64,
) -> Result<Vec<(f64, f64)>> {
    let Some(col) = col else {
        return Ok(Vec::new());
    };
    let spreads = spreads_over_workers(p.metric);
    Ok(rollups::cluster_series(level, &col, span_secs)?
        .into_iter()
        .filter_map(|(t, v, nodes)| {
            let v = v?;
            Some((t, if spreads && nodes > 0.0 { v * nodes } else { v }))
        })
        .collect())
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
pub fn capacity_plan() -> Result<(Vec<PlanRow>, f64)> {
    let policies: Vec<Policy> = policies::load()?.into_iter().map(|p| p.policy).collect();
    let now = clock::now()?;
    let workers = samples::latest_count()?
        .and_then(|c| c.workers)
        .unwrap_or(0);
    // the coordinator is one of the data nodes when the latest sample counts it (it holds shards)
    let roles: Vec<datanodes::NodeRole> =
        samples::latest_nodes()?.into_iter().map(|n| n.2).collect();
    let coordinator = datanodes::counted(&roles)
        .iter()
        .zip(&roles)
        .any(|(counted, r)| *counted && r.is_coordinator);
    let max_workers = policies
        .iter()
        .map(|p| p.max_workers)
        .max()
        .unwrap_or(DEFAULT_MAX_WORKERS);
    let rows = rollups::plan_rows()?;
    let series = |k: usize| -> Vec<(f64, f64, f64)> {
        rows.iter()
            .filter_map(|(t, w, v)| v[k].map(|x| (*t, x, *w)))
            .collect()
    };
    let fleet = Fleet {
        workers: u32::try_from(workers).unwrap_or(0),
        coordinator,
        max_workers,
    };
    let defs: [(&'static str, &'static str, bool, Metric, Option<f64>); 6] = [
        ("cpu", "% per data node", true, Metric::Cpu, Some(80.0)),
        ("memory", "% per node", false, Metric::Memory, Some(90.0)),
        ("disk", "% per data node", true, Metric::Disk, Some(85.0)),
        (
            "connections",
            "per data node",
            true,
            Metric::Connections,
            None,
        ),
        (
            "commits_per_sec",
            "per data node",
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
                &fleet,
            )
        })
        .collect();
    Ok((plan, now))
}
