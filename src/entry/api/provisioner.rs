//! The provisioner's side of autoscale.provision_requests: claim_provision_request(),
//! answer_provision_request() and fail_provision_request(). A provisioner (the daemon
//! citus-autoscale-provisioner, or any other) claims a request with a lease, fulfils it, then
//! answers or fails it. A claim whose lease expired is claimed again by the next provisioner, so
//! a provisioner that died mid-request is taken over; an answer is idempotent, so a provisioner
//! that answered and died before it knew can answer again.

use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::JsonB;

use super::pool::offer_standby;
use super::{interval_secs, node_arg, outside_node_arg, req, require_coordinator};
use crate::infra::errors::{AutoscaleError, OrReport};
use crate::store::{events, pool, provision as outbox};

/// Longest claimer name.
const MAX_CLAIMER_LEN: usize = 200;
/// Longest error text kept (its tail: where a command's stderr says what went wrong).
const MAX_ERROR_LEN: usize = 2000;
/// Shortest and longest lease of a claim.
const LEASE_SECS: (f64, f64) = (1.0, 86_400.0);

/// Claims the oldest pending provision or deprovision request that is not validly claimed by
/// another provisioner; no row when there is none.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn claim_provision_request(
    claimer: Option<&str>,
    lease: default!(Option<Interval>, "'2 minutes'"),
) -> TableIterator<
    'static,
    (
        name!(id, i64),
        name!(kind, String),
        name!(request_key, String),
        name!(payload, JsonB),
        name!(attempts, i32),
        name!(lease_until, pgrx::datum::TimestampWithTimeZone),
    ),
> {
    let claimer = req(
        "claimer",
        claimer,
        "a name of the provisioner, 1 to 200 characters",
    );
    if claimer.trim().is_empty() || claimer.len() > MAX_CLAIMER_LEN {
        AutoscaleError::invalid(
            "claimer",
            format!("'{}'", autoscale_core::safety::truncate(claimer, 40)),
            "a name of the provisioner, 1 to 200 characters",
        )
        .report();
    }
    let lease = req("lease", lease, "an interval between 1 second and 1 day");
    let secs = interval_secs(lease);
    if !(LEASE_SECS.0..=LEASE_SECS.1).contains(&secs) {
        AutoscaleError::invalid(
            "lease",
            format!("'{secs} seconds'"),
            "an interval between 1 second and 1 day",
        )
        .report();
    }
    let claimed = outbox::claim(claimer, secs).or_report();
    TableIterator::new(claimed.into_iter().map(|c| {
        (
            c.id,
            c.kind,
            c.request_key,
            JsonB(c.payload),
            c.attempts,
            c.lease_until,
        )
    }))
}

fn request_arg(id: Option<i64>) -> (i64, outbox::Request) {
    let id = req("id", id, "the id of a row of autoscale.provision_requests");
    match outbox::lock(id).or_report() {
        Some(r) => (id, r),
        None => {
            AutoscaleError::invalid("id", id, "the id of a row of autoscale.provision_requests")
                .report()
        }
    }
}

/// Answers request `id` with node host:port. A provision request: the node joins the standby pool
/// (the checks of add_standby_node()), where the waiting scale-out takes it. A deprovision
/// request: host:port must be its node, which is gone from the pool. Answering again with the
/// same node does nothing.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn answer_provision_request(id: Option<i64>, host: Option<&str>, port: Option<i32>) -> JsonB {
    let host = req(
        "host",
        host,
        "the host name of the node that answers the request",
    );
    let port = req(
        "port",
        port,
        "the port of the node that answers the request",
    );
    let n = node_arg(host, port).or_report();
    let (id, r) = request_arg(id);
    let answer = serde_json::json!({"host": n.host, "port": n.port});
    if let Some(prev) = &r.answer {
        if *prev == answer {
            return JsonB(
                serde_json::json!({"id": id, "node": n.to_string(), "status": r.status, "again": true}),
            );
        }
        AutoscaleError::invalid(
            "host",
            format!("'{n}'"),
            format!(
                "the node that already answered request {id}: {}:{}",
                prev["host"].as_str().unwrap_or_default(),
                prev["port"]
            ),
        )
        .report();
    }
    match (r.kind.as_str(), r.status.as_str()) {
        ("provision", "pending" | "expired") => {
            require_coordinator("autoscale.answer_provision_request()").or_report();
            let n = outside_node_arg(
                &n.host,
                n.port,
                "a node that is not in the cluster (it is in pg_dist_node)",
            )
            .or_report();
            // offered by hand meanwhile: already where the answer would put it
            if !matches!(
                pool::state_of(&n.host, n.port).or_report().as_deref(),
                Some("available" | "joining" | "active")
            ) {
                offer_standby(&n).or_report();
            }
        }
        ("deprovision", "pending") => {
            let node = &r.payload["node"];
            if node["host"].as_str() != Some(n.host.as_str())
                || node["port"].as_i64() != Some(i64::from(n.port))
            {
                AutoscaleError::invalid(
                    "host",
                    format!("'{n}'"),
                    format!("the node of deprovision request {id}: {}:{}", node["host"].as_str().unwrap_or_default(), node["port"]),
                )
                .report();
            }
            // stopped by the provisioner: it is no standby any more
            if pool::state_of(&n.host, n.port).or_report().as_deref() == Some("returned") {
                pool::remove(&n.host, n.port).or_report();
            }
        }
        (kind, status) => AutoscaleError::NotInPrerequisiteState(format!(
            "request {id} ({kind}) is {status}; only a pending provision or deprovision request (or an expired provision request) is answered"
        ))
        .report(),
    }
    outbox::set_answer(id, &answer).or_report();
    events::record(
        "provision_answered",
        &format!("{} request {id} answered with node {n}", r.kind),
        Some(serde_json::json!({"request_id": id, "node": n.to_string()})),
    )
    .or_report();
    JsonB(
        serde_json::json!({"id": id, "node": n.to_string(), "status": if r.status == "pending" { "fulfilled" } else { r.status.as_str() }, "again": false}),
    )
}

/// Seconds before a failed request is claimable again after its `attempts`-th attempt: 5, 10,
/// 20, ... at most 300.
fn retry_backoff_secs(attempts: i32) -> f64 {
    (5.0 * 2f64.powi(attempts.clamp(1, 10) - 1)).min(300.0)
}

/// Records that an attempt at request `id` failed with `error`: retried later (claimable again
/// after a backoff) or given up (status failed).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn fail_provision_request(id: Option<i64>, error: Option<&str>, retry: Option<bool>) -> JsonB {
    let error = req("error", error, "a text that says what went wrong");
    if error.trim().is_empty() {
        AutoscaleError::invalid("error", "''", "a text that says what went wrong").report();
    }
    let retry = req("retry", retry, "true (try again later) or false (give up)");
    let (id, r) = request_arg(id);
    if r.status != "pending" {
        AutoscaleError::NotInPrerequisiteState(format!(
            "request {id} ({}) is {}; only a pending request can fail",
            r.kind, r.status
        ))
        .report();
    }
    // the tail: where a command's stderr says what went wrong
    let start = error
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| error.len() - i <= MAX_ERROR_LEN)
        .unwrap_or(0);
    let error = &error[start..];
    let backoff = retry_backoff_secs(r.attempts);
    outbox::set_failed(id, error, retry, backoff).or_report();
    events::record(
        "provision_failed",
        &format!(
            "{} request {id} failed (attempt {}){}: {}",
            r.kind,
            r.attempts,
            if retry { ", retried" } else { ", given up" },
            autoscale_core::safety::truncate(error, 200)
        ),
        Some(serde_json::json!({"request_id": id, "retry": retry, "attempts": r.attempts})),
    )
    .or_report();
    JsonB(serde_json::json!({
        "id": id,
        "status": if retry { "pending" } else { "failed" },
        "retry_after_secs": if retry { Some(backoff) } else { None },
    }))
}
