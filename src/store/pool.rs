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

use pgrx::prelude::*;

use crate::infra::errors::Result;

/// Claims the first available node for joining; None when the pool has none. A node with a
/// pending deprovision request is never claimed (the provisioner may be stopping it).
pub fn claim() -> Result<Option<(String, i32)>> {
    Ok(Spi::connect_mut(|c| {
        let t = c.update(
            "UPDATE autoscale.standby_nodes s SET state = 'joining', changed_at = pg_catalog.now()
              WHERE (nodename, nodeport) = (
                    SELECT a.nodename, a.nodeport FROM autoscale.standby_nodes a
                     WHERE a.state = 'available'
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
    Ok(Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT s.state, count(n.state)::float8
               FROM pg_catalog.unnest(ARRAY['available', 'joining', 'active', 'draining', 'returned', 'failed']) s(state)
               LEFT JOIN autoscale.standby_nodes n ON n.state = s.state
              GROUP BY s.state ORDER BY s.state",
            None,
            &[],
        )? {
            out.push((r.get::<String>(1)?.unwrap_or_default(), r.get::<f64>(2)?));
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })?)
}
