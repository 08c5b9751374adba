//! Every `autoscale.*` setting: one private static each, registered in [`init`], read through
//! typed getters. Nothing else in the crate touches a `GucSetting`.

use std::ffi::CStr;
use std::time::Duration;

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

/// What the extension is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PostgresGucEnum)]
pub enum Mode {
    /// The background worker idles; `autoscale.tick()` does nothing.
    #[name = c"off"]
    Off,
    /// Sample, record and decide, but only record what would be done.
    #[name = c"observe"]
    Observe,
    /// Sample, decide and act on the cluster.
    #[name = c"act"]
    Act,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Observe => "observe",
            Mode::Act => "act",
        }
    }
}

/// off | observe | act.
static MODE: GucSetting<Mode> = GucSetting::<Mode>::new(Mode::Observe);
/// Whether the background worker ticks (off: drive autoscale.tick() from pg_cron instead).
static WORKER_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Database the background worker connects to.
static DATABASE_NAME: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(Some(c"postgres"));
/// Milliseconds between two samples.
static SAMPLE_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(5_000);
/// Milliseconds a node gets to answer a sample.
static NODE_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(2_000);
/// Seconds of history kept; -1 keeps everything.
static HISTORY_RETENTION_S: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);

pub const SAMPLE_INTERVAL_MIN_MS: i32 = 100;
pub const SAMPLE_INTERVAL_MAX_MS: i32 = 3_600_000;

pub fn init() {
    GucRegistry::define_enum_guc(
        c"autoscale.mode",
        c"What citus_autoscale may do: off, observe or act.",
        c"off: the background worker idles and autoscale.tick() does nothing. observe: sample, record and decide, \
          but only record what would be done. act: also act on the cluster.",
        &MODE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"autoscale.worker_enabled",
        c"Whether the background worker runs the autoscaler's tick.",
        c"Turn off to drive autoscale.tick() from pg_cron or another scheduler instead; the worker then idles.",
        &WORKER_ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"autoscale.database_name",
        c"Database the citus_autoscale background worker connects to.",
        c"The database where CREATE EXTENSION citus_autoscale was run on the coordinator. Needs a restart.",
        &DATABASE_NAME,
        GucContext::Postmaster,
        GucFlags::SUPERUSER_ONLY,
    );
    GucRegistry::define_int_guc(
        c"autoscale.sample_interval",
        c"Time between two samples of the cluster's load.",
        c"The background worker ticks at this interval; autoscale.tick() samples only when this much time has \
          passed since the last sample.",
        &SAMPLE_INTERVAL_MS,
        SAMPLE_INTERVAL_MIN_MS,
        SAMPLE_INTERVAL_MAX_MS,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"autoscale.node_timeout",
        c"Time a node gets to answer a sample before it is recorded as unreachable.",
        c"Used as citus.node_connection_timeout for the sampling fan-out.",
        &NODE_TIMEOUT_MS,
        100,
        600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"autoscale.history_retention",
        c"How long samples and events are kept; -1 keeps them forever.",
        c"Older rows of autoscale.node_samples, autoscale.worker_count and autoscale.events are deleted in \
          batches by every tick. -1 disables pruning.",
        &HISTORY_RETENTION_S,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    // A typo such as `autoscale.sample_intreval` in postgresql.conf then warns instead of being ignored.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"autoscale".as_ptr()) };
}

pub fn mode() -> Mode {
    MODE.get()
}

pub fn worker_enabled() -> bool {
    WORKER_ENABLED.get()
}

pub fn database_name() -> String {
    DATABASE_NAME
        .get()
        .as_deref()
        .map(CStr::to_string_lossy)
        .map(|s| s.into_owned())
        .unwrap_or_else(|| "postgres".to_string())
}

pub fn sample_interval() -> Duration {
    Duration::from_millis(SAMPLE_INTERVAL_MS.get().max(SAMPLE_INTERVAL_MIN_MS) as u64)
}

pub fn node_timeout() -> Duration {
    Duration::from_millis(NODE_TIMEOUT_MS.get().max(1) as u64)
}

/// `None` when pruning is disabled (-1).
pub fn history_retention() -> Option<Duration> {
    let s = HISTORY_RETENTION_S.get();
    (s >= 0).then(|| Duration::from_secs(s as u64))
}
