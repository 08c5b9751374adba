//! Every `autoscale.*` setting: one private static each, registered in [`init`], read through
//! typed getters. Nothing else in the crate touches a `GucSetting`.

use std::ffi::CStr;
use std::time::Duration;

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

pub use autoscale_core::operations::Mode;

/// The GUC's values of `autoscale.mode` ([`Mode`], which the getter returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PostgresGucEnum)]
enum ModeGuc {
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

/// off | observe | act.
static MODE: GucSetting<ModeGuc> = GucSetting::<ModeGuc>::new(ModeGuc::Observe);
/// Whether the background worker ticks (off: drive autoscale.tick() from pg_cron instead).
static WORKER_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Database the background worker connects to.
static DATABASE_NAME: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(Some(c"postgres"));
/// Milliseconds between two samples.
static SAMPLE_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(5_000);
/// Milliseconds a node gets to answer a sample.
static NODE_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(2_000);
/// Seconds a node keeps its measured sizes (database, shard placements) before measuring again.
static SIZE_REFRESH_S: GucSetting<i32> = GucSetting::<i32>::new(60);
/// Seconds of history kept; -1 keeps everything.
static HISTORY_RETENTION_S: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);

/// citus_rebalance_start's rebalance_strategy; empty = autoscale_by_load.
static REBALANCE_STRATEGY: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(None);
/// Seconds over which shard-group load rates are smoothed.
static LOAD_WINDOW_S: GucSetting<i32> = GucSetting::<i32>::new(60);
/// The busiest worker's load over the mean above which the load is skewed; 0 disables.
static LOAD_SKEW_RATIO: GucSetting<f64> = GucSetting::<f64>::new(1.5);
/// Seconds the load must stay skewed before a rebalance by load.
static LOAD_SKEW_FOR_S: GucSetting<i32> = GucSetting::<i32>::new(120);
/// Whether a hot tenant is isolated to a shard of its own and moved (opt-in).
static ISOLATE_HOT_TENANTS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// The least share of the busiest worker's tenant load that makes a tenant hot.
static HOT_TENANT_SHARE: GucSetting<f64> = GucSetting::<f64>::new(0.3);
/// Shard groups per node whose load history is kept at each sample.
static LOAD_HISTORY_TOP_N: GucSetting<i32> = GucSetting::<i32>::new(5);
/// Shard transfer mode of the rebalances autoscale starts.
static SHARD_TRANSFER_MODE: GucSetting<TransferMode> =
    GucSetting::<TransferMode>::new(TransferMode::Auto);
/// Seconds to wait after the active worker set changed before rebalancing.
static REBALANCE_SETTLE_S: GucSetting<i32> = GucSetting::<i32>::new(5);
/// Seconds between skew-triggered rebalances; -1 disables them.
static REBALANCE_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(3600);
/// Seconds to wait after a failed or cancelled operation before starting another rebalance.
static FAILURE_BACKOFF_S: GucSetting<i32> = GucSetting::<i32>::new(600);
/// Operations started per hour, at most; 0 = no limit.
static MAX_OPERATIONS_PER_HOUR: GucSetting<i32> = GucSetting::<i32>::new(12);
/// Seconds a provision request waits for a node; -1 = forever.
static PROVISION_TIMEOUT_S: GucSetting<i32> = GucSetting::<i32>::new(900);
/// Seconds a rebalance job may stay scheduled without starting; -1 = forever.
static JOB_TIMEOUT_S: GucSetting<i32> = GucSetting::<i32>::new(600);
/// Seconds a worker must stay unreachable before it is declared dead; -1 = never.
static DEAD_NODE_AFTER_S: GucSetting<i32> = GucSetting::<i32>::new(120);
/// Longest time one operation step's Citus calls may take (ms).
static STEP_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(60_000);

static SPLIT_OUT: GucSetting<bool> = GucSetting::<bool>::new(true);

static CLONE_MAX_LAG_KB: GucSetting<i32> = GucSetting::<i32>::new(16 * 1024);

static CLONE_CATCHUP_TIMEOUT_S: GucSetting<i32> = GucSetting::<i32>::new(30);

static PARALLEL_TRANSFER_COLOCATED_SHARDS: GucSetting<bool> = GucSetting::<bool>::new(false);

static PARALLEL_TRANSFER_REFERENCE_TABLES: GucSetting<bool> = GucSetting::<bool>::new(false);
/// URL that provision and deprovision requests are POSTed to; empty = none.
static WEBHOOK_URL: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(None);
/// Role that custom metric SQL runs as (must not be a superuser); empty = custom metrics refused.
static CUSTOM_SQL_ROLE: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(None);
/// Maintenance window ("02:00-04:00", "sat,sun 00:00-06:00", UTC); empty = always.
static MAINTENANCE_WINDOW: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(None);
/// Test builds only (cargo feature `failpoints`): operation steps to hold before their action.
#[cfg(feature = "failpoints")]
static TEST_HOLD_AT_STEPS: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(None);
/// Test builds only: milliseconds `autoscale.node_stats()` waits before it reads this node.
#[cfg(feature = "failpoints")]
static TEST_NODE_STATS_DELAY_MS: GucSetting<i32> = GucSetting::<i32>::new(0);

/// Seconds a forecast looks ahead; -1 learns it from the recorded scale-outs.
static FORECAST_LEAD_TIME_S: GucSetting<i32> = GucSetting::<i32>::new(-1);
/// Seconds of history a predictive policy's forecast searches for a cycle of any period; 0: none.
static FORECAST_CYCLE_WINDOW_S: GucSetting<i32> =
    GucSetting::<i32>::new(autoscale_core::forecast::DEFAULT_CYCLE_WINDOW as i32);
/// The shortest period (seconds) a forecast's cycle may have.
static FORECAST_CYCLE_MIN_S: GucSetting<i32> = GucSetting::<i32>::new(600);
/// Seconds the 1-minute rollups are kept; -1 keeps them forever.
static ROLLUP_MINUTE_RETENTION_S: GucSetting<i32> = GucSetting::<i32>::new(30 * 24 * 3600);
/// Seconds the 1-hour rollups are kept; -1 keeps them forever.
static ROLLUP_HOUR_RETENTION_S: GucSetting<i32> = GucSetting::<i32>::new(2 * 365 * 24 * 3600);
/// What happens to the coordinator's shards once workers exist (a scale-out from a single node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PostgresGucEnum)]
pub enum CoordinatorShards {
    /// The coordinator stays a data node and keeps its share after the rebalance.
    #[name = c"keep"]
    Keep,
    /// A scale-out sets its shouldhaveshards = false, so its rebalance moves every shard to the
    /// workers; a scale-in to zero workers sets it back to true first.
    #[name = c"shed"]
    Shed,
}

/// keep | shed.
static COORDINATOR_SHARDS: GucSetting<CoordinatorShards> =
    GucSetting::<CoordinatorShards>::new(CoordinatorShards::Keep);

/// citus.shard_transfer_mode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PostgresGucEnum)]
pub enum TransferMode {
    #[name = c"auto"]
    Auto,
    #[name = c"force_logical"]
    ForceLogical,
    #[name = c"block_writes"]
    BlockWrites,
}

impl TransferMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Auto => "auto",
            TransferMode::ForceLogical => "force_logical",
            TransferMode::BlockWrites => "block_writes",
        }
    }
}

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
        c"The connect timeout of the sampling fan-out (a node that connected gets 2 x node_timeout + 1 s in all to answer), \
          and citus.node_connection_timeout for the Citus calls of operation steps.",
        &NODE_TIMEOUT_MS,
        100,
        600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"autoscale.size_refresh_interval",
        c"How long a node reuses its measured sizes (database size, shard placement bytes) in node_stats().",
        c"pg_database_size() and pg_total_relation_size() stat every file; a session that answers every sample \
          (the background worker's own connection to each node) measures them again only when they are older \
          than this. A fresh session always measures. Read on each node; 0 measures on every call.",
        &SIZE_REFRESH_S,
        0,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
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
    GucRegistry::define_string_guc(
        c"autoscale.rebalance_strategy",
        c"Rebalance strategy of the rebalances autoscale starts (empty: autoscale_by_load).",
        c"A name from pg_dist_rebalance_strategy, e.g. by_shard_count or by_disk_size. autoscale_by_load balances the \
          measured load of the shard groups; the load-skew trigger runs only with it.",
        &REBALANCE_STRATEGY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"autoscale.shard_transfer_mode",
        c"Shard transfer mode of the rebalances autoscale starts: auto, force_logical or block_writes.",
        c"auto needs a primary key or replica identity on every table; block_writes blocks writes to a shard while it moves.",
        &SHARD_TRANSFER_MODE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"autoscale.load_window",
        c"Time over which the load of each shard group is smoothed.",
        c"Rates of scans and rows read and written per shard group are blended into a moving average with this \
          time constant at every sample.",
        &LOAD_WINDOW_S,
        0,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_float_guc(
        c"autoscale.load_skew_ratio",
        c"Busiest worker's load over the mean load above which a rebalance by load is considered; 0 disables.",
        c"The load must stay above it for autoscale.load_skew_for, and the plan of the autoscale_by_load strategy \
          must lower the busiest worker's load. Limited by autoscale.rebalance_interval like other skew rebalances.",
        &LOAD_SKEW_RATIO,
        0.0,
        1000.0,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"autoscale.isolate_hot_tenants",
        c"Isolates a hot tenant to a shard of its own and moves it to the least-loaded worker (off by default).",
        c"While the load is skewed (autoscale.load_skew_ratio for autoscale.load_skew_for), a tenant Citus tracks \
          (citus.stat_tenants_track = 'all' on the workers) that carries at least autoscale.hot_tenant_share of the \
          busiest worker's tenant load and has no shard of its own gets one (isolate_tenant_to_new_shard, CASCADE), \
          which then moves to the least-loaded worker (block_writes), when that lowers the busiest worker's load by \
          10%. Limited by autoscale.rebalance_interval and the guards like a rebalance.",
        &ISOLATE_HOT_TENANTS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"autoscale.hot_tenant_share",
        c"Least share of the busiest worker's tenant load that makes a tenant hot (0.01 to 1).",
        c"Shares are of the queries/s of the tenants Citus tracks on that worker (autoscale.hot_tenants.node_share).",
        &HOT_TENANT_SHARE,
        0.01,
        1.0,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"autoscale.load_skew_for",
        c"Time the load must stay skewed before a rebalance by load starts.",
        c"Every sample over this time must have the busiest worker above autoscale.load_skew_ratio x the mean.",
        &LOAD_SKEW_FOR_S,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"autoscale.load_history_top_n",
        c"Busiest shard groups per node whose load is kept in autoscale.shard_group_load_history at each sample.",
        c"The latest load of every shard group is kept in place in autoscale.shard_group_load; history only for \
          these (and only while they carry load: an idle group is not kept), so storage does not grow with the \
          number of shards. 0 keeps no history.",
        &LOAD_HISTORY_TOP_N,
        0,
        10_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"autoscale.rebalance_settle",
        c"Time to wait after workers joined before rebalancing onto them.",
        c"Lets several nodes that join together be rebalanced once.",
        &REBALANCE_SETTLE_S,
        0,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"autoscale.rebalance_interval",
        c"Least time between two rebalances started because data is skewed; -1 disables them.",
        c"Skew is what get_rebalance_table_shards_plan() would move. Rebalances after workers join are not limited by this.",
        &REBALANCE_INTERVAL_S,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"autoscale.failure_backoff",
        c"Time to wait after a failed or cancelled operation before autoscale starts another.",
        c"Keeps a failing rebalance from being retried in a storm.",
        &FAILURE_BACKOFF_S,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"autoscale.max_operations_per_hour",
        c"Most operations autoscale starts in an hour; 0 = no limit.",
        c"A rate limit on rebalances, scale-outs and scale-ins together, manual calls included.",
        &MAX_OPERATIONS_PER_HOUR,
        0,
        10_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"autoscale.provision_timeout",
        c"Time a provision request waits for a node before the scale-out fails; -1 waits forever.",
        c"",
        &PROVISION_TIMEOUT_S,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"autoscale.job_timeout",
        c"Time a Citus rebalance job may stay scheduled without starting before the operation gives up; -1 = forever.",
        c"",
        &JOB_TIMEOUT_S,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"autoscale.split_out",
        c"A scale-out of one node prefers a ready warm clone of the busiest worker (Citus 13.2 snapshot split).",
        c"The clone (autoscale.add_standby_clone) is registered with citus_add_clone_node, promoted and given part \
          of its primary's shards by citus_promote_clone_and_rebalance. Off: scale-outs always add an empty node \
          and move shards by logical replication.",
        &SPLIT_OUT,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"autoscale.clone_max_lag",
        c"Most WAL replay lag a warm clone may have and still be used for a split.",
        c"Measured each sample as the primary's current WAL position minus the clone's replay position.",
        &CLONE_MAX_LAG_KB,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"autoscale.clone_catchup_timeout",
        c"catchup_timeout_seconds of citus_promote_clone_and_rebalance: how long writes to the primary's shards \
          wait for the clone to catch up before the split gives up and the scale-out falls back.",
        c"",
        &CLONE_CATCHUP_TIMEOUT_S,
        1,
        3600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"autoscale.parallel_transfer_colocated_shards",
        c"citus_rebalance_start(parallel_transfer_colocated_shards): move the shards of a colocation group in parallel.",
        c"Citus 13.2. Used by every rebalance autoscale starts (the ordinary scale-out and the drain of a scale-in).",
        &PARALLEL_TRANSFER_COLOCATED_SHARDS,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"autoscale.parallel_transfer_reference_tables",
        c"citus_rebalance_start(parallel_transfer_reference_tables): copy reference tables in parallel with the moves.",
        c"Citus 13.2. Used by every rebalance autoscale starts.",
        &PARALLEL_TRANSFER_REFERENCE_TABLES,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"autoscale.step_timeout",
        c"Longest time one operation step may wait on Citus (a node that hangs); then the step fails and is retried.",
        c"A statement timeout around the step's Citus calls, so that a hung or partitioned node holds the \
          background worker, and with it the sampling of the other nodes, for at most this long per tick.",
        &STEP_TIMEOUT_MS,
        1_000,
        3_600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    // SAFETY: the check hook is #[pg_guard]ed and never panics.
    unsafe {
        GucRegistry::define_int_guc_with_hooks(
            c"autoscale.dead_node_after",
            c"Time a worker must stay unreachable (every sample failing) before it is declared dead; -1 = never.",
            c"A dead worker gets one dead_node event and a row in autoscale.dead_nodes. When every shard placement \
              on it has a healthy copy elsewhere, a replace_dead operation disables it, adds a standby (or asks \
              the provisioner), copies the shards back to their replication factor and removes it; when it holds \
              a sole copy nothing is disabled or removed and the operator decides. -1 or at least 10 s. -1 also turns \
              automatic replacement off: a worker declared dead earlier stays listed as dead but no new \
              replace_dead starts for it (one already running goes on; cancel_operation stops it).",
            &DEAD_NODE_AFTER_S,
            -1,
            autoscale_core::operations::dead::DEAD_NODE_AFTER_MAX_S,
            GucContext::Suset,
            GucFlags::UNIT_S,
            Some(check_dead_node_after),
            None,
            None,
        );
    }
    // SAFETY: the check hooks are #[pg_guard]ed and never panic.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"autoscale.webhook_url",
            c"URL that provision and deprovision requests are POSTed to as json (empty: none).",
            c"Superuser only; an http:// or https:// URL with a host (checked when set). The background worker \
              POSTs each request outside any tick's transaction, with a short timeout, a few times, across ticks.",
            &WEBHOOK_URL,
            GucContext::Suset,
            GucFlags::SUPERUSER_ONLY,
            Some(check_webhook_url),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"autoscale.maintenance_window",
            c"When autoscale may change the cluster, in UTC: e.g. '02:00-04:00' or 'sat,sun 00:00-06:00' (empty: always).",
            c"Checked when set. Outside the window decisions are recorded but no operation starts or advances a step \
              that changes the cluster (restoring shouldhaveshards after a failed scale-in always runs).",
            &MAINTENANCE_WINDOW,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_maintenance_window),
            None,
            None,
        );
    }
    // SAFETY: the check hook is #[pg_guard]ed and never panics.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
        c"autoscale.custom_sql_role",
        c"Role that custom metric SQL (set_policy(custom_sql => ...)) runs as; it must not be a superuser.",
        c"Custom SQL runs as this role, with search_path = pg_catalog, pg_temp, read-only, under a statement timeout, \
          as a security-restricted operation. Empty: custom metrics are refused.",
        &CUSTOM_SQL_ROLE,
        GucContext::Suset,
        GucFlags::default(),
        Some(check_custom_sql_role),
        None,
        None,
    )
    };
    GucRegistry::define_enum_guc(
        c"autoscale.coordinator_shards",
        c"What a coordinator that holds shards does once workers exist: keep (stays a data node) or shed.",
        c"keep: the rebalance after a scale-out leaves the coordinator its share. shed: the scale-out sets the \
          coordinator's shouldhaveshards = false before its rebalance, which moves all of its shards to the workers; \
          a scale-in back to zero workers sets it to true again first.",
        &COORDINATOR_SHARDS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"autoscale.forecast_lead_time",
        c"How far ahead predictive policies look; -1 learns it from this cluster's scale-outs.",
        c"-1: the p90 of the durations (start to the end of the rebalance) of the last 20 scale-outs that succeeded, \
          5 minutes before the first one. A value overrides what was learned.",
        &FORECAST_LEAD_TIME_S,
        -1,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"autoscale.forecast_cycle_window",
        c"History a predictive policy's forecast searches for a recurring cycle of any period; 0 searches none.",
        c"The 1-minute rollups and the recent samples of this window are searched once per forecast for the period \
          the load repeats at (every two hours, daily, ...). The cycle found is used only while its one-step \
          forecasts beat the forecast without it on the recent history it was not found on; explain() says \
          which applies. At most 4400 forecast buckets (3 days at a 5 s sample interval) are searched.",
        &FORECAST_CYCLE_WINDOW_S,
        0,
        3 * 24 * 3600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"autoscale.forecast_cycle_min",
        c"The shortest period a forecast's cycle may have.",
        c"A cycle is found only when the searched history holds at least two of its periods.",
        &FORECAST_CYCLE_MIN_S,
        60,
        24 * 3600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"autoscale.rollup_minute_retention",
        c"How long the 1-minute rollups of node samples are kept; -1 keeps them forever.",
        c"autoscale.node_samples_1min: avg, max and p95 of every metric per node and per minute.",
        &ROLLUP_MINUTE_RETENTION_S,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"autoscale.rollup_hour_retention",
        c"How long the 1-hour rollups of node samples are kept; -1 keeps them forever.",
        c"autoscale.node_samples_1hour: avg, max and p95 of every metric per node and per hour.",
        &ROLLUP_HOUR_RETENTION_S,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    #[cfg(feature = "failpoints")]
    GucRegistry::define_string_guc(
        c"autoscale.test_hold_at_steps",
        c"Test builds only: operation steps (comma-separated) at which a running operation holds.",
        c"A failpoint for the real-cluster scenarios: an operation that reaches one of these steps stays there, \
          its action not performed, until the step is taken out of the list. step@n holds it only once its \
          progress counter is n (e.g. copy_placements@2: after two copies). Compiled in only with the cargo \
          feature failpoints.",
        &TEST_HOLD_AT_STEPS,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY,
    );
    #[cfg(feature = "failpoints")]
    GucRegistry::define_int_guc(
        c"autoscale.test_node_stats_delay",
        c"Test builds only: how long autoscale.node_stats() waits before it reads this node.",
        c"A failpoint for the real-cluster scenarios: keeps a sample's query to this node in flight, so that a \
          fault can be injected while it is. Compiled in only with the cargo feature failpoints.",
        &TEST_NODE_STATS_DELAY_MS,
        0,
        600_000,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY | GucFlags::UNIT_MS,
    );
    // A typo such as `autoscale.sample_intreval` in postgresql.conf then warns instead of being ignored.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"autoscale".as_ptr()) };
}

pub fn mode() -> Mode {
    match MODE.get() {
        ModeGuc::Off => Mode::Off,
        ModeGuc::Observe => Mode::Observe,
        ModeGuc::Act => Mode::Act,
    }
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

pub fn size_refresh_interval() -> Duration {
    Duration::from_secs(SIZE_REFRESH_S.get().max(0) as u64)
}

/// `None` when pruning is disabled (-1).
pub fn history_retention() -> Option<Duration> {
    let s = HISTORY_RETENTION_S.get();
    (s >= 0).then(|| Duration::from_secs(s as u64))
}

fn string(s: &GucSetting<Option<std::ffi::CString>>) -> Option<String> {
    s.get()
        .map(|c| c.to_string_lossy().trim().to_string())
        .filter(|v| !v.is_empty())
}

fn secs_or_none(v: i32) -> Option<f64> {
    (v >= 0).then_some(v as f64)
}

pub fn rebalance_strategy() -> Option<String> {
    string(&REBALANCE_STRATEGY)
}

/// The strategy of the rebalances autoscale starts: `autoscale.rebalance_strategy`, else
/// `autoscale_by_load` (registered with Citus at first use).
pub fn effective_rebalance_strategy() -> String {
    rebalance_strategy().unwrap_or_else(|| crate::infra::citus::LOAD_STRATEGY.to_string())
}

pub fn load_window() -> f64 {
    LOAD_WINDOW_S.get().max(0) as f64
}

/// 0 = the load-skew trigger is off.
pub fn load_skew_ratio() -> f64 {
    LOAD_SKEW_RATIO.get().max(0.0)
}

pub fn isolate_hot_tenants() -> bool {
    ISOLATE_HOT_TENANTS.get()
}

pub fn hot_tenant_share() -> f64 {
    HOT_TENANT_SHARE.get()
}

pub fn load_skew_for() -> f64 {
    LOAD_SKEW_FOR_S.get().max(0) as f64
}

pub fn load_history_top_n() -> usize {
    LOAD_HISTORY_TOP_N.get().max(0) as usize
}

pub fn shard_transfer_mode() -> TransferMode {
    SHARD_TRANSFER_MODE.get()
}

pub fn rebalance_settle() -> f64 {
    REBALANCE_SETTLE_S.get().max(0) as f64
}

/// -1 (disabled) as a negative number, as the trigger expects.
pub fn rebalance_interval() -> f64 {
    REBALANCE_INTERVAL_S.get() as f64
}

pub fn failure_backoff() -> f64 {
    FAILURE_BACKOFF_S.get().max(0) as f64
}

pub fn max_operations_per_hour() -> u32 {
    MAX_OPERATIONS_PER_HOUR.get().max(0) as u32
}

/// Negative = never.
pub fn provision_timeout() -> f64 {
    secs_or_none(PROVISION_TIMEOUT_S.get()).unwrap_or(-1.0)
}

/// Seconds a worker must stay unreachable before it is declared dead; -1 = never.
pub fn dead_node_after() -> f64 {
    f64::from(DEAD_NODE_AFTER_S.get())
}

/// Negative = never.
pub fn step_timeout() -> Duration {
    Duration::from_millis(STEP_TIMEOUT_MS.get().max(1) as u64)
}

/// Whether a scale-out of one node prefers a ready warm clone.
pub fn split_out() -> bool {
    SPLIT_OUT.get()
}

/// Most replay lag a clone may have, in bytes.
pub fn clone_max_lag_bytes() -> i64 {
    i64::from(CLONE_MAX_LAG_KB.get().max(0)) * 1024
}

/// Seconds citus_promote_clone_and_rebalance waits for the clone to catch up.
pub fn clone_catchup_timeout() -> i32 {
    CLONE_CATCHUP_TIMEOUT_S.get().max(1)
}

/// (parallel_transfer_colocated_shards, parallel_transfer_reference_tables) of citus_rebalance_start.
pub fn parallel_transfer() -> (bool, bool) {
    (
        PARALLEL_TRANSFER_COLOCATED_SHARDS.get(),
        PARALLEL_TRANSFER_REFERENCE_TABLES.get(),
    )
}

pub fn job_timeout() -> f64 {
    secs_or_none(JOB_TIMEOUT_S.get()).unwrap_or(-1.0)
}

pub fn webhook_url() -> Option<String> {
    string(&WEBHOOK_URL)
}

pub fn maintenance_window() -> Option<String> {
    string(&MAINTENANCE_WINDOW)
}

/// The lead-time override, if set.
pub fn forecast_lead_time() -> Option<f64> {
    secs_or_none(FORECAST_LEAD_TIME_S.get())
}

/// History searched for a forecast's cycle, seconds (0: none).
pub fn forecast_cycle_window() -> f64 {
    f64::from(FORECAST_CYCLE_WINDOW_S.get().max(0))
}

/// The shortest period of a forecast's cycle, seconds.
pub fn forecast_cycle_min() -> f64 {
    f64::from(FORECAST_CYCLE_MIN_S.get().max(1))
}

pub fn rollup_minute_retention() -> Option<Duration> {
    let s = ROLLUP_MINUTE_RETENTION_S.get();
    (s >= 0).then(|| Duration::from_secs(s as u64))
}

pub fn rollup_hour_retention() -> Option<Duration> {
    let s = ROLLUP_HOUR_RETENTION_S.get();
    (s >= 0).then(|| Duration::from_secs(s as u64))
}

pub fn coordinator_shards() -> CoordinatorShards {
    COORDINATOR_SHARDS.get()
}

/// A test build's `autoscale.test_node_stats_delay`; zero in a build without the cargo feature
/// `failpoints`.
pub fn test_node_stats_delay() -> Duration {
    #[cfg(feature = "failpoints")]
    {
        Duration::from_millis(TEST_NODE_STATS_DELAY_MS.get().max(0) as u64)
    }
    #[cfg(not(feature = "failpoints"))]
    {
        Duration::ZERO
    }
}

/// Whether a test build's `autoscale.test_hold_at_steps` holds an operation at `step`. Always
/// false in a build without the cargo feature `failpoints`.
pub fn test_hold_at(step: &str) -> bool {
    #[cfg(feature = "failpoints")]
    {
        string(&TEST_HOLD_AT_STEPS)
            .is_some_and(|l| l.split(',').any(|s| s.trim().eq_ignore_ascii_case(step)))
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = step;
        false
    }
}

pub fn custom_sql_role() -> Option<String> {
    string(&CUSTOM_SQL_ROLE)
}

/// A GUC check hook's verdict: true, or false with a detail for the error.
unsafe fn check_result(r: Result<(), String>) -> bool {
    match r {
        Ok(()) => true,
        Err(detail) => {
            let c = std::ffi::CString::new(detail.replace('\0', " ")).unwrap_or_default();
            unsafe { pgrx::pg_sys::GUC_check_errdetail_string = pgrx::pg_sys::pstrdup(c.as_ptr()) };
            false
        }
    }
}

unsafe fn new_value(newval: *mut *mut std::ffi::c_char) -> String {
    unsafe {
        if newval.is_null() || (*newval).is_null() {
            return String::new();
        }
        CStr::from_ptr(*newval).to_string_lossy().trim().to_string()
    }
}

/// `autoscale.maintenance_window` must parse: a SET, ALTER SYSTEM or reload with a bad value fails.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_maintenance_window(
    newval: *mut *mut std::ffi::c_char,
    _extra: *mut *mut std::ffi::c_void,
    _source: pgrx::pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    let r = if v.is_empty() {
        Ok(())
    } else {
        autoscale_core::operations::MaintenanceWindow::parse(&v)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    unsafe { check_result(r) }
}

/// `autoscale.dead_node_after` is -1 (never) or at least 10 s.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_dead_node_after(
    newval: *mut i32,
    _extra: *mut *mut std::ffi::c_void,
    _source: pgrx::pg_sys::GucSource::Type,
) -> bool {
    let v = if newval.is_null() {
        -1
    } else {
        unsafe { *newval }
    };
    unsafe { check_result(autoscale_core::operations::dead::check_dead_node_after(v)) }
}

/// `autoscale.webhook_url` must be an http(s) URL with a host; the detail never repeats it.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_webhook_url(
    newval: *mut *mut std::ffi::c_char,
    _extra: *mut *mut std::ffi::c_void,
    _source: pgrx::pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    unsafe { check_result(autoscale_core::safety::check_webhook_url(&v)) }
}

/// `autoscale.custom_sql_role` must name an existing role without superuser. Checked where the
/// catalogs can be read (SET, ALTER SYSTEM, a reload inside a session); at server start and in
/// processes without a transaction the check happens when custom SQL runs.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_custom_sql_role(
    newval: *mut *mut std::ffi::c_char,
    _extra: *mut *mut std::ffi::c_void,
    _source: pgrx::pg_sys::GucSource::Type,
) -> bool {
    let v = unsafe { new_value(newval) };
    if v.is_empty() || !unsafe { pgrx::pg_sys::IsTransactionState() } {
        return true;
    }
    let c = std::ffi::CString::new(v.clone()).unwrap_or_default();
    let oid = unsafe { pgrx::pg_sys::get_role_oid(c.as_ptr(), true) };
    let r = if oid == pgrx::pg_sys::InvalidOid {
        Err(format!("role \"{v}\" does not exist"))
    } else if unsafe { pgrx::pg_sys::superuser_arg(oid) } {
        Err(format!(
            "role \"{v}\" is a superuser; custom SQL must run as a role without superuser"
        ))
    } else {
        Ok(())
    };
    unsafe { check_result(r) }
}
