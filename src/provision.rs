//! Talking to an external provisioner: the outbox table autoscale.provision_requests, NOTIFY
//! autoscale_provision, and an HTTP POST of the same json to autoscale.webhook_url. Webhooks are
//! delivered by later ticks (after the request committed), each with a short timeout and a
//! bounded number of retries, so a slow or dead endpoint never holds a tick for long.

use std::time::Duration;

use pgrx::prelude::*;
use pgrx::spi::SpiResult;
use pgrx::JsonB;

use crate::{history, settings};

/// NOTIFY channel of provision and deprovision requests.
pub const CHANNEL: &str = "autoscale_provision";
/// Per-request HTTP timeout.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(2);
/// Deliveries tried per tick, at most.
const WEBHOOK_PER_TICK: i64 = 3;
/// Attempts per request before it is given up.
pub const WEBHOOK_MAX_ATTEMPTS: i32 = 5;

/// Writes a request to the outbox and NOTIFYs listeners; returns its id.
pub fn request(
    kind: &str,
    operation_id: Option<i64>,
    mut payload: serde_json::Value,
) -> SpiResult<i64> {
    let id = Spi::get_one_with_args::<i64>(
        "INSERT INTO autoscale.provision_requests (kind, operation_id, payload, webhook_status)
         VALUES ($1, $2, $3, CASE WHEN $4 THEN 'pending' END) RETURNING id",
        &[
            kind.into(),
            operation_id.into(),
            JsonB(payload.clone()).into(),
            settings::webhook_url().is_some().into(),
        ],
    )?
    .unwrap_or_default();
    payload["id"] = id.into();
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

/// POSTs pending webhook requests that are due; returns how many were delivered.
pub fn deliver_webhooks() -> SpiResult<usize> {
    let Some(url) = settings::webhook_url() else {
        return Ok(0);
    };
    let due: Vec<(i64, serde_json::Value, i32)> = Spi::connect(|c| {
        let mut v = Vec::new();
        for r in c.select(
            "SELECT id, payload, webhook_attempts FROM autoscale.provision_requests
              WHERE webhook_status IN ('pending', 'retry')
                AND (webhook_next_at IS NULL OR webhook_next_at <= pg_catalog.now())
              ORDER BY id LIMIT $1",
            None,
            &[WEBHOOK_PER_TICK.into()],
        )? {
            v.push((
                r.get::<i64>(1)?.unwrap_or_default(),
                r.get::<JsonB>(2)?.map(|j| j.0).unwrap_or_default(),
                r.get::<i32>(3)?.unwrap_or(0),
            ));
        }
        Ok::<_, pgrx::spi::SpiError>(v)
    })?;
    let agent = ureq::AgentBuilder::new().timeout(WEBHOOK_TIMEOUT).build();
    let mut delivered = 0;
    for (id, payload, attempts) in due {
        let attempts = attempts + 1;
        let result = agent
            .post(&url)
            .set("Content-Type", "application/json")
            .set(
                "User-Agent",
                concat!("citus_autoscale/", env!("CARGO_PKG_VERSION")),
            )
            .send_string(&payload.to_string());
        let (status, error) = match result {
            Ok(_) => ("delivered", None),
            Err(e) if attempts >= WEBHOOK_MAX_ATTEMPTS => ("failed", Some(e.to_string())),
            Err(e) => ("retry", Some(e.to_string())),
        };
        if status == "delivered" {
            delivered += 1;
        }
        Spi::run_with_args(
            "UPDATE autoscale.provision_requests
                SET webhook_status = $2, webhook_attempts = $3, webhook_error = $4,
                    webhook_next_at = pg_catalog.now() + make_interval(secs => 5 * 2 ^ $3)
              WHERE id = $1",
            &[
                id.into(),
                status.into(),
                attempts.into(),
                error.clone().into(),
            ],
        )?;
        if let Some(e) = error {
            history::record_event(
                "webhook_failed",
                &format!("webhook for request {id} failed (attempt {attempts} of {WEBHOOK_MAX_ATTEMPTS}): {e}"),
                None,
            )?;
        }
    }
    Ok(delivered)
}
