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
use pgrx::spi::SpiResult;
use pgrx::JsonB;

use crate::{history, settings};

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
) -> SpiResult<i64> {
    let (id, key) = Spi::get_two_with_args::<i64, String>(
        "INSERT INTO autoscale.provision_requests (kind, operation_id, payload, webhook_status)
         VALUES ($1, $2, $3, CASE WHEN $4 THEN 'pending' END) RETURNING id, request_key::text",
        &[
            kind.into(),
            operation_id.into(),
            JsonB(payload.clone()).into(),
            settings::webhook_url().is_some().into(),
        ],
    )?;
    let id = id.unwrap_or_default();
    payload["id"] = id.into();
    payload["request_key"] = key.unwrap_or_default().into();
    payload["kind"] = kind.into();
    Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET payload = $2 WHERE id = $1",
        &[id.into(), JsonB(payload.clone()).into()],
    )?;
    Spi::run_with_args(
        "SELECT pg_catalog.pg_notify($1, $2)",
        &[CHANNEL.into(), payload.to_string().into()],
    )?;
    history::record_event(
        &format!("{kind}_request"),
        &format!("{kind} request {id} written, NOTIFY {CHANNEL} sent"),
        Some(payload),
    )?;
    Ok(id)
}

pub fn set_status(id: i64, status: &str) -> SpiResult<()> {
    Spi::run_with_args(
        "UPDATE autoscale.provision_requests
            SET status = $2, fulfilled_at = CASE WHEN $2 = 'fulfilled' THEN pg_catalog.now() ELSE fulfilled_at END
          WHERE id = $1",
        &[id.into(), status.into()],
    )
}

/// Max nodeid recorded when a provision request was written (nodes above it are new).
pub fn nodeid_at_request(id: i64) -> SpiResult<i32> {
    Ok(Spi::get_one_with_args::<i32>(
        "SELECT (SELECT (payload ->> 'max_nodeid')::int FROM autoscale.provision_requests WHERE id = $1)",
        &[id.into()],
    )?
    .unwrap_or(i32::MAX))
}

/// A webhook delivery claimed for one attempt.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub payload: serde_json::Value,
    pub attempt: i32,
    pub request_key: String,
}

/// Claims the deliveries that are due, in their own committed transaction, BEFORE anything is
/// POSTed: each gets its attempt counted and its next try scheduled, so a crash or an abort after
/// the POST can only lead to a later, counted attempt (never an uncounted duplicate).
pub fn claim_due() -> SpiResult<Vec<Due>> {
    if settings::webhook_url().is_none() {
        return Ok(Vec::new());
    }
    Spi::connect_mut(|c| {
        let mut v = Vec::new();
        for r in c.update(
            "UPDATE autoscale.provision_requests r
                SET webhook_status = 'sending', webhook_attempts = r.webhook_attempts + 1,
                    webhook_next_at = pg_catalog.now() + pg_catalog.make_interval(secs => 5 * 2 ^ (r.webhook_attempts + 1))
              WHERE r.id IN (SELECT id FROM autoscale.provision_requests
                              WHERE webhook_status IN ('pending', 'retry', 'sending')
                                AND (webhook_next_at IS NULL OR webhook_next_at <= pg_catalog.now())
                              ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING r.id, r.payload, r.webhook_attempts, r.request_key::text",
            None,
            &[WEBHOOK_PER_TICK.into()],
        )? {
            v.push(Due {
                id: r.get::<i64>(1)?.unwrap_or_default(),
                payload: r.get::<JsonB>(2)?.map(|j| j.0).unwrap_or_default(),
                attempt: r.get::<i32>(3)?.unwrap_or(1),
                request_key: r.get::<String>(4)?.unwrap_or_default(),
            });
        }
        Ok::<_, pgrx::spi::SpiError>(v)
    })
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
pub fn post(url: &str, d: &Due) -> Result<(), String> {
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
pub fn record_result(d: &Due, result: &Result<(), String>) -> SpiResult<()> {
    let (status, error) = match result {
        Ok(()) => ("delivered", None),
        Err(e) if d.attempt >= WEBHOOK_MAX_ATTEMPTS => ("failed", Some(e.clone())),
        Err(e) => ("retry", Some(e.clone())),
    };
    Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET webhook_status = $2, webhook_error = $3
          WHERE id = $1 AND webhook_attempts = $4",
        &[
            d.id.into(),
            status.into(),
            error.clone().into(),
            d.attempt.into(),
        ],
    )?;
    if let Some(e) = error {
        history::record_event(
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

/// Expires the pending provision requests of operation `op_id` (it ended without their node).
pub fn expire_for_operation(op_id: i64) -> SpiResult<()> {
    Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET status = 'expired'
          WHERE kind = 'provision' AND status = 'pending' AND operation_id = $1",
        &[op_id.into()],
    )
}

/// Expires every pending provision request whose operation is no longer running (cancelled,
/// failed, or gone): nobody waits for its node any more.
pub fn expire_orphaned() -> SpiResult<()> {
    Spi::run(
        "UPDATE autoscale.provision_requests r SET status = 'expired'
          WHERE r.kind = 'provision' AND r.status = 'pending'
            AND NOT EXISTS (SELECT 1 FROM autoscale.operations o
                             WHERE o.id = r.operation_id AND o.status = 'running')",
    )
}
