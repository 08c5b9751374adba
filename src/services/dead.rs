//! Dead workers (a node that never comes back): after each sample the coordinator declares a
//! worker dead once every sample for `autoscale.dead_node_after` failed, records one `dead_node`
//! event and a row of `autoscale.dead_nodes` (store/dead_nodes.rs), and says whether it can be
//! replaced (every placement on it has a healthy copy elsewhere) or holds a sole copy (then
//! nothing is disabled or removed: the operator decides). The replace_dead operation reads the
//! same plan ([`plan_for`]) at each of its steps. The decisions are
//! `autoscale_core::operations::dead`'s.

use autoscale_core::operations::dead::{self, CopyPlan, EVENT_DEAD_NODE, EVENT_NODE_BACK};
use autoscale_core::operations::NodeAddr;

use crate::infra::errors::Result;
use crate::infra::{citus, settings};
use crate::store::dead_nodes as store;
use crate::store::{events, samples};

/// An active primary node and what the latest sample said of it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHealth {
    pub node: NodeAddr,
    pub coordinator: bool,
    pub shouldhaveshards: bool,
    /// The latest sample reached it (true when it was never sampled, e.g. a node just added,
    /// and for the coordinator, which runs this).
    pub answered: bool,
    /// The first failed sample after its last answer (epoch s); None when the latest answered.
    pub unreachable_since: Option<f64>,
}

/// Every active primary node (the coordinator included when registered) with its health at the
/// latest samples: Citus's metadata joined with the sample history.
fn node_health() -> Result<Vec<NodeHealth>> {
    let health = samples::health()?;
    Ok(citus::active_primaries()?
        .into_iter()
        .map(|(node, coordinator, shouldhaveshards)| {
            let (answered, since) = health
                .get(&(node.host.clone(), node.port))
                .copied()
                .unwrap_or((true, None));
            NodeHealth {
                coordinator,
                shouldhaveshards,
                answered: coordinator || answered,
                unreachable_since: if coordinator { None } else { since },
                node,
            }
        })
        .collect())
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
pub fn plan_for(dead_node: &NodeAddr, replacement: Option<&NodeAddr>) -> Result<CopyPlan> {
    let health = node_health()?;
    let declared: Vec<NodeAddr> = store::rows()?.into_iter().map(|d| d.node).collect();
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
pub fn review(now: f64) -> Result<Option<NodeAddr>> {
    let after = settings::dead_node_after();
    let health = node_health()?;
    let known = store::rows()?;
    let members: Vec<(String, i32)> = citus::primary_nodes()?
        .into_iter()
        .map(|n| (n.nodename, n.nodeport))
        .collect();
    // forget: left the cluster, or answers again while still active
    for d in &known {
        if let Some(id) = d.operation_id {
            if store::operation_running(id)? {
                continue;
            }
        }
        let member = members.contains(&(d.node.host.clone(), d.node.port));
        let back = health
            .iter()
            .any(|h| h.node == d.node && h.answered && h.unreachable_since.is_none());
        if !member || back {
            store::forget(&d.node)?;
            let message = if member {
                format!(
                    "worker {} declared dead answers again; it is no longer considered dead",
                    d.node
                )
            } else {
                format!("dead worker {} left the cluster", d.node)
            };
            events::record(
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
        store::insert(
            &h.node,
            since,
            plan.replaceable(),
            plan.sole.len() as i32,
            &message,
        )?;
        events::record(EVENT_DEAD_NODE, &message, Some(detail(&h.node, &plan)))?;
    }
    // keep each verdict current (an operator may have fixed a sole copy); a change is an event
    for d in store::rows()? {
        if d.operation_id.is_some() {
            continue;
        }
        let plan = plan_for(&d.node, None)?;
        if plan.replaceable() != d.replaceable {
            let message = format!("dead worker {}: {}", d.node, plan.summary(&d.node));
            store::update_verdict(
                &d.node,
                plan.replaceable(),
                plan.sole.len() as i32,
                &message,
            )?;
            events::record(EVENT_DEAD_NODE, &message, Some(detail(&d.node, &plan)))?;
        }
    }
    // -1 (never): no new replace_dead, not even for a worker declared dead earlier
    Ok(dead::pick_replacement(&listed()?, after))
}

/// The dead workers as the pure decisions take them.
fn listed() -> Result<Vec<dead::DeadWorker>> {
    Ok(store::rows()?
        .into_iter()
        .map(|d| dead::DeadWorker {
            node: d.node,
            replaceable: d.replaceable,
            in_operation: d.operation_id.is_some(),
        })
        .collect())
}

/// The replace_dead operation `id` took charge of `node`.
pub fn claim(node: &NodeAddr, id: i64) -> Result<()> {
    store::set_operation(node, Some(id))
}

/// An operation on `node` ended without removing it: the next review may start another one.
pub fn release(node: &NodeAddr) -> Result<()> {
    store::set_operation(node, None)
}

/// `node` is no longer dead (it was removed).
pub fn forget(node: &NodeAddr) -> Result<()> {
    store::forget(node)
}

/// `host:port: message` of every dead worker, for explain().
/// With automatic replacement off (`autoscale.dead_node_after` = -1), a last line says so.
pub fn summaries() -> Result<Vec<String>> {
    let mut lines = store::summaries()?;
    lines.extend(dead::replacement_off_note(
        &listed()?,
        settings::dead_node_after(),
    ));
    Ok(lines)
}
