//! A node that never comes back: when an unreachable worker counts as dead, whether it can be
//! replaced safely, and what to copy where so that every shard gets back its replication factor.
//!
//! Pure: the caller reads the samples and `pg_dist_placement` and hands them over; nothing here
//! talks to Citus.
//!
//! - [`is_dead`]: a worker whose samples have all failed since `unreachable_since` is dead once
//!   that is longer ago than `autoscale.dead_node_after`.
//! - [`assess`]: every placement on the dead node either has a copy on a healthy node (then the
//!   node can be disabled and replaced) or it is a sole copy (then nothing is removed or disabled
//!   and the operator decides).
//! - [`CopyPlan`]: one `citus_copy_shard_placement` per shard group that lost a copy (colocated
//!   shards are copied together by Citus), from a healthy holder to a healthy node that lacks it,
//!   the replacement node first; and whether the reference tables need replicating.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::NodeAddr;
use crate::duration::format_secs;

/// Default seconds a worker must stay unreachable before it is declared dead.
pub const DEFAULT_DEAD_NODE_AFTER: f64 = 120.0;

/// Shortest `autoscale.dead_node_after` (seconds): a few failed samples are not a death.
pub const DEAD_NODE_AFTER_MIN_S: i32 = 10;
/// Longest `autoscale.dead_node_after` (seconds): 30 days.
pub const DEAD_NODE_AFTER_MAX_S: i32 = 30 * 24 * 3600;

/// `autoscale.dead_node_after` in seconds must be -1 (never) or between 10 s and 30 days. The
/// error names the setting, the value and what is allowed.
pub fn check_dead_node_after(secs: i32) -> Result<(), String> {
    if secs == -1 || (DEAD_NODE_AFTER_MIN_S..=DEAD_NODE_AFTER_MAX_S).contains(&secs) {
        return Ok(());
    }
    Err(format!(
        "autoscale.dead_node_after ({secs} s) must be -1 (never declare a worker dead) or between \
         {DEAD_NODE_AFTER_MIN_S} s and {DEAD_NODE_AFTER_MAX_S} s (30 days), for example '2min'"
    ))
}

/// Event kind: a worker was declared dead (once per node, until it answers again or leaves).
pub const EVENT_DEAD_NODE: &str = "dead_node";
/// Event kind: a worker declared dead answers again.
pub const EVENT_NODE_BACK: &str = "dead_node_back";

/// Whether a worker unreachable since `unreachable_since` (the first failed sample after its
/// last answer; None when its latest sample answered) is dead at `now`. `dead_after` <= 0 never
/// declares a node dead.
pub fn is_dead(unreachable_since: Option<f64>, now: f64, dead_after: f64) -> bool {
    match unreachable_since {
        Some(since) if dead_after > 0.0 => now - since >= dead_after,
        _ => false,
    }
}

/// A worker already declared dead, as `autoscale.dead_nodes` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadWorker {
    pub node: NodeAddr,
    /// Every placement on it has a healthy copy elsewhere.
    pub replaceable: bool,
    /// A replace_dead operation has it in charge.
    pub in_operation: bool,
}

/// The dead worker a new replace_dead operation should start for, if any. With
/// `autoscale.dead_node_after` = -1 (`dead_after` <= 0) automatic replacement is off: no new
/// replace_dead starts, not even for a worker declared dead before the setting changed (it stays
/// listed as dead; the operator decides). An operation already running goes on.
pub fn pick_replacement(dead: &[DeadWorker], dead_after: f64) -> Option<NodeAddr> {
    if dead_after <= 0.0 {
        return None;
    }
    dead.iter()
        .find(|d| d.replaceable && !d.in_operation)
        .map(|d| d.node.clone())
}

/// explain()'s line when dead workers wait only because automatic replacement is off.
pub fn replacement_off_note(dead: &[DeadWorker], dead_after: f64) -> Option<String> {
    let waiting: Vec<String> = dead
        .iter()
        .filter(|d| !d.in_operation)
        .map(|d| d.node.to_string())
        .collect();
    (dead_after <= 0.0 && !waiting.is_empty()).then(|| {
        format!(
            "automatic replacement is off (autoscale.dead_node_after = -1): dead worker(s) {} \
             are left to the operator",
            waiting.join(", ")
        )
    })
}

/// One shard placement, as `pg_dist_placement` and its shard's table say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub shardid: i64,
    /// Shards with the same key are colocated and move or are copied together (colocation id
    /// and shard range; the shard id for a table colocated with nothing).
    pub group: String,
    pub node: NodeAddr,
    /// A reference table's shard: it belongs on every node.
    pub reference: bool,
    /// Copies the shard should have (`pg_dist_colocation.replicationfactor`; for a table
    /// colocated with nothing, the placements it has, the dead node's included).
    pub factor: usize,
}

/// A copy to make: `citus_copy_shard_placement(shardid, from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copy {
    pub shardid: i64,
    pub from: NodeAddr,
    pub to: NodeAddr,
}

impl fmt::Display for Copy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shard {} from {} to {}",
            self.shardid, self.from, self.to
        )
    }
}

/// What replacing a dead node takes, as of now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyPlan {
    /// Placements on the dead node.
    pub placements: usize,
    /// Shards whose only copies are on the dead node (or on other nodes that are not healthy):
    /// the node must not be disabled or removed.
    pub sole: Vec<i64>,
    /// Copies that restore the replication factor, one per shard group, in shard id order.
    pub copies: Vec<Copy>,
    /// Shard groups that lack a copy and have no healthy node left to take one.
    pub unplaceable: Vec<i64>,
    /// Healthy nodes that lack a reference table shard (`replicate_reference_tables()` fixes it).
    pub reference_missing: Vec<NodeAddr>,
}

impl CopyPlan {
    /// Every placement on the dead node has a healthy copy elsewhere: it may be disabled.
    pub fn replaceable(&self) -> bool {
        self.sole.is_empty()
    }

    /// Nothing is left to copy or replicate.
    pub fn complete(&self) -> bool {
        self.sole.is_empty()
            && self.copies.is_empty()
            && self.unplaceable.is_empty()
            && self.reference_missing.is_empty()
    }

    /// One line for events and `status`.
    pub fn summary(&self, dead: &NodeAddr) -> String {
        let n = self.placements;
        let placements = format!("{n} placement{}", if n == 1 { "" } else { "s" });
        if !self.sole.is_empty() {
            let shown: Vec<String> = self.sole.iter().take(10).map(|s| s.to_string()).collect();
            let more = if self.sole.len() > 10 { ", ..." } else { "" };
            return format!(
                "{dead} holds {placements}, {} of them the only copy (shard {}{more}): it is not \
                 disabled or removed; bring it back, or decide (citus_disable_node / \
                 citus_remove_node lose those shards)",
                self.sole.len(),
                shown.join(", ")
            );
        }
        format!(
            "{dead} holds {placements}, each with a healthy copy elsewhere: it can be disabled and \
             replaced ({} shard group{} to copy)",
            self.copies.len() + self.unplaceable.len(),
            if self.copies.len() + self.unplaceable.len() == 1 {
                ""
            } else {
                "s"
            }
        )
    }
}

/// What to do about `dead`: which of its placements are sole copies, and which copies restore the
/// replication factor. `placements` are all placements of the cluster; `healthy` the nodes that
/// answer and are active (the coordinator included when it holds shards); `targets` the nodes
/// that may take a copy of a distributed shard, in order of preference (the replacement first).
/// A target must be healthy; the dead node never is one.
pub fn assess(
    placements: &[Placement],
    dead: &NodeAddr,
    healthy: &[NodeAddr],
    targets: &[NodeAddr],
) -> CopyPlan {
    let healthy: BTreeSet<&NodeAddr> = healthy.iter().filter(|n| *n != dead).collect();
    let mut plan = CopyPlan {
        placements: placements.iter().filter(|p| &p.node == dead).count(),
        ..CopyPlan::default()
    };
    // shard -> nodes holding it
    let mut holders: BTreeMap<i64, Vec<&Placement>> = BTreeMap::new();
    for p in placements {
        holders.entry(p.shardid).or_default().push(p);
    }
    // shard groups that lost a copy on the dead node: group -> its lowest shard id
    let mut groups: BTreeMap<&str, i64> = BTreeMap::new();
    for p in placements.iter().filter(|p| &p.node == dead) {
        let copies = &holders[&p.shardid];
        if !copies.iter().any(|c| healthy.contains(&c.node)) {
            plan.sole.push(p.shardid);
            continue;
        }
        if p.reference {
            continue;
        }
        let rep = groups.entry(p.group.as_str()).or_insert(p.shardid);
        *rep = (*rep).min(p.shardid);
    }
    plan.sole.sort_unstable();
    plan.sole.dedup();
    let mut reps: Vec<i64> = groups.into_values().collect();
    reps.sort_unstable();
    for shard in reps {
        let copies = &holders[&shard];
        let want = copies.iter().map(|c| c.factor).max().unwrap_or(1);
        let have: Vec<&NodeAddr> = copies
            .iter()
            .map(|c| &c.node)
            .filter(|n| healthy.contains(n))
            .collect();
        let from = have[0].clone();
        let free = targets
            .iter()
            .filter(|t| healthy.contains(t) && !copies.iter().any(|c| &c.node == *t));
        let mut need = want.saturating_sub(have.len());
        for to in free.take(need) {
            plan.copies.push(Copy {
                shardid: shard,
                from: from.clone(),
                to: to.clone(),
            });
            need -= 1;
        }
        if need > 0 {
            plan.unplaceable.push(shard);
        }
    }
    // reference tables belong on every healthy node
    let reference: BTreeSet<i64> = placements
        .iter()
        .filter(|p| p.reference)
        .map(|p| p.shardid)
        .collect();
    for node in targets.iter().filter(|t| healthy.contains(t)) {
        let lacks = reference
            .iter()
            .any(|s| !holders[s].iter().any(|c| &c.node == node));
        if lacks && !plan.reference_missing.contains(node) {
            plan.reference_missing.push(node.clone());
        }
    }
    plan
}

/// `unreachable for 2m 5s (dead after 2m)`.
pub fn unreachable_for(since: f64, now: f64, dead_after: f64) -> String {
    format!(
        "unreachable for {} (autoscale.dead_node_after = {})",
        format_secs(now - since),
        format_secs(dead_after)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(port: i32) -> NodeAddr {
        NodeAddr::new("10.0.0.1", port)
    }

    fn p(shardid: i64, group: &str, port: i32) -> Placement {
        Placement {
            shardid,
            group: group.to_string(),
            node: n(port),
            reference: false,
            factor: 2,
        }
    }

    fn r(shardid: i64, port: i32) -> Placement {
        Placement {
            shardid,
            group: format!("ref{shardid}"),
            node: n(port),
            reference: true,
            factor: 1,
        }
    }

    #[test]
    fn never_stops_replacing_workers_already_declared_dead() {
        let dead = vec![
            DeadWorker {
                node: n(1),
                replaceable: false,
                in_operation: false,
            },
            DeadWorker {
                node: n(2),
                replaceable: true,
                in_operation: false,
            },
        ];
        assert_eq!(pick_replacement(&dead, 120.0), Some(n(2)));
        assert_eq!(replacement_off_note(&dead, 120.0), None);
        // -1: the worker declared dead before stays dead but no replace_dead starts for it
        assert_eq!(pick_replacement(&dead, -1.0), None);
        let note = replacement_off_note(&dead, -1.0).unwrap();
        assert!(note.contains("automatic replacement is off"), "{note}");
        assert!(note.contains(&n(2).to_string()), "{note}");
        // one already in an operation is not waiting for the operator
        let running = vec![DeadWorker {
            node: n(2),
            replaceable: true,
            in_operation: true,
        }];
        assert_eq!(pick_replacement(&running, 120.0), None);
        assert_eq!(replacement_off_note(&running, -1.0), None);
    }

    #[test]
    fn dead_node_after_is_never_or_at_least_ten_seconds() {
        for ok in [-1, 10, 120, DEAD_NODE_AFTER_MAX_S] {
            assert_eq!(check_dead_node_after(ok), Ok(()), "{ok}");
        }
        for bad in [-2, 0, 1, 9, DEAD_NODE_AFTER_MAX_S + 1] {
            let e = check_dead_node_after(bad).unwrap_err();
            assert!(e.contains(&format!("({bad} s)")), "{e}");
            assert!(
                e.contains("must be -1 (never declare a worker dead) or between 10 s"),
                "{e}"
            );
        }
    }

    #[test]
    fn dead_only_after_the_whole_interval_of_failed_samples() {
        assert!(!is_dead(None, 1000.0, 120.0), "answered at the last sample");
        assert!(!is_dead(Some(900.0), 1019.9, 120.0));
        assert!(is_dead(Some(900.0), 1020.0, 120.0));
        assert!(
            !is_dead(Some(0.0), 1.0e9, 0.0),
            "0 never declares a node dead"
        );
        assert!(!is_dead(Some(0.0), 1.0e9, -1.0));
    }

    /// rf 2 on workers 1..3, worker 3 dies, 4 is the replacement.
    fn rf2() -> Vec<Placement> {
        vec![
            p(1, "c1:a", 1),
            p(1, "c1:a", 2),
            p(2, "c1:b", 2),
            p(2, "c1:b", 3),
            p(3, "c1:c", 1),
            p(3, "c1:c", 3),
            // colocated with 2 and 3
            p(12, "c1:b", 2),
            p(12, "c1:b", 3),
            p(13, "c1:c", 1),
            p(13, "c1:c", 3),
            r(100, 0),
            r(100, 1),
            r(100, 2),
            r(100, 3),
        ]
    }

    #[test]
    fn a_replicated_node_is_replaceable_one_copy_per_shard_group_onto_the_replacement() {
        let healthy = [n(0), n(1), n(2), n(4)];
        let plan = assess(&rf2(), &n(3), &healthy, &[n(4), n(1), n(2)]);
        assert!(plan.replaceable());
        assert_eq!(plan.placements, 5);
        assert_eq!(
            plan.copies,
            vec![
                Copy {
                    shardid: 2,
                    from: n(2),
                    to: n(4)
                },
                Copy {
                    shardid: 3,
                    from: n(1),
                    to: n(4)
                },
            ]
        );
        assert!(plan.unplaceable.is_empty());
        assert_eq!(plan.reference_missing, vec![n(4)]);
        assert!(!plan.complete());
        assert!(plan.summary(&n(3)).contains("2 shard groups to copy"));
    }

    #[test]
    fn after_the_copies_the_plan_is_complete() {
        let mut all = rf2();
        for s in [2, 12, 3, 13] {
            all.push(p(s, if s % 10 == 2 { "c1:b" } else { "c1:c" }, 4));
        }
        all.push(r(100, 4));
        let plan = assess(&all, &n(3), &[n(0), n(1), n(2), n(4)], &[n(4), n(1), n(2)]);
        assert!(plan.complete(), "{plan:?}");
        assert!(plan.replaceable());
    }

    #[test]
    fn a_sole_copy_blocks_and_is_named() {
        let mut all = rf2();
        all.push(p(7, "c2:a", 3));
        let plan = assess(&all, &n(3), &[n(0), n(1), n(2), n(4)], &[n(4)]);
        assert!(!plan.replaceable());
        assert_eq!(plan.sole, vec![7]);
        assert!(plan.summary(&n(3)).contains("the only copy (shard 7)"));
    }

    #[test]
    fn a_copy_on_another_unhealthy_node_is_not_a_healthy_copy() {
        // shard 2 is on 2 and 3; 2 does not answer either
        let plan = assess(&rf2(), &n(3), &[n(0), n(1), n(4)], &[n(4), n(1)]);
        assert_eq!(plan.sole, vec![2, 12]);
        assert!(!plan.replaceable());
    }

    #[test]
    fn without_a_replacement_the_copies_go_to_a_healthy_node_that_lacks_the_shard() {
        let plan = assess(&rf2(), &n(3), &[n(0), n(1), n(2)], &[n(1), n(2)]);
        assert_eq!(
            plan.copies,
            vec![
                Copy {
                    shardid: 2,
                    from: n(2),
                    to: n(1)
                },
                Copy {
                    shardid: 3,
                    from: n(1),
                    to: n(2)
                },
            ]
        );
        assert!(plan.reference_missing.is_empty());
    }

    #[test]
    fn no_room_for_a_copy_is_unplaceable_not_a_sole_copy() {
        // rf 2 with only worker 1 left
        let all = vec![p(1, "a", 1), p(1, "a", 3)];
        let plan = assess(&all, &n(3), &[n(1)], &[n(1)]);
        assert!(plan.replaceable());
        assert!(plan.copies.is_empty());
        assert_eq!(plan.unplaceable, vec![1]);
        assert!(!plan.complete());
    }

    #[test]
    fn the_dead_node_is_never_a_target_or_a_source() {
        let plan = assess(&rf2(), &n(3), &[n(0), n(1), n(2), n(3)], &[n(3), n(4)]);
        assert!(plan.copies.iter().all(|c| c.to != n(3) && c.from != n(3)));
        assert!(
            plan.copies.is_empty(),
            "4 is not healthy, 3 is the dead node"
        );
        assert_eq!(plan.unplaceable, vec![2, 3]);
    }

    #[test]
    fn a_node_without_placements_is_replaceable_and_complete() {
        let plan = assess(&[p(1, "a", 1)], &n(3), &[n(1)], &[n(1)]);
        assert_eq!(plan.placements, 0);
        assert!(plan.complete());
    }
}
