//! The background workers. The worker wakes every `autoscale.sample_interval`, decides and acts
//! (one tick without its sample) in its own transaction, and keeps going whatever a tick does. A
//! failed tick is rolled back and recorded as an `error` event in a fresh transaction. The
//! sampler, a process of its own, takes the samples, so that no operation step (a Citus call that
//! waits on a hung node) can stop the sampling. Both reload settings on SIGHUP and idle when
//! `autoscale.mode = off`, before the extension exists and on nodes that are not the coordinator.
//!
//! They are started by a launcher, registered at `shared_preload_libraries` time, that connects to
//! no database: it waits quietly (one log line) until `autoscale.database_name` exists, then
//! starts both in it as dynamic background workers, and starts each again should it exit. A worker
//! that connected to a database that does not exist would fail at every start instead.

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::infra::errors::OrReport;
use crate::infra::{activity, settings, subxact, versions};
use crate::orchestration::tick;
use crate::services::provision;
use crate::store::events;

/// Registers the launcher; call from `_PG_init` only while shared_preload_libraries is processed.
pub fn register() {
    BackgroundWorkerBuilder::new("citus_autoscale launcher")
        .set_type("citus_autoscale launcher")
        .set_function("citus_autoscale_launcher_main")
        .set_library("citus_autoscale")
        .enable_spi_access()
        // pgrx's default is never to restart; a crash must not end autoscaling for good
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

/// How often the launcher looks for the database, and for its worker.
const LAUNCHER_POLL: Duration = Duration::from_secs(1);
/// A worker that exits within this long of its start is started again only after it.
const RELAUNCH_BACKOFF: Duration = Duration::from_secs(5);

/// Whether database `name` exists: a heap scan of the shared catalog pg_database, as the
/// autovacuum launcher reads it. A process connected to no database may read a shared catalog,
/// but not through its indexes (their relcache entries need pg_class), so no `get_database_oid`.
fn database_exists(name: &str) -> bool {
    BackgroundWorker::transaction(|| unsafe {
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as i32);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        let mut found = false;
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
            let datname = std::ffi::CStr::from_ptr((*form).datname.data.as_ptr());
            if datname.to_bytes() == name.as_bytes() {
                found = true;
                break;
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
        found
    })
}

/// The dynamic background workers the launcher keeps running in the database: the worker, which
/// decides and acts, and the sampler (their `bgw_type` and entry point).
const WORKERS: [(&str, &str); 2] = [
    ("citus_autoscale", "citus_autoscale_worker_main"),
    ("citus_autoscale sampler", "citus_autoscale_sampler_main"),
];

/// One of [`WORKERS`] as the launcher tracks it.
#[derive(Default)]
struct Slot {
    running: Option<(pgrx::bgworkers::DynamicBackgroundWorker, std::time::Instant)>,
    not_before: Option<std::time::Instant>,
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn citus_autoscale_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(None, None);
    let dbname = settings::database_name();
    let mut slots: [Slot; 2] = Default::default();
    let mut said_waiting = false;
    while BackgroundWorker::wait_latch(Some(LAUNCHER_POLL)) {
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        // which workers exited: each is started again, at once unless it lived only briefly
        for slot in slots.iter_mut() {
            if let Some((w, started)) = &slot.running {
                match w.pid() {
                    Ok(_) | Err(pgrx::bgworkers::BackgroundWorkerStatus::NotYetStarted) => {}
                    Err(_) => {
                        if started.elapsed() < RELAUNCH_BACKOFF {
                            slot.not_before = Some(std::time::Instant::now() + RELAUNCH_BACKOFF);
                        }
                        slot.running = None;
                    }
                }
            }
        }
        let now = std::time::Instant::now();
        let due: Vec<usize> = (0..slots.len())
            .filter(|&i| slots[i].running.is_none() && slots[i].not_before.is_none_or(|t| now >= t))
            .collect();
        if due.is_empty() {
            continue;
        }
        if !database_exists(&dbname) {
            if !said_waiting {
                log!(
                    "citus_autoscale: database \"{dbname}\" (autoscale.database_name) does not exist; \
                     waiting for it to be created"
                );
                said_waiting = true;
            }
            continue;
        }
        said_waiting = false;
        for i in due {
            let (kind, function) = WORKERS[i];
            let launched = BackgroundWorkerBuilder::new(&format!("{kind} worker"))
                .set_type(kind)
                .set_function(function)
                .set_library("citus_autoscale")
                .enable_spi_access()
                .set_restart_time(None)
                .set_notify_pid(unsafe { pg_sys::MyProcPid })
                .load_dynamic();
            match launched {
                Ok(w) => {
                    slots[i].running = Some((w, std::time::Instant::now()));
                    slots[i].not_before = None;
                }
                Err(_) => {
                    // no free background worker slot (max_worker_processes): try again later
                    warning!(
                        "citus_autoscale: could not start the {kind} process (no free slot; raise max_worker_processes)"
                    );
                    slots[i].not_before = Some(std::time::Instant::now() + RELAUNCH_BACKOFF);
                }
            }
        }
    }
    for slot in slots {
        if let Some((w, _)) = slot.running {
            // shutting down: the postmaster stops the workers too; do not leave them registered
            let _ = w.terminate();
        }
    }
}

fn extension_ready() -> bool {
    Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus_autoscale')",
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// Runs `f` in its own transaction. A PostgreSQL error inside, or at commit (Citus commits its
/// remote transactions then, and a node may have died since), rolls the transaction back and is
/// returned as its message instead of ending the process.
fn in_transaction<R>(f: impl FnOnce() -> R + std::panic::UnwindSafe) -> Result<R, String> {
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(|| Ok(f()))
        .catch_others(|e| {
            Err(match e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r)
                | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => {
                    r.message().to_string()
                }
            })
        })
        .execute();
    unsafe {
        match result {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                let committed = PgTryBuilder::new(|| {
                    pg_sys::CommitTransactionCommand();
                    Ok(())
                })
                .catch_others(|e| Err(subxact::message(&e)))
                .execute();
                if let Err(message) = committed {
                    pg_sys::AbortCurrentTransaction();
                    return Err(format!("commit failed: {message}"));
                }
                // a background worker reports its own statistics, or its commits are never counted
                pg_sys::pgstat_report_stat(false);
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    result
}

/// Connects a background process of ours to `autoscale.database_name` under `application_name`,
/// with SIGHUP and SIGTERM handled; returns the database's name. The processes run as a superuser:
/// nothing from the database's default search_path (which its owner may set) may ever be called,
/// so search_path is pinned (PGC_S_OVERRIDE: a reload cannot change it).
fn attach(application_name: &std::ffi::CStr) -> String {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let dbname = settings::database_name();
    BackgroundWorker::connect_worker_to_spi(Some(&dbname), None);
    unsafe {
        pg_sys::SetConfigOption(
            c"application_name".as_ptr(),
            application_name.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
        pg_sys::pgstat_report_appname(application_name.as_ptr());
        pg_sys::SetConfigOption(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        );
    }
    dbname
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn citus_autoscale_worker_main(_arg: pg_sys::Datum) {
    let dbname = attach(c"citus_autoscale");
    log!("citus_autoscale worker started in database \"{dbname}\"");

    let mut timeout = Duration::ZERO;
    while BackgroundWorker::wait_latch(Some(timeout)) {
        if BackgroundWorker::sighup_received() {
            // pgrx only sets a flag; re-reading the configuration is our job
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        timeout = settings::sample_interval();
        if settings::mode() == settings::Mode::Off {
            continue;
        }
        if !settings::worker_enabled() {
            // webhooks go out from here even when pg_cron drives the tick
            deliver_webhooks();
            continue;
        }
        activity::report("tick");
        // deciding and acting, on the samples the sampler process wrote; an operation step that
        // fails, even at commit, fails only this transaction, and one that waits on a hung node
        // holds this process only, never the sampling
        let outcome = in_transaction(|| {
            let ready = extension_ready();
            note_extension(ready, &dbname);
            if !ready {
                return None;
            }
            log_version_support();
            Some(tick::act_only())
        });
        if let Err(message) = outcome {
            record_failure("tick", &message);
        }
        deliver_webhooks();
        activity::report("idle");
    }
    log!("citus_autoscale worker stopping");
}

/// The sampler: takes a sample every `autoscale.sample_interval` in a transaction of its own,
/// apart from the worker that decides and acts, so that no operation step can stop the
/// sampling. It keeps its connections to the nodes from sample to sample (`infra::fanout`).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn citus_autoscale_sampler_main(_arg: pg_sys::Datum) {
    attach(c"citus_autoscale sampler");
    let mut timeout = Duration::ZERO;
    while BackgroundWorker::wait_latch(Some(timeout)) {
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        timeout = settings::sample_interval();
        if settings::mode() == settings::Mode::Off || !settings::worker_enabled() {
            continue;
        }
        activity::report("sample");
        let outcome = in_transaction(|| extension_ready().then(|| tick::sample("worker")));
        match outcome {
            Ok(Some(report)) => {
                if let Some(s) = report.next_sample_in {
                    // wake when the next sample is due rather than a full interval later
                    timeout = Duration::from_secs_f64(s.clamp(0.05, timeout.as_secs_f64()));
                }
            }
            Ok(None) => {}
            Err(message) => record_failure("sample", &message),
        }
        activity::report("idle");
    }
}

/// Logs a failed `what` (tick, sample), rolled back by now, and records it as an `error` event
/// ("tick failed: ...") in a fresh transaction.
fn record_failure(what: &str, message: &str) {
    warning!("citus_autoscale: {what} failed: {message}");
    let recorded = in_transaction(|| {
        if extension_ready() {
            // a failure here is reported below, with the transaction's error
            events::record("error", &format!("{what} failed: {message}"), None).or_report();
        }
    });
    if let Err(e) = recorded {
        warning!("citus_autoscale: could not record the failed {what}: {e}");
    }
}

/// Says once in the server log that the extension is not created in the worker's database yet
/// (and once more each time it is found missing again after it existed).
fn note_extension(ready: bool, dbname: &str) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if ready {
        SAID.store(false, std::sync::atomic::Ordering::Relaxed);
    } else if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        log!(
            "citus_autoscale: the extension is not created in database \"{dbname}\"; waiting \
             (CREATE EXTENSION citus_autoscale there)"
        );
    }
}

/// Says in the server log, once per pair, on which PostgreSQL / Citus pair the worker runs; a
/// WARNING when this release does not support it (autoscale then starts no operation).
fn log_version_support() {
    // the pair last judged in the log (logged again when it changes: ALTER EXTENSION citus UPDATE)
    static LOGGED: std::sync::Mutex<Option<(u32, Option<String>)>> = std::sync::Mutex::new(None);
    let pair = versions::current();
    let key = (pair.postgres_major, pair.citus.clone());
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if logged.as_ref() == Some(&key) {
        return;
    }
    let a = pair.assess();
    if a.may_act() {
        log!("citus_autoscale: {}", a.note);
    } else {
        warning!("citus_autoscale: {}", a.note);
    }
    *logged = Some(key);
}

/// Delivers due webhooks outside any tick's transaction: claim (commit), POST (no transaction),
/// record (commit). See crate::services::provision.
fn deliver_webhooks() {
    let Some(url) = settings::webhook_url() else {
        return;
    };
    activity::report("webhook");
    let due = in_transaction(|| {
        if extension_ready() {
            provision::claim_due().unwrap_or_else(|e| {
                warning!("citus_autoscale: claiming webhooks: {e}");
                Vec::new()
            })
        } else {
            Vec::new()
        }
    })
    .unwrap_or_else(|e| {
        warning!("citus_autoscale: claiming webhooks failed: {e}");
        Vec::new()
    });
    if due.is_empty() {
        return;
    }
    let results: Vec<(provision::Due, Result<(), String>)> = due
        .into_iter()
        .map(|d| {
            let r = provision::post(&url, &d);
            (d, r)
        })
        .collect();
    let recorded = in_transaction(move || {
        for (d, r) in &results {
            provision::record_result(d, r).or_report();
        }
    });
    if let Err(e) = recorded {
        warning!("citus_autoscale: recording webhook results failed: {e}");
    }
}
