//! History tables: inserts into autoscale.node_samples, autoscale.worker_count and
//! autoscale.events, the previous counters rates are computed from, and retention.
//! It owns these tables' SQL; it decides nothing.

use std::collections::HashMap;
use std::time::Duration;

use autoscale_core::rates::Counters;
use pgrx::prelude::*;
use pgrx::spi::SpiResult;
use pgrx::JsonB;

use crate::sampler::cluster::SampleRow;

/// Rows deleted per table per prune call: keeps one tick's work and WAL bounded.
pub const PRUNE_BATCH: i64 = 10_000;

/// A new sample id and the sample's timestamp (ISO 8601 text).
pub fn next_sample_id() -> SpiResult<(i64, String)> {
    let (id, at) = Spi::get_two::<i64, String>(
        "SELECT pg_catalog.nextval('autoscale.sample_id_seq'), pg_catalog.to_json(pg_catalog.clock_timestamp()) #>> '{}'",
    )?;
    Ok((id.unwrap_or(0), at.unwrap_or_default()))
}

/// How far back the previous reading of a node is looked for (rates need one): an hour, or three
/// sample intervals when they are longer, so that no sample_interval gives NULL rates.
pub fn rate_lookback_secs() -> f64 {
    (3.0 * crate::settings::sample_interval().as_secs_f64()).max(3600.0)
}

/// The latest reachable reading of each node within [`rate_lookback_secs`], keyed by
/// (nodename, nodeport).
pub fn previous_counters() -> SpiResult<HashMap<(String, i32), Counters>> {
    Spi::connect(|c| {
        let rows = c.select(
            "SELECT DISTINCT ON (nodename, nodeport)
                    nodename, nodeport, node_time, cpu_busy_seconds, cpu_capacity_seconds, xact_commit, xact_rollback,
                    blks_hit, blks_read, stmt_calls, stmt_total_ms
               FROM autoscale.node_samples
              WHERE reachable AND sampled_at > pg_catalog.now() - pg_catalog.make_interval(secs => $1)
              ORDER BY nodename, nodeport, sampled_at DESC",
            None,
            &[rate_lookback_secs().into()],
        )?;
        let mut out = HashMap::new();
        for r in rows {
            let key = (
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<i32>(2)?.unwrap_or_default(),
            );
            out.insert(
                key,
                Counters {
                    at: r.get(3)?.unwrap_or(0.0),
                    cpu_busy_seconds: r.get(4)?.unwrap_or(0.0),
                    cpu_capacity_seconds: r.get(5)?.unwrap_or(0.0),
                    commits: r.get(6)?.unwrap_or(0),
                    rollbacks: r.get(7)?.unwrap_or(0),
                    blocks: r.get::<i64>(8)?.zip(r.get::<i64>(9)?),
                    statements: r.get::<i64>(10)?.zip(r.get::<f64>(11)?),
                },
            );
        }
        Ok(out)
    })
}

/// Writes one sample: its node rows in one statement, and its worker_count row.
pub fn insert_sample(
    rows: &[SampleRow],
    workers: usize,
    unreachable: usize,
    inactive: usize,
    driver: &str,
) -> SpiResult<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let json = serde_json::to_value(rows).expect("sample rows serialize");
    Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO autoscale.node_samples
             SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::autoscale.node_samples, $1)",
            None,
            &[JsonB(json).into()],
        )?;
        c.update(
            "INSERT INTO autoscale.worker_count
                 (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers, inactive_workers, driver)
             VALUES ($1::timestamptz, $2, $3, $4, $5, $6, $7)",
            None,
            &[
                first.sampled_at.clone().into(),
                first.sample_id.into(),
                (workers as i32).into(),
                ((workers - unreachable.min(workers)) as i32).into(),
                (unreachable as i32).into(),
                (inactive as i32).into(),
                driver.into(),
            ],
        )?;
        Ok(())
    })
}

/// Seconds since the last sample, or `None` if there is none.
pub fn secs_since_last_sample() -> SpiResult<Option<f64>> {
    Spi::get_one::<f64>(
        "SELECT extract(epoch FROM pg_catalog.clock_timestamp() - max(sampled_at))::float8 FROM autoscale.worker_count",
    )
}

/// Appends an event.
pub fn record_event(kind: &str, message: &str, detail: Option<serde_json::Value>) -> SpiResult<()> {
    Spi::run_with_args(
        "INSERT INTO autoscale.events (kind, message, detail) VALUES ($1, $2, $3)",
        &[kind.into(), message.into(), detail.map(JsonB).into()],
    )
}

/// Deletes at most [`PRUNE_BATCH`] rows per history table older than `retention`; returns how many.
pub fn prune(retention: Duration) -> SpiResult<i64> {
    let secs = retention.as_secs_f64();
    let mut total = 0;
    for (table, column) in [
        ("autoscale.node_samples", "sampled_at"),
        ("autoscale.worker_count", "sampled_at"),
        ("autoscale.events", "at"),
        ("autoscale.metric_samples", "sampled_at"),
    ] {
        // table and column are the constants above, never user input
        let sql = format!(
            "WITH gone AS (
                DELETE FROM {table}
                 WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table}
                                          WHERE {column} < pg_catalog.now() - pg_catalog.make_interval(secs => $1)
                                          LIMIT $2))
                RETURNING 1)
             SELECT count(*) FROM gone"
        );
        let n = Spi::connect_mut(|c| {
            c.update(sql.as_str(), None, &[secs.into(), PRUNE_BATCH.into()])?
                .first()
                .get_one::<i64>()
        })?
        .unwrap_or(0);
        total += n;
    }
    Ok(total)
}
