//! The standby pool: add_standby_node(), remove_standby_node().

use pgrx::prelude::*;
use pgrx::JsonB;

use super::{node_arg, outside_node_arg, req, require_coordinator};
use crate::infra::errors::{AutoscaleError, OrReport};
use crate::infra::{citus, settings};
use crate::services::provision;
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
    // a node that left after a scale-in (returned) or failed to join (failed) may be offered
    // again; any other state is a duplicate
    let again = match pool::state_of(&n.host, n.port).or_report().as_deref() {
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
            .or_report();
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
        provision::offer_again(&n.host, n.port).or_report();
    } else {
        pool::add(&n.host, n.port).or_report();
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
    )
    .or_report();
    JsonB(serde_json::json!({"node": n.to_string(), "state": "available"}))
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
