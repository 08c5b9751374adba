//! autoscale.provision_requests: the outbox of requests to an external provisioner, with their
//! webhook delivery state. Owns the table's SQL.

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::infra::errors::Result;

/// Inserts a request; returns its id and request_key. `webhook`: whether a webhook will deliver it.
pub fn insert(
    kind: &str,
    operation_id: Option<i64>,
    payload: &serde_json::Value,
    webhook: bool,
) -> Result<(i64, String)> {
    let (id, key) = Spi::get_two_with_args::<i64, String>(
        "INSERT INTO autoscale.provision_requests (kind, operation_id, payload, webhook_status)
         VALUES ($1, $2, $3, CASE WHEN $4 THEN 'pending' END) RETURNING id, request_key::text",
        &[
            kind.into(),
            operation_id.into(),
            JsonB(payload.clone()).into(),
            webhook.into(),
        ],
    )?;
    Ok((id.unwrap_or_default(), key.unwrap_or_default()))
}

pub fn set_payload(id: i64, payload: &serde_json::Value) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET payload = $2 WHERE id = $1",
        &[id.into(), JsonB(payload.clone()).into()],
    )?)
}

pub fn set_status(id: i64, status: &str) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.provision_requests
            SET status = $2, fulfilled_at = CASE WHEN $2 = 'fulfilled' THEN pg_catalog.now() ELSE fulfilled_at END
          WHERE id = $1",
        &[id.into(), status.into()],
    )?)
}

/// Max nodeid recorded when a provision request was written (nodes above it are new).
pub fn nodeid_at_request(id: i64) -> Result<i32> {
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

/// Claims up to `limit` deliveries that are due: each gets its attempt counted and its next try
/// scheduled (5 s, 10 s, 20 s, ... after this one).
pub fn claim_due(limit: i64) -> Result<Vec<Due>> {
    Ok(Spi::connect_mut(|c| {
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
            &[limit.into()],
        )? {
            v.push(Due {
                id: r.get::<i64>(1)?.unwrap_or_default(),
                payload: r.get::<JsonB>(2)?.map(|j| j.0).unwrap_or_default(),
                attempt: r.get::<i32>(3)?.unwrap_or(1),
                request_key: r.get::<String>(4)?.unwrap_or_default(),
            });
        }
        Ok::<_, pgrx::spi::SpiError>(v)
    })?)
}

/// Records the webhook state after attempt `attempt` of request `id` (only if no later attempt
/// was claimed meanwhile).
pub fn set_webhook_result(
    id: i64,
    attempt: i32,
    status: &str,
    error: Option<String>,
) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET webhook_status = $2, webhook_error = $3
          WHERE id = $1 AND webhook_attempts = $4",
        &[id.into(), status.into(), error.into(), attempt.into()],
    )?)
}

/// Expires the pending provision requests of operation `op_id` (it ended without their node).
pub fn expire_for_operation(op_id: i64) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET status = 'expired'
          WHERE kind = 'provision' AND status = 'pending' AND operation_id = $1",
        &[op_id.into()],
    )?)
}

/// Expires every pending provision request whose operation is no longer running (cancelled,
/// failed, or gone): nobody waits for its node any more. (Reads autoscale.operations.)
pub fn expire_orphaned() -> Result<()> {
    Ok(Spi::run(
        "UPDATE autoscale.provision_requests r SET status = 'expired'
          WHERE r.kind = 'provision' AND r.status = 'pending'
            AND NOT EXISTS (SELECT 1 FROM autoscale.operations o
                             WHERE o.id = r.operation_id AND o.status = 'running')",
    )?)
}

/// Answers the pending deprovision requests of host:port (the provisioner offered it back).
pub fn fulfil_deprovision(host: &str, port: i32) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET status = 'fulfilled', fulfilled_at = pg_catalog.now()
          WHERE kind = 'deprovision' AND status = 'pending'
            AND payload -> 'node' ->> 'host' = $1 AND (payload -> 'node' ->> 'port')::int = $2",
        &[host.into(), port.into()],
    )?)
}

/// Requests nobody has answered yet.
pub fn pending_count() -> Result<Option<f64>> {
    Ok(Spi::get_one::<f64>(
        "SELECT count(*)::float8 FROM autoscale.provision_requests WHERE status = 'pending'",
    )?)
}

/// Whether operation `op_id` already asked for a warm clone of `worker` (provision_clone).
pub fn clone_requested(op_id: i64, worker: &autoscale_core::operations::NodeAddr) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM autoscale.provision_requests
                         WHERE kind = 'provision_clone' AND operation_id = $1
                           AND payload -> 'primary' ->> 'host' = $2 AND (payload -> 'primary' ->> 'port')::int = $3)",
        &[op_id.into(), worker.host.clone().into(), worker.port.into()],
    )?
    .unwrap_or(false))
}

/// A clone of `primary` was offered: its pending provision_clone requests are fulfilled.
pub fn fulfil_clone_requests(primary: &autoscale_core::operations::NodeAddr) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET status = 'fulfilled', fulfilled_at = pg_catalog.now()
          WHERE kind = 'provision_clone' AND status = 'pending'
            AND payload -> 'primary' ->> 'host' = $1 AND (payload -> 'primary' ->> 'port')::int = $2",
        &[primary.host.clone().into(), primary.port.into()],
    )?)
}

/// A request handed to a provisioner by [`claim`].
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub kind: String,
    pub request_key: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub lease_until: pgrx::datum::TimestampWithTimeZone,
}

/// Claims the oldest pending provision or deprovision request whose claim is free: never claimed,
/// its lease expired (its claimer died), or claimed by `claimer` itself (a restarted provisioner
/// resumes its own work at once). The claim counts an attempt and holds for `lease_secs`.
pub fn claim(claimer: &str, lease_secs: f64) -> Result<Option<Claimed>> {
    Ok(Spi::connect_mut(|c| {
        let t = c.update(
            "UPDATE autoscale.provision_requests r
                SET claimed_by = $1, claimed_at = pg_catalog.now(),
                    lease_until = pg_catalog.now() + pg_catalog.make_interval(secs => $2),
                    attempts = r.attempts + 1
              WHERE r.id = (SELECT q.id FROM autoscale.provision_requests q
                             WHERE q.status = 'pending' AND q.kind IN ('provision', 'deprovision')
                               AND (q.lease_until IS NULL OR q.lease_until <= pg_catalog.now()
                                    OR q.claimed_by = $1)
                             ORDER BY q.id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING r.id, r.kind, r.request_key::text, r.payload, r.attempts, r.lease_until",
            None,
            &[claimer.into(), lease_secs.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok::<_, pgrx::spi::SpiError>(Some(Claimed {
            id: r.get::<i64>(1)?.unwrap_or_default(),
            kind: r.get::<String>(2)?.unwrap_or_default(),
            request_key: r.get::<String>(3)?.unwrap_or_default(),
            payload: r.get::<JsonB>(4)?.map(|j| j.0).unwrap_or_default(),
            attempts: r.get::<i32>(5)?.unwrap_or_default(),
            lease_until: r
                .get::<pgrx::datum::TimestampWithTimeZone>(6)?
                .ok_or(pgrx::spi::SpiError::NoTupleTable)?,
        }))
    })?)
}

/// A request as an answer sees it (locked FOR UPDATE until the transaction ends).
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: String,
    pub status: String,
    pub payload: serde_json::Value,
    pub answer: Option<serde_json::Value>,
    pub attempts: i32,
}

pub fn lock(id: i64) -> Result<Option<Request>> {
    Ok(Spi::connect_mut(|c| {
        let t = c.update(
            "SELECT kind, status, payload, answer, attempts FROM autoscale.provision_requests WHERE id = $1 FOR UPDATE",
            None,
            &[id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok::<_, pgrx::spi::SpiError>(Some(Request {
            kind: r.get::<String>(1)?.unwrap_or_default(),
            status: r.get::<String>(2)?.unwrap_or_default(),
            payload: r.get::<JsonB>(3)?.map(|j| j.0).unwrap_or_default(),
            answer: r.get::<JsonB>(4)?.map(|j| j.0),
            attempts: r.get::<i32>(5)?.unwrap_or_default(),
        }))
    })?)
}

/// Records the answer of request `id`; a pending request becomes fulfilled (an expired one stays
/// expired: its operation ended, the node went to the pool). The claim is released.
pub fn set_answer(id: i64, answer: &serde_json::Value) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.provision_requests
            SET answer = $2, lease_until = NULL, last_error = NULL,
                status = CASE WHEN status = 'pending' THEN 'fulfilled' ELSE status END,
                fulfilled_at = CASE WHEN status = 'pending' THEN pg_catalog.now() ELSE fulfilled_at END
          WHERE id = $1",
        &[id.into(), JsonB(answer.clone()).into()],
    )?)
}

/// Records a failed attempt of request `id`: retried (claimable again after `backoff_secs`, by
/// anyone) or given up (status failed).
pub fn set_failed(id: i64, error: &str, retry: bool, backoff_secs: f64) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.provision_requests
            SET last_error = $2,
                status = CASE WHEN $3 THEN status ELSE 'failed' END,
                claimed_by = CASE WHEN $3 THEN NULL ELSE claimed_by END,
                lease_until = CASE WHEN $3 THEN pg_catalog.now() + pg_catalog.make_interval(secs => $4) END
          WHERE id = $1",
        &[id.into(), error.into(), retry.into(), backoff_secs.into()],
    )?)
}

/// Where a provision request a step waits on stands: the node it was answered with
/// (`answer_provision_request`), and why a provisioner gave it up (status failed), if it did.
#[derive(Debug, Clone, Default)]
pub struct Waiting {
    pub answered: Option<(String, i32)>,
    pub given_up: Option<String>,
}

pub fn waiting(id: i64) -> Result<Waiting> {
    Ok(crate::infra::spi::select_first(
        "SELECT answer ->> 'host', (answer ->> 'port')::int,
                CASE WHEN status = 'failed' THEN coalesce(last_error, 'no reason given') END
           FROM autoscale.provision_requests WHERE id = $1",
        &[id.into()],
        |r| {
            Ok(Waiting {
                answered: match (r.get::<String>(1)?, r.get::<i32>(2)?) {
                    (Some(h), Some(p)) => Some((h, p)),
                    _ => None,
                },
                given_up: r.get::<String>(3)?,
            })
        },
    )?
    .unwrap_or_default())
}
