//! The SQL functions of schema `autoscale`: check arguments, call into the modules, convert.
//! No logic of its own lives here.

use autoscale_core::operations::{self as machine, Kind, NodeAddr, Operation};
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::errors::{AutoscaleError, OrReport};
use crate::sampler::{cluster, local};
use crate::{citus, history, operations, policies, pool, settings, tick};

/// The most workers one `scale_out(nodes => ...)` call may add.
const MAX_NODES_PER_SCALE_OUT: i32 = 64;

/// This node's raw load as one json value (cumulative counters; the coordinator computes rates).
/// Runs as its caller (run_command_on_workers connects as a superuser) with a pinned search_path,
/// so that no object of the database's default search_path is ever called.
#[pg_extern(volatile, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn node_stats() -> JsonB {
    match local::read_node_stats() {
        Ok(s) => JsonB(serde_json::to_value(s).expect("node stats serialize")),
        Err(e) => error!("citus_autoscale: reading this node's load failed: {e}"),
    }
}

/// Samples every active node now (one parallel fan-out) and writes history; returns a summary.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn sample() -> JsonB {
    match cluster::sample("sql") {
        Ok(s) => JsonB(serde_json::to_value(s).expect("summary serializes")),
        Err(e) => error!("citus_autoscale: {e}"),
    }
}

/// One autoscaler cycle: sample when due, prune history. For psql and pg_cron.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn tick() -> JsonB {
    JsonB(serde_json::to_value(tick::run(tick::sql_driver())).expect("tick report serializes"))
}

// ---------------------------------------------------------------- policies

fn interval_secs(i: Interval) -> f64 {
    i.as_micros() as f64 / 1e6
}

/// Longest interval any argument takes (10 years): longer ones overflow timestamps.
const MAX_INTERVAL_SECS: f64 = 10.0 * 365.0 * 86_400.0;

fn duration_arg(argument: &'static str, i: Interval) -> Result<f64, AutoscaleError> {
    let s = interval_secs(i);
    if !(0.0..=MAX_INTERVAL_SECS).contains(&s) {
        return Err(AutoscaleError::invalid(
            argument,
            format!("'{s} seconds'"),
            "an interval >= 0 and at most 10 years",
        ));
    }
    Ok(s)
}

/// A required argument: its value, or a 22004 error that names it.
fn req<T>(argument: &'static str, v: Option<T>, allowed: &str) -> T {
    AutoscaleError::required(argument, v, allowed).or_report()
}

/// The `reason` of a manual operation: required, bounded (it travels in NOTIFY payloads).
fn reason_arg(v: Option<&str>) -> String {
    let r = req("reason", v, "a short text");
    if let Err(allowed) = autoscale_core::safety::check_reason(r) {
        AutoscaleError::invalid(
            "reason",
            format!("'{}'", autoscale_core::safety::truncate(r, 40)),
            allowed,
        )
        .report();
    }
    r.to_string()
}

/// Whether the real calling user may configure custom SQL. set_policy() is not SECURITY
/// DEFINER, so GetUserId() is the user the call really runs as: inside an expression index that
/// ANALYZE evaluates it is the table's owner, inside someone's SECURITY DEFINER function that
/// function's owner. A security-restricted operation is never a place to configure SQL.
fn require_superuser(what: &str) -> Result<(), AutoscaleError> {
    let (user, restricted) =
        unsafe { (pg_sys::GetUserId(), pg_sys::InSecurityRestrictedOperation()) };
    if restricted {
        return Err(AutoscaleError::Privilege(format!(
            "{what} cannot be configured inside a security-restricted operation (an index \
             expression, ANALYZE, a materialized view refresh)"
        )));
    }
    if unsafe { pg_sys::superuser_arg(user) } {
        Ok(())
    } else {
        Err(AutoscaleError::Privilege(format!(
            "{what} requires superuser"
        )))
    }
}

/// Creates or replaces a policy. Give either `target` (target tracking) or thresholds.
/// Not SECURITY DEFINER: the caller's EXECUTE grant admits it, custom SQL is checked against the
/// real calling user, and only the validated row is written with the extension owner's rights.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn set_policy(
    name: Option<&str>,
    metric: default!(Option<&str>, "'cpu'"),
    aggregate: default!(Option<&str>, "'avg'"),
    scale_out_above: default!(Option<f64>, "NULL"),
    scale_in_below: default!(Option<f64>, "NULL"),
    target: default!(Option<f64>, "NULL"),
    tolerance: default!(Option<f64>, "0.1"),
    scale_out_for: default!(Option<Interval>, "'2 min'"),
    scale_in_for: default!(Option<Interval>, "'15 min'"),
    cooldown: default!(Option<Interval>, "'10 min'"),
    scale_in_cooldown: default!(Option<Interval>, "NULL"),
    min_workers: default!(Option<i32>, "2"),
    max_workers: default!(Option<i32>, "16"),
    step: default!(Option<i32>, "1"),
    custom_sql: default!(Option<&str>, "NULL"),
    predictive: default!(Option<bool>, false),
) -> JsonB {
    let name = req(
        "name",
        name,
        "a policy name: lower-case letters, digits and _",
    );
    let metric = req(
        "metric",
        metric,
        "cpu, memory, disk, connections, active_connections, commits_per_sec, load1, custom, tps, \
         connection_saturation, replication_lag, mean_statement_ms or cache_miss_ratio",
    );
    let aggregate = req("aggregate", aggregate, "avg or max");
    let tolerance = req("tolerance", tolerance, "a fraction between 0 and 1");
    let scale_out_for = req("scale_out_for", scale_out_for, "an interval >= 0");
    let scale_in_for = req("scale_in_for", scale_in_for, "an interval >= 0");
    let cooldown = req("cooldown", cooldown, "an interval >= 0");
    let min_workers = req("min_workers", min_workers, "an integer between 1 and 1000");
    let max_workers = req("max_workers", max_workers, "an integer between 1 and 1000");
    let step = req("step", step, "an integer between 1 and 100");
    let predictive = req("predictive", predictive, "true or false");
    let args = (|| {
        Ok::<_, AutoscaleError>(policies::PolicyArgs {
            name: name.to_string(),
            metric: metric.to_string(),
            aggregate: aggregate.to_string(),
            scale_out_above,
            scale_in_below,
            target,
            tolerance,
            scale_out_for: duration_arg("scale_out_for", scale_out_for)?,
            scale_in_for: duration_arg("scale_in_for", scale_in_for)?,
            cooldown: duration_arg("cooldown", cooldown)?,
            scale_in_cooldown: scale_in_cooldown
                .map(|i| duration_arg("scale_in_cooldown", i))
                .transpose()?,
            min_workers,
            max_workers,
            step,
            custom_sql: custom_sql.map(str::to_string),
            predictive,
        })
    })()
    .or_report();
    let p = policies::build(&args).or_report();
    if let Some(sql) = &p.custom_sql {
        require_superuser("a custom metric (custom_sql)").or_report();
        if let Err(e) = policies::run_custom_guarded(sql) {
            AutoscaleError::invalid(
                "custom_sql",
                format!("'{}'", autoscale_core::safety::truncate(sql, 200)),
                format!("exactly one read-only SELECT returning one row with one number, that autoscale.custom_sql_role may run ({e})"),
            )
            .report();
        }
    }
    policies::check_against_settings(&p.policy).or_report();
    crate::privilege::as_extension_owner(|| {
        policies::store(&p).unwrap_or_else(|e| error!("{e}"));
        history::record_event(
            "policy_set",
            &format!(
                "policy {} set: {} {}",
                p.policy.name,
                p.policy.metric.as_str(),
                p.policy.threshold_or_target()
            ),
            serde_json::to_value(&p.policy).ok(),
        )
        .ok();
    });
    JsonB(serde_json::to_value(&p.policy).expect("policy serializes"))
}

/// Drops a policy; an unknown name is an error.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn drop_policy(name: Option<&str>) -> bool {
    let name = req("name", name, "the name of a policy");
    let dropped = Spi::get_one_with_args::<i64>(
        "WITH d AS (DELETE FROM autoscale.policy_config WHERE name = $1 RETURNING 1) SELECT count(*) FROM d",
        &[name.into()],
    )
    .unwrap_or_else(|e| error!("{e}"))
    .unwrap_or(0);
    if dropped == 0 {
        AutoscaleError::NotFound(format!("policy \"{name}\" does not exist")).report();
    }
    history::record_event("policy_dropped", &format!("policy {name} dropped"), None).ok();
    true
}

/// Pauses scaling decisions for `duration` (running operations still finish).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn pause(duration: default!(Option<Interval>, "'1 hour'")) -> TimestampWithTimeZone {
    let secs = interval_secs(req("duration", duration, "an interval > 0"));
    if secs <= 0.0 || secs > MAX_INTERVAL_SECS {
        AutoscaleError::invalid(
            "duration",
            format!("'{secs} seconds'"),
            "an interval > 0 and at most 10 years",
        )
        .report();
    }
    let until = Spi::get_one_with_args::<TimestampWithTimeZone>(
        "UPDATE autoscale.control SET paused_until = pg_catalog.now() + pg_catalog.make_interval(secs => $1) RETURNING paused_until",
        &[secs.into()],
    )
    .unwrap_or_else(|e| error!("{e}"))
    .expect("control row exists");
    history::record_event(
        "paused",
        &format!(
            "scaling paused for {}",
            autoscale_core::duration::format_secs(secs)
        ),
        None,
    )
    .ok();
    until
}

/// Ends a pause.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn resume() -> bool {
    let was = Spi::get_one::<bool>(
        "WITH o AS (SELECT paused_until > pg_catalog.now() AS p FROM autoscale.control)
         UPDATE autoscale.control SET paused_until = NULL RETURNING (SELECT p FROM o)",
    )
    .unwrap_or_else(|e| error!("{e}"))
    .unwrap_or(false);
    history::record_event("resumed", "scaling resumed", None).ok();
    was
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
        name!(forecast, Option<f64>),
        name!(horizon, Option<Interval>),
        name!(model_error, Option<f64>),
        name!(forecast_note, Option<String>),
    ),
> {
    let (d, _, outlooks) = policies::decide_with_outlooks().unwrap_or_else(|e| error!("{e}"));
    let data_nodes = policies::data_nodes_now().unwrap_or_else(|e| error!("{e}"));
    let round = |v: f64| (v * 100.0).round() / 100.0;
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
                o.as_ref().and_then(|o| o.forecast).map(round),
                o.as_ref()
                    .map(|o| Interval::from_seconds(o.horizon.round())),
                o.as_ref().and_then(|o| o.model_error).map(round),
                o.map(|o| o.note),
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
    let (plan, _) = crate::rollups::capacity_plan().unwrap_or_else(|e| error!("{e}"));
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
    let op_secs = interval_secs(req("operation_time", operation_time, "an interval >= 0"));
    if !(0.0..=MAX_INTERVAL_SECS).contains(&op_secs) {
        AutoscaleError::invalid(
            "operation_time",
            format!("'{op_secs} seconds'"),
            "an interval >= 0 and at most 10 years",
        )
        .report();
    }
    let rows: Vec<_> = policies::backtest(since_secs, policy, op_secs)
        .or_report()
        .into_iter()
        .map(|a| {
            (
                pgrx::datum::to_timestamp(a.at),
                a.direction.as_str().to_string(),
                a.from_workers as i32,
                a.to_workers as i32,
                a.reasons,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The autoscaler's state as Prometheus text (exposition format 0.0.4): mode, workers, each
/// node's latest sample, each policy's value and desired workers, operations, the standby pool.
#[pg_extern(stable)]
fn metrics() -> String {
    autoscale_core::metrics::render(&crate::metrics::collect().unwrap_or_else(|e| error!("{e}")))
}

// ---------------------------------------------------------------- operations

/// Longest host name (DNS: 253 characters).
const MAX_HOST_LEN: usize = 253;

fn node_arg(host: &str, port: i32) -> Result<NodeAddr, AutoscaleError> {
    if host.trim().is_empty() {
        return Err(AutoscaleError::invalid(
            "host",
            "''",
            "a host name or IP address",
        ));
    }
    if host.trim().len() > MAX_HOST_LEN
        || host
            .chars()
            .any(|c| c.is_whitespace() && c != ' ' || c.is_control())
    {
        return Err(AutoscaleError::invalid(
            "host",
            format!("'{}'", autoscale_core::safety::truncate(host, 40)),
            format!("a host name or IP address of at most {MAX_HOST_LEN} characters"),
        ));
    }
    if !(1..=65535).contains(&port) {
        return Err(AutoscaleError::invalid(
            "port",
            port,
            "a TCP port between 1 and 65535",
        ));
    }
    Ok(NodeAddr::new(host.trim(), port))
}

/// A valid host and port of a node that is not in pg_dist_node.
fn outside_node_arg(host: &str, port: i32, allowed: &str) -> Result<NodeAddr, AutoscaleError> {
    let n = node_arg(host, port)?;
    let member = citus::node_in_cluster(&n.host, n.port)
        .map_err(|e| AutoscaleError::NotInPrerequisiteState(e.to_string()))?;
    if member.is_some() {
        return Err(AutoscaleError::invalid("host", format!("'{n}'"), allowed));
    }
    Ok(n)
}

fn require_coordinator(function: &'static str) -> Result<(), AutoscaleError> {
    match citus::role() {
        citus::Role::Coordinator => Ok(()),
        citus::Role::NoCitus => Err(AutoscaleError::CitusMissing {
            function,
            database: Spi::get_one::<String>("SELECT pg_catalog.current_database()")
                .ok()
                .flatten()
                .unwrap_or_default(),
        }),
        citus::Role::Worker { groupid } => {
            Err(AutoscaleError::NotCoordinator { function, groupid })
        }
    }
}

fn op_json(op: &Operation) -> JsonB {
    let mut v = serde_json::to_value(op).expect("operation serializes");
    v["summary"] = machine::describe(op).into();
    JsonB(v)
}

/// Starts a rebalance now, as the trigger would: same operation, same guards.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rebalance_now(reason: default!(Option<&str>, "'manual'")) -> JsonB {
    let reason = reason_arg(reason);
    require_coordinator("autoscale.rebalance_now()").or_report();
    operations::require_act().or_report();
    op_json(&operations::start(Kind::Rebalance, vec![], 1, &reason, "manual").or_report())
}

/// Adds workers now: the given node, or `nodes` standbys from the pool (as many as it has), or a
/// provision request when the pool is empty; then one rebalance.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn scale_out(
    host: default!(Option<&str>, "NULL"),
    port: default!(Option<i32>, "NULL"),
    reason: default!(Option<&str>, "'manual'"),
    nodes: default!(Option<i32>, 1),
) -> JsonB {
    let reason = reason_arg(reason);
    let nodes = req("nodes", nodes, "an integer between 1 and 64");
    if !(1..=MAX_NODES_PER_SCALE_OUT).contains(&nodes) {
        AutoscaleError::invalid(
            "nodes",
            nodes,
            format!("an integer between 1 and {MAX_NODES_PER_SCALE_OUT}"),
        )
        .report()
    }
    if nodes > 1 && host.is_some() {
        AutoscaleError::invalid("nodes", nodes, "1 when host and port name the node").report()
    }
    if let (Some(h), Some(p)) = (host, port) {
        node_arg(h, p).or_report();
    }
    match (host, port) {
        (Some(_), None) => {
            AutoscaleError::invalid("port", "NULL", "a port when host is given").report()
        }
        (None, Some(_)) => {
            AutoscaleError::invalid("host", "NULL", "a host when port is given").report()
        }
        _ => {}
    }
    require_coordinator("autoscale.scale_out()").or_report();
    let node = match (host, port) {
        (None, None) => None,
        (Some(h), Some(p)) => {
            Some(outside_node_arg(h, p, "a node that is not yet in the cluster").or_report())
        }
        (Some(_), None) => {
            AutoscaleError::invalid("port", "NULL", "a port when host is given").report()
        }
        (None, Some(_)) => {
            AutoscaleError::invalid("host", "NULL", "a host when port is given").report()
        }
    };
    operations::require_act().or_report();
    op_json(
        &operations::start(
            Kind::ScaleOut,
            node.into_iter().collect(),
            nodes as u32,
            &reason,
            "manual",
        )
        .or_report(),
    )
}

/// Drains host:port, cleans up and removes it from the cluster, then returns it to the pool.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn scale_in(
    host: Option<&str>,
    port: Option<i32>,
    reason: default!(Option<&str>, "'manual'"),
) -> JsonB {
    let host = req("host", host, "the host name of a worker");
    let port = req("port", port, "the port of a worker");
    let n = node_arg(host, port).or_report();
    let reason = reason_arg(reason);
    require_coordinator("autoscale.scale_in()").or_report();
    match citus::node_in_cluster(&n.host, n.port).unwrap_or_else(|e| error!("{e}")) {
        None => {
            AutoscaleError::invalid("host", format!("'{n}'"), "a worker in pg_dist_node").report()
        }
        Some((_, 0, _)) => {
            AutoscaleError::invalid("host", format!("'{n}'"), "a worker, not the coordinator")
                .report()
        }
        Some((_, _, false)) => {
            AutoscaleError::invalid("host", format!("'{n}'"), "an active worker").report()
        }
        Some(_) => {}
    }
    let workers = citus::primary_nodes()
        .unwrap_or_else(|e| error!("{e}"))
        .iter()
        .filter(|x| x.groupid != 0 && x.isactive)
        .count() as i64;
    let min = Spi::get_one::<i32>("SELECT max(min_workers) FROM autoscale.policy_config")
        .ok()
        .flatten()
        .unwrap_or(1) as i64;
    if workers - 1 < min {
        AutoscaleError::NotInPrerequisiteState(format!(
            "removing {n} would leave {} workers, below min_workers {min}",
            workers - 1
        ))
        .report();
    }
    operations::require_act().or_report();
    op_json(&operations::start(Kind::ScaleIn, vec![n], 1, &reason, "manual").or_report())
}

/// Offers a node to the standby pool after checking that it answers and has the extension files.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn add_standby_node(host: Option<&str>, port: Option<i32>) -> JsonB {
    let host = req("host", host, "the host name of a node to offer");
    let port = req("port", port, "the port of a node to offer");
    node_arg(host, port).or_report();
    require_coordinator("autoscale.add_standby_node()").or_report();
    let n = outside_node_arg(
        host,
        port,
        "a node that is not in the cluster (it is in pg_dist_node)",
    )
    .or_report();
    // a node that left after a scale-in (returned) or failed to join (failed) may be offered
    // again; any other state is a duplicate
    let again = match pool::state_of(&n.host, n.port)
        .unwrap_or_else(|e| error!("{e}"))
        .as_deref()
    {
        None => false,
        Some("returned" | "failed") => true,
        Some(s) => {
            AutoscaleError::Duplicate(format!("node {n} is already in the standby pool ({s})"))
                .report()
        }
    };
    let timeout = settings::node_timeout().as_millis() as u64;
    let (ok, result) =
        citus::run_on_node(&n.host, n.port, citus::REQUIRED_EXTENSIONS_COMMAND, timeout)
            .unwrap_or_else(|e| error!("{e}"));
    if !ok {
        AutoscaleError::Unreachable(format!("node {n} does not answer: {result}")).report();
    }
    if result != "citus,citus_autoscale" {
        AutoscaleError::NotInPrerequisiteState(format!(
            "node {n} lacks the extension files of citus and citus_autoscale (it has: {})",
            if result.is_empty() {
                "neither"
            } else {
                &result
            }
        ))
        .report();
    }
    if again {
        pool::offer_again(&n.host, n.port).unwrap_or_else(|e| error!("{e}"));
    } else {
        pool::add(&n.host, n.port).unwrap_or_else(|e| error!("{e}"));
    }
    history::record_event(
        "standby_added",
        &format!(
            "standby node {n} {} the pool",
            if again {
                "offered again to"
            } else {
                "added to"
            }
        ),
        None,
    )
    .ok();
    JsonB(serde_json::json!({"node": n.to_string(), "state": "available"}))
}

/// Takes a node out of the standby pool (not while it is joining, active or draining).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn remove_standby_node(host: Option<&str>, port: Option<i32>) -> bool {
    let host = req("host", host, "the host name of a pool node");
    let port = req("port", port, "the port of a pool node");
    let n = node_arg(host, port).or_report();
    match pool::state_of(&n.host, n.port)
        .unwrap_or_else(|e| error!("{e}"))
        .as_deref()
    {
        None => AutoscaleError::NotFound(format!("node {n} is not in the standby pool")).report(),
        Some(s @ ("joining" | "active" | "draining")) => {
            AutoscaleError::NotInPrerequisiteState(format!(
                "node {n} is {s}; scale it in first (autoscale.scale_in('{}', {}))",
                n.host, n.port
            ))
            .report()
        }
        Some(_) => {}
    }
    pool::remove(&n.host, n.port).unwrap_or_else(|e| error!("{e}"));
    history::record_event(
        "standby_removed",
        &format!("standby node {n} removed from the pool"),
        None,
    )
    .ok();
    true
}

/// Cancels the running operation (a scale-in that already drained puts shouldhaveshards back first).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cancel_operation(reason: default!(Option<&str>, "'cancelled by user'")) -> JsonB {
    let reason = reason_arg(reason);
    let op = operations::running().unwrap_or_else(|e| error!("{e}"));
    let Some(op) = op else {
        AutoscaleError::NotInPrerequisiteState("no operation is running".into()).report()
    };
    operations::cancel(&op, &reason).or_report();
    op_json(&operations::running().ok().flatten().unwrap_or(op))
}
