//! The operation state machine drawn from its tables ([`table`](super::table)): [`edges`] are
//! the edges each kind's table declares. From them come the Mermaid diagram in
//! docs/architecture.md (a test keeps it up to date) and the reachability checks: every step of
//! a kind is reachable from where that kind starts, and every running step has a path to an end
//! (succeeded, failed or cancelled).
//!
//! [`explored`] finds the same edges the other way, by running [`advance`] and [`cancel`] on
//! every outcome each step's [`action`] can give; a test checks that the two agree, so the
//! tables cannot drift from what the machine does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::table::{self, Cancel, Next};
use super::{
    action, advance, cancel, new_operation, with_coordinator_shards, Action, JobState, Kind,
    Limits, NodeAddr, Operation, Outcome, Status, Step,
};

/// Where an edge leads: another running step, or an end status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Step(Step),
    End(Status),
}

/// The edges of one kind: (from, to) -> the outcomes that take it, in a stable order.
pub type Edges = BTreeMap<(Step, Target), BTreeSet<&'static str>>;

const HOST: &str = "10.0.0.1";

/// The coordinator of the explored operations that set its shouldhaveshards.
fn coordinator() -> NodeAddr {
    NodeAddr::new(HOST, 5431)
}

/// The value a kind sets on the coordinator ([`with_coordinator_shards`]): a scale-out sheds, a
/// scale-in to a single node gives the shards back.
fn coordinator_value(kind: Kind) -> bool {
    kind == Kind::ScaleIn
}

/// The steps a kind starts at, as its table declares them.
pub fn start_steps(kind: Kind) -> Vec<Step> {
    let mut steps = table::table(kind).starts.to_vec();
    steps.sort();
    steps
}

/// The edges `kind`'s table declares: each outcome of each step to where it leads (a failure to
/// the step's restoring step when it has one), and a cancel. Staying at a step is not an edge.
pub fn edges(kind: Kind) -> Edges {
    let mut edges = Edges::new();
    for row in table::table(kind).steps {
        let mut add = |label: &'static str, to: Target| {
            edges.entry((row.step, to)).or_default().insert(label);
        };
        let failed = row
            .on_fail
            .map_or(Target::End(Status::Failed), Target::Step);
        for (on, next) in row.edges() {
            let to: Vec<Target> = match next {
                Next::Go(s) | Next::FallBack(s) => vec![Target::Step(s)],
                Next::Choose(c) => c.targets().iter().map(|s| Target::Step(*s)).collect(),
                Next::Stay => Vec::new(),
                Next::Succeed => vec![Target::End(Status::Succeeded)],
                Next::Fail => vec![failed],
                Next::Restored => vec![Target::End(Status::Failed), Target::End(Status::Cancelled)],
            };
            for t in to {
                add(on.label(), t);
            }
        }
        match row.on_cancel {
            Cancel::Now => add("cancel", Target::End(Status::Cancelled)),
            Cancel::Via(s) => add("cancel", Target::Step(s)),
            Cancel::No(_) => {}
        }
    }
    edges
}

/// The steps a new operation of `kind` starts at, found by making them ([`new_operation`] with
/// and without a given node, and with the coordinator's shouldhaveshards to set).
pub fn explored_start_steps(kind: Kind) -> Vec<Step> {
    let mut steps: Vec<Step> = [None, Some(NodeAddr::new(HOST, 5432))]
        .into_iter()
        .filter_map(|node| new_operation(1, kind, node, "", 0.0).ok())
        .flat_map(|op| {
            let with = with_coordinator_shards(op.clone(), coordinator(), coordinator_value(kind));
            [op.step, with.step]
        })
        .collect();
    steps.sort();
    steps.dedup();
    steps
}

/// Running operations of `kind` at `step`, in the shapes that matter to the machine: a first
/// attempt and a last attempt; a scale-out that has or has not added nodes yet; a scale-in that
/// is restoring because it was cancelled or because it failed; with and without the
/// coordinator's shouldhaveshards to set.
fn shapes(kind: Kind, step: Step, limits: &Limits) -> Vec<Operation> {
    let mut base = new_operation(1, kind, Some(NodeAddr::new(HOST, 5432)), "explore", 0.0)
        .expect("a node is given");
    base.step = step;
    if kind == Kind::ReplaceDead || kind == Kind::Resize {
        base.node = Some(NodeAddr::new(HOST, 5435));
    }
    base.job_id = Some(7);
    base.request_id = Some(3);
    if kind == Kind::SplitOut {
        base.primary = Some(NodeAddr::new(HOST, 5435));
    }
    if kind == Kind::IsolateTenant {
        base.tenant = Some(super::isolate::TenantRef {
            table: "t".into(),
            value: "5".into(),
            shard: None,
            from: None,
        });
    }
    let mut out = Vec::new();
    for added in [false, true] {
        for last_attempt in [false, true] {
            for cancelled in [false, true] {
                let mut op = base.clone();
                if added {
                    // one of three added: the next node may be the last or not
                    op.want = 3;
                    op.added = vec![NodeAddr::new(HOST, 5433)];
                }
                if last_attempt {
                    op.attempts = limits.max_attempts.saturating_sub(1);
                }
                op.cancelled = cancelled;
                if kind != Kind::Rebalance {
                    let mut with = op.clone();
                    with.coordinator = Some(coordinator());
                    with.coordinator_shards = Some(coordinator_value(kind));
                    out.push(with);
                }
                out.push(op);
            }
        }
    }
    out
}

/// The outcomes an action can give, each with a short label for the diagram.
fn outcomes(a: &Action) -> Vec<(&'static str, Outcome)> {
    let err = ("error", Outcome::Error("boom".into()));
    let node = NodeAddr::new(HOST, 5434);
    let job = |state| Outcome::Job {
        state,
        done: 1,
        total: 2,
    };
    let tenant = |node, isolated| Outcome::Tenant {
        shard: 102_008,
        node,
        isolated,
        changed: true,
    };
    let mut v = match a {
        Action::StartRebalance { .. } => vec![
            ("job started", Outcome::JobStarted(Some(7))),
            ("nothing to move", Outcome::JobStarted(None)),
        ],
        Action::PollJob { .. } => vec![
            ("job finished", job(JobState::Finished)),
            ("job failed", job(JobState::Failed)),
            ("job cancelled", job(JobState::Cancelled)),
            ("job running", job(JobState::Running)),
            ("job scheduled too long", job(JobState::Scheduled)),
        ],
        Action::PickStandby => vec![
            ("picked", Outcome::Picked(node)),
            ("pool empty", Outcome::PoolEmpty),
        ],
        Action::RequestNode => vec![("requested", Outcome::Requested(3))],
        Action::CopyPlacements { .. } => vec![
            (
                "copied one",
                Outcome::Copied {
                    shard: Some("shard 1".into()),
                    left: 1,
                },
            ),
            (
                "all copied",
                Outcome::Copied {
                    shard: None,
                    left: 0,
                },
            ),
        ],
        Action::CheckForNode { .. } => vec![
            (
                "node in pool",
                Outcome::Appeared {
                    node: node.clone(),
                    in_cluster: false,
                },
            ),
            (
                "node in cluster",
                Outcome::Appeared {
                    node,
                    in_cluster: true,
                },
            ),
            ("no node by provision_timeout", Outcome::NotYet),
        ],
        Action::CountPlacements { .. } => vec![
            ("empty", Outcome::Placements(0)),
            ("placements left", Outcome::Placements(2)),
        ],
        Action::AddNode { .. }
        | Action::SetShouldHaveShards { .. }
        | Action::SetCoordinatorShards { .. }
        | Action::CleanupOrphaned { .. }
        | Action::RemoveNode { .. }
        | Action::ReturnToPool { .. }
        | Action::DisableNode { .. }
        | Action::RemoveDeadNode { .. }
        | Action::DropClone { .. } => vec![("ok", Outcome::Ok)],
        Action::AddClone { .. } => vec![
            ("registered", Outcome::Ok),
            ("clone not ready", Outcome::CloneUnusable("lagging".into())),
        ],
        Action::CheckSplit { .. } => vec![
            (
                "shards for the clone",
                Outcome::SplitPlan {
                    to_clone: 4,
                    total: 8,
                },
            ),
            (
                "nothing for the clone",
                Outcome::SplitPlan {
                    to_clone: 0,
                    total: 8,
                },
            ),
            ("clone not ready", Outcome::CloneUnusable("lagging".into())),
        ],
        Action::PromoteClone { .. } => vec![
            ("promoted and split", Outcome::Ok),
            (
                "catch-up timed out, clone diverged",
                Outcome::CloneUnusable("timeout".into()),
            ),
        ],
        Action::VerifySplit { .. } => vec![
            (
                "clone holds shards",
                Outcome::Split {
                    clone: 4,
                    primary: 4,
                },
            ),
            (
                "clone holds none",
                Outcome::Split {
                    clone: 0,
                    primary: 8,
                },
            ),
        ],
        Action::IsolateTenant { .. } => vec![
            ("isolated", tenant(NodeAddr::new(HOST, 5433), true)),
            ("still shared", tenant(NodeAddr::new(HOST, 5433), false)),
        ],
        Action::MoveTenant { target, .. } => vec![
            ("on the target", tenant(target.clone(), true)),
            ("elsewhere", tenant(NodeAddr::new(HOST, 5433), true)),
        ],
        Action::VerifyTenant { target, .. } => vec![
            ("own shard on the target", tenant(target.clone(), true)),
            ("still shared", tenant(target.clone(), false)),
            ("elsewhere", tenant(NodeAddr::new(HOST, 5433), true)),
        ],
        Action::Nothing => return Vec::new(),
    };
    v.push(err);
    v
}

/// Every edge [`advance`] and [`cancel`] take for `kind`: each step that belongs to it, in each
/// shape, under each outcome, at a time before and after every timeout; and a cancel. Edges that
/// stay at the same running step (waiting, retrying) are left out.
pub fn explored(kind: Kind) -> Edges {
    let limits = Limits::default();
    let late = 1.0e7; // past every timeout
    let mut edges = Edges::new();
    for &step in Step::ALL {
        if step == Step::Done || !step.belongs_to(kind) {
            continue;
        }
        for op in shapes(kind, step, &limits) {
            let mut add = |label: &'static str, to: &Operation| {
                let target = match to.status {
                    Status::Running => Target::Step(to.step),
                    s => Target::End(s),
                };
                if target != Target::Step(step) {
                    edges.entry((step, target)).or_default().insert(label);
                }
            };
            for (label, outcome) in outcomes(&action(&op)) {
                for now in [1.0, late] {
                    add(label, &advance(&op, outcome.clone(), now, &limits).op);
                }
            }
            if let Ok(t) = cancel(&op, "", 1.0) {
                add("cancel", &t.op);
            }
        }
    }
    edges
}

/// The steps reachable from where `kind` starts, following `edges`.
pub fn reachable(kind: Kind, edges: &Edges) -> BTreeSet<Step> {
    let mut seen: BTreeSet<Step> = start_steps(kind).into_iter().collect();
    let mut queue: VecDeque<Step> = seen.iter().copied().collect();
    while let Some(s) = queue.pop_front() {
        for (from, to) in edges.keys() {
            if let (true, Target::Step(t)) = (*from == s, to) {
                if seen.insert(*t) {
                    queue.push_back(*t);
                }
            }
        }
    }
    seen
}

/// The steps from which some end (succeeded, failed, cancelled) can be reached.
pub fn can_end(edges: &Edges) -> BTreeSet<Step> {
    let mut ok: BTreeSet<Step> = BTreeSet::new();
    loop {
        let before = ok.len();
        for (from, to) in edges.keys() {
            let ends = match to {
                Target::End(_) => true,
                Target::Step(t) => ok.contains(t),
            };
            if ends {
                ok.insert(*from);
            }
        }
        if ok.len() == before {
            return ok;
        }
    }
}

/// The Mermaid `stateDiagram-v2` of every kind, one block each.
pub fn mermaid() -> String {
    let mut out = String::new();
    for &kind in Kind::ALL {
        out.push_str(&format!(
            "```mermaid\n---\ntitle: {kind}\n---\nstateDiagram-v2\n"
        ));
        for s in start_steps(kind) {
            out.push_str(&format!("    [*] --> {s}\n"));
        }
        let edges = edges(kind);
        let mut ends = BTreeSet::new();
        for ((from, to), labels) in &edges {
            let to = match to {
                Target::Step(s) => s.to_string(),
                Target::End(s) => {
                    ends.insert(*s);
                    s.to_string()
                }
            };
            let labels: Vec<&str> = labels.iter().copied().collect();
            out.push_str(&format!("    {from} --> {to}: {}\n", labels.join(", ")));
        }
        for s in ends {
            out.push_str(&format!("    {s} --> [*]\n"));
        }
        out.push_str("```\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/architecture.md");
    const BEGIN: &str =
        "<!-- operations-diagram: generated by core/src/operations/diagram.rs -->\n";
    const END: &str = "<!-- end of operations-diagram -->";

    /// The tables and the machine agree: running the transitions finds exactly the edges the
    /// tables declare, and new operations start where the tables say.
    #[test]
    fn the_tables_match_what_the_machine_does() {
        for &kind in Kind::ALL {
            assert_eq!(edges(kind), explored(kind), "{kind}");
            assert_eq!(start_steps(kind), explored_start_steps(kind), "{kind}");
        }
    }

    #[test]
    fn every_step_of_a_kind_is_reachable_from_its_start() {
        for &kind in Kind::ALL {
            let e = edges(kind);
            let want: BTreeSet<Step> = Step::ALL
                .iter()
                .copied()
                .filter(|s| *s != Step::Done && s.belongs_to(kind))
                .collect();
            assert_eq!(reachable(kind, &e), want, "{kind}");
        }
    }

    #[test]
    fn every_running_step_can_end() {
        for &kind in Kind::ALL {
            let e = edges(kind);
            for s in reachable(kind, &e) {
                assert!(
                    can_end(&e).contains(&s),
                    "{kind}: {s} has no path to an end"
                );
            }
        }
    }

    #[test]
    fn every_kind_can_succeed_fail_and_be_cancelled() {
        for &kind in Kind::ALL {
            let ends: BTreeSet<Status> = edges(kind)
                .keys()
                .filter_map(|(_, t)| match t {
                    Target::End(s) => Some(*s),
                    _ => None,
                })
                .collect();
            let all = [Status::Succeeded, Status::Failed, Status::Cancelled];
            assert_eq!(ends, all.into_iter().collect(), "{kind}");
        }
    }

    #[test]
    fn a_scale_in_never_ends_from_a_drained_node_without_restoring_it() {
        // Past mark_draining a scale-in may only fail or be cancelled through restore, or after
        // its node left the cluster (return_to_pool). coordinator_shards comes before
        // mark_draining: nothing is drained yet.
        let e = edges(Kind::ScaleIn);
        for ((from, to), labels) in &e {
            let drained = !matches!(
                from,
                Step::CoordinatorShards | Step::MarkDraining | Step::Restore | Step::ReturnToPool
            );
            if drained {
                assert!(
                    !matches!(to, Target::End(Status::Failed | Status::Cancelled)),
                    "{from} -> {to:?} ({labels:?}) skips restore"
                );
            }
        }
    }

    /// docs/architecture.md carries the generated diagram. `UPDATE_DOCS=1 cargo test -p
    /// autoscale_core diagram` rewrites it after a change to the machine.
    #[test]
    fn the_diagram_in_the_docs_is_up_to_date() {
        let doc = std::fs::read_to_string(DOC).expect("docs/architecture.md");
        let start = doc.find(BEGIN).expect("diagram start marker") + BEGIN.len();
        let end = doc.find(END).expect("diagram end marker");
        let want = mermaid();
        if doc[start..end] != want {
            if std::env::var_os("UPDATE_DOCS").is_some() {
                let new = format!("{}{}{}", &doc[..start], want, &doc[end..]);
                std::fs::write(DOC, new).expect("write docs/architecture.md");
            } else {
                panic!(
                    "docs/architecture.md's diagram is out of date; run \
                     UPDATE_DOCS=1 cargo test -p autoscale_core diagram\n{want}"
                );
            }
        }
    }
}
