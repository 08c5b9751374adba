//! Observing: node_stats() (every node), sample(), tick(), explain(), backtest(), metrics(), and
//! shard_load_cost() (the cost function Citus calls for the autoscale_by_load strategy).

use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::JsonB;

use super::{duration_arg, interval_secs, req, MAX_INTERVAL_SECS};
use crate::infra::errors::{AutoscaleError, OrReport};
use crate::infra::{citus, settings};
use crate::orchestration::tick;
use crate::services::decide;
use crate::services::sampler::{cluster, local};
use crate::store::load;

/// This node's raw load as one json value (cumulative counters; the coordinator computes rates).
/// Runs as its caller (run_command_on_workers connects as a superuser) with a pinned search_path,
/// so that no object of the database's default search_path is ever called.
#[pg_extern(volatile, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn node_stats() -> JsonB {
    // a test build's failpoint: the caller's query stays in flight this long
    let delay = crate::infra::settings::test_node_stats_delay();
    if !delay.is_zero() {
        let until = std::time::Instant::now() + delay;
        while std::time::Instant::now() < until {
            unsafe { pgrx::pg_sys::pg_usleep(10_000) };
            pgrx::pg_sys::check_for_interrupts!();
        }
    }
    match local::read_node_stats() {
        Ok(s) => JsonB(serde_json::to_value(s).expect("node stats serialize")),
        Err(e) => AutoscaleError::Failed(format!(
            "citus_autoscale: reading this node's load failed: {e}"
        ))
        .report(),
    }
}

/// The shard cost function of the `autoscale_by_load` rebalance strategy: the measured load of
/// the shard's group plus a small base; 1 (balance by count) while no load was measured.
/// Citus calls it on the coordinator while planning a rebalance.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn shard_load_cost(shardid: Option<i64>) -> f32 {
    let shardid = req("shardid", shardid, "a shard id");
    if !citus::installed() {
        AutoscaleError::CitusMissing {
            function: "autoscale.shard_load_cost()",
            database: Spi::get_one::<String>("SELECT pg_catalog.current_database()")
                .ok()
                .flatten()
                .unwrap_or_default(),
        }
        .report();
    }
    match load::shard_cost(shardid) {
        Ok(c) => c as f32,
        Err(e) => AutoscaleError::Failed(format!("autoscale.shard_load_cost: {e}")).report(),
    }
}

/// Samples every active node now (one parallel fan-out) and writes history; returns a summary.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn sample() -> JsonB {
    match cluster::sample("sql") {
        Ok(s) => JsonB(serde_json::to_value(s).expect("summary serializes")),
        Err(e) => AutoscaleError::Failed(format!("citus_autoscale: {e}")).report(),
    }
}

/// One autoscaler cycle: sample when due, prune history. For psql and pg_cron.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn tick() -> JsonB {
    JsonB(serde_json::to_value(tick::run(tick::sql_driver())).expect("tick report serializes"))
}

/// Per policy: current value, rule, how long the condition held, cooldown left, desired workers
/// and the decision with its reasons, from recorded samples, and the data nodes whose load the
/// value is read from. Acts on nothing.
#[allow(clippy::type_complexity)]
#[pg_extern(stable)]
fn explain() -> TableIterator<
    'static,
    (
        name!(policy, String),
        name!(metric, String),
        name!(aggregate, String),
        name!(current_value, Option<f64>),
        name!(rule, String),
        name!(held_for, Interval),
        name!(cooldown_left, Interval),
        name!(workers, i32),
        name!(desired_workers, i32),
        name!(decision, String),
        name!(reasons, Vec<String>),
        name!(data_nodes, Vec<String>),
        name!(scale_out_path, String),
        name!(forecast, Option<f64>),
        name!(horizon, Option<Interval>),
        name!(model_error, Option<f64>),
        name!(forecast_note, Option<String>),
        name!(dead_nodes, Vec<String>),
    ),
> {
    let (d, _, outlooks, effect) = decide::decide_with_outlooks().or_report();
    let data_nodes = decide::data_nodes_now().or_report();
    let round = |v: f64| (v * 100.0).round() / 100.0;
    // the path the decision's scale-out takes (or would take: one node when none is due)
    let path = crate::services::execute::scale_out_path(d.step.max(1))
        .map(|p| p.text())
        .unwrap_or_else(|e| format!("unknown: {e}"));
    let dead_nodes = crate::services::dead::summaries().or_report();
    let rows: Vec<_> = d
        .policies
        .into_iter()
        .zip(outlooks)
        .map(|(p, o)| {
            (
                p.name,
                p.metric.as_str().to_string(),
                p.aggregate.as_str().to_string(),
                p.current.map(round),
                p.threshold_or_target,
                Interval::from_seconds(p.held_for.round()),
                Interval::from_seconds(p.cooldown_left.round()),
                d.from_workers as i32,
                p.desired_workers as i32,
                p.direction.as_str().to_string(),
                p.reasons,
                data_nodes.clone(),
                path.clone(),
                o.as_ref().and_then(|o| o.forecast).map(round),
                o.as_ref()
                    .map(|o| Interval::from_seconds(o.horizon.round())),
                o.as_ref().and_then(|o| o.model_error).map(round),
                o.map(|o| o.note),
                dead_nodes.clone(),
            )
        })
        .collect();
    let mut rows = rows;
    // the load-skew trigger, when the load is skewed (its latest assessment, made by the tick)
    let assessment = load::last_assessment()
        .map_err(|e| AutoscaleError::Failed(e.to_string()))
        .or_report();
    // a row for each trigger that is not a policy, with the trigger's own rule and decision
    let workers = d.from_workers as i32;
    let trigger_row =
        |name: &str, metric: &str, aggregate: &str, value, rule, decision: &str, text| {
            (
                name.to_string(),
                metric.to_string(),
                aggregate.to_string(),
                value,
                rule,
                Interval::from_seconds(0.0),
                Interval::from_seconds(0.0),
                workers,
                workers,
                decision.to_string(),
                vec![text],
                data_nodes.clone(),
                path.clone(),
                None,
                None,
                None,
                None,
                dead_nodes.clone(),
            )
        };
    if let Some(text) = assessment.filter(|t| t.starts_with("load skew:")) {
        let fires = text.contains("; predicted max/mean") && !text.contains("not worth");
        let ratio = load::latest_ratio()
            .map_err(|e| AutoscaleError::Failed(e.to_string()))
            .or_report();
        rows.push(trigger_row(
            "load_skew",
            "shard_load",
            "max/mean",
            ratio.map(|v| (v * 100.0).round() / 100.0),
            format!(
                "max/mean > {} for {} (autoscale.load_skew_ratio, load_skew_for)",
                settings::load_skew_ratio(),
                autoscale_core::duration::format_secs(settings::load_skew_for())
            ),
            if fires { "rebalance" } else { "hold" },
            text,
        ));
    }
    // a hot tenant worth isolating (its latest assessment, made by the tick)
    let hot = load::last_hot_tenant()
        .map_err(|e| AutoscaleError::Failed(e.to_string()))
        .or_report();
    if let Some(text) = hot.filter(|t| t.starts_with("hot tenant:")) {
        let on = settings::isolate_hot_tenants();
        let acts = on && !text.contains("; not isolated");
        rows.push(trigger_row(
            "hot_tenant",
            "tenant_share",
            "max",
            None,
            format!(
                "a tenant >= {} of the busiest worker's tenant load while the load is skewed \
                 (autoscale.hot_tenant_share, isolate_hot_tenants {})",
                settings::hot_tenant_share(),
                if on { "on" } else { "off" }
            ),
            if acts { "isolate" } else { "hold" },
            text,
        ));
    }
    // the schedules that apply now: their bounds, and the cluster's decision within them
    if let Some(e) = effect.filter(|e| !e.active.is_empty()) {
        let mut row = trigger_row(
            "schedule",
            "clock",
            "-",
            None,
            format!(
                "min_workers {}, max_workers {} (policies: {}, {})",
                e.bounds.min_workers,
                e.bounds.max_workers,
                e.policy.min_workers,
                e.policy.max_workers
            ),
            d.direction.as_str(),
            e.explain().unwrap_or_default(),
        );
        row.8 = d.desired_workers as i32;
        // the line the schedules added to the decision (the last one): "2 -> 6 workers:
        // schedule ..." when they changed it
        if let Some(line) = d.reasons.last() {
            row.10 = vec![line.clone()];
        }
        rows.push(row);
    }
    // a PostgreSQL / Citus pair this release does not support, or has not tested
    let pair = crate::infra::versions::current();
    let verdict = pair.assess();
    if verdict.support != autoscale_core::compat::Support::Tested {
        rows.push(trigger_row(
            "versions",
            "citus",
            "-",
            None,
            format!(
                "PostgreSQL {} with Citus {}: {}",
                crate::infra::versions::server_version(),
                pair.citus.as_deref().unwrap_or("(none)"),
                verdict.support.as_str()
            ),
            if verdict.may_act() { "none" } else { "hold" },
            verdict.note,
        ));
    }
    TableIterator::new(rows)
}

/// The PostgreSQL / Citus pair of this server, and whether this release supports it: `tested`,
/// `built, not tested` or `not supported` (then autoscale samples and decides but starts no
/// operation), with the sentence that says why.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn version_support() -> TableIterator<
    'static,
    (
        name!(postgres, String),
        name!(citus, Option<String>),
        name!(library, String),
        name!(support, String),
        name!(may_act, bool),
        name!(note, String),
    ),
> {
    let pair = crate::infra::versions::current();
    let a = pair.assess();
    TableIterator::once((
        crate::infra::versions::server_version(),
        pair.citus.clone(),
        env!("CARGO_PKG_VERSION").to_string(),
        a.support.as_str().to_string(),
        a.may_act(),
        a.note,
    ))
}

/// The version of the citus_autoscale library loaded in this backend. After new files are
/// installed it stays the old one until PostgreSQL restarts (a preloaded library cannot be
/// replaced in a running server); `ALTER EXTENSION citus_autoscale UPDATE` checks it.
#[pg_extern(immutable, parallel_safe)]
fn library_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Vertical scaling advice: per data node, the resource that needs a bigger machine (more vCPUs,
/// more RAM, a larger shared_buffers) when the samples of the last `window` show it sustained,
/// and why. Advice only: nothing is resized.
#[allow(clippy::type_complexity)]
#[pg_extern(stable)]
fn resize_advice(
    window: default!(Option<Interval>, "'10 min'"),
) -> TableIterator<
    'static,
    (
        name!(node, String),
        name!(resource, String),
        name!(observed, f64),
        name!(threshold, f64),
        name!(factor, f64),
        name!(suggested_cores, Option<i32>),
        name!(reason, String),
    ),
> {
    let secs = interval_secs(req("window", window, "an interval from 1 minute to 7 days"));
    if !(60.0..=7.0 * 86_400.0).contains(&secs) {
        AutoscaleError::invalid(
            "window",
            format!("'{secs} seconds'"),
            "an interval from 1 minute to 7 days",
        )
        .report();
    }
    let rows: Vec<_> = crate::services::resize::advice(secs)
        .or_report()
        .into_iter()
        .map(|a| {
            (
                a.node.to_string(),
                a.resource.as_str().to_string(),
                a.observed,
                a.threshold,
                a.factor,
                a.suggested_cores.map(|c| c.min(i32::MAX as u32) as i32),
                a.reason,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The capacity plan from the hourly rollups: per metric the current value, the linear-trend
/// forecast at 3, 6 and 12 months, when the scale-out threshold is crossed and max_workers is
/// full, and what to do.
#[allow(clippy::type_complexity)]
#[pg_extern(stable)]
fn capacity_plan() -> TableIterator<
    'static,
    (
        name!(metric, String),
        name!(unit, String),
        name!(current_value, Option<f64>),
        name!(in_3_months, Option<f64>),
        name!(in_6_months, Option<f64>),
        name!(in_12_months, Option<f64>),
        name!(per_month, Option<f64>),
        name!(threshold, Option<f64>),
        name!(crosses_at, Option<TimestampWithTimeZone>),
        name!(max_workers_full_at, Option<TimestampWithTimeZone>),
        name!(history, Interval),
        name!(action, String),
    ),
> {
    let (plan, _) = crate::services::capacity::capacity_plan().or_report();
    let r2 = |v: Option<f64>| v.map(|x| (x * 100.0).round() / 100.0);
    let rows: Vec<_> = plan
        .into_iter()
        .map(|r| {
            (
                r.metric,
                r.unit,
                r2(r.current),
                r2(r.in_3_months),
                r2(r.in_6_months),
                r2(r.in_12_months),
                r2(r.per_month),
                r.threshold,
                r.crosses_at.map(pgrx::datum::to_timestamp),
                r.max_workers_full_at.map(pgrx::datum::to_timestamp),
                Interval::from_seconds((r.history_days * 86_400.0).round()),
                r.action,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// What the policies (all, or the one named) would have done over the recorded history of the
/// last `since`: one row per scale action, with a simulated worker count. Acts on nothing.
#[allow(clippy::type_complexity)]
#[pg_extern(stable)]
fn backtest(
    since: default!(Option<Interval>, "'1 day'"),
    policy: default!(Option<&str>, "NULL"),
    operation_time: default!(Option<Interval>, "'1 min'"),
) -> TableIterator<
    'static,
    (
        name!(at, TimestampWithTimeZone),
        name!(decision, String),
        name!(from_workers, i32),
        name!(to_workers, i32),
        name!(reasons, Vec<String>),
    ),
> {
    let since_secs = interval_secs(req("since", since, "an interval > 0"));
    if since_secs <= 0.0 || since_secs > MAX_INTERVAL_SECS {
        AutoscaleError::invalid(
            "since",
            format!("'{since_secs} seconds'"),
            "an interval > 0 and at most 10 years",
        )
        .report();
    }
    let op_secs = duration_arg(
        "operation_time",
        req("operation_time", operation_time, "an interval >= 0"),
    )
    .or_report();
    let mut rows: Vec<_> = decide::backtest(since_secs, policy, op_secs)
        .or_report()
        .into_iter()
        .map(|a| {
            (
                a.at,
                a.direction.as_str().to_string(),
                a.from_workers as i32,
                a.to_workers as i32,
                a.reasons,
            )
        })
        .collect();
    // with all policies: where the load-skew trigger would have fired (decision 'rebalance')
    if policy.is_none() {
        for (at, nodes, why) in decide::backtest_load_skew(since_secs).or_report() {
            rows.push((
                at,
                "rebalance".into(),
                nodes as i32,
                nodes as i32,
                vec![why],
            ));
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    TableIterator::new(
        rows.into_iter().map(|(at, d, from, to, reasons)| {
            (pgrx::datum::to_timestamp(at), d, from, to, reasons)
        }),
    )
}

/// The autoscaler's state as Prometheus text (exposition format 0.0.4): mode, workers, each
/// node's latest sample, each policy's value and desired workers, operations, the standby pool.
#[pg_extern(stable)]
fn metrics() -> String {
    autoscale_core::metrics::render(&crate::entry::metrics::collect().or_report())
}
