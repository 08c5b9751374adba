//! The standby pool (autoscale.standby_nodes): nodes autoscale may add, and the nodes it added.
//! It owns that table's SQL. (A claim reads autoscale.provision_requests in the same statement:
//! a node with a pending deprovision request is never claimed.)
//!
//! The lifecycle (README, "The standby pool"): available -> joining -> active -> draining ->
//! returned. Only `available` nodes are claimed. `returned` means the node left the cluster and a
//! deprovision request told the provisioner it may stop it: it is not claimable until it is
//! offered again with add_standby_node(). A node whose join failed becomes `failed` (not
//! claimable either, until offered again); a scale-out cancelled or failed before its node joined
//! puts the node back to `available`.

use std::collections::HashMap;

use autoscale_core::clones::{Check, CloneInfo};
use autoscale_core::operations::NodeAddr;
use pgrx::prelude::*;

use crate::infra::errors::Result;
use crate::infra::spi::{node_at, select_rows};

/// Claims the first available node for joining (never a warm clone: a replica cannot join as an
/// empty node; clones join by a split-out); None when the pool has none. A node with a
/// pending deprovision request is never claimed (the provisioner may be stopping it).
pub fn claim() -> Result<Option<(String, i32)>> {
    Ok(Spi::connect_mut(|c| {
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
        Ok::<_, pgrx::spi::SpiError>(Some((h.unwrap_or_default(), p.unwrap_or_default())))
    })?)
}

/// Claims host:port from the pool when it is available (joining); whether it was.
pub fn claim_node(host: &str, port: i32) -> Result<bool> {
    Ok(Spi::connect_mut(|c| {
        let t = c.update(
            "UPDATE autoscale.standby_nodes SET state = 'joining', changed_at = pg_catalog.now()
              WHERE nodename = $1 AND nodeport = $2 AND state = 'available'
             RETURNING nodeport",
            None,
            &[host.into(), port.into()],
        )?;
        Ok::<_, pgrx::spi::SpiError>(!t.is_empty())
    })?)
}

/// Sets a pool node's state, inserting the node when it is not in the pool (a worker that a
/// provisioner or a person added and autoscale now manages).
pub fn set_state(host: &str, port: i32, state: &str) -> Result<()> {
    Ok(Spi::run_with_args(
        "INSERT INTO autoscale.standby_nodes AS s (nodename, nodeport, state, joined_at)
         VALUES ($1, $2, $3, CASE WHEN $3 = 'active' THEN pg_catalog.now() END)
         ON CONFLICT (nodename, nodeport) DO UPDATE
            SET state = excluded.state, changed_at = pg_catalog.now(),
                joined_at = CASE WHEN excluded.state = 'active' THEN pg_catalog.now() ELSE s.joined_at END",
        &[host.into(), port.into(), state.into()],
    )?)
}

/// Is host:port in the pool, and in which state?
pub fn state_of(host: &str, port: i32) -> Result<Option<String>> {
    Ok(Spi::get_one_with_args::<String>(
        "SELECT (SELECT state FROM autoscale.standby_nodes WHERE nodename = $1 AND nodeport = $2)",
        &[host.into(), port.into()],
    )?)
}

pub fn add(host: &str, port: i32) -> Result<()> {
    Ok(Spi::run_with_args(
        "INSERT INTO autoscale.standby_nodes (nodename, nodeport) VALUES ($1, $2)",
        &[host.into(), port.into()],
    )?)
}

/// Adds a warm clone of `primary` (or offers a returned/failed row again as one), with the result
/// of its first check.
pub fn add_clone(clone: &NodeAddr, primary: &NodeAddr, check: &Check) -> Result<()> {
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
    record_check(clone, check)
}

/// A node offered as an ordinary standby is no clone (any more).
pub fn forget_primary(host: &str, port: i32) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.standby_nodes
            SET primary_name = NULL, primary_port = NULL, clone_streaming = NULL, clone_lag_bytes = NULL,
                clone_checked_at = NULL, clone_error = NULL
          WHERE nodename = $1 AND nodeport = $2",
        &[host.into(), port.into()],
    )?)
}

/// Records one check of a clone.
/// The sampler records it; a row an operation holds locked (its transaction may wait on a hung
/// node) is skipped rather than waited for: the next sample checks the clone again.
pub fn record_check(clone: &NodeAddr, c: &Check) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.standby_nodes
            SET clone_streaming = $3, clone_lag_bytes = $4, clone_checked_at = pg_catalog.now(), clone_error = $5
          WHERE ctid = (SELECT ctid FROM autoscale.standby_nodes WHERE nodename = $1 AND nodeport = $2
                           FOR UPDATE SKIP LOCKED)",
        &[
            clone.host.clone().into(),
            clone.port.into(),
            c.streaming.into(),
            c.lag_bytes.into(),
            c.error.clone().into(),
        ],
    )?)
}

/// The warm clones of the pool (every state), as the last check saw them.
pub fn clones() -> Result<Vec<CloneInfo>> {
    Ok(select_rows(
        "SELECT nodename, nodeport, primary_name, primary_port, state, clone_streaming, clone_lag_bytes,
                    extract(epoch FROM pg_catalog.now() - clone_checked_at)::float8, clone_error
               FROM autoscale.standby_nodes
              WHERE primary_name IS NOT NULL
              ORDER BY added_at, nodename, nodeport",
        &[],
        |r| {
            Ok(CloneInfo {
                node: node_at(r, 1)?,
                primary: node_at(r, 3)?,
                state: r.get::<String>(5)?.unwrap_or_default(),
                streaming: r.get(6)?,
                lag_bytes: r.get(7)?,
                checked_ago: r.get(8)?,
                error: r.get(9)?,
            })
        },
    )?)
}

pub fn remove(host: &str, port: i32) -> Result<bool> {
    Ok(Spi::get_one_with_args::<i64>(
        "WITH d AS (DELETE FROM autoscale.standby_nodes WHERE nodename = $1 AND nodeport = $2 RETURNING 1)
         SELECT count(*) FROM d",
        &[host.into(), port.into()],
    )?
    .unwrap_or(0)
        > 0)
}

/// When each node autoscale added and that is active now joined (epoch seconds), keyed by
/// (nodename, nodeport).
pub fn active_joined_at() -> Result<HashMap<(String, i32), Option<f64>>> {
    super::by_node(
        "SELECT nodename, nodeport, extract(epoch FROM joined_at)::float8
           FROM autoscale.standby_nodes WHERE state = 'active'",
        |r| r.get::<f64>(3),
    )
}

/// How many pool nodes are in each state (every state listed, 0 included), for the metrics.
pub fn counts_by_state() -> Result<Vec<(String, Option<f64>)>> {
    Ok(select_rows(
        "SELECT s.state, count(n.state)::float8
               FROM pg_catalog.unnest(ARRAY['available', 'joining', 'active', 'draining', 'returned', 'failed']) s(state)
               LEFT JOIN autoscale.standby_nodes n ON n.state = s.state
              GROUP BY s.state ORDER BY s.state",
&[],
|r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<f64>(2)?)),
)?)
}
