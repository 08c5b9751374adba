//! Operations: rebalance_now(), scale_out(), scale_in(), isolate_tenant(), cancel_operation().

use autoscale_core::operations::{self as machine, Kind, Operation};
use pgrx::prelude::*;
use pgrx::{JsonB, PgRelation};

use super::{named_node_arg, node_arg, outside_node_arg, reason_arg, req, require_coordinator};
use crate::infra::citus;
use crate::infra::errors::{AutoscaleError, OrReport};
use crate::services::{decide, execute, isolate};
use crate::store::operations;

/// The most workers one `scale_out(nodes => ...)` call may add.
const MAX_NODES_PER_SCALE_OUT: i32 = 64;

/// The `nodes` argument of scale_out() and scale_out_path(): 1 to [`MAX_NODES_PER_SCALE_OUT`].
fn nodes_arg(nodes: Option<i32>) -> i32 {
    let nodes = req("nodes", nodes, "an integer between 1 and 64");
    if !(1..=MAX_NODES_PER_SCALE_OUT).contains(&nodes) {
        AutoscaleError::invalid(
            "nodes",
            nodes,
            format!("an integer between 1 and {MAX_NODES_PER_SCALE_OUT}"),
        )
        .report()
    }
    nodes
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
    execute::require_act().or_report();
    op_json(&execute::start(Kind::Rebalance, vec![], 1, &reason, "manual").or_report())
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
    let nodes = nodes_arg(nodes);
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
    execute::require_act().or_report();
    let op = match node {
        // no node named: a ready warm clone is split, else the pool or a provision request
        None => execute::start_scale_out(nodes as u32, &reason, "manual"),
        Some(n) => execute::start(Kind::ScaleOut, vec![n], nodes as u32, &reason, "manual"),
    };
    op_json(&op.or_report())
}

/// Reports an error naming `host` unless `n` is an active worker in pg_dist_node.
fn require_active_worker(n: &autoscale_core::node::NodeAddr) {
    match citus::node_in_cluster(&n.host, n.port).or_report() {
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
    require_active_worker(&n);
    let workers = citus::active_workers().or_report().len() as i64;
    let (min, why) = decide::min_workers_now().or_report();
    if workers - 1 < i64::from(min) {
        AutoscaleError::NotInPrerequisiteState(format!(
            "removing {n} would leave {} workers, below {why}",
            workers - 1
        ))
        .report();
    }
    execute::require_act().or_report();
    op_json(&execute::start(Kind::ScaleIn, vec![n], 1, &reason, "manual").or_report())
}

/// Replaces the worker host:port by a larger one, with no restart and no downtime: asks the
/// provisioner for a node of `size` (PostgreSQL settings by name, sent in the request's json),
/// adds it, drains the old worker onto it and removes the old worker, handing it back to the
/// provisioner. A resize operation: same guards, events, progress and crash resume as a scale-in.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn resize(
    host: Option<&str>,
    port: Option<i32>,
    size: default!(Option<JsonB>, "'{}'"),
    reason: default!(Option<&str>, "'manual'"),
) -> JsonB {
    let host = req("host", host, "the host name of a worker");
    let port = req("port", port, "the port of a worker");
    let n = node_arg(host, port).or_report();
    let size = req("size", size, "a json object of PostgreSQL settings").0;
    if let Err(allowed) = autoscale_core::resize::size_settings(&size) {
        AutoscaleError::invalid("size", size.to_string(), &allowed).report();
    }
    let reason = reason_arg(reason);
    require_coordinator("autoscale.resize()").or_report();
    require_active_worker(&n);
    execute::require_act().or_report();
    op_json(&execute::start_resize(n, size, &reason, "manual").or_report())
}

/// Isolates a tenant now: `tenant_value` of `table_name` gets a shard of its own
/// (`isolate_tenant_to_new_shard(..., 'CASCADE')`, its colocated tables with it), which then moves
/// to target_host:target_port, or by default to the least-loaded other worker. An isolate_tenant
/// operation: same guards, steps, events and crash resume as the automatic one.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn isolate_tenant(
    table_name: Option<PgRelation>,
    tenant_value: Option<&str>,
    target_host: default!(Option<&str>, "NULL"),
    target_port: default!(Option<i32>, "NULL"),
    reason: default!(Option<&str>, "'manual'"),
) -> JsonB {
    let table = req("table_name", table_name, "a hash-distributed Citus table");
    let tenant = req(
        "tenant_value",
        tenant_value,
        "a value of the table's distribution column",
    );
    let reason = reason_arg(reason);
    let target = match (target_host, target_port) {
        (None, None) => None,
        (Some(h), Some(p)) => {
            Some(named_node_arg(("target_host", "target_port"), h, p).or_report())
        }
        (Some(_), None) => AutoscaleError::invalid(
            "target_port",
            "NULL",
            "the port of an active worker when target_host is given",
        )
        .report(),
        (None, Some(_)) => AutoscaleError::invalid(
            "target_host",
            "NULL",
            "the host of an active worker when target_port is given",
        )
        .report(),
    };
    require_coordinator("autoscale.isolate_tenant()").or_report();
    let (table, from, isolated) = isolate::check(table.oid(), table.name(), tenant).or_report();
    let target = match target {
        Some(t) => {
            if !citus::active_workers().or_report().contains(&t) {
                AutoscaleError::invalid(
                    "target_host",
                    format!("'{t}'"),
                    "an active worker of pg_dist_node (not the coordinator)",
                )
                .report()
            }
            t
        }
        None => isolate::default_target(&from).or_report(),
    };
    if isolated && from == target {
        AutoscaleError::NotInPrerequisiteState(format!(
            "tenant {tenant} of {table} already has a shard of its own on {target}; nothing to do"
        ))
        .report()
    }
    execute::require_act().or_report();
    op_json(
        &execute::start_isolate_tenant(&table, tenant, target, &reason, "manual", true).or_report(),
    )
}

/// Cancels the running operation (a scale-in that already drained puts shouldhaveshards back first).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cancel_operation(reason: default!(Option<&str>, "'cancelled by user'")) -> JsonB {
    let reason = reason_arg(reason);
    let op = operations::running().or_report();
    let Some(op) = op else {
        AutoscaleError::NotInPrerequisiteState("no operation is running".into()).report()
    };
    execute::cancel(&op, &reason).or_report();
    op_json(&operations::running().or_report().unwrap_or(op))
}

/// Which path the next scale-out of `nodes` workers takes, and why: `split: clone ... of ... is
/// ready` (a warm clone, Citus 13.2's snapshot split) or `logical: ...` (an empty node and a
/// logical rebalance) with the reason no clone is used.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn scale_out_path(nodes: default!(Option<i32>, 1)) -> String {
    let nodes = nodes_arg(nodes);
    execute::scale_out_path(nodes as u32).or_report().text()
}
