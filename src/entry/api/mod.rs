//! The SQL functions of schema `autoscale`, by topic: [`observe`] (sampling, explain, backtest,
//! metrics), [`policies`] (policies, pause), [`operations`] (rebalance, scale out and in, cancel)
//! and [`pool`] (the standby pool). They check arguments, call the layers below and convert; the
//! argument checks they share live here. No rule of the autoscaler lives in this folder.

mod history;
mod observe;
mod operations;
mod policies;
mod pool;
mod provisioner;
mod schedules;

use autoscale_core::operations::NodeAddr;
use pgrx::datum::Interval;
use pgrx::prelude::*;

use crate::infra::citus;
use crate::infra::errors::{AutoscaleError, OrReport, Result};

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

/// Longest host name (DNS: 253 characters).
const MAX_HOST_LEN: usize = 253;

fn node_arg(host: &str, port: i32) -> Result<NodeAddr, AutoscaleError> {
    named_node_arg(("host", "port"), host, port)
}

/// A valid host and port, errors naming the arguments `names`.
fn named_node_arg(
    names: (&'static str, &'static str),
    host: &str,
    port: i32,
) -> Result<NodeAddr, AutoscaleError> {
    if host.trim().is_empty() {
        return Err(AutoscaleError::invalid(
            names.0,
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
            names.0,
            format!("'{}'", autoscale_core::safety::truncate(host, 40)),
            format!("a host name or IP address of at most {MAX_HOST_LEN} characters"),
        ));
    }
    if !(1..=65535).contains(&port) {
        return Err(AutoscaleError::invalid(
            names.1,
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
