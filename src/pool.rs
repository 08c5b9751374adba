//! The standby pool (autoscale.standby_nodes): nodes autoscale may add, and the nodes it added.
//! It owns that table's SQL; Citus calls go through crate::citus.
//!
//! The lifecycle (README, "The standby pool"): available -> joining -> active -> draining ->
//! returned. Only `available` nodes are claimed. `returned` means the node left the cluster and a
//! deprovision request told the provisioner it may stop it: it is not claimable until it is
//! offered again with add_standby_node(). A node whose join failed becomes `failed` (not
//! claimable either, until offered again); a scale-out cancelled or failed before its node joined
//! puts the node back to `available`.

use pgrx::prelude::*;
use pgrx::spi::SpiResult;

/// Claims the first available node for joining; None when the pool has none. A node with a
/// pending deprovision request is never claimed (the provisioner may be stopping it).
pub fn claim() -> SpiResult<Option<(String, i32)>> {
    Spi::connect_mut(|c| {
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

pub fn remove(host: &str, port: i32) -> SpiResult<bool> {
    Ok(Spi::get_one_with_args::<i64>(
        "WITH d AS (DELETE FROM autoscale.standby_nodes WHERE nodename = $1 AND nodeport = $2 RETURNING 1)
         SELECT count(*) FROM d",
        &[host.into(), port.into()],
    )?
    .unwrap_or(0)
        > 0)
}
