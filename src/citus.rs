//! Every SQL string that names a Citus object lives here and nowhere else: catalogs
//! (pg_dist_node, pg_dist_placement, ...), functions (run_command_on_workers, citus_*), settings.
//! Node names and ports always travel as parameters, never concatenated into SQL.

use pgrx::prelude::*;
use pgrx::spi::SpiResult;

/// Is the citus extension installed in this database?
pub fn installed() -> bool {
    Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
    )
    .ok()
    .flatten()
    .unwrap_or(false)
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
}

/// Primary nodes in pg_dist_node (coordinator included when registered), ordered by nodeid.
pub fn primary_nodes() -> SpiResult<Vec<Node>> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT n.nodeid, n.groupid, n.nodename, n.nodeport, n.isactive, n.shouldhaveshards,
                    (SELECT count(*) FROM pg_catalog.pg_dist_placement p WHERE p.groupid = n.groupid)
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
            });
        }
        Ok(out)
    })
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

/// Runs `autoscale.node_stats()` on every active worker in parallel, in one round trip.
/// A worker that cannot be reached within `timeout_ms` answers `success = false`. The fan-out
/// opens fresh connections (a cached one to a hung node would not time out) and runs under a
/// statement timeout as a backstop; the caller's settings are restored afterwards.
pub fn fan_out_node_stats(timeout_ms: u64) -> SpiResult<Vec<WorkerResult>> {
    Spi::connect_mut(|client| {
        let saved = client
            .select(
                "SELECT pg_catalog.current_setting('statement_timeout'),
                        pg_catalog.current_setting('citus.max_cached_conns_per_worker')",
                Some(1),
                &[],
            )?
            .first()
            .get_two::<String, String>()?;
        let set = "SELECT pg_catalog.set_config('citus.node_connection_timeout', $1, true),
                          pg_catalog.set_config('statement_timeout', $2, true),
                          pg_catalog.set_config('citus.max_cached_conns_per_worker', $3, true)";
        client.update(
            set,
            None,
            &[
                timeout_ms.to_string().into(),
                (2 * timeout_ms + 1000).to_string().into(),
                "0".into(),
            ],
        )?;
        let rows = client.select(
            "SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1, true)",
            None,
            &[NODE_STATS_COMMAND.into()],
        );
        let mut out = Vec::new();
        let rows = rows?;
        for r in rows {
            out.push(WorkerResult {
                nodename: r.get(1)?.unwrap_or_default(),
                nodeport: r.get(2)?.unwrap_or_default(),
                success: r.get(3)?.unwrap_or(false),
                result: r.get(4)?.unwrap_or_default(),
            });
        }
        if let (Some(st), Some(cached)) = saved {
            client.update(
                "SELECT pg_catalog.set_config('statement_timeout', $1, true),
                        pg_catalog.set_config('citus.max_cached_conns_per_worker', $2, true)",
                None,
                &[st.into(), cached.into()],
            )?;
        }
        Ok(out)
    })
}

/// Total bytes of the shard placements stored on this node, from the node's own metadata copy.
/// `None` when this node has no Citus metadata.
pub fn local_shard_bytes() -> Option<i64> {
    if !installed() {
        return None;
    }
    Spi::get_one::<i64>(
        "SELECT coalesce(sum(pg_catalog.pg_total_relation_size(r)), 0)::bigint
           FROM pg_catalog.pg_dist_placement p
           JOIN pg_catalog.pg_dist_shard s USING (shardid),
                LATERAL pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid)) AS r
          WHERE p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group)",
    )
    .ok()
    .flatten()
}
