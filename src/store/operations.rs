//! autoscale.operations: one row per operation, its state machine's state as json. Owns the
//! table's SQL: the running operation, inserts and saves, the summary of past operations that the
//! policy engine, the trigger and the guards read, and the counts the metrics export.

use autoscale_core::operations::Operation;
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::infra::errors::Result;
use crate::infra::spi::select_rows;

/// What the policy engine, the trigger and the guards need to know about past operations.
#[derive(Debug, Default)]
pub struct OpsHistory {
    pub running: bool,
    pub last_scale_out_finished: Option<f64>,
    pub last_scale_in_finished: Option<f64>,
    pub last_rebalance_started: Option<f64>,
    pub last_failure: Option<f64>,
    pub started_last_hour: u32,
}

/// One query for the whole [`OpsHistory`].
pub fn history() -> Result<OpsHistory> {
    Ok(Spi::connect(|c| {
        let r = c
            .select(
                "SELECT coalesce(bool_or(status = 'running'), false),
                        extract(epoch FROM max(finished_at) FILTER (WHERE kind IN ('scale_out', 'split_out') AND status = 'succeeded'))::float8,
                        extract(epoch FROM max(finished_at) FILTER (WHERE kind = 'scale_in' AND status = 'succeeded'))::float8,
                        extract(epoch FROM max(started_at) FILTER (WHERE kind IN ('rebalance', 'isolate_tenant')))::float8,
                        extract(epoch FROM max(finished_at) FILTER (WHERE status IN ('failed', 'cancelled')))::float8,
                        count(*) FILTER (WHERE started_at > pg_catalog.now() - interval '1 hour')
                   FROM autoscale.operations",
                Some(1),
                &[],
            )?
            .first();
        Ok::<_, pgrx::spi::SpiError>(OpsHistory {
            running: r.get::<bool>(1)?.unwrap_or(false),
            last_scale_out_finished: r.get(2)?,
            last_scale_in_finished: r.get(3)?,
            last_rebalance_started: r.get(4)?,
            last_failure: r.get(5)?,
            started_last_hour: r.get::<i64>(6)?.unwrap_or(0) as u32,
        })
    })?)
}

/// The running operation, locked for this transaction.
pub fn running() -> Result<Option<Operation>> {
    let op = Spi::get_one::<JsonB>(
        "SELECT (SELECT op FROM autoscale.operations WHERE status = 'running' FOR UPDATE)",
    )?;
    Ok(op.and_then(|j| serde_json::from_value(j.0).ok()))
}

/// Job ids of every operation autoscale started (so a human's job can be told apart).
pub fn job_ids() -> Result<Vec<i64>> {
    Ok(Spi::connect(|c| {
        let mut v = Vec::new();
        for r in c.select(
            "SELECT job_id FROM autoscale.operations WHERE job_id IS NOT NULL",
            None,
            &[],
        )? {
            v.push(r.get::<i64>(1)?.unwrap_or_default());
        }
        Ok::<_, pgrx::spi::SpiError>(v)
    })?)
}

/// The id of a new operation.
pub fn next_id() -> Result<i64> {
    Ok(
        Spi::get_one::<i64>("SELECT pg_catalog.nextval('autoscale.operations_id_seq')")?
            .unwrap_or_default(),
    )
}

pub fn save(op: &Operation) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.operations SET op = $2 WHERE id = $1",
        &[
            op.id.into(),
            JsonB(serde_json::to_value(op).expect("operation serializes")).into(),
        ],
    )?)
}

pub fn insert(op: &Operation, requested_by: &str) -> Result<()> {
    Ok(Spi::run_with_args(
        "INSERT INTO autoscale.operations (id, op, requested_by) VALUES ($1, $2, $3)",
        &[
            op.id.into(),
            JsonB(serde_json::to_value(op).expect("operation serializes")).into(),
            requested_by.into(),
        ],
    )?)
}

/// The running operations' kinds and job progress (done / total), for the metrics.
pub fn running_progress() -> Result<Vec<(String, Option<f64>)>> {
    Ok(select_rows(
        "SELECT kind, (op ->> 'progress_done')::float8 / nullif((op ->> 'progress_total')::float8, 0)
               FROM autoscale.operations WHERE status = 'running'",
&[],
|r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<f64>(2)?)),
)?)
}

/// How many operations there are by kind and status, for the metrics.
pub fn counts() -> Result<Vec<(String, String, Option<f64>)>> {
    Ok(select_rows(
        "SELECT kind, status, count(*)::float8 FROM autoscale.operations GROUP BY 1, 2 ORDER BY 1, 2",
&[],
|r| Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<f64>(3)?,
            )),
)?)
}

/// Durations in seconds (start to the end of the rebalance) of the last `limit` successful
/// scale-outs, oldest first: what the forecast's lead time is learned from.
pub fn recent_scale_out_secs(limit: i64) -> Result<Vec<f64>> {
    Ok(Spi::connect(|c| {
        let mut v = Vec::new();
        for r in c.select(
            "SELECT extract(epoch FROM finished_at - started_at)::float8 FROM (
                SELECT finished_at, started_at FROM autoscale.operations
                 WHERE kind = 'scale_out' AND status = 'succeeded' AND finished_at IS NOT NULL
                 ORDER BY finished_at DESC LIMIT $1) o
              ORDER BY finished_at",
            None,
            &[limit.into()],
        )? {
            if let Some(d) = r.get::<f64>(1)? {
                v.push(d);
            }
        }
        Ok::<_, pgrx::spi::SpiError>(v)
    })?)
}
