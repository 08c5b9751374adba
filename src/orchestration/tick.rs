//! One cycle of the autoscaler: take the cluster-wide tick lock, sample when due, decide and act
//! (the autopilot), prune history. Used by the background worker and by `autoscale.tick()` (psql,
//! pg_cron) alike, so every driver behaves the same.

use pgrx::prelude::*;

use crate::infra::errors::{AutoscaleError, OrReport};
use serde::Serialize;

use crate::infra::settings::{self, Mode};
use crate::infra::{citus, subxact};
use crate::services::sampler::cluster::{self, SampleSummary};
use crate::store::{events, rollups, samples};

/// Rows deleted per history table per prune call: keeps one tick's work and WAL bounded.
pub const PRUNE_BATCH: i64 = 10_000;

/// Key of the transaction-level advisory lock that serializes deciding and acting (ASCII
/// "autoscal").
pub const TICK_LOCK_KEY: i64 = 0x6175_746f_7363_616c;

/// Key of the transaction-level advisory lock that serializes samples (ASCII "autosamp"): apart
/// from the tick lock, so that a sample never waits for an operation step (in the background
/// worker the sampler is a process of its own, and a step's Citus call to a hung node holds
/// the acting transaction, and its lock, until the node answers).
pub const SAMPLE_LOCK_KEY: i64 = 0x6175_746f_7361_6d70;

/// A sample is due when this fraction of the interval has passed, so a driver that wakes a
/// little early does not skip a whole interval.
const DUE_FRACTION: f64 = 0.9;

#[derive(Debug, Clone, Serialize, Default)]
pub struct TickReport {
    /// Why the tick did nothing, if it did nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<SampleSummary>,
    /// Seconds until the next sample is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_sample_in: Option<f64>,
    pub pruned: i64,
    /// Rollup rows written and pruned by this tick.
    #[serde(skip_serializing_if = "is_zero")]
    pub rollup_rows: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub rollup_pruned: i64,
    #[serde(flatten)]
    pub act: super::autopilot::ActReport,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl TickReport {
    fn skipped(why: impl Into<String>) -> Self {
        TickReport {
            skipped: Some(why.into()),
            ..Default::default()
        }
    }
}

/// Why a tick on this node must not run, if it must not.
pub fn skip_reason() -> Option<String> {
    if settings::mode() == Mode::Off {
        return Some("autoscale.mode is off".into());
    }
    if unsafe { pgrx::pg_sys::RecoveryInProgress() } {
        return Some("this node is in recovery".into());
    }
    if let citus::Role::Worker { groupid } = citus::role() {
        return Some(format!(
            "this node is a Citus worker (group {groupid}); the coordinator samples the cluster"
        ));
    }
    None
}

/// Who is driving a tick started from SQL: pg_cron's jobs run with application_name pg_cron.
/// Read-only (Spi::get_one takes a transaction id, which a node in recovery cannot: tick() on a
/// streaming replica must say it skips, not fail).
pub fn sql_driver() -> &'static str {
    let app = Spi::connect(|c| {
        c.select(
            "SELECT pg_catalog.current_setting('application_name')",
            Some(1),
            &[],
        )?
        .first()
        .get_one::<String>()
    });
    match app {
        Ok(Some(a)) if a == "pg_cron" => "pg_cron",
        _ => "sql",
    }
}

/// Runs one cycle in the caller's transaction: [`sample`], then [`act`]. Errors are PostgreSQL
/// errors (the caller's transaction rolls back).
pub fn run(driver: &str) -> TickReport {
    let mut report = sample(driver);
    if report.skipped.is_none() {
        act(&mut report);
    }
    report
}

/// Takes the cluster-wide tick lock for this transaction; false when another tick holds it.
fn lock() -> bool {
    lock_key(TICK_LOCK_KEY)
}

/// Takes the advisory lock `key` for this transaction; false when another session holds it.
fn lock_key(key: i64) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.pg_try_advisory_xact_lock($1)",
        &[key.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The first half of a cycle: sample the cluster when a sample is due. In the background worker
/// a process of its own (the sampler) does this, in its own transactions, so that an operation
/// step that fails, even at commit (a Citus call whose remote transaction cannot commit on a node
/// that died), or that waits on a hung node, never costs a sample. Takes the sample lock.
pub fn sample(driver: &str) -> TickReport {
    if let Some(why) = skip_reason() {
        return TickReport::skipped(why);
    }
    if !lock_key(SAMPLE_LOCK_KEY) {
        return TickReport::skipped("another sample is being taken");
    }
    let mut report = TickReport::default();
    let interval = settings::sample_interval().as_secs_f64();
    let since = samples::secs_since_last_sample().or_report();
    match since {
        Some(s) if s < interval * DUE_FRACTION => report.next_sample_in = Some(interval - s),
        _ => match cluster::sample(driver) {
            Ok(summary) => report.sample = Some(summary),
            Err(e) => AutoscaleError::Failed(format!("sample failed: {e}")).report(),
        },
    }
    report
}

/// The background worker's cycle: [`act`] on the samples the sampler wrote, unless this node
/// must not run a tick.
pub fn act_only() -> TickReport {
    if let Some(why) = skip_reason() {
        return TickReport::skipped(why);
    }
    let mut report = TickReport::default();
    act(&mut report);
    report
}

/// The second half of a cycle: decide and act (advance the running operation one step, or start
/// one), prune history. Takes the tick lock (again, when in a transaction of its own).
pub fn act(report: &mut TickReport) {
    if !lock() {
        report.skipped = Some("another tick is running".into());
        return;
    }
    // Deciding and acting read names and ids that concurrent DDL may remove before they are used
    // (a table dropped, a shard moved or split, a node removed): such an error skips this pass,
    // recorded as an event, and the rest of the tick (pruning, rollups) goes on. What the pass
    // wrote is rolled back with it; the next tick starts from the catalogs as they are then.
    report.act = match subxact::catch(super::autopilot::run) {
        Ok(r) => r.or_report(),
        Err(message) => {
            events::record(
                "error",
                &format!("deciding and acting skipped this tick: {message}"),
                None,
            )
            .or_report();
            Default::default()
        }
    };
    if let Some(retention) = settings::history_retention() {
        let secs = retention.as_secs_f64();
        report.pruned = samples::prune(secs, PRUNE_BATCH).or_report()
            + events::prune(secs, PRUNE_BATCH).or_report();
    }
    (report.rollup_rows, report.rollup_pruned) = rollups::run(PRUNE_BATCH).or_report();
}
