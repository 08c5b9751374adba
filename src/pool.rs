//! The standby pool (autoscale.standby_nodes): nodes autoscale may add, and the nodes it added.
//! It owns that table's SQL; Citus calls go through crate::citus.
//!
//! The lifecycle (README, "The standby pool"): available -> joining -> active -> draining ->
//! returned. Only `available` nodes are claimed. `returned` means the node left the cluster and a
//! deprovision request told the provisioner it may stop it: it is not claimable until it is
//! offered again with add_standby_node(). A node whose join failed becomes `failed` (not
//! claimable either, until offered again); a scale-out cancelled or failed before its node joined
//! puts the node back to `available`.

use autoscale_core::clones::{self, Check, CloneInfo};
use autoscale_core::operations::NodeAddr;
use pgrx::prelude::*;
use pgrx::spi::SpiResult;

use crate::citus;

/// Claims the first available node for joining (never a warm clone: a replica cannot join as an
/// empty node; clones join by a split-out); None when the pool has none. A node with a
/// pending deprovision request is never claimed (the provisioner may be stopping it).
pub fn claim() -> SpiResult<Option<(String, i32)>> {
    Spi::connect_mut(|c| {
        let t = c.update(
            "UPDATE autoscale.standby_nodes s SET state = 'joining', changed_at = pg_catalog.now()
              WHERE (nodename, nodeport) = (
                    SELECT a.nodename, a.nodeport FROM autoscale.standby_nodes a
                     WHERE a.state = 'available' AND a.primary_name IS NULL
                       AND NOT EXISTS (SELECT 1 FROM autoscale.provision_requests r
                                        WHERE r.kind = 'deprovision' AND r.status = 'pending'
                                          AND r.payload -> 'node' ->> 'host' = a.nodename
                                          AND (r.payload -> 'node' ->> 'port')::int = a.nodeport)
                     ORDER BY a.added_at, a.nodename, a.nodeport
                     LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING nodename, nodeport",
            None,
            &[],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let (h, p) = t.first().get_two::<String, i32>()?;
        Ok(Some((h.unwrap_or_default(), p.unwrap_or_default())))
    })
}

/// Sets a pool node's state, inserting the node when it is not in the pool (a worker that a
/// provisioner or a person added and autoscale now manages).
pub fn set_state(host: &str, port: i32, state: &str) -> SpiResult<()> {
    Spi::run_with_args(
        "INSERT INTO autoscale.standby_nodes AS s (nodename, nodeport, state, joined_at)
         VALUES ($1, $2, $3, CASE WHEN $3 = 'active' THEN pg_catalog.now() END)
         ON CONFLICT (nodename, nodeport) DO UPDATE
            SET state = excluded.state, changed_at = pg_catalog.now(),
                joined_at = CASE WHEN excluded.state = 'active' THEN pg_catalog.now() ELSE s.joined_at END",
        &[host.into(), port.into(), state.into()],
    )
}

/// Is host:port in the pool, and in which state?
pub fn state_of(host: &str, port: i32) -> SpiResult<Option<String>> {
    Spi::get_one_with_args::<String>(
        "SELECT (SELECT state FROM autoscale.standby_nodes WHERE nodename = $1 AND nodeport = $2)",
        &[host.into(), port.into()],
    )
}

/// A node that left (returned) or failed to join is offered again: available, and its pending
/// deprovision requests are answered (the provisioner offered it back).
pub fn offer_again(host: &str, port: i32) -> SpiResult<()> {
    set_state(host, port, "available")?;
    Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET status = 'fulfilled', fulfilled_at = pg_catalog.now()
          WHERE kind = 'deprovision' AND status = 'pending'
            AND payload -> 'node' ->> 'host' = $1 AND (payload -> 'node' ->> 'port')::int = $2",
        &[host.into(), port.into()],
    )
}

pub fn add(host: &str, port: i32) -> SpiResult<()> {
    Spi::run_with_args(
        "INSERT INTO autoscale.standby_nodes (nodename, nodeport) VALUES ($1, $2)",
        &[host.into(), port.into()],
    )
}

/// Adds a warm clone of `primary` (or offers a returned/failed row again as one), with the result
/// of its first check.
pub fn add_clone(clone: &NodeAddr, primary: &NodeAddr, check: &Check) -> SpiResult<()> {
    Spi::run_with_args(
        "INSERT INTO autoscale.standby_nodes AS s (nodename, nodeport, primary_name, primary_port)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (nodename, nodeport) DO UPDATE
            SET state = 'available', changed_at = pg_catalog.now(),
                primary_name = excluded.primary_name, primary_port = excluded.primary_port",
        &[
            clone.host.clone().into(),
            clone.port.into(),
            primary.host.clone().into(),
            primary.port.into(),
        ],
    )?;
    record_check(clone, check)?;
    // a provisioner's answer to a provision_clone request for this primary
    Spi::run_with_args(
        "UPDATE autoscale.provision_requests SET status = 'fulfilled', fulfilled_at = pg_catalog.now()
          WHERE kind = 'provision_clone' AND status = 'pending'
            AND payload -> 'primary' ->> 'host' = $1 AND (payload -> 'primary' ->> 'port')::int = $2",
        &[primary.host.clone().into(), primary.port.into()],
    )
}

/// A node offered as an ordinary standby is no clone (any more).
pub fn forget_primary(host: &str, port: i32) -> SpiResult<()> {
    Spi::run_with_args(
        "UPDATE autoscale.standby_nodes
            SET primary_name = NULL, primary_port = NULL, clone_streaming = NULL, clone_lag_bytes = NULL,
                clone_checked_at = NULL, clone_error = NULL
          WHERE nodename = $1 AND nodeport = $2",
        &[host.into(), port.into()],
    )
}

/// Records one check of a clone.
pub fn record_check(clone: &NodeAddr, c: &Check) -> SpiResult<()> {
    Spi::run_with_args(
        "UPDATE autoscale.standby_nodes
            SET clone_streaming = $3, clone_lag_bytes = $4, clone_checked_at = pg_catalog.now(), clone_error = $5
          WHERE nodename = $1 AND nodeport = $2",
        &[
            clone.host.clone().into(),
            clone.port.into(),
            c.streaming.into(),
            c.lag_bytes.into(),
            c.error.clone().into(),
        ],
    )
}

/// The warm clones of the pool (every state), as the last check saw them.
pub fn clones() -> SpiResult<Vec<CloneInfo>> {
    Spi::connect(|c| {
        let rows = c.select(
            "SELECT nodename, nodeport, primary_name, primary_port, state, clone_streaming, clone_lag_bytes,
                    extract(epoch FROM pg_catalog.now() - clone_checked_at)::float8, clone_error
               FROM autoscale.standby_nodes
              WHERE primary_name IS NOT NULL
              ORDER BY added_at, nodename, nodeport",
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for r in rows {
            out.push(CloneInfo {
                node: NodeAddr::new(
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<i32>(2)?.unwrap_or_default(),
                ),
                primary: NodeAddr::new(
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<i32>(4)?.unwrap_or_default(),
                ),
                state: r.get::<String>(5)?.unwrap_or_default(),
                streaming: r.get(6)?,
                lag_bytes: r.get(7)?,
                checked_ago: r.get(8)?,
                error: r.get(9)?,
            });
        }
        Ok(out)
    })
}

/// Checks `pairs` of (clone, primary) in one parallel round trip (each primary's
/// pg_stat_replication and WAL position, each clone's WAL receiver and replay position).
pub fn check_clones(pairs: &[(NodeAddr, NodeAddr)], timeout_ms: u64) -> SpiResult<Vec<Check>> {
    let mut calls: Vec<(NodeAddr, &str)> = Vec::new();
    for (clone, primary) in pairs {
        calls.push((primary.clone(), citus::CLONE_PRIMARY_COMMAND));
        calls.push((clone.clone(), citus::CLONE_SELF_COMMAND));
    }
    let answers = citus::run_on_nodes(&calls, timeout_ms)?;
    Ok(pairs
        .iter()
        .enumerate()
        .map(|(i, (clone, primary))| {
            let at = |k: usize| match answers.get(k) {
                Some(Ok(s)) => Ok(s.as_str()),
                Some(Err(e)) => Err(e.as_str()),
                None => Err("no answer"),
            };
            clones::assess(clone, primary, at(2 * i), at(2 * i + 1))
        })
        .collect())
}

/// Checks every available or joining clone of the pool and records the result (each sample).
pub fn sample_clones(timeout_ms: u64) -> SpiResult<usize> {
    let pairs: Vec<(NodeAddr, NodeAddr)> = clones()?
        .into_iter()
        .filter(|c| matches!(c.state.as_str(), "available" | "joining"))
        .map(|c| (c.node, c.primary))
        .collect();
    let checks = check_clones(&pairs, timeout_ms)?;
    for ((clone, _), check) in pairs.iter().zip(&checks) {
        record_check(clone, check)?;
    }
    Ok(pairs.len())
}

pub fn remove(host: &str, port: i32) -> SpiResult<bool> {
    Ok(Spi::get_one_with_args::<i64>(
        "WITH d AS (DELETE FROM autoscale.standby_nodes WHERE nodename = $1 AND nodeport = $2 RETURNING 1)
         SELECT count(*) FROM d",
        &[host.into(), port.into()],
    )?
    .unwrap_or(0)
        > 0)
}
