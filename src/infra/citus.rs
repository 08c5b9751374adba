//! Every SQL string that names a Citus object lives here and nowhere else: catalogs
//! (pg_dist_node, pg_dist_placement, ...), functions (run_command_on_workers, citus_*), settings.
//! Node names and ports always travel as parameters, never concatenated into SQL.

use autoscale_core::operations::{names, NodeAddr};
use pgrx::prelude::*;
use pgrx::spi::SpiResult;

/// Is the citus extension installed in this database? (A catalog lookup, no query: node_stats()
/// runs in a fresh backend on every worker at every sample.)
pub fn installed() -> bool {
    unsafe { pg_sys::get_extension_oid(c"citus".as_ptr(), true) != pg_sys::InvalidOid }
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
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT n.nodeid, n.groupid, n.nodename, n.nodeport, n.isactive, n.shouldhaveshards,
                    (SELECT count(*) FROM pg_catalog.pg_dist_placement p WHERE p.groupid = n.groupid),
                    (SELECT count(*) FROM pg_catalog.pg_dist_placement p
                       JOIN pg_catalog.pg_dist_shard s USING (shardid)
                       JOIN pg_catalog.pg_dist_partition t ON t.logicalrelid = s.logicalrelid
                      WHERE p.groupid = n.groupid AND t.partmethod <> 'n')
               FROM pg_catalog.pg_dist_node n
              WHERE n.noderole = 'primary'
              ORDER BY n.nodeid",
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for r in rows {
            out.push(Node {
                nodeid: r.get(1)?.unwrap_or_default(),
                groupid: r.get(2)?.unwrap_or_default(),
                nodename: r.get(3)?.unwrap_or_default(),
                nodeport: r.get(4)?.unwrap_or_default(),
                isactive: r.get(5)?.unwrap_or(false),
                shouldhaveshards: r.get(6)?.unwrap_or(false),
                shard_count: r.get(7)?.unwrap_or(0),
                distributed_shard_count: r.get(8)?.unwrap_or(0),
            });
        }
        Ok(out)
    })
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

/// The command each worker runs for a sample: its own raw reading as json text.
pub const NODE_STATS_COMMAND: &str = "SELECT autoscale.node_stats()::text";

/// Until the end of this transaction, Citus gives up connecting to a node after `timeout_ms`
/// (citus.node_connection_timeout; its default, 30 s, would let a black-holed node hold the tick).
pub fn set_connection_timeout(timeout_ms: u64) -> SpiResult<()> {
    Spi::run_with_args(
        "SELECT pg_catalog.set_config('citus.node_connection_timeout', $1, true)",
        &[timeout_ms.to_string().into()],
    )
}

/// Runs `autoscale.node_stats()` on every active worker in parallel, in one round trip.
/// A worker that cannot be reached within `timeout_ms` answers `success = false`
/// (run_command_on_workers opens fresh connections, so the connect timeout always applies); a
/// statement timeout is the backstop for a node that connects and then hangs.
pub fn fan_out_node_stats(timeout_ms: u64) -> SpiResult<Vec<WorkerResult>> {
    set_connection_timeout(timeout_ms)?;
    Spi::connect_mut(|client| {
        let backstop = (2 * timeout_ms + 1000).min(i32::MAX as u64) as i32;
        let rows = super::subxact::with_statement_timeout(backstop, || {
            client.select(
                "SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1, true)",
                None,
                &[NODE_STATS_COMMAND.into()],
            )
        })?;
        let mut out = Vec::new();
        for r in rows {
            out.push(WorkerResult {
                nodename: r.get(1)?.unwrap_or_default(),
                nodeport: r.get(2)?.unwrap_or_default(),
                success: r.get(3)?.unwrap_or(false),
                result: r.get(4)?.unwrap_or_default(),
            });
        }
        Ok(out)
    })
}

/// This node's Citus group id (0 on the coordinator) and the total bytes of the shard placements
/// stored here, from the node's own metadata copy, in one query. Call only when [`installed`].
pub fn local_group_and_shard_bytes() -> SpiResult<(Option<i32>, Option<i64>)> {
    Spi::get_two::<i32, i64>(
        "SELECT (SELECT groupid FROM pg_catalog.pg_dist_local_group),
                (SELECT coalesce(sum(pg_catalog.pg_total_relation_size(r)), 0)::bigint
                   FROM pg_catalog.pg_dist_placement p
                   JOIN pg_catalog.pg_dist_shard s USING (shardid)
                   JOIN pg_catalog.pg_class c ON c.oid = s.logicalrelid
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
                        -- shard_name() leaves out the schema 'public'; the pinned search_path does not have it
                        LATERAL pg_catalog.to_regclass(CASE WHEN n.nspname = 'public' THEN 'public.' ELSE '' END
                                                       || pg_catalog.shard_name(s.logicalrelid, s.shardid)) AS r
                  WHERE p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group))",
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
    Spi::connect(|c| {
        let t = c.select(
            "SELECT nodeid, groupid, isactive FROM pg_catalog.pg_dist_node WHERE nodename = $1 AND nodeport = $2",
            Some(1),
            &[host.into(), port.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok(Some((
            r.get::<i32>(1)?.unwrap_or_default(),
            r.get::<i32>(2)?.unwrap_or_default(),
            r.get::<bool>(3)?.unwrap_or(false),
        )))
    })
}

/// `citus_rebalance_start(...)`: the job id, or None when there is nothing to move.
pub fn rebalance_start(
    strategy: Option<&str>,
    drain_only: bool,
    transfer_mode: &str,
) -> SpiResult<Option<i64>> {
    Spi::connect_mut(|c| {
        c.update(
            "SELECT pg_catalog.citus_rebalance_start(rebalance_strategy := $1, drain_only := $2,
                                                     shard_transfer_mode := $3::citus.shard_transfer_mode)",
            Some(1),
            &[strategy.map(str::to_string).into(), drain_only.into(), transfer_mode.into()],
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
    Spi::connect(|c| {
        let t = c.select(
            "SELECT j.state::text,
                    (SELECT count(*) FILTER (WHERE t.status = 'done') FROM pg_catalog.pg_dist_background_task t WHERE t.job_id = j.job_id),
                    (SELECT count(*) FROM pg_catalog.pg_dist_background_task t WHERE t.job_id = j.job_id)
               FROM pg_catalog.pg_dist_background_job j
              WHERE j.job_id = $1",
            Some(1),
            &[job_id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok(Some((
            r.get::<String>(1)?.unwrap_or_default(),
            r.get::<i64>(2)?.unwrap_or(0),
            r.get::<i64>(3)?.unwrap_or(0),
        )))
    })
}

/// Citus background jobs that are not finished (scheduled, running, cancelling, failing).
pub fn unfinished_jobs() -> SpiResult<Vec<i64>> {
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT job_id FROM pg_catalog.pg_dist_background_job
              WHERE state IN ('scheduled', 'running', 'cancelling', 'failing') ORDER BY job_id",
            None,
            &[],
        )? {
            out.push(r.get::<i64>(1)?.unwrap_or_default());
        }
        Ok(out)
    })
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
    Spi::connect_mut(|c| {
        c.update(
            "SELECT pg_catalog.citus_set_node_property($1, $2, 'shouldhaveshards', $3)",
            None,
            &[host.into(), port.into(), value.into()],
        )
        .map(|_| ())
    })
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
    Spi::connect_mut(|c| {
        c.update(
            "SELECT pg_catalog.citus_remove_node($1, $2)",
            None,
            &[host.into(), port.into()],
        )
        .map(|_| ())
    })
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
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT nodename, nodeport FROM pg_catalog.pg_dist_node
              WHERE nodeid > $1 AND groupid <> 0 AND noderole = 'primary' AND isactive
              ORDER BY nodeid DESC",
            None,
            &[after_nodeid.into()],
        )? {
            out.push((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<i32>(2)?.unwrap_or_default(),
            ));
        }
        Ok(out)
    })
}

/// `citus_job_cancel(job_id)`.
pub fn cancel_job(job_id: i64) -> SpiResult<()> {
    Spi::connect_mut(|c| {
        c.update(
            "SELECT pg_catalog.citus_job_cancel($1)",
            None,
            &[job_id.into()],
        )
        .map(|_| ())
    })
}

/// The active primary workers, each with its nodeid and its number of shard placements.
pub fn worker_placements() -> SpiResult<Vec<(NodeAddr, i32, i64)>> {
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT n.nodename, n.nodeport, n.nodeid,
                    (SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_placement p WHERE p.groupid = n.groupid)
               FROM pg_catalog.pg_dist_node n
              WHERE n.groupid <> 0 AND n.noderole = 'primary' AND n.isactive",
            None,
            &[],
        )? {
            out.push((
                NodeAddr::new(
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<i32>(2)?.unwrap_or_default(),
                ),
                r.get::<i32>(3)?.unwrap_or_default(),
                r.get::<i64>(4)?.unwrap_or(0),
            ));
        }
        Ok(out)
    })
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
