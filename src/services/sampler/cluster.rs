//! One sample of the whole cluster, taken on the coordinator: the coordinator reads itself, every
//! active worker answers `autoscale.node_stats()` through ONE `run_command_on_workers` call, rates
//! come from each node's previous sample, and the rows go to history in one statement each. The
//! same answers carry each node's shard-group counters, folded into the shard-group load store.
//! Without Citus it samples this node alone, so the extension is useful on plain PostgreSQL too.

use std::collections::HashMap;

use autoscale_core::operations::NodeAddr;
use autoscale_core::policy::datanodes::is_data_node;
use autoscale_core::rates::{self, Counters};
use autoscale_core::stats::NodeStats;
use pgrx::prelude::*;
use serde::Serialize;

use crate::infra::{citus, settings};
use crate::store::samples::{self, SampleRow};

/// What one sample did, returned by `autoscale.sample()` and recorded by the tick.
#[derive(Debug, Clone, Serialize)]
pub struct SampleSummary {
    pub sample_id: i64,
    pub sampled_at: String,
    pub nodes: usize,
    pub workers: usize,
    pub unreachable: Vec<String>,
    pub inactive_workers: usize,
    pub elapsed_ms: f64,
}

/// A node to sample: where it is and what the coordinator's metadata says about it.
struct Target {
    nodeid: Option<i32>,
    nodename: String,
    nodeport: i32,
    is_coordinator: bool,
    shard_count: Option<i64>,
    /// Holds or should hold shards of distributed tables (None without Citus).
    data_node: Option<bool>,
}

fn this_port() -> i32 {
    Spi::get_one::<String>("SELECT pg_catalog.current_setting('port')")
        .ok()
        .flatten()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432)
}

/// Takes one sample and writes it to history. `driver` says who asked (worker, sql).
pub fn sample(driver: &str) -> Result<SampleSummary, String> {
    let started = std::time::Instant::now();
    let role = citus::role();
    if let citus::Role::Worker { groupid } = role {
        return Err(format!("autoscale.sample() samples the cluster from the coordinator; this node is a Citus worker (group {groupid})"));
    }
    let (sample_id, sampled_at) = samples::next_sample_id().map_err(|e| e.to_string())?;

    // Which nodes: the coordinator (registered in pg_dist_node or not) and every primary worker.
    let mut coordinator = Target {
        nodeid: None,
        nodename: "localhost".into(),
        nodeport: this_port(),
        is_coordinator: role == citus::Role::Coordinator,
        shard_count: None,
        // a coordinator that is not in pg_dist_node holds no shards
        data_node: (role == citus::Role::Coordinator).then_some(false),
    };
    let mut workers: Vec<Target> = Vec::new();
    let mut inactive = 0usize;
    if role == citus::Role::Coordinator {
        for n in citus::primary_nodes().map_err(|e| format!("reading pg_dist_node: {e}"))? {
            let t = Target {
                nodeid: Some(n.nodeid),
                nodename: n.nodename,
                nodeport: n.nodeport,
                is_coordinator: n.groupid == 0,
                shard_count: Some(n.shard_count),
                data_node: Some(is_data_node(n.shouldhaveshards, n.distributed_shard_count)),
            };
            if n.groupid == 0 {
                coordinator = t;
            } else if n.isactive {
                workers.push(t);
            } else {
                inactive += 1;
            }
        }
    }

    // Read: the coordinator locally, every worker in one parallel fan-out.
    let mut readings: Vec<(Target, Result<NodeStats, String>)> =
        Vec::with_capacity(workers.len() + 1);
    readings.push((coordinator, super::local::read_node_stats()));
    if !workers.is_empty() {
        let timeout_ms = settings::node_timeout().as_millis() as u64;
        let answers = citus::fan_out_node_stats(timeout_ms, settings::sample_interval())
            .map_err(|e| format!("run_command_on_workers: {e}"))?;
        let mut by_node: HashMap<(String, i32), citus::WorkerResult> = answers
            .into_iter()
            .map(|a| ((a.nodename.clone(), a.nodeport), a))
            .collect();
        for w in workers {
            let reading = match by_node.remove(&(w.nodename.clone(), w.nodeport)) {
                Some(a) if a.success => NodeStats::parse(&a.result)
                    .map_err(|e| format!("unreadable answer ({e}): {}", truncate(&a.result, 200))),
                Some(a) => Err(a.result),
                None => Err("no answer from run_command_on_workers".into()),
            };
            readings.push((w, reading));
        }
    }

    // Rates against each node's previous reachable sample.
    let previous = samples::previous_counters().map_err(|e| e.to_string())?;
    let max_gap = (settings::sample_interval().as_secs_f64() * 10.0).max(60.0);
    let mut rows = Vec::with_capacity(readings.len());
    let mut unreachable = Vec::new();
    let mut groups: Vec<crate::store::load::NodeGroups> = Vec::new();
    let mut tenants: Vec<(NodeAddr, autoscale_core::load::TenantStats)> = Vec::new();
    for (t, reading) in readings {
        let mut row = SampleRow {
            sample_id,
            sampled_at: sampled_at.clone(),
            nodeid: t.nodeid,
            nodename: t.nodename.clone(),
            nodeport: t.nodeport,
            is_coordinator: t.is_coordinator,
            shard_count: t.shard_count,
            data_node: t.data_node,
            ..Default::default()
        };
        match reading {
            Ok(mut s) => {
                if let Some(ts) = s.tenants.take() {
                    tenants.push((NodeAddr::new(t.nodename.clone(), t.nodeport), ts));
                }
                if let Some(g) = s.shard_groups.take() {
                    groups.push(crate::store::load::NodeGroups {
                        node: NodeAddr::new(t.nodename.clone(), t.nodeport),
                        at: s.at,
                        groups: g,
                    });
                }
                let cur = Counters {
                    at: s.at,
                    cpu_busy_seconds: s.cpu.busy_seconds,
                    cpu_capacity_seconds: s.cpu.capacity_seconds,
                    commits: s.xact.commit,
                    rollbacks: s.xact.rollback,
                    blocks: s.blocks.map(|b| (b.hit, b.read)),
                    statements: s.statements.map(|x| (x.calls, x.total_exec_ms)),
                };
                let r = rates::rates(
                    previous.get(&(t.nodename.clone(), t.nodeport)),
                    &cur,
                    max_gap,
                )
                .unwrap_or_default();
                row.reachable = true;
                row.cpu_busy_pct = r.cpu_busy_pct;
                row.commits_per_sec = r.commits_per_sec;
                row.rollbacks_per_sec = r.rollbacks_per_sec;
                row.load1 = Some(s.load[0]);
                row.load5 = Some(s.load[1]);
                row.load15 = Some(s.load[2]);
                row.mem_used_pct = s.memory_used_pct();
                row.disk_used_pct = s.disk_used_pct();
                row.disk_free_bytes = Some(s.disk.free_bytes);
                row.connections = Some(s.connections.total);
                row.active_connections = Some(s.connections.active);
                row.database_size = Some(s.database_size);
                row.shard_bytes = s.shard_bytes;
                row.node_time = Some(s.at);
                row.cpu_busy_seconds = Some(s.cpu.busy_seconds);
                row.cpu_capacity_seconds = Some(s.cpu.capacity_seconds);
                row.cpu_cores = Some(s.cpu.cores);
                row.xact_commit = Some(s.xact.commit);
                row.xact_rollback = Some(s.xact.rollback);
                row.tps = r.tps;
                row.cache_hit_ratio = r.cache_hit_ratio;
                row.mean_statement_ms = r.mean_statement_ms;
                row.connection_saturation = s.connection_saturation();
                row.replication_lag = s.replication_lag_bytes;
                row.blks_hit = s.blocks.map(|b| b.hit);
                row.blks_read = s.blocks.map(|b| b.read);
                row.stmt_calls = s.statements.map(|x| x.calls);
                row.stmt_total_ms = s.statements.map(|x| x.total_exec_ms);
            }
            Err(e) => {
                row.reachable = false;
                row.error = Some(truncate(&e, 1000));
                unreachable.push(format!("{}:{}", t.nodename, t.nodeport));
            }
        }
        rows.push(row);
    }

    // shard-group load, folded in place; each reporting node's sum goes into its row
    let loads =
        crate::store::load::record(sample_id, &sampled_at, &groups).map_err(|e| e.to_string())?;
    crate::store::load::record_tenants(sample_id, &tenants).map_err(|e| e.to_string())?;
    for row in rows.iter_mut() {
        row.shard_load = loads
            .get(&NodeAddr::new(row.nodename.clone(), row.nodeport))
            .copied();
    }

    // the first row is the coordinator (or, without Citus, this node)
    let workers_total = rows.len() - 1;
    let sample_ms = started.elapsed().as_secs_f64() * 1000.0;
    samples::insert_sample(
        &rows,
        workers_total,
        unreachable.len(),
        inactive,
        driver,
        sample_ms,
    )
    .map_err(|e| e.to_string())?;
    super::custom::sample(sample_id, &sampled_at).map_err(|e| e.to_string())?;
    // the warm clones of the pool: streaming from their primary, and their replay lag; a failure
    // here never costs the sample
    if role == citus::Role::Coordinator {
        let timeout = settings::node_timeout().as_millis() as u64;
        if let Err(e) | Ok(Err(e)) =
            crate::infra::subxact::catch(|| crate::services::clones::sample_clones(timeout))
                .map(|r| r.map_err(|e| e.to_string()))
        {
            crate::store::events::record("error", &format!("checking the warm clones: {e}"), None)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(SampleSummary {
        sample_id,
        sampled_at,
        nodes: rows.len(),
        workers: workers_total,
        unreachable,
        inactive_workers: inactive,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.trim().to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", s[..end].trim())
}
