//! Every SQL string that names a Citus object lives here and nowhere else: catalogs
//! (pg_dist_node, pg_dist_placement, ...), functions (run_command_on_workers, citus_*), settings.
//! Node names and ports always travel as parameters, never concatenated into SQL.

use autoscale_core::load;
use autoscale_core::operations::dead::Placement;
use autoscale_core::operations::{names, NodeAddr};
use pgrx::prelude::*;
use pgrx::spi::SpiResult;

use super::spi::{node_at, select_first, select_first_kept, select_rows};
use std::time::Duration;

/// Is the citus extension installed in this database? (A catalog lookup, no query: node_stats()
/// runs in a fresh backend on every worker at every sample.)
pub fn installed() -> bool {
    unsafe { pg_sys::get_extension_oid(c"citus".as_ptr(), true) != pg_sys::InvalidOid }
}

/// The version of the citus extension created in this database (`pg_extension.extversion`,
/// such as `13.2-1`); None when it is not created.
pub fn extversion() -> SpiResult<Option<String>> {
    Spi::get_one::<String>(
        "SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'citus'",
    )
}

/// This node's Citus group id (0 on the coordinator). Call only when [`installed`].
pub fn local_group_id() -> SpiResult<Option<i32>> {
    Spi::get_one::<i32>("SELECT groupid FROM pg_catalog.pg_dist_local_group")
}

/// Where this node stands in a Citus cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No citus extension in this database.
    NoCitus,
    Coordinator,
    Worker {
        groupid: i32,
    },
}

pub fn role() -> Role {
    if !installed() {
        return Role::NoCitus;
    }
    match local_group_id() {
        Ok(Some(0)) | Ok(None) => Role::Coordinator,
        Ok(Some(g)) => Role::Worker { groupid: g },
        Err(_) => Role::NoCitus,
    }
}

/// One primary node of pg_dist_node with the number of shard placements it holds (from metadata,
/// so it is known even when the node does not answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub nodeid: i32,
    pub groupid: i32,
    pub nodename: String,
    pub nodeport: i32,
    pub isactive: bool,
    pub shouldhaveshards: bool,
    pub shard_count: i64,
    /// Placements of distributed (hash, range, append) tables: not reference tables, not citus
    /// local tables.
    pub distributed_shard_count: i64,
}

/// Primary nodes in pg_dist_node (coordinator included when registered), ordered by nodeid.
pub fn primary_nodes() -> SpiResult<Vec<Node>> {
    select_rows(
        // one pass over the placements for every node (a count per node was a pass per node:
        // 48 ms at 33 nodes and 10,000 shards)
        // (the few shards of reference and citus local tables are looked up in a hash)
        "WITH c AS (SELECT p.groupid, count(*) AS shards,
                           count(*) FILTER (WHERE p.shardid NOT IN (
                             SELECT s.shardid FROM pg_catalog.pg_dist_shard s
                               JOIN pg_catalog.pg_dist_partition t ON t.logicalrelid = s.logicalrelid
                              WHERE t.partmethod = 'n')) AS distributed
                      FROM pg_catalog.pg_dist_placement p
                     GROUP BY p.groupid)
         SELECT n.nodeid, n.groupid, n.nodename, n.nodeport, n.isactive, n.shouldhaveshards,
                coalesce(c.shards, 0), coalesce(c.distributed, 0)
           FROM pg_catalog.pg_dist_node n LEFT JOIN c ON c.groupid = n.groupid
          WHERE n.noderole = 'primary'
          ORDER BY n.nodeid",
        &[],
        |r| {
            Ok(Node {
                nodeid: r.get(1)?.unwrap_or_default(),
                groupid: r.get(2)?.unwrap_or_default(),
                nodename: r.get(3)?.unwrap_or_default(),
                nodeport: r.get(4)?.unwrap_or_default(),
                isactive: r.get(5)?.unwrap_or(false),
                shouldhaveshards: r.get(6)?.unwrap_or(false),
                shard_count: r.get(7)?.unwrap_or(0),
                distributed_shard_count: r.get(8)?.unwrap_or(0),
            })
        },
    )
}

/// The coordinator's row of pg_dist_node (group 0), when it is registered.
pub fn coordinator_node() -> SpiResult<Option<Node>> {
    Ok(primary_nodes()?.into_iter().find(|n| n.groupid == 0))
}

/// The answer of one worker to a fan-out.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerResult {
    pub nodename: String,
    pub nodeport: i32,
    pub success: bool,
    pub result: String,
}

/// The application_name of the background worker's kept sample connections on each node.
pub const SAMPLER_APPLICATION_NAME: &str = "citus_autoscale sampler connection";

/// The command each worker runs for a sample: its own raw reading as json text.
pub const NODE_STATS_COMMAND: &str = "SELECT autoscale.node_stats()::text";

/// Until the end of this transaction, Citus gives up connecting to a node after `timeout_ms`
/// (citus.node_connection_timeout; its default, 30 s, would let a black-holed node hold the tick),
/// and keeps none of the connections it opens past the transaction's end
/// (citus.max_cached_conns_per_worker = 0).
///
/// Why no cached connection: a connection Citus reuses from an earlier transaction is already
/// established, so a node that hung since is not caught by the connect timeout: Citus sends it
/// BEGIN and the command, the statement timeout fires, and the abort of the step's
/// subtransaction (or of the transaction) sends the node a cancel request with libpq's
/// `PQcancel`, which waits, without any timeout, for the hung node to close the connection. The
/// background worker then stops, sampling included, until the node answers again (the fault
/// matrix's `hang_src x scale_in2 x remove_node`: the cleanup step's connection to the leaving
/// node was reused by `citus_remove_node` of the other leaving node). A fresh connection to a
/// hung node fails while connecting, before the node takes part in the transaction, so nothing
/// is sent to it on abort.
pub fn bound_connections(timeout_ms: u64) -> SpiResult<()> {
    Spi::run_with_args(
        "SELECT pg_catalog.set_config('citus.node_connection_timeout', $1, true),
                pg_catalog.set_config('citus.max_cached_conns_per_worker', '0', true)",
        &[timeout_ms.to_string().into()],
    )
}

/// How the sample's fan-outs reach the nodes: on connections of their own (`infra::fanout`, with
/// these connection keywords) unless Citus would connect differently than plain libpq does
/// (credentials in `pg_dist_authinfo`, a pooler in `pg_dist_poolinfo`, or catalogs this role cannot
/// read): then None, and the fan-out goes through Citus.
fn own_fanout_params() -> SpiResult<Option<super::fanout::Params>> {
    let (plain, conninfo, db_user) = Spi::get_three::<bool, String, String>(
        "SELECT CASE WHEN pg_catalog.has_table_privilege('pg_catalog.pg_dist_authinfo', 'SELECT')
                      AND pg_catalog.has_table_privilege('pg_catalog.pg_dist_poolinfo', 'SELECT')
                     THEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_authinfo)
                      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_poolinfo)
                     ELSE false END,
                pg_catalog.current_setting('citus.node_conninfo', true),
                pg_catalog.current_database()::text || ' ' || current_user::text",
    )?;
    let (Some(true), Some(db_user)) = (plain, db_user) else {
        return Ok(None);
    };
    let Ok(mut params) = super::fanout::parse_conninfo(conninfo.as_deref().unwrap_or("")) else {
        return Ok(None);
    };
    let (db, user) = db_user.split_once(' ').unwrap_or((&db_user, ""));
    params.retain(|(k, _)| k != "dbname" && k != "user" && k != "application_name");
    params.push(("dbname".into(), db.into()));
    params.push(("user".into(), user.into()));
    params.push(("application_name".into(), "citus_autoscale sample".into()));
    Ok(Some(params))
}

/// Runs `autoscale.node_stats()` on every active worker (the nodes `run_command_on_workers`
/// asks) in parallel, through [`run_on_nodes`] (in the background worker on the connections it
/// keeps, `fanout::run_kept`): a worker that cannot be reached within
/// `timeout_ms`, or has not answered within `2 x timeout_ms + 1 s`, answers `success = false`.
/// `interval`: the sample interval (a broken kept connection is retried with backoff in its steps).
pub fn fan_out_node_stats(timeout_ms: u64, interval: Duration) -> SpiResult<Vec<WorkerResult>> {
    let workers = select_rows(
        "SELECT node_name::text, node_port::int FROM pg_catalog.citus_get_active_worker_nodes()",
        &[],
        |r| node_at(r, 1),
    )?;
    let calls: Vec<(NodeAddr, &str)> = workers
        .iter()
        .map(|w| (w.clone(), NODE_STATS_COMMAND))
        .collect();
    // the background worker keeps its connections from sample to sample; a SQL call of sample()
    // or tick() (pg_cron) connects afresh
    let answers = match own_fanout_params()? {
        Some(mut params) if super::pgcompat::is_background_worker() => {
            // named apart from the one-shot fan-outs' "citus_autoscale sample", so that a node's
            // operator sees what the one long-lived session is
            params.retain(|(k, _)| k != "application_name");
            params.push(("application_name".into(), SAMPLER_APPLICATION_NAME.into()));
            super::fanout::run_kept(
                &calls,
                &params,
                Duration::from_millis(timeout_ms),
                Duration::from_millis(2 * timeout_ms + 1000),
                interval,
            )
        }
        params => run_on_nodes_with(&calls, timeout_ms, params)?,
    };
    Ok(workers
        .into_iter()
        .zip(answers)
        .map(|(w, a)| WorkerResult {
            nodename: w.host,
            nodeport: w.port,
            success: a.is_ok(),
            result: a.unwrap_or_else(|e| e),
        })
        .collect())
}

/// One shard placement stored on this node: its shard group (colocationid, shardminvalue; the
/// min is None for reference and citus local tables), whether its table is distributed (hash or
/// range: the groups whose load is measured), and the oids of its relation and of its indexes.
#[derive(Debug, Clone)]
pub struct LocalShard {
    pub colocationid: i32,
    pub shardminvalue: Option<String>,
    pub distributed: bool,
    pub relid: pg_sys::Oid,
    pub indexes: Vec<pg_sys::Oid>,
}

/// What the placements stored on this node look like: (count, sum of shard ids, highest
/// placement id). It changes when a placement arrives, leaves or is replaced, so that a session
/// knows when to read [`local_shards`] again; one index scan of pg_dist_placement.
pub fn local_placements_fingerprint() -> SpiResult<Option<(i64, i64, i64)>> {
    select_first_kept(
        "SELECT count(*), coalesce(sum(p.shardid), 0)::bigint, coalesce(max(p.placementid), 0)
           FROM pg_catalog.pg_dist_placement p
          WHERE p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group) AND $1",
        true,
        |row| {
            Ok((
                row.get::<i64>(1)?.unwrap_or(0),
                row.get::<i64>(2)?.unwrap_or(0),
                row.get::<i64>(3)?.unwrap_or(0),
            ))
        },
    )
}

/// This node's Citus group id (0 on the coordinator) and the shard placements stored here, from
/// the node's own metadata copy, in one query: each with its shard group, its relation's oid and
/// its indexes' (reference and citus local tables included, marked not distributed). A session
/// reads them again only when [`local_placements_fingerprint`] changes (or they are older than
/// `autoscale.size_refresh_interval`, for new indexes); each sample then reads the statistics
/// counters of the listed relations directly (`services::sampler::local`). Call only when
/// [`installed`].
pub fn local_shards() -> SpiResult<(Option<i32>, Vec<LocalShard>)> {
    Spi::connect(|c| {
        let mut groupid = None;
        let mut out = Vec::new();
        for row in c.select(LOCAL_SHARDS_SQL, None, &[])? {
            groupid = row.get::<i32>(1)?;
            let Some(relid) = row.get::<pg_sys::Oid>(6)? else {
                continue;
            };
            out.push(LocalShard {
                colocationid: row.get::<i32>(2)?.unwrap_or(0),
                shardminvalue: row.get::<String>(3)?,
                distributed: row.get::<bool>(4)?.unwrap_or(false),
                relid,
                indexes: row.get::<Vec<pg_sys::Oid>>(5)?.unwrap_or_default(),
            });
        }
        if groupid.is_none() {
            groupid = c
                .select(
                    "SELECT groupid FROM pg_catalog.pg_dist_local_group",
                    None,
                    &[],
                )?
                .next()
                .and_then(|r| r.get::<i32>(1).ok().flatten());
        }
        Ok((groupid, out))
    })
}

/// The statement of [`local_shards`]: one row per placement stored here (none: no rows).
const LOCAL_SHARDS_SQL: &str = "SELECT (SELECT groupid FROM pg_catalog.pg_dist_local_group), t.colocationid, s.shardminvalue,
                t.partmethod <> 'n', ARRAY(SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid = r),
                r::pg_catalog.oid
           FROM pg_catalog.pg_dist_placement p
           JOIN pg_catalog.pg_dist_shard s USING (shardid)
           JOIN pg_catalog.pg_dist_partition t ON t.logicalrelid = s.logicalrelid,
                -- shard_name() leaves out the schema 'public'; the pinned search_path does not have it.
                -- The schema comes from pg_identify_object (a syscache lookup): a join on pg_class
                -- made the planner scan all of pg_class, where Citus filters every row through
                -- relation_is_a_known_shard() (17 ms of 29 at 400 shards and 10,000 in the cluster)
                LATERAL pg_catalog.to_regclass(
                  CASE WHEN (pg_catalog.pg_identify_object('pg_catalog.pg_class'::pg_catalog.regclass,
                                                           s.logicalrelid, 0)).schema = 'public'
                       THEN 'public.' ELSE '' END
                  || pg_catalog.shard_name(s.logicalrelid, s.shardid)) AS r
          WHERE p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group)";

/// Total bytes of the given relations (`pg_total_relation_size`, which stats every file of every
/// fork and index; a relation dropped meanwhile counts nothing: its size is NULL).
pub fn relations_bytes(relids: Vec<pg_sys::Oid>) -> SpiResult<Option<i64>> {
    Spi::get_one_with_args::<i64>(
        "SELECT coalesce(sum(pg_catalog.pg_total_relation_size(r::pg_catalog.regclass)), 0)::bigint
           FROM pg_catalog.unnest($1::pg_catalog.oid[]) r",
        &[relids.into()],
    )
}

/// The tenants Citus tracks on this node as `TenantStats` json text (`period_secs` and, per tenant,
/// `[colocation_id, tenant_attribute, queries, cpu_seconds]` of the last complete period), or None
/// when `citus.stat_tenants_track` is not `all`. Call only when [`installed`].
pub fn local_tenants() -> SpiResult<Option<String>> {
    Spi::get_one::<String>(
        "SELECT CASE WHEN pg_catalog.current_setting('citus.stat_tenants_track', true) = 'all' THEN
                  pg_catalog.json_build_object(
                    'period_secs', (SELECT setting::float8 FROM pg_catalog.pg_settings WHERE name = 'citus.stat_tenants_period'),
                    'tenants', (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(
                                        colocation_id, tenant_attribute, query_count_in_last_period, cpu_usage_in_last_period)), '[]')
                                  FROM pg_catalog.citus_stat_tenants_local(false)))::text
                END",
    )
}

/// The rebalance strategy autoscale registers: shard groups cost their measured load.
pub const LOAD_STRATEGY: &str = "autoscale_by_load";

/// Registers [`LOAD_STRATEGY`] with `citus_add_rebalance_strategy` unless it is there (on the
/// coordinator, lazily: CREATE EXTENSION is replayed on every worker and may run before Citus is
/// installed). Cost: `autoscale.shard_load_cost`; every node has capacity 1 and may hold any
/// shard; thresholds from `autoscale_core::load` (`STRATEGY_*`: 0.1, minimum 0.01, improvement
/// 0.2).
/// A row left by an earlier install (DROP EXTENSION leaves it, pointing at a function that no
/// longer exists: Citus then fails every rebalance by it with "cache lookup failed for
/// shard_cost_function") is pointed at this install's function, its other settings kept.
/// Returns whether it registered or repaired it now.
pub fn ensure_load_strategy() -> SpiResult<bool> {
    // one round trip (this runs every tick), always one row: NULL = no strategy row, else whether
    // its cost function is another than this install's
    let stale = Spi::get_one_with_args::<bool>(
        "SELECT (SELECT shard_cost_function::pg_catalog.oid IS DISTINCT FROM
                        pg_catalog.to_regprocedure('autoscale.shard_load_cost(bigint)')::pg_catalog.oid
                   FROM pg_catalog.pg_dist_rebalance_strategy WHERE name = $1)",
        &[LOAD_STRATEGY.into()],
    )?;
    match stale {
        Some(false) => Ok(false),
        Some(true) => {
            Spi::run_with_args(
                "UPDATE pg_catalog.pg_dist_rebalance_strategy
                    SET shard_cost_function = 'autoscale.shard_load_cost'::pg_catalog.regproc
                  WHERE name = $1",
                &[LOAD_STRATEGY.into()],
            )?;
            Ok(true)
        }
        None => {
            Spi::run_with_args(
                "SELECT pg_catalog.citus_add_rebalance_strategy($1, 'autoscale.shard_load_cost'::regproc,
                        'pg_catalog.citus_node_capacity_1'::regproc, 'pg_catalog.citus_shard_allowed_on_node_true'::regproc,
                        $2::float4, $3::float4, $4::float4)",
                &[
                    LOAD_STRATEGY.into(),
                    load::STRATEGY_THRESHOLD.into(),
                    load::STRATEGY_MINIMUM_THRESHOLD.into(),
                    load::STRATEGY_IMPROVEMENT_THRESHOLD.into(),
                ],
            )?;
            Ok(true)
        }
    }
}

/// The shard group of a shard: its colocation id and its range's min value (None for an unknown
/// shard or one without a range, such as a reference table's).
pub fn shard_group_of(shardid: i64) -> SpiResult<Option<(i32, String)>> {
    select_first(
        "SELECT t.colocationid, s.shardminvalue FROM pg_catalog.pg_dist_shard s
               JOIN pg_catalog.pg_dist_partition t ON t.logicalrelid = s.logicalrelid
              WHERE s.shardid = $1 AND s.shardminvalue IS NOT NULL",
        &[shardid.into()],
        |r| {
            Ok((
                r.get::<i32>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
            ))
        },
    )
}

/// The shard-group moves of the rebalance plan of `strategy`: (colocationid, shardminvalue,
/// target host, target port), one row per group.
pub fn planned_group_moves(strategy: &str) -> SpiResult<Vec<(i32, String, String, i32)>> {
    select_rows(
        "SELECT DISTINCT pt.colocationid, s.shardminvalue, m.targetname, m.targetport
               FROM pg_catalog.get_rebalance_table_shards_plan(rebalance_strategy := $1) m
               JOIN pg_catalog.pg_dist_shard s USING (shardid)
               JOIN pg_catalog.pg_dist_partition pt ON pt.logicalrelid = s.logicalrelid
              WHERE s.shardminvalue IS NOT NULL",
        &[strategy.into()],
        |r| {
            Ok((
                r.get::<i32>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<i32>(4)?.unwrap_or_default(),
            ))
        },
    )
}

/// Runs one command on one node that need not be a cluster member (a standby), through Citus's
/// own connection code. Returns (success, result text).
pub fn run_on_node(
    host: &str,
    port: i32,
    command: &str,
    timeout_ms: u64,
) -> SpiResult<(bool, String)> {
    Spi::connect_mut(|c| {
        c.update(
            "SELECT pg_catalog.set_config('citus.node_connection_timeout', $1, true)",
            None,
            &[timeout_ms.to_string().into()],
        )?;
        let row = c
            .select(
                "SELECT success, result FROM pg_catalog.master_run_on_worker(ARRAY[$1], ARRAY[$2], ARRAY[$3], false)",
                Some(1),
                &[host.into(), port.into(), command.into()],
            )?
            .first();
        let (ok, result) = row.get_two::<bool, String>()?;
        Ok((ok.unwrap_or(false), result.unwrap_or_default()))
    })
}

/// Extensions whose files a node must have to join (citus and citus_autoscale).
pub const REQUIRED_EXTENSIONS_COMMAND: &str = "SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM pg_catalog.pg_available_extensions WHERE name IN ('citus', 'citus_autoscale')";

/// Is host:port in pg_dist_node (any role)?
pub fn node_in_cluster(host: &str, port: i32) -> SpiResult<Option<(i32, i32, bool)>> {
    select_first(
        "SELECT nodeid, groupid, isactive FROM pg_catalog.pg_dist_node WHERE nodename = $1 AND nodeport = $2",
        &[host.into(), port.into()],
        |r| Ok((
            r.get::<i32>(1)?.unwrap_or_default(),
            r.get::<i32>(2)?.unwrap_or_default(),
            r.get::<bool>(3)?.unwrap_or(false),
        )),
    )
}

/// `citus_rebalance_start(...)`: the job id, or None when there is nothing to move. `parallel`:
/// Citus 13.2's (parallel_transfer_colocated_shards, parallel_transfer_reference_tables), passed
/// only when one is on (older Citus lacks them).
pub fn rebalance_start(
    strategy: Option<&str>,
    drain_only: bool,
    transfer_mode: &str,
    parallel: (bool, bool),
) -> SpiResult<Option<i64>> {
    Spi::connect_mut(|c| {
        if parallel == (false, false) {
            return c
                .update(
                    "SELECT pg_catalog.citus_rebalance_start(rebalance_strategy := $1, drain_only := $2,
                                                     shard_transfer_mode := $3::citus.shard_transfer_mode)",
                    Some(1),
                    &[strategy.map(str::to_string).into(), drain_only.into(), transfer_mode.into()],
                )?
                .first()
                .get_one::<i64>();
        }
        c.update(
            "SELECT pg_catalog.citus_rebalance_start(rebalance_strategy := $1, drain_only := $2,
                                                     shard_transfer_mode := $3::citus.shard_transfer_mode,
                                                     parallel_transfer_colocated_shards := $4,
                                                     parallel_transfer_reference_tables := $5)",
            Some(1),
            &[
                strategy.map(str::to_string).into(),
                drain_only.into(),
                transfer_mode.into(),
                parallel.0.into(),
                parallel.1.into(),
            ],
        )?
        .first()
        .get_one::<i64>()
    })
}

/// A Citus background job: its state and task counts (done, total), from the coordinator's own
/// catalogs. Not `citus_job_status()`: it always asks the workers for the sizes of the shards
/// being moved (`get_rebalance_progress()`), so while a worker of a running move is down, hung or
/// partitioned it errors or waits, although the job itself is fine and keeps going (Citus
/// retries its tasks).
pub fn job_status(job_id: i64) -> SpiResult<Option<(String, i64, i64)>> {
    select_first(
        "SELECT j.state::text,
                    (SELECT count(*) FILTER (WHERE t.status = 'done') FROM pg_catalog.pg_dist_background_task t WHERE t.job_id = j.job_id),
                    (SELECT count(*) FROM pg_catalog.pg_dist_background_task t WHERE t.job_id = j.job_id)
               FROM pg_catalog.pg_dist_background_job j
              WHERE j.job_id = $1",
        &[job_id.into()],
        |r| Ok((
            r.get::<String>(1)?.unwrap_or_default(),
            r.get::<i64>(2)?.unwrap_or(0),
            r.get::<i64>(3)?.unwrap_or(0),
        )),
    )
}

/// Citus background jobs that are not finished (scheduled, running, cancelling, failing).
pub fn unfinished_jobs() -> SpiResult<Vec<i64>> {
    select_rows(
        "SELECT job_id FROM pg_catalog.pg_dist_background_job
              WHERE state IN ('scheduled', 'running', 'cancelling', 'failing') ORDER BY job_id",
        &[],
        |r| Ok(r.get::<i64>(1)?.unwrap_or_default()),
    )
}

/// The newest Citus background job id (None: no job yet). Job ids only grow.
pub fn newest_job_id() -> SpiResult<Option<i64>> {
    Spi::get_one::<i64>("SELECT max(job_id) FROM pg_catalog.pg_dist_background_job")
}

/// The newest rebalance job (anyone's: `citus_rebalance_start`, a drain by it) with an id above
/// `after` that finished successfully.
pub fn finished_rebalance_job_after(after: i64) -> SpiResult<Option<i64>> {
    Spi::get_one_with_args::<i64>(
        "SELECT max(job_id) FROM pg_catalog.pg_dist_background_job
          WHERE job_id > $1 AND job_type = 'rebalance' AND state = 'finished'",
        &[after.into()],
    )
}

/// Shard-group moves the rebalancer would make now (`get_rebalance_table_shards_plan()` lists
/// every shard of a colocated group; they move together, so they count once).
pub fn planned_moves(strategy: Option<&str>) -> SpiResult<i64> {
    Ok(Spi::get_one_with_args::<i64>(
        "SELECT count(DISTINCT (pt.colocationid, s.shardminvalue, m.sourcename, m.sourceport))
           FROM pg_catalog.get_rebalance_table_shards_plan(rebalance_strategy := $1) m
           JOIN pg_catalog.pg_dist_shard s USING (shardid)
           JOIN pg_catalog.pg_dist_partition pt ON pt.logicalrelid = s.logicalrelid",
        &[strategy.map(str::to_string).into()],
    )?
    .unwrap_or(0))
}

/// Whether cluster changes are blocked. Citus releases that have no
/// `citus_cluster_changes_block_status()` (13.2 has none) never block.
pub fn cluster_changes_blocked() -> SpiResult<bool> {
    let exists = Spi::get_one::<bool>(
        "SELECT pg_catalog.to_regproc('pg_catalog.citus_cluster_changes_block_status') IS NOT NULL",
    )?
    .unwrap_or(false);
    if !exists {
        return Ok(false);
    }
    Ok(Spi::get_one::<bool>(
        "SELECT (pg_catalog.citus_cluster_changes_block_status())::text IN ('t', 'true')",
    )?
    .unwrap_or(false))
}

pub fn add_node(host: &str, port: i32) -> SpiResult<Option<i32>> {
    Spi::connect_mut(|c| {
        c.update(
            "SELECT pg_catalog.citus_add_node($1, $2)",
            Some(1),
            &[host.into(), port.into()],
        )?
        .first()
        .get_one::<i32>()
    })
}

pub fn set_should_have_shards(host: &str, port: i32, value: bool) -> SpiResult<()> {
    Spi::run_with_args(
        "SELECT pg_catalog.citus_set_node_property($1, $2, 'shouldhaveshards', $3)",
        &[host.into(), port.into(), value.into()],
    )
}

/// The coordinator's own address, as the other nodes know it (pg_dist_node group 0), else
/// localhost and this server's port.
pub fn coordinator_address() -> SpiResult<(String, i32)> {
    let (h, p) = Spi::get_two::<String, i32>(
        "SELECT coalesce((SELECT nodename FROM pg_catalog.pg_dist_node WHERE groupid = 0 LIMIT 1), 'localhost'),
                coalesce((SELECT nodeport FROM pg_catalog.pg_dist_node WHERE groupid = 0 LIMIT 1),
                         pg_catalog.current_setting('port')::int)",
    )?;
    Ok((h.unwrap_or_else(|| "localhost".into()), p.unwrap_or(5432)))
}

/// Tries of [`cleanup_orphaned`] before it reports what is left (a shard copy still in use by a
/// running query cannot be dropped yet).
const CLEANUP_TRIES: u32 = 10;

/// Hosts and ports of `nodes` as two arrays, the parameters of the queries below.
fn node_arrays(nodes: &[NodeAddr]) -> (Vec<String>, Vec<i32>) {
    nodes.iter().map(|n| (n.host.clone(), n.port)).unzip()
}

/// `CALL citus_cleanup_orphaned_resources()` until nothing awaits cleanup on `nodes`.
/// The procedure refuses to run inside a transaction block, and a tick is one, so it runs as a
/// top-level statement on a connection of its own to this coordinator (Citus's connection code,
/// as for any node). It is idempotent.
pub fn cleanup_orphaned(nodes: &[NodeAddr], timeout_ms: u64) -> SpiResult<Result<(), String>> {
    let (self_host, self_port) = coordinator_address()?;
    let mut left = 0;
    for _ in 0..CLEANUP_TRIES {
        // a backstop: never wait on the connection to ourselves for more than a minute
        let (ok, result) = super::subxact::with_statement_timeout(60_000, || {
            run_on_node(
                &self_host,
                self_port,
                "CALL pg_catalog.citus_cleanup_orphaned_resources()",
                timeout_ms,
            )
        })?;
        if !ok {
            return Ok(Err(format!(
                "citus_cleanup_orphaned_resources on {self_host}:{self_port}: {result}"
            )));
        }
        left = cleanup_records_on(nodes)?;
        if left == 0 {
            return Ok(Ok(()));
        }
        Spi::run("SELECT pg_catalog.pg_sleep(0.5)")?;
    }
    Ok(Err(format!(
        "{left} resources on {} still await cleanup (in use by running queries?)",
        names(nodes)
    )))
}

/// Resources awaiting cleanup on `nodes` in pg_dist_cleanup (e.g. a moved shard's old copy).
pub fn cleanup_records_on(nodes: &[NodeAddr]) -> SpiResult<i64> {
    let (hosts, ports) = node_arrays(nodes);
    Ok(Spi::get_one_with_args::<i64>(
        "SELECT count(*) FROM pg_catalog.pg_dist_cleanup c
           JOIN pg_catalog.pg_dist_node n ON n.groupid = c.node_group_id
          WHERE (n.nodename, n.nodeport) IN (SELECT * FROM unnest($1::text[], $2::int[]))",
        &[hosts.into(), ports.into()],
    )?
    .unwrap_or(0))
}

/// What still ties `nodes` (removed together) to the cluster's data: their shard placements that
/// have no copy on a node outside the set (reference tables, replicated everywhere, do not count:
/// citus_remove_node drops those), plus resources awaiting cleanup on them in pg_dist_cleanup (a
/// moved shard's old copy). The nodes may leave only when this is zero.
pub fn placements_on(nodes: &[NodeAddr]) -> SpiResult<i64> {
    let (hosts, ports) = node_arrays(nodes);
    Ok(Spi::get_one_with_args::<i64>(
        "WITH leaving AS (
           SELECT n.groupid FROM pg_catalog.pg_dist_node n
            WHERE (n.nodename, n.nodeport) IN (SELECT * FROM unnest($1::text[], $2::int[])))
         SELECT count(*) FROM pg_catalog.pg_dist_placement p
          WHERE p.groupid IN (SELECT groupid FROM leaving)
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement o
                             JOIN pg_catalog.pg_dist_node m ON m.groupid = o.groupid
                            WHERE o.shardid = p.shardid AND o.groupid NOT IN (SELECT groupid FROM leaving))",
        &[hosts.into(), ports.into()],
    )?
    .unwrap_or(0)
        + cleanup_records_on(nodes)?)
}

pub fn remove_node(host: &str, port: i32) -> SpiResult<()> {
    Spi::run_with_args(
        "SELECT pg_catalog.citus_remove_node($1, $2)",
        &[host.into(), port.into()],
    )
}

/// Highest nodeid in pg_dist_node (0 when empty).
pub fn max_nodeid() -> SpiResult<i32> {
    Ok(
        Spi::get_one::<i32>("SELECT coalesce(max(nodeid), 0) FROM pg_catalog.pg_dist_node")?
            .unwrap_or(0),
    )
}

/// Active primary workers added after `after_nodeid`, newest first: a node a provisioner added.
pub fn workers_added_after(after_nodeid: i32) -> SpiResult<Vec<(String, i32)>> {
    select_rows(
        "SELECT nodename, nodeport FROM pg_catalog.pg_dist_node
              WHERE nodeid > $1 AND groupid <> 0 AND noderole = 'primary' AND isactive
              ORDER BY nodeid DESC",
        &[after_nodeid.into()],
        |r| {
            Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<i32>(2)?.unwrap_or_default(),
            ))
        },
    )
}

/// `citus_job_cancel(job_id)`.
pub fn cancel_job(job_id: i64) -> SpiResult<()> {
    Spi::run_with_args("SELECT pg_catalog.citus_job_cancel($1)", &[job_id.into()])
}

/// The active primary workers, each with its nodeid and its number of shard placements.
pub fn worker_placements() -> SpiResult<Vec<(NodeAddr, i32, i64)>> {
    select_rows(
        "SELECT n.nodename, n.nodeport, n.nodeid,
                    (SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_placement p WHERE p.groupid = n.groupid)
               FROM pg_catalog.pg_dist_node n
              WHERE n.groupid <> 0 AND n.noderole = 'primary' AND n.isactive",
        &[],
        |r| Ok((
                node_at(r, 1)?,
                r.get::<i32>(3)?.unwrap_or_default(),
                r.get::<i64>(4)?.unwrap_or(0),
            )),
    )
}

/// The active primary workers (not the coordinator).
pub fn active_workers() -> SpiResult<Vec<NodeAddr>> {
    Ok(primary_nodes()?
        .into_iter()
        .filter(|n| n.groupid != 0 && n.isactive)
        .map(|n| NodeAddr::new(n.nodename, n.nodeport))
        .collect())
}

/// A node's shouldhaveshards in pg_dist_node (None when it is not there).
pub fn should_have_shards(host: &str, port: i32) -> SpiResult<Option<bool>> {
    Spi::get_one_with_args::<bool>(
        "SELECT (SELECT shouldhaveshards FROM pg_catalog.pg_dist_node WHERE nodename = $1 AND nodeport = $2)",
        &[host.into(), port.into()],
    )
}

/// Whether `name` is a rebalance strategy in pg_dist_rebalance_strategy.
pub fn rebalance_strategy_exists(name: &str) -> SpiResult<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_rebalance_strategy WHERE name = $1)",
        &[name.into()],
    )?
    .unwrap_or(false))
}

// --- a node that never comes back (replace_dead) ---

/// Every shard placement of the cluster, as [`autoscale_core::operations::dead::assess`] reads
/// it: shard, its shard group (colocation id and range; the shard id for a table colocated with
/// nothing), node, whether it is a reference table's, and how many copies it should have
/// (pg_dist_colocation.replicationfactor, else the placements it has).
pub fn all_placements() -> SpiResult<Vec<Placement>> {
    select_rows(
        "SELECT p.shardid,
                    CASE WHEN t.colocationid = 0 THEN 's' || p.shardid
                         ELSE t.colocationid || ':' || coalesce(s.shardminvalue, '') END,
                    n.nodename, n.nodeport,
                    t.partmethod = 'n' AND t.repmodel = 't',
                    coalesce(NULLIF(g.replicationfactor, -1),
                             (SELECT count(*) FROM pg_catalog.pg_dist_placement o WHERE o.shardid = p.shardid))::int
               FROM pg_catalog.pg_dist_placement p
               JOIN pg_catalog.pg_dist_shard s USING (shardid)
               JOIN pg_catalog.pg_dist_partition t ON t.logicalrelid = s.logicalrelid
               JOIN pg_catalog.pg_dist_node n ON n.groupid = p.groupid AND n.noderole = 'primary'
               LEFT JOIN pg_catalog.pg_dist_colocation g ON g.colocationid = t.colocationid
              ORDER BY p.shardid, n.nodeid",
        &[],
        |r| Ok(Placement {
                shardid: r.get::<i64>(1)?.unwrap_or_default(),
                group: r.get::<String>(2)?.unwrap_or_default(),
                node: node_at(r, 3)?,
                reference: r.get::<bool>(5)?.unwrap_or(false),
                factor: r.get::<i32>(6)?.unwrap_or(1).max(1) as usize,
            }),
    )
}

/// Every active primary node (the coordinator included when registered): address, whether it is
/// the coordinator, its shouldhaveshards. Their health comes from the samples
/// (store::samples::health), and services::dead joins the two.
pub fn active_primaries() -> SpiResult<Vec<(NodeAddr, bool, bool)>> {
    select_rows(
        "SELECT n.nodename, n.nodeport, n.groupid = 0, n.shouldhaveshards
               FROM pg_catalog.pg_dist_node n
              WHERE n.noderole = 'primary' AND n.isactive
              ORDER BY n.nodeid",
        &[],
        |r| {
            Ok((
                node_at(r, 1)?,
                r.get::<bool>(3)?.unwrap_or(false),
                r.get::<bool>(4)?.unwrap_or(false),
            ))
        },
    )
}

/// `citus_disable_node(host, port)`: queries stop using the node's placements (they use the
/// other copies), writes stop going to it.
pub fn disable_node(host: &str, port: i32) -> SpiResult<()> {
    Spi::run_with_args(
        "SELECT pg_catalog.citus_disable_node($1, $2)",
        &[host.into(), port.into()],
    )
}

/// `citus_copy_shard_placement(shard, from, to, mode)`: copies the shard and its colocated
/// shards; runs inside the caller's transaction.
pub fn copy_shard_placement(
    shardid: i64,
    from: &NodeAddr,
    to: &NodeAddr,
    transfer_mode: &str,
) -> SpiResult<()> {
    transfer_shard(
        "SELECT pg_catalog.citus_copy_shard_placement($1, $2, $3, $4, $5, $6::citus.shard_transfer_mode)",
        shardid,
        from,
        to,
        transfer_mode,
    )
}

/// Runs `sql`, a shard copy or move taking (shard, from host, from port, to host, to port, mode).
fn transfer_shard(
    sql: &'static str,
    shardid: i64,
    from: &NodeAddr,
    to: &NodeAddr,
    transfer_mode: &str,
) -> SpiResult<()> {
    Spi::run_with_args(
        sql,
        &[
            shardid.into(),
            from.host.clone().into(),
            from.port.into(),
            to.host.clone().into(),
            to.port.into(),
            transfer_mode.into(),
        ],
    )
}

/// `replicate_reference_tables(mode)`: a copy of every reference table on every active node.
pub fn replicate_reference_tables(transfer_mode: &str) -> SpiResult<()> {
    Spi::run_with_args(
        "SELECT pg_catalog.replicate_reference_tables($1::citus.shard_transfer_mode)",
        &[transfer_mode.into()],
    )
}

/// What a clone's primary answers to a clone check: its current WAL position and its WAL senders.
pub const CLONE_PRIMARY_COMMAND: &str = "SELECT pg_catalog.json_build_object('lsn', pg_catalog.pg_current_wal_lsn(), \
     'senders', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('app', application_name, \
     'addr', pg_catalog.host(client_addr), 'host', client_hostname, 'state', state, 'sync', sync_state)) \
     FROM pg_catalog.pg_stat_replication))::text";

/// What a clone answers to a clone check: in recovery, its replay position, its WAL receiver.
pub const CLONE_SELF_COMMAND: &str =
    "SELECT pg_catalog.json_build_object('recovery', pg_catalog.pg_is_in_recovery(), \
     'replay', pg_catalog.pg_last_wal_replay_lsn(), \
     'status', (SELECT status FROM pg_catalog.pg_stat_wal_receiver), \
     'sender_host', (SELECT sender_host FROM pg_catalog.pg_stat_wal_receiver), \
     'sender_port', (SELECT sender_port FROM pg_catalog.pg_stat_wal_receiver))::text";

/// Runs one command on each of `nodes` in parallel. A node that cannot be reached within
/// `timeout_ms`, or has not answered within `2 x timeout_ms + 1 s`, answers Err. On the sample's
/// own connections (`infra::fanout`) such a node is given up without a cancel request, so a node
/// that hangs while answering cannot hold the tick (docs/faults.md, finding 8); when Citus
/// connects differently (see `own_fanout_params`) the command goes through one
/// `master_run_on_worker` round trip, with a statement timeout as the backstop. The nodes need not
/// be in the cluster: standbys and clones are not. Answers in order: Ok(result) or Err(error text).
pub fn run_on_nodes(
    nodes: &[(NodeAddr, &str)],
    timeout_ms: u64,
) -> SpiResult<Vec<Result<String, String>>> {
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    run_on_nodes_with(nodes, timeout_ms, own_fanout_params()?)
}

/// [`run_on_nodes`] with the connection parameters already read (`own_fanout_params`): our own
/// connections with them, Citus's `master_run_on_worker` without.
fn run_on_nodes_with(
    nodes: &[(NodeAddr, &str)],
    timeout_ms: u64,
    params: Option<super::fanout::Params>,
) -> SpiResult<Vec<Result<String, String>>> {
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(params) = params {
        return Ok(super::fanout::run(
            nodes,
            &params,
            Duration::from_millis(timeout_ms),
            Duration::from_millis(2 * timeout_ms + 1000),
        ));
    }
    let hosts: Vec<String> = nodes.iter().map(|(n, _)| n.host.clone()).collect();
    let ports: Vec<i32> = nodes.iter().map(|(n, _)| n.port).collect();
    let commands: Vec<String> = nodes.iter().map(|(_, c)| c.to_string()).collect();
    bound_connections(timeout_ms)?;
    Spi::connect_mut(|c| {
        let backstop = (2 * timeout_ms + 1000).min(i32::MAX as u64) as i32;
        let rows = super::subxact::with_statement_timeout(backstop, || {
            c.select(
                "SELECT success, result FROM pg_catalog.master_run_on_worker($1, $2, $3, true)",
                None,
                &[hosts.into(), ports.into(), commands.into()],
            )
        })?;
        let mut out = Vec::new();
        for r in rows {
            let ok = r.get::<bool>(1)?.unwrap_or(false);
            let text = r.get::<String>(2)?.unwrap_or_default();
            out.push(if ok { Ok(text) } else { Err(text) });
        }
        Ok(out)
    })
}

/// A node of pg_dist_node with its clone columns (Citus 13.2): (nodeid, isactive, nodeisclone,
/// noderole = 'primary').
pub fn clone_node_info(host: &str, port: i32) -> SpiResult<Option<(i32, bool, bool, bool)>> {
    select_first(
        "SELECT nodeid, isactive, nodeisclone, noderole = 'primary'
               FROM pg_catalog.pg_dist_node WHERE nodename = $1 AND nodeport = $2",
        &[host.into(), port.into()],
        |r| {
            Ok((
                r.get::<i32>(1)?.unwrap_or_default(),
                r.get::<bool>(2)?.unwrap_or(false),
                r.get::<bool>(3)?.unwrap_or(false),
                r.get::<bool>(4)?.unwrap_or(false),
            ))
        },
    )
}

/// Whether this Citus has the snapshot split (13.2+: `citus_promote_clone_and_rebalance`).
pub fn has_snapshot_split() -> SpiResult<bool> {
    Ok(Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE proname = 'citus_promote_clone_and_rebalance'
                          AND pronamespace = 'pg_catalog'::regnamespace)",
    )?
    .unwrap_or(false))
}

/// `citus_add_clone_node(clone, primary)`: the clone's nodeid. Citus checks the primary's
/// pg_stat_replication itself.
pub fn add_clone_node(clone: &NodeAddr, primary: &NodeAddr) -> SpiResult<Option<i32>> {
    Spi::get_one_with_args::<i32>(
        "SELECT pg_catalog.citus_add_clone_node($1, $2, $3, $4)",
        &[
            clone.host.clone().into(),
            clone.port.into(),
            primary.host.clone().into(),
            primary.port.into(),
        ],
    )
}

/// `citus_remove_clone_node(host, port)`: unregisters an inactive clone.
pub fn remove_clone_node(clone: &NodeAddr) -> SpiResult<()> {
    Spi::run_with_args(
        "SELECT pg_catalog.citus_remove_clone_node($1, $2)",
        &[clone.host.clone().into(), clone.port.into()],
    )
}

/// `get_snapshot_based_node_split_plan(primary, clone, strategy)`: (shard groups' shards that go
/// to the clone, all shards of the plan).
pub fn split_plan(
    primary: &NodeAddr,
    clone: &NodeAddr,
    strategy: Option<&str>,
) -> SpiResult<(i64, i64)> {
    Spi::connect(|c| {
        let r = c
            .select(
                "SELECT count(*) FILTER (WHERE placement_node = 'Clone Node'), count(*)
                   FROM pg_catalog.get_snapshot_based_node_split_plan($1, $2, $3, $4, $5)",
                Some(1),
                &[
                    primary.host.clone().into(),
                    primary.port.into(),
                    clone.host.clone().into(),
                    clone.port.into(),
                    strategy.map(str::to_string).into(),
                ],
            )?
            .first();
        Ok((r.get::<i64>(1)?.unwrap_or(0), r.get::<i64>(2)?.unwrap_or(0)))
    })
}

/// `citus_promote_clone_and_rebalance(nodeid, strategy, catchup_timeout_seconds)`: blocks writes
/// to the primary's shards, waits for the clone to catch up, promotes it (pg_promote) and splits
/// the primary's shards between the two, in this transaction.
pub fn promote_clone(nodeid: i32, strategy: Option<&str>, catchup_s: i32) -> SpiResult<()> {
    Spi::run_with_args(
        "SELECT pg_catalog.citus_promote_clone_and_rebalance($1, $2, $3)",
        &[
            nodeid.into(),
            strategy.map(str::to_string).into(),
            catchup_s.into(),
        ],
    )
}

/// The message Citus gives when the clone did not catch up within the timeout.
pub const CATCHUP_TIMEOUT_MESSAGE: &str = "failed to catch up with primary";

/// Shard placements (of any table) in the group of host:port, from the metadata.
pub fn placements_in_group_of(node: &NodeAddr) -> SpiResult<i64> {
    Ok(Spi::get_one_with_args::<i64>(
        "SELECT count(*) FROM pg_catalog.pg_dist_placement p
           JOIN pg_catalog.pg_dist_node n USING (groupid)
          WHERE n.nodename = $1 AND n.nodeport = $2",
        &[node.host.clone().into(), node.port.into()],
    )?
    .unwrap_or(0))
}

/// The shard transfer mode of the moves and splits autoscale runs inside a tick's transaction
/// (a tenant's isolation and move, a dead worker's copies): a logical-replication transfer
/// waits there for the transaction it runs in; block_writes holds only the writes to the shard
/// group being moved.
pub const IN_TRANSACTION_TRANSFER_MODE: &str = "block_writes";

/// The shard holding `tenant` (a value of `table`'s distribution column, as text): its id,
/// whether it is the tenant's own (its hash range is a single value), and the node of its
/// placement (the first primary by address). None when the table has no such shard.
pub fn tenant_shard(table: &str, tenant: &str) -> SpiResult<Option<(i64, bool, NodeAddr)>> {
    select_first(
        "SELECT s.shardid, s.shardminvalue = s.shardmaxvalue, n.nodename, n.nodeport
           FROM pg_catalog.pg_dist_shard s
           JOIN pg_catalog.pg_dist_placement p USING (shardid)
           JOIN pg_catalog.pg_dist_node n USING (groupid)
          WHERE s.shardid = pg_catalog.get_shard_id_for_distribution_column($1::pg_catalog.regclass, $2::text)
            AND n.noderole = 'primary'
          ORDER BY n.nodename, n.nodeport LIMIT 1",
        &[table.into(), tenant.into()],
        |r| {
            Ok((
                r.get::<i64>(1)?.unwrap_or_default(),
                r.get::<bool>(2)?.unwrap_or(false),
                node_at(r, 3)?,
            ))
        },
    )
}

/// `isolate_tenant_to_new_shard(table, tenant, 'CASCADE', mode)`: the tenant's rows (and its
/// colocated tables' rows) move to a new shard of their own; returns its id. Runs inside the
/// caller's transaction.
pub fn isolate_tenant(table: &str, tenant: &str, transfer_mode: &str) -> SpiResult<Option<i64>> {
    Spi::connect_mut(|c| {
        c.update(
            "SELECT pg_catalog.isolate_tenant_to_new_shard($1::pg_catalog.regclass, $2::text, 'CASCADE',
                    shard_transfer_mode := $3::citus.shard_transfer_mode)",
            Some(1),
            &[table.into(), tenant.into(), transfer_mode.into()],
        )?
        .first()
        .get::<i64>(1)
    })
}

/// `citus_move_shard_placement(shard, from, to, mode)`: moves the shard and its colocated shards;
/// runs inside the caller's transaction.
pub fn move_shard_placement(
    shardid: i64,
    from: &NodeAddr,
    to: &NodeAddr,
    transfer_mode: &str,
) -> SpiResult<()> {
    transfer_shard(
        "SELECT pg_catalog.citus_move_shard_placement($1, $2, $3, $4, $5, $6::citus.shard_transfer_mode)",
        shardid,
        from,
        to,
        transfer_mode,
    )
}

/// A hash-distributed table: its name as `regclass` prints it (qualified under the caller's
/// search_path), its distribution column and that column's type. None for a table that is not
/// hash-distributed.
pub fn hash_distributed(table: pg_sys::Oid) -> SpiResult<Option<(String, String, String)>> {
    select_first(
        "SELECT p.logicalrelid::pg_catalog.regclass::text, a.attname::text,
                pg_catalog.format_type(a.atttypid, a.atttypmod)
           FROM pg_catalog.pg_dist_partition p
           JOIN pg_catalog.pg_attribute a ON a.attrelid = p.logicalrelid
            AND a.attname = pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)
          WHERE p.logicalrelid = $1 AND p.partmethod = 'h'",
        &[table.into()],
        |r| {
            Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
            ))
        },
    )
}

/// For each (colocation id, tenant): the first hash-distributed table of the colocation group
/// (as `regclass` prints it) and whether the tenant already has a shard of its own there. One
/// query; a tenant whose group has no hash-distributed table gets (None, false).
pub fn tenants_isolated(tenants: &[(i32, String)]) -> SpiResult<Vec<(Option<String>, bool)>> {
    let (colocations, values): (Vec<i32>, Vec<String>) = tenants.iter().cloned().unzip();
    select_rows(
        "SELECT t.tbl::text,
                coalesce((SELECT s.shardminvalue = s.shardmaxvalue FROM pg_catalog.pg_dist_shard s
                           WHERE s.shardid = pg_catalog.get_shard_id_for_distribution_column(t.tbl, x.v)), false)
           FROM unnest($1::int[], $2::text[]) WITH ORDINALITY x(c, v, i)
           LEFT JOIN LATERAL (SELECT p.logicalrelid::pg_catalog.regclass AS tbl FROM pg_catalog.pg_dist_partition p
                               WHERE p.colocationid = x.c AND p.partmethod = 'h'
                               ORDER BY p.logicalrelid LIMIT 1) t ON true
          ORDER BY x.i",
        &[colocations.into(), values.into()],
        |r| Ok((r.get::<String>(1)?, r.get::<bool>(2)?.unwrap_or(false))),
    )
}
