//! Dead workers (a node that never comes back): after each sample the coordinator declares a
//! worker dead once every sample for `autoscale.dead_node_after` failed, records one `dead_node`
//! event and a row of `autoscale.dead_nodes`, and says whether it can be replaced (every
//! placement on it has a healthy copy elsewhere) or holds a sole copy (then nothing is disabled
//! or removed: the operator decides). The replace_dead operation reads the same plan
//! ([`plan_for`]) at each of its steps. The decisions are `autoscale_core::operations::dead`'s.

use autoscale_core::operations::dead::{self, CopyPlan, EVENT_DEAD_NODE, EVENT_NODE_BACK};
use autoscale_core::operations::NodeAddr;
use pgrx::prelude::*;
use pgrx::spi::SpiResult;

use crate::{citus, history, settings};

/// One row of autoscale.dead_nodes.
#[derive(Debug, Clone)]
pub struct DeadNode {
    pub node: NodeAddr,
    pub replaceable: bool,
    pub operation_id: Option<i64>,
}

fn rows() -> SpiResult<Vec<DeadNode>> {
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT nodename, nodeport, replaceable, operation_id FROM autoscale.dead_nodes
              ORDER BY declared_at, nodename, nodeport",
            None,
            &[],
        )? {
            out.push(DeadNode {
                node: NodeAddr::new(
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<i32>(2)?.unwrap_or_default(),
                ),
                replaceable: r.get::<bool>(3)?.unwrap_or(false),
                operation_id: r.get::<i64>(4)?,
            });
        }
        Ok(out)
    })
}

fn detail(node: &NodeAddr, plan: &CopyPlan) -> serde_json::Value {
    serde_json::json!({
        "node": node.to_string(),
        "replaceable": plan.replaceable(),
        "placements": plan.placements,
        "sole_copies": plan.sole,
        "copies": plan.copies.len(),
    })
}

/// The copy plan for `dead` now: healthy nodes are the active primary nodes whose latest sample
/// answered (the coordinator always) other than the dead node and other dead ones; copies go to
/// `replacement` first, then to the healthy workers that should have shards.
pub fn plan_for(dead_node: &NodeAddr, replacement: Option<&NodeAddr>) -> SpiResult<CopyPlan> {
    let health = citus::node_health()?;
    let declared: Vec<NodeAddr> = rows()?.into_iter().map(|d| d.node).collect();
    let healthy: Vec<NodeAddr> = health
        .iter()
        .filter(|h| h.answered && &h.node != dead_node && !declared.contains(&h.node))
        .map(|h| h.node.clone())
        .collect();
    let mut targets: Vec<NodeAddr> = replacement.into_iter().cloned().collect();
    for h in &health {
        if !h.coordinator && h.shouldhaveshards && !targets.contains(&h.node) {
            targets.push(h.node.clone());
        }
    }
    Ok(dead::assess(
        &citus::all_placements()?,
        dead_node,
        &healthy,
        &targets,
    ))
}

/// Declares dead workers, forgets the ones that answer again or left the cluster, and returns
/// the first dead worker that can be replaced and has no operation yet. Coordinator only.
pub fn review(now: f64) -> SpiResult<Option<NodeAddr>> {
    let after = settings::dead_node_after();
    let health = citus::node_health()?;
    let known = rows()?;
    let members: Vec<(String, i32)> = citus::primary_nodes()?
        .into_iter()
        .map(|n| (n.nodename, n.nodeport))
        .collect();
    // forget: left the cluster, or answers again while still active
    for d in &known {
        let member = members.contains(&(d.node.host.clone(), d.node.port));
        let back = health
            .iter()
            .any(|h| h.node == d.node && h.answered && h.unreachable_since.is_none());
        let running = d.operation_id.is_some_and(|id| {
            Spi::get_one_with_args::<bool>(
                "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE id = $1 AND status = 'running')",
                &[id.into()],
            )
            .ok()
            .flatten()
            .unwrap_or(false)
        });
        if running {
            continue;
        }
        if !member || back {
            forget(&d.node)?;
            let message = if member {
                format!(
                    "worker {} declared dead answers again; it is no longer considered dead",
                    d.node
                )
            } else {
                format!("dead worker {} left the cluster", d.node)
            };
            history::record_event(
                EVENT_NODE_BACK,
                &message,
                Some(serde_json::json!({"node": d.node.to_string(), "member": member})),
            )?;
        }
    }
    // declare
    for h in health.iter().filter(|h| !h.coordinator) {
        if known.iter().any(|d| d.node == h.node) {
            continue;
        }
        let Some(since) = h.unreachable_since else {
            continue;
        };
        if !dead::is_dead(Some(since), now, after) {
            continue;
        }
        let plan = plan_for(&h.node, None)?;
        let message = format!(
            "worker {} is dead: {}. {}",
            h.node,
            dead::unreachable_for(since, now, after),
            plan.summary(&h.node)
        );
        Spi::run_with_args(
            "INSERT INTO autoscale.dead_nodes (nodename, nodeport, unreachable_since, replaceable, sole_copies, message)
             VALUES ($1, $2, pg_catalog.to_timestamp($3), $4, $5, $6)
             ON CONFLICT (nodename, nodeport) DO NOTHING",
            &[
                h.node.host.clone().into(),
                h.node.port.into(),
                since.into(),
                plan.replaceable().into(),
                (plan.sole.len() as i32).into(),
                message.clone().into(),
            ],
        )?;
        history::record_event(EVENT_DEAD_NODE, &message, Some(detail(&h.node, &plan)))?;
    }
    // keep each verdict current (an operator may have fixed a sole copy); a change is an event
    for d in rows()? {
        if d.operation_id.is_some() {
            continue;
        }
        let plan = plan_for(&d.node, None)?;
        if plan.replaceable() != d.replaceable {
            let message = format!("dead worker {}: {}", d.node, plan.summary(&d.node));
            Spi::run_with_args(
                "UPDATE autoscale.dead_nodes SET replaceable = $3, sole_copies = $4, message = $5
                  WHERE nodename = $1 AND nodeport = $2",
                &[
                    d.node.host.clone().into(),
                    d.node.port.into(),
                    plan.replaceable().into(),
                    (plan.sole.len() as i32).into(),
                    message.clone().into(),
                ],
            )?;
            history::record_event(EVENT_DEAD_NODE, &message, Some(detail(&d.node, &plan)))?;
        }
    }
    Ok(rows()?
        .into_iter()
        .find(|d| d.replaceable && d.operation_id.is_none())
        .map(|d| d.node))
}

/// The replace_dead operation `id` took charge of `node`.
pub fn claim(node: &NodeAddr, id: i64) -> SpiResult<()> {
    Spi::run_with_args(
        "UPDATE autoscale.dead_nodes SET operation_id = $3 WHERE nodename = $1 AND nodeport = $2",
        &[node.host.clone().into(), node.port.into(), id.into()],
    )
}

/// An operation on `node` ended without removing it: the next review may start another one.
pub fn release(node: &NodeAddr) -> SpiResult<()> {
    Spi::run_with_args(
        "UPDATE autoscale.dead_nodes SET operation_id = NULL WHERE nodename = $1 AND nodeport = $2",
        &[node.host.clone().into(), node.port.into()],
    )
}

/// `node` is no longer dead (removed, or answers again).
pub fn forget(node: &NodeAddr) -> SpiResult<()> {
    Spi::run_with_args(
        "DELETE FROM autoscale.dead_nodes WHERE nodename = $1 AND nodeport = $2",
        &[node.host.clone().into(), node.port.into()],
    )
}

/// `host:port: message` of every dead worker, for explain().
pub fn summaries() -> SpiResult<Vec<String>> {
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT nodename || ':' || nodeport || ': ' || message
                    || CASE WHEN operation_id IS NOT NULL THEN ' (replace_dead operation ' || operation_id || ')' ELSE '' END
               FROM autoscale.dead_nodes ORDER BY declared_at",
            None,
            &[],
        )? {
            out.push(r.get::<String>(1)?.unwrap_or_default());
        }
        Ok(out)
    })
}
