//! `autoscale.metrics()`: the autoscaler's state as Prometheus text, read from the history tables
//! and the policy engine (nothing is sampled or changed).

use crate::infra::errors::Result;
use crate::services::decide;
use crate::store::{control, load, operations, pool, provision, samples};
use autoscale_core::metrics::{Family, Kind};

/// Per-node gauges: (family name, help, column of autoscale.node_samples).
const NODE_GAUGES: [(&str, &str, &str); 11] = [
    (
        "autoscale_node_cpu_busy_percent",
        "CPU busy, percent of the node's capacity, over the last sample interval.",
        "cpu_busy_pct",
    ),
    ("autoscale_node_load1", "1-minute load average.", "load1"),
    (
        "autoscale_node_memory_used_percent",
        "Memory used (total - available), percent.",
        "mem_used_pct",
    ),
    (
        "autoscale_node_disk_used_percent",
        "Disk used on the data directory's file system, percent.",
        "disk_used_pct",
    ),
    (
        "autoscale_node_connections",
        "Client connections.",
        "connections",
    ),
    (
        "autoscale_node_active_connections",
        "Client connections running a statement.",
        "active_connections",
    ),
    (
        "autoscale_node_commits_per_second",
        "Commits per second over the last sample interval.",
        "commits_per_sec",
    ),
    (
        "autoscale_node_database_size_bytes",
        "Size of the sampled database on the node.",
        "database_size",
    ),
    (
        "autoscale_node_shards",
        "Shard placements on the node (Citus metadata).",
        "shard_count",
    ),
    (
        "autoscale_node_shard_bytes",
        "Bytes of the shard placements stored on the node.",
        "shard_bytes",
    ),
    (
        "autoscale_node_shard_load",
        "Measured load of the shard groups on the node, operations/s (scans + rows written + rows read x 0.01, smoothed).",
        "shard_load",
    ),
];

/// Shard groups exported by name in `autoscale_shard_group_load` (the busiest; bounded so the
/// number of series does not grow with the number of shards).
const HOT_GROUPS_EXPORTED: i64 = 10;

fn gauge(name: &'static str, help: &'static str) -> Family {
    Family::new(name, Kind::Gauge, help)
}

/// Every family, in a stable order.
pub fn collect() -> Result<Vec<Family>> {
    let mut out = Vec::new();

    let mut mode = gauge("autoscale_mode", "1 for the current autoscale.mode.");
    let current = crate::infra::settings::mode().as_str();
    for m in ["off", "observe", "act"] {
        mode.push(
            vec![("mode", m.to_string())],
            Some(f64::from(u8::from(m == current))),
        );
    }
    out.push(mode);

    // the latest sample: worker counts and its age
    let mut workers = gauge(
        "autoscale_workers",
        "Workers in the latest sample, by state.",
    );
    let mut age = gauge(
        "autoscale_last_sample_age_seconds",
        "Seconds since the latest sample.",
    );
    let latest = samples::latest_count()?;
    if let Some(l) = &latest {
        workers.push(vec![("state", "active".into())], l.workers.map(f64::from));
        workers.push(
            vec![("state", "unreachable".into())],
            l.unreachable.map(f64::from),
        );
        workers.push(
            vec![("state", "inactive".into())],
            l.inactive.map(f64::from),
        );
        age.push(vec![], l.age_secs);
    }
    out.push(workers);
    out.push(age);

    // per node, from the latest sample
    let mut up = gauge(
        "autoscale_node_up",
        "1 when the node answered the latest sample.",
    );
    let mut node_families: Vec<Family> = NODE_GAUGES.iter().map(|(n, h, _)| gauge(n, h)).collect();
    if let Some(l) = &latest {
        let columns: Vec<&str> = NODE_GAUGES.iter().map(|(_, _, c)| *c).collect();
        for (node, role, reachable, values) in samples::node_gauges(l.sample_id, &columns)? {
            let labels = || vec![("node", node.clone()), ("role", role.clone())];
            up.push(labels(), reachable.map(|b| f64::from(u8::from(b))));
            for (f, v) in node_families.iter_mut().zip(values) {
                f.push(labels(), v);
            }
        }
    }
    out.push(up);
    out.extend(node_families);

    // load: each data node's share of the measured load, and the busiest shard groups
    let mut share = gauge(
        "autoscale_node_load_share",
        "The node's share of the measured shard-group load of the data nodes in the latest sample (0..1).",
    );
    let mut hot = gauge(
        "autoscale_shard_group_load",
        "Measured load of the busiest shard groups (operations/s), with their node.",
    );
    if let Some(l) = &latest {
        for (node, v) in load::node_load_shares(l.sample_id)? {
            share.push(vec![("node", node)], v);
        }
    }
    for g in load::hottest_groups(HOT_GROUPS_EXPORTED)? {
        hot.push(
            vec![
                ("colocation_id", g.colocationid),
                ("shard_min", g.shardminvalue),
                ("node", g.node),
            ],
            g.load_per_sec,
        );
    }
    out.push(share);
    out.push(hot);

    // policies, as the engine sees them now
    let mut value = gauge(
        "autoscale_policy_value",
        "The policy's metric, aggregated over active workers.",
    );
    let mut desired = gauge(
        "autoscale_policy_desired_workers",
        "Workers the policy asks for now.",
    );
    // a predictive policy's forecast, when it has one (the error gate let it through)
    let mut forecast = gauge(
        "autoscale_policy_forecast",
        "A predictive policy's forecast of its metric at now + the lead time, on the current workers.",
    );
    let mut forecast_error = gauge(
        "autoscale_policy_forecast_error_ratio",
        "The forecast's mean absolute one-step error relative to the mean load (used while at \
         most 0.25).",
    );
    let mut crosses_in = gauge(
        "autoscale_policy_forecast_crosses_in_seconds",
        "Seconds until the forecast crosses the policy's scale-out trigger (0: above it now; none \
         within the scan: no sample).",
    );
    let mut cycle = gauge(
        "autoscale_policy_forecast_cycle_seconds",
        "Period of the cycle the forecast uses (searched over autoscale.forecast_cycle_window), \
         seconds; 0 when it uses none.",
    );
    let (decision, _, outlooks, effect) = decide::decide_with_outlooks()?;
    for (p, o) in decision.policies.iter().zip(&outlooks) {
        let labels = || {
            vec![
                ("policy", p.name.clone()),
                ("metric", p.metric.as_str().to_string()),
            ]
        };
        value.push(labels(), p.current);
        desired.push(labels(), Some(f64::from(p.desired_workers)));
        if let Some(o) = o.as_ref().filter(|o| o.forecast.is_some()) {
            forecast.push(labels(), o.forecast);
            forecast_error.push(labels(), o.relative_error);
            crosses_in.push(labels(), o.crosses_in.map(|c| c.max(0.0)));
            cycle.push(labels(), Some(o.cycle_period.unwrap_or(0.0)));
        }
    }
    out.extend([value, desired, forecast, forecast_error, crosses_in, cycle]);

    // the schedules that apply now and the bounds they give
    let mut sched_min = gauge(
        "autoscale_schedule_min_workers",
        "min_workers of each schedule that applies now (and gives one).",
    );
    let mut sched_max = gauge(
        "autoscale_schedule_max_workers",
        "max_workers of each schedule that applies now (and gives one).",
    );
    for a in effect.iter().flat_map(|e| &e.active) {
        let labels = || vec![("schedule", a.name.clone())];
        if let Some(v) = a.min_workers {
            sched_min.push(labels(), Some(f64::from(v)));
        }
        if let Some(v) = a.max_workers {
            sched_max.push(labels(), Some(f64::from(v)));
        }
    }
    out.push(sched_min);
    out.push(sched_max);

    // operations, the pool, provision requests
    let mut running = gauge(
        "autoscale_operation_running",
        "1 while an operation of this kind runs.",
    );
    let mut progress = gauge(
        "autoscale_operation_progress_ratio",
        "Tasks done / total of the Citus job the running operation follows.",
    );
    let mut ops = Family::new(
        "autoscale_operations_total",
        Kind::Counter,
        "Operations recorded in autoscale.operations, by kind and status.",
    );
    let mut pool_family = gauge(
        "autoscale_standby_nodes",
        "Nodes of the standby pool, by state.",
    );
    let mut pending = gauge(
        "autoscale_provision_requests_pending",
        "Provision and deprovision requests nobody has answered yet.",
    );
    let mut paused = gauge("autoscale_paused", "1 while scaling decisions are paused.");
    let mut dead = gauge(
        "autoscale_dead_nodes",
        "Workers declared dead (autoscale.dead_nodes): replaceable=true ones are replaced by a \
         replace_dead operation, replaceable=false ones hold a sole copy and wait for the operator.",
    );
    let kinds = ["rebalance", "scale_out", "scale_in", "replace_dead"];
    let mut is_running = [0.0; 4];
    for (kind, ratio) in operations::running_progress()? {
        if let Some(i) = kinds.iter().position(|k| *k == kind) {
            is_running[i] = 1.0;
        }
        progress.push(vec![("kind", kind)], ratio);
    }
    for (k, v) in kinds.iter().zip(is_running) {
        running.push(vec![("kind", k.to_string())], Some(v));
    }
    for (kind, status, n) in operations::counts()? {
        ops.push(vec![("kind", kind), ("status", status)], n);
    }
    for (state, n) in pool::counts_by_state()? {
        pool_family.push(vec![("state", state)], n);
    }
    pending.push(vec![], provision::pending_count()?);
    paused.push(vec![], control::paused_now()?);
    let dead_rows = crate::store::dead_nodes::rows()?;
    for replaceable in [true, false] {
        let n = dead_rows
            .iter()
            .filter(|d| d.replaceable == replaceable)
            .count();
        dead.push(
            vec![("replaceable", replaceable.to_string())],
            Some(n as f64),
        );
    }
    out.extend([running, progress, ops, pool_family, pending, paused, dead]);
    Ok(out)
}
