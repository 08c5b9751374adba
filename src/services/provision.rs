//! Talking to an external provisioner: the outbox table autoscale.provision_requests, NOTIFY
//! autoscale_provision, and an HTTP POST of the same json to autoscale.webhook_url. Webhooks are
//! delivered by the background worker outside any tick's transaction: an attempt is claimed and
//! counted in one transaction, POSTed with no transaction open, and its result recorded in
//! another, each with a short timeout and a bounded number of attempts, so a slow or dead
//! endpoint never holds the tick lock and an aborted tick never causes a duplicate POST. Each
//! request has an id and a request_key (uuid) the provisioner can de-duplicate on. Errors are
//! stored as their kind (HTTP status, transport error), never with the URL.

use std::time::Duration;

use pgrx::prelude::*;

use crate::infra::errors::Result;
use crate::infra::settings;
pub use crate::store::provision::Due;
use crate::store::{events, pool, provision as outbox};

/// NOTIFY channel of provision and deprovision requests.
pub const CHANNEL: &str = "autoscale_provision";
/// Per-request HTTP timeout.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(2);
/// Deliveries tried per worker cycle, at most.
const WEBHOOK_PER_TICK: i64 = 3;
/// Attempts per request before it is given up.
pub const WEBHOOK_MAX_ATTEMPTS: i32 = 5;

/// Writes a request to the outbox and NOTIFYs listeners; returns its id.
pub fn request(
    kind: &str,
    operation_id: Option<i64>,
    mut payload: serde_json::Value,
) -> Result<i64> {
    let (id, key) = outbox::insert(
        kind,
        operation_id,
        &payload,
        settings::webhook_url().is_some(),
    )?;
    payload["id"] = id.into();
    payload["request_key"] = key.into();
    payload["kind"] = kind.into();
    outbox::set_payload(id, &payload)?;
    Spi::run_with_args(
        "SELECT pg_catalog.pg_notify($1, $2)",
        &[CHANNEL.into(), payload.to_string().into()],
    )?;
    events::record(
        &format!("{kind}_request"),
        &format!("{kind} request {id} written, NOTIFY {CHANNEL} sent"),
        Some(payload),
    )?;
    Ok(id)
}

/// Claims the deliveries that are due, in their own committed transaction, BEFORE anything is
/// POSTed: each gets its attempt counted and its next try scheduled, so a crash or an abort after
/// the POST can only lead to a later, counted attempt (never an uncounted duplicate).
pub fn claim_due() -> Result<Vec<Due>> {
    if settings::webhook_url().is_none() {
        return Ok(Vec::new());
    }
    outbox::claim_due(WEBHOOK_PER_TICK)
}
/// What went wrong with a POST, without the URL or anything from it (it may carry a token).
pub fn error_kind(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, _) => format!("HTTP status {code}"),
        ureq::Error::Transport(t) => format!("transport error: {:?}", t.kind()),
    }
}

/// POSTs one claimed delivery. No SPI, no transaction: called between two transactions.
/// The request's id and key travel as headers too, so the provisioner can de-duplicate.
pub fn post(url: &str, d: &Due) -> std::result::Result<(), String> {
    let mut body = d.payload.clone();
    if body.is_object() {
        body["request_key"] = d.request_key.clone().into();
    }
    let agent = ureq::AgentBuilder::new().timeout(WEBHOOK_TIMEOUT).build();
    agent
        .post(url)
        .set("Content-Type", "application/json")
        .set(
            "User-Agent",
            concat!("citus_autoscale/", env!("CARGO_PKG_VERSION")),
        )
        .set("Idempotency-Key", &d.request_key)
        .set("X-Autoscale-Request-Id", &d.id.to_string())
        .set("X-Autoscale-Attempt", &d.attempt.to_string())
        .send_string(&body.to_string())
        .map(|_| ())
        .map_err(|e| error_kind(&e))
}

/// Records the result of one attempt (in a transaction after the POST).
pub fn record_result(d: &Due, result: &std::result::Result<(), String>) -> Result<()> {
    let (status, error) = match result {
        Ok(()) => ("delivered", None),
        Err(e) if d.attempt >= WEBHOOK_MAX_ATTEMPTS => ("failed", Some(e.clone())),
        Err(e) => ("retry", Some(e.clone())),
    };
    outbox::set_webhook_result(d.id, d.attempt, status, error.clone())?;
    if let Some(e) = error {
        events::record(
            "webhook_failed",
            &format!(
                "webhook for request {} failed (attempt {} of {WEBHOOK_MAX_ATTEMPTS}): {e}",
                d.id, d.attempt
            ),
            Some(serde_json::json!({"request_id": d.id, "attempt": d.attempt, "error": e})),
        )?;
    }
    Ok(())
}

/// A node that left (returned) or failed to join is offered again: available in the pool, and its
/// pending deprovision requests are answered (the provisioner offered it back).
pub fn offer_again(host: &str, port: i32) -> Result<()> {
    pool::set_state(host, port, "available")?;
    outbox::fulfil_deprovision(host, port)
}
