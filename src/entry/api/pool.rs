//! The standby pool: add_standby_node(), add_standby_clone(), remove_standby_node().

use pgrx::prelude::*;
use pgrx::JsonB;

use autoscale_core::operations::NodeAddr;

use super::{named_node_arg, node_arg, outside_node_arg, req, require_coordinator};
use crate::infra::errors::{AutoscaleError, OrReport};
use crate::infra::{citus, settings};
use crate::services::{clones, provision};
use crate::store::{events, pool};

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
    offer_standby(&n).or_report();
    JsonB(serde_json::json!({"node": n.to_string(), "state": "available"}))
}

/// Offers node `n` (checked: not in the cluster) to the pool: it must answer and have the
/// extension files; a returned or failed node is offered again, any other pool state is a
/// duplicate. Shared by add_standby_node() and answer_provision_request().
pub(super) fn offer_standby(n: &NodeAddr) -> Result<(), AutoscaleError> {
    // a node that left after a scale-in (returned) or failed to join (failed) may be offered
    // again; any other state is a duplicate
    let again = match pool::state_of(&n.host, n.port)?.as_deref() {
        None => false,
        Some("returned" | "failed") => true,
        Some(s) => {
            return Err(AutoscaleError::Duplicate(format!(
                "node {n} is already in the standby pool ({s})"
            )))
        }
    };
    let timeout = settings::node_timeout().as_millis() as u64;
    let (ok, result) =
        citus::run_on_node(&n.host, n.port, citus::REQUIRED_EXTENSIONS_COMMAND, timeout)?;
    if !ok {
        return Err(AutoscaleError::Unreachable(format!(
            "node {n} does not answer: {result}"
        )));
    }
    if result != "citus,citus_autoscale" {
        return Err(AutoscaleError::NotInPrerequisiteState(format!(
            "node {n} lacks the extension files of citus and citus_autoscale (it has: {})",
            if result.is_empty() {
                "neither"
            } else {
                &result
            }
        )));
    }
    if again {
        provision::offer_again(&n.host, n.port)?;
        // offered as an ordinary standby: whatever it was, it is no clone now
        pool::forget_primary(&n.host, n.port)?;
    } else {
        pool::add(&n.host, n.port)?;
    }
    events::record(
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
    )?;
    Ok(())
}

/// Offers a warm clone to the pool: a streaming replica of the worker primary_host:primary_port
/// (for example made with `pg_basebackup -R`). A scale-out prefers it: Citus 13.2's snapshot
/// split promotes it and gives it part of its primary's shards.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn add_standby_clone(
    host: Option<&str>,
    port: Option<i32>,
    primary_host: Option<&str>,
    primary_port: Option<i32>,
) -> JsonB {
    let host = req(
        "host",
        host,
        "the host name of a streaming replica of a worker",
    );
    let port = req("port", port, "the port of a streaming replica of a worker");
    let primary_host = req(
        "primary_host",
        primary_host,
        "the host name of the worker the clone streams from",
    );
    let primary_port = req(
        "primary_port",
        primary_port,
        "the port of the worker the clone streams from",
    );
    named_node_arg(("host", "port"), host, port).or_report();
    let primary =
        named_node_arg(("primary_host", "primary_port"), primary_host, primary_port).or_report();
    require_coordinator("autoscale.add_standby_clone()").or_report();
    let n = outside_node_arg(
        host,
        port,
        "a replica that is not in the cluster (it is in pg_dist_node)",
    )
    .or_report();
    if n == primary {
        AutoscaleError::invalid(
            "host",
            format!("'{n}'"),
            "a clone other than its primary primary_host:primary_port",
        )
        .report();
    }
    let is_worker = citus::primary_nodes().or_report().into_iter().any(|w| {
        w.groupid != 0 && w.isactive && w.nodename == primary.host && w.nodeport == primary.port
    });
    if !is_worker {
        AutoscaleError::invalid(
            "primary_host",
            format!("'{primary}'"),
            "an active worker of the cluster (pg_dist_node, group other than 0)",
        )
        .report();
    }
    match pool::state_of(&n.host, n.port).or_report().as_deref() {
        None | Some("returned" | "failed") => {}
        Some(s) => {
            AutoscaleError::Duplicate(format!("node {n} is already in the standby pool ({s})"))
                .report()
        }
    }
    let timeout = settings::node_timeout().as_millis() as u64;
    let check = clones::check_clones(&[(n.clone(), primary.clone())], timeout)
        .or_report()
        .remove(0);
    if let Some(e) = &check.error {
        AutoscaleError::NotInPrerequisiteState(format!(
            "node {n} is not a streaming clone of {primary}: {e}"
        ))
        .report();
    }
    clones::add_to_pool(&n, &primary, &check).or_report();
    let lag = autoscale_core::clones::bytes(check.lag_bytes.unwrap_or(0));
    events::record(
        "standby_added",
        &format!("warm clone {n} of {primary} added to the pool (lag {lag})"),
        Some(serde_json::json!({"node": n.to_string(), "primary": primary.to_string(), "lag_bytes": check.lag_bytes})),
    )
    .ok();
    JsonB(serde_json::json!({
        "node": n.to_string(),
        "primary": primary.to_string(),
        "state": "available",
        "streaming": check.streaming,
        "lag_bytes": check.lag_bytes,
    }))
}

/// Takes a node out of the standby pool (not while it is joining, active or draining).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn remove_standby_node(host: Option<&str>, port: Option<i32>) -> bool {
    let host = req("host", host, "the host name of a pool node");
    let port = req("port", port, "the port of a pool node");
    let n = node_arg(host, port).or_report();
    match pool::state_of(&n.host, n.port).or_report().as_deref() {
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
    pool::remove(&n.host, n.port).or_report();
    events::record(
        "standby_removed",
        &format!("standby node {n} removed from the pool"),
        None,
    )
    .or_report();
    true
}
