//! `autoscale.metrics()`: the autoscaler's state as Prometheus text, read from the history tables
//! and the policy engine (nothing is sampled or changed).

use autoscale_core::metrics::{Family, Kind};
use pgrx::prelude::*;
use pgrx::spi::SpiResult;

use crate::policies;

/// Per-node gauges: (family name, help, column of autoscale.node_samples).
const NODE_GAUGES: [(&str, &str, &str); 10] = [
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
];

fn gauge(name: &'static str, help: &'static str) -> Family {
    Family::new(name, Kind::Gauge, help)
}

/// Every family, in a stable order.
pub fn collect() -> SpiResult<Vec<Family>> {
    let mut out = Vec::new();

    let mut mode = gauge("autoscale_mode", "1 for the current autoscale.mode.");
    let current = Spi::get_one::<String>("SELECT pg_catalog.current_setting('autoscale.mode')")?
        .unwrap_or_default();
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
    let latest = Spi::connect(|c| {
        let rows = c.select(
            "SELECT sample_id, worker_count, unreachable_workers, inactive_workers,
                    extract(epoch FROM pg_catalog.now() - sampled_at)::float8
               FROM autoscale.worker_count ORDER BY sampled_at DESC LIMIT 1",
            None,
            &[],
        )?;
        let mut latest = None;
        for r in rows {
            latest = r.get::<i64>(1)?;
            workers.push(
                vec![("state", "active".into())],
                r.get::<i32>(2)?.map(f64::from),
            );
            workers.push(
                vec![("state", "unreachable".into())],
                r.get::<i32>(3)?.map(f64::from),
            );
            workers.push(
                vec![("state", "inactive".into())],
                r.get::<i32>(4)?.map(f64::from),
            );
            age.push(vec![], r.get::<f64>(5)?);
        }
        Ok::<_, pgrx::spi::SpiError>(latest)
    })?;
    out.push(workers);
    out.push(age);

    // per node, from the latest sample
    let mut up = gauge(
        "autoscale_node_up",
        "1 when the node answered the latest sample.",
    );
    let mut node_families: Vec<Family> = NODE_GAUGES.iter().map(|(n, h, _)| gauge(n, h)).collect();
    if let Some(sample_id) = latest {
        let columns: Vec<String> = NODE_GAUGES
            .iter()
            .map(|(_, _, c)| format!("{c}::float8"))
            .collect();
        let sql = format!(
            "SELECT nodename || ':' || nodeport, CASE WHEN is_coordinator THEN 'coordinator' ELSE 'worker' END,
                    reachable, {}
               FROM autoscale.node_samples WHERE sample_id = $1 ORDER BY nodename, nodeport",
            columns.join(", ")
        );
        Spi::connect(|c| {
            for r in c.select(&sql, None, &[sample_id.into()])? {
                let node = r.get::<String>(1)?.unwrap_or_default();
                let role = r.get::<String>(2)?.unwrap_or_default();
                let labels = || vec![("node", node.clone()), ("role", role.clone())];
                up.push(labels(), r.get::<bool>(3)?.map(|b| f64::from(u8::from(b))));
                for (i, f) in node_families.iter_mut().enumerate() {
                    f.push(labels(), r.get::<f64>(4 + i)?);
                }
            }
            Ok::<_, pgrx::spi::SpiError>(())
        })?;
    }
    out.push(up);
    out.extend(node_families);

    // policies, as the engine sees them now
    let mut value = gauge(
        "autoscale_policy_value",
        "The policy's metric, aggregated over active workers.",
    );
    let mut desired = gauge(
        "autoscale_policy_desired_workers",
        "Workers the policy asks for now.",
    );
    let (decision, _) = policies::decide()?;
    for p in &decision.policies {
        let labels = || {
            vec![
                ("policy", p.name.clone()),
                ("metric", p.metric.as_str().to_string()),
            ]
        };
        value.push(labels(), p.current);
        desired.push(labels(), Some(f64::from(p.desired_workers)));
    }
    out.push(value);
    out.push(desired);

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
    let mut pool = gauge(
        "autoscale_standby_nodes",
        "Nodes of the standby pool, by state.",
    );
    let mut pending = gauge(
        "autoscale_provision_requests_pending",
        "Provision and deprovision requests nobody has answered yet.",
    );
    let mut paused = gauge("autoscale_paused", "1 while scaling decisions are paused.");
    Spi::connect(|c| {
        let kinds = ["rebalance", "scale_out", "scale_in"];
        let mut is_running = [0.0; 3];
        for r in c.select(
            "SELECT kind, (op ->> 'progress_done')::float8 / nullif((op ->> 'progress_total')::float8, 0)
               FROM autoscale.operations WHERE status = 'running'",
            None,
            &[],
        )? {
            let kind = r.get::<String>(1)?.unwrap_or_default();
            if let Some(i) = kinds.iter().position(|k| *k == kind) {
                is_running[i] = 1.0;
            }
            progress.push(vec![("kind", kind)], r.get::<f64>(2)?);
        }
        for (k, v) in kinds.iter().zip(is_running) {
            running.push(vec![("kind", k.to_string())], Some(v));
        }
        for r in c.select(
            "SELECT kind, status, count(*)::float8 FROM autoscale.operations GROUP BY 1, 2 ORDER BY 1, 2",
            None,
            &[],
        )? {
            ops.push(
                vec![
                    ("kind", r.get::<String>(1)?.unwrap_or_default()),
                    ("status", r.get::<String>(2)?.unwrap_or_default()),
                ],
                r.get::<f64>(3)?,
            );
        }
        for r in c.select(
            "SELECT s.state, count(n.state)::float8
               FROM pg_catalog.unnest(ARRAY['available', 'joining', 'active', 'draining', 'returned', 'failed']) s(state)
               LEFT JOIN autoscale.standby_nodes n ON n.state = s.state
              GROUP BY s.state ORDER BY s.state",
            None,
            &[],
        )? {
            pool.push(
                vec![("state", r.get::<String>(1)?.unwrap_or_default())],
                r.get::<f64>(2)?,
            );
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })?;
    pending.push(
        vec![],
        Spi::get_one::<f64>(
            "SELECT count(*)::float8 FROM autoscale.provision_requests WHERE status = 'pending'",
        )?,
    );
    paused.push(
        vec![],
        Spi::get_one::<f64>(
            "SELECT (coalesce(paused_until > pg_catalog.now(), false))::int::float8 FROM autoscale.control",
        )?,
    );
    out.extend([running, progress, ops, pool, pending, paused]);
    Ok(out)
}
