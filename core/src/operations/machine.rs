//! The state machine: what each step asks for, and where each outcome leads.

use crate::duration::format_secs;

use super::isolate::{self, Next, TenantRef};
use super::{
    names, Action, JobState, Kind, Limits, NodeAddr, Note, OpError, Operation, Outcome, Status,
    Step, Transition, NOTE_CANCELLED, NOTE_FAILED, NOTE_FALLBACK, NOTE_PROGRESS, NOTE_RETRY,
    NOTE_STEP, NOTE_SUCCEEDED,
};

/// A new running operation. A rebalance starts at `start_rebalance`; a scale-out at
/// `pick_standby`, or at `add_node` when a node is given (manual `scale_out(host, port)`); a
/// scale-in at `mark_draining` and needs its node; a replace_dead at `disable_node` and needs the
/// dead node (recorded as `dead`; `node` is the replacement, once picked).
pub fn new_operation(
    id: i64,
    kind: Kind,
    node: Option<NodeAddr>,
    reason: &str,
    now: f64,
) -> Result<Operation, OpError> {
    let step = match (kind, &node) {
        (Kind::Rebalance, _) => Step::StartRebalance,
        (Kind::ScaleOut, None) => Step::PickStandby,
        (Kind::ScaleOut, Some(_)) => Step::AddNode,
        (Kind::ScaleIn, Some(_)) => Step::MarkDraining,
        (Kind::ScaleIn, None) => return Err(OpError::NodeRequired(Kind::ScaleIn)),
        (Kind::ReplaceDead, Some(_)) => Step::DisableNode,
        (Kind::ReplaceDead, None) => return Err(OpError::NodeRequired(Kind::ReplaceDead)),
        (Kind::SplitOut, Some(_)) => Step::AddClone,
        (Kind::SplitOut, None) => return Err(OpError::NodeRequired(Kind::SplitOut)),
        (Kind::IsolateTenant, Some(_)) => Step::Isolate,
        (Kind::IsolateTenant, None) => return Err(OpError::NodeRequired(Kind::IsolateTenant)),
    };
    let clone = if kind == Kind::SplitOut {
        node.clone()
    } else {
        None
    };
    let (node, dead) = match kind {
        Kind::ReplaceDead => (None, node),
        _ => (node, None),
    };
    Ok(Operation {
        id,
        kind,
        status: Status::Running,
        step,
        job_id: None,
        node,
        request_id: None,
        error: None,
        started_at: now,
        step_started_at: now,
        finished_at: None,
        attempts: 0,
        reason: reason.to_string(),
        progress_done: 0,
        progress_total: 0,
        job_state: None,
        want: 1,
        added: Vec::new(),
        also: Vec::new(),
        cancelled: false,
        had_shards: None,
        coordinator: None,
        coordinator_shards: None,
        dead,
        clone,
        primary: None,
        fallback: None,
        split: None,
        tenant: None,
    })
}

/// A new isolate_tenant: `tenant` (a value of `table`'s distribution column) gets a shard of its
/// own, which then moves to `target` (the least-loaded worker, or the one named by the caller).
pub fn new_isolate_tenant(
    id: i64,
    table: &str,
    tenant: &str,
    target: NodeAddr,
    reason: &str,
    now: f64,
) -> Result<Operation, OpError> {
    let mut op = new_operation(id, Kind::IsolateTenant, Some(target), reason, now)?;
    op.tenant = Some(TenantRef {
        table: table.to_string(),
        value: tenant.to_string(),
        shard: None,
        from: None,
    });
    Ok(op)
}

/// Lets a new scale-out or scale-in set the coordinator's shouldhaveshards to `value`: a
/// scale-out does it after its nodes joined and before its one rebalance (false: the rebalance
/// moves the coordinator's shards to the workers); a scale-in first of all (true: the drain moves
/// the workers' shards back to it). A rebalance is returned unchanged.
pub fn with_coordinator_shards(mut op: Operation, coordinator: NodeAddr, value: bool) -> Operation {
    if !matches!(op.kind, Kind::ScaleOut | Kind::ScaleIn) || op.status != Status::Running {
        return op;
    }
    op.coordinator = Some(coordinator);
    op.coordinator_shards = Some(value);
    if op.kind == Kind::ScaleIn && op.step == Step::MarkDraining {
        op.step = Step::CoordinatorShards;
    }
    op
}

/// A new scale-out that adds `nodes` workers (at least 1) before its one rebalance: standbys from
/// the pool while there are any, else one provision request.
pub fn new_scale_out(
    id: i64,
    node: Option<NodeAddr>,
    nodes: u32,
    reason: &str,
    now: f64,
) -> Result<Operation, OpError> {
    let mut op = new_operation(id, Kind::ScaleOut, node, reason, now)?;
    op.want = nodes.max(1);
    Ok(op)
}

/// A new scale-out by snapshot split: `clone`, a warm clone streaming from the worker `primary`,
/// is registered, promoted and takes part of the primary's shards. Falls back to an ordinary
/// scale-out of one node (the pool, else a provision request) when the clone cannot be used.
pub fn new_split_out(
    id: i64,
    clone: NodeAddr,
    primary: NodeAddr,
    reason: &str,
    now: f64,
) -> Result<Operation, OpError> {
    let mut op = new_operation(id, Kind::SplitOut, Some(clone), reason, now)?;
    op.primary = Some(primary);
    Ok(op)
}

/// A new scale-in of `nodes` (at least one): all are drained by one job, verified empty and
/// removed together.
pub fn new_scale_in(
    id: i64,
    nodes: Vec<NodeAddr>,
    reason: &str,
    now: f64,
) -> Result<Operation, OpError> {
    let mut nodes = nodes.into_iter();
    let first = nodes.next();
    let mut op = new_operation(id, Kind::ScaleIn, first, reason, now)?;
    op.also = nodes.collect();
    Ok(op)
}

/// What to do for the operation's current step. Finished operations, and running rows that are
/// inconsistent (a step of another kind, a missing node or job id), get [`Action::Nothing`].
/// Asking again for the same row gives the same action.
pub fn action(op: &Operation) -> Action {
    if op.status != Status::Running {
        return Action::Nothing;
    }
    plan(op).unwrap_or(Action::Nothing)
}

/// The action of a running operation's step, or why the row cannot go on.
fn plan(op: &Operation) -> Result<Action, String> {
    if !op.step.belongs_to(op.kind) {
        return Err(format!(
            "inconsistent operation: step {} is not part of a {} operation",
            op.step, op.kind
        ));
    }
    let node = || {
        op.node.clone().ok_or_else(|| {
            format!(
                "inconsistent operation: step {} needs a node and none is recorded",
                op.step
            )
        })
    };
    let pair = || {
        match (&op.clone, &op.primary) {
        (Some(c), Some(p)) => Ok((c.clone(), p.clone())),
        _ => Err(format!(
            "inconsistent operation: step {} needs the clone and its primary and they are not recorded",
            op.step
        )),
    }
    };
    // a scale-in acts on its node and the nodes it drains with it
    let nodes = || node().map(|_| op.leaving());
    let dead = || {
        op.dead.clone().ok_or_else(|| {
            format!(
                "inconsistent operation: step {} needs the dead node and none is recorded",
                op.step
            )
        })
    };
    let job_id = || {
        op.job_id.ok_or_else(|| {
            format!(
                "inconsistent operation: step {} needs a job id and none is recorded",
                op.step
            )
        })
    };
    Ok(match op.step {
        Step::StartRebalance => Action::StartRebalance { drain_only: false },
        Step::WaitRebalance | Step::WaitDrain => Action::PollJob { job_id: job_id()? },
        Step::PickStandby => Action::PickStandby,
        Step::AddNode => Action::AddNode { node: node()? },
        Step::RequestNode => Action::RequestNode,
        Step::WaitForNode => Action::CheckForNode {
            request_id: op.request_id,
        },
        Step::MarkDraining => Action::SetShouldHaveShards {
            nodes: nodes()?,
            value: false,
        },
        Step::StartDrain => {
            node()?;
            Action::StartRebalance { drain_only: true }
        }
        Step::Cleanup => Action::CleanupOrphaned { nodes: nodes()? },
        Step::VerifyEmpty => Action::CountPlacements { nodes: nodes()? },
        Step::RemoveNode if op.kind == Kind::ReplaceDead => {
            Action::RemoveDeadNode { node: dead()? }
        }
        Step::RemoveNode => Action::RemoveNode { nodes: nodes()? },
        Step::DisableNode => Action::DisableNode { node: dead()? },
        Step::CopyPlacements => Action::CopyPlacements {
            dead: dead()?,
            target: op.node.clone(),
        },
        Step::ReturnToPool => Action::ReturnToPool { nodes: nodes()? },
        Step::Restore => {
            node()?;
            Action::SetShouldHaveShards {
                nodes: op.restore_set(),
                value: true,
            }
        }
        Step::CoordinatorShards => {
            match (&op.coordinator, op.coordinator_shards) {
                (Some(c), Some(value)) => Action::SetCoordinatorShards {
                    node: c.clone(),
                    value,
                },
                _ => return Err(
                    "inconsistent operation: step coordinator_shards needs the coordinator and \
                     a value, and none is recorded"
                        .to_string(),
                ),
            }
        }
        Step::CheckSplit => {
            let (clone, primary) = pair()?;
            Action::CheckSplit { clone, primary }
        }
        Step::AddClone => {
            let (clone, primary) = pair()?;
            Action::AddClone { clone, primary }
        }
        Step::PromoteClone => {
            let (clone, primary) = pair()?;
            Action::PromoteClone { clone, primary }
        }
        Step::VerifySplit => {
            let (clone, primary) = pair()?;
            Action::VerifySplit { clone, primary }
        }
        Step::DropClone => Action::DropClone { clone: pair()?.0 },
        Step::Isolate | Step::MoveTenant | Step::VerifyTenant => return isolate::plan(op),
        Step::Done => {
            return Err("inconsistent operation: at step done but still running".to_string())
        }
    })
}

/// Applies the outcome of [`action`] at `now`: the new row and the events to record.
/// Finished operations come back unchanged and without events. Never panics.
pub fn advance(op: &Operation, outcome: Outcome, now: f64, limits: &Limits) -> Transition {
    let mut m = Machine {
        op: op.clone(),
        events: Vec::new(),
        now,
    };
    if op.status != Status::Running {
        return m.into_transition();
    }
    if let Err(why) = plan(op) {
        m.fail_hard(why);
        return m.into_transition();
    }
    if let Outcome::Error(msg) = outcome {
        m.error(&msg, limits);
        return m.into_transition();
    }
    if op.kind == Kind::IsolateTenant {
        match isolate::on_outcome(&mut m.op, &outcome) {
            Some(Next::Goto(step, detail)) => m.goto(step, detail),
            Some(Next::Succeed(detail)) => m.succeed(detail),
            Some(Next::Fail(msg)) => m.fail(msg),
            None => m.fail(format!(
                "unexpected outcome {} at step {} (a bug in the executor)",
                outcome_text(&outcome),
                op.step
            )),
        }
        return m.into_transition();
    }
    match (op.step, outcome) {
        (Step::StartRebalance, Outcome::JobStarted(Some(id))) => {
            m.job_started(id);
            m.goto(Step::WaitRebalance, format!("rebalance job {id} started"));
        }
        (Step::StartRebalance, Outcome::JobStarted(None)) => {
            m.succeed("nothing to move: the shards are balanced".to_string());
        }
        (Step::WaitRebalance, Outcome::Job { state, done, total }) => {
            m.job(state, done, total, limits);
        }
        (Step::PickStandby, Outcome::Picked(node)) => {
            let detail = format!("standby {node} taken from the pool");
            m.op.node = Some(node);
            m.goto(Step::AddNode, detail);
        }
        (Step::PickStandby, Outcome::PoolEmpty)
            if op.added.is_empty() || op.kind == Kind::ReplaceDead =>
        {
            m.goto(
                Step::RequestNode,
                "the standby pool is empty; asking for a node".to_string(),
            );
        }
        (Step::PickStandby, Outcome::PoolEmpty) => {
            let detail = format!(
                "the standby pool is empty after {} of {} nodes; rebalancing onto those",
                op.added.len(),
                op.want
            );
            let next = m.before_rebalance();
            m.goto(next, detail);
        }
        (Step::AddNode, Outcome::Ok) => {
            let detail = format!("node {} added", m.node_text());
            m.joined(detail);
        }
        (Step::RequestNode, Outcome::Requested(id)) => {
            m.op.request_id = Some(id);
            m.goto(
                Step::WaitForNode,
                format!("provision request {id} sent; waiting for a node"),
            );
        }
        (Step::WaitForNode, Outcome::Appeared { node, in_cluster }) => {
            m.op.node = Some(node.clone());
            if in_cluster {
                m.joined(format!("node {node} joined the cluster"));
            } else {
                m.goto(Step::AddNode, format!("node {node} appeared in the pool"));
            }
        }
        (Step::WaitForNode, Outcome::NotYet) => {
            m.op.attempts = 0;
            let waited = now - op.step_started_at;
            if limits.provision_timeout >= 0.0 && waited >= limits.provision_timeout {
                let request = match op.request_id {
                    Some(id) => format!("provision request {id}"),
                    None => "provision request".to_string(),
                };
                m.fail(format!(
                    "{request} expired after {} without a node",
                    format_secs(waited)
                ));
            }
        }
        (Step::MarkDraining, Outcome::Ok) => {
            let detail = format!("shouldhaveshards = false on {}", m.node_text());
            m.goto(Step::StartDrain, detail);
        }
        (Step::MarkDraining, Outcome::Marked { had_shards }) => {
            let detail = format!("shouldhaveshards = false on {}", m.node_text());
            m.op.had_shards = Some(had_shards);
            m.goto(Step::StartDrain, detail);
        }
        (Step::StartDrain, Outcome::JobStarted(Some(id))) => {
            m.job_started(id);
            m.goto(Step::WaitDrain, format!("drain job {id} started"));
        }
        (Step::StartDrain, Outcome::JobStarted(None)) => {
            let detail = format!("nothing to drain from {}", m.node_text());
            m.goto(Step::Cleanup, detail);
        }
        (Step::WaitDrain, Outcome::Job { state, done, total }) => {
            m.job(state, done, total, limits);
        }
        (Step::Cleanup, Outcome::Ok) => {
            m.goto(
                Step::VerifyEmpty,
                "orphaned resources cleaned up".to_string(),
            );
        }
        (Step::VerifyEmpty, Outcome::Placements(0)) => {
            let detail = format!(
                "{} {} no placements",
                m.node_text(),
                m.verb("holds", "hold")
            );
            m.goto(Step::RemoveNode, detail);
        }
        (Step::VerifyEmpty, Outcome::Placements(n)) if n > 0 => {
            let msg = format!(
                "{} still {} {n} placement{}; not removed",
                m.subject(),
                m.verb("holds", "hold"),
                if n == 1 { "" } else { "s" }
            );
            m.fail(msg);
        }
        (Step::DisableNode, Outcome::Ok) => {
            let detail = format!(
                "dead node {} disabled: queries use the other copies",
                dead_text(op)
            );
            m.goto(Step::PickStandby, detail);
        }
        (
            Step::CopyPlacements,
            Outcome::Copied {
                shard: None,
                left: 0,
            },
        ) => {
            let detail = format!(
                "every shard group of {} has its copies back ({} copied), reference tables \
                 replicated",
                dead_text(op),
                op.progress_done
            );
            m.goto(Step::RemoveNode, detail);
        }
        (Step::CopyPlacements, Outcome::Copied { shard, left }) => {
            m.op.attempts = 0;
            if shard.is_some() {
                m.op.progress_done += 1;
            }
            m.op.progress_total = m.op.progress_total.max(m.op.progress_done + left.max(0));
            let message = format!(
                "{}: copied {}, {}/{} copies done",
                m.header(),
                shard.as_deref().unwrap_or("nothing"),
                m.op.progress_done,
                m.op.progress_total
            );
            m.note(NOTE_PROGRESS, message);
        }
        (Step::RemoveNode, Outcome::Ok) if op.kind == Kind::ReplaceDead => {
            let by = op
                .node
                .as_ref()
                .map_or_else(String::new, |n| format!(", replaced by {n}"));
            let detail = format!(
                "dead node {} removed from the cluster{by}; {} shard group copies restored",
                dead_text(op),
                op.progress_done
            );
            m.succeed(detail);
        }
        (Step::RemoveNode, Outcome::Ok) => {
            let detail = format!("{} removed from the cluster", m.subject());
            m.goto(Step::ReturnToPool, detail);
        }
        (Step::ReturnToPool, Outcome::Ok) => {
            let detail = format!("{} removed and returned to the pool", m.subject());
            m.succeed(detail);
        }
        (Step::Restore, Outcome::Ok) => m.restored(),
        (Step::CoordinatorShards, Outcome::Ok) => {
            let c = op.coordinator.as_ref().map_or_else(
                || "the coordinator".to_string(),
                |c| format!("coordinator {c}"),
            );
            if op.kind == Kind::ScaleIn {
                let detail = format!(
                    "shouldhaveshards = true on {c}: the drain moves the workers' shards to it"
                );
                m.goto(Step::MarkDraining, detail);
            } else {
                let detail = format!(
                    "shouldhaveshards = false on {c}: the rebalance moves its shards to the workers"
                );
                m.goto(Step::StartRebalance, detail);
            }
        }
        (Step::AddClone, Outcome::Ok) => {
            let detail = format!(
                "clone {} registered as a clone of {}",
                m.clone_text(),
                m.primary_text()
            );
            m.goto(Step::CheckSplit, detail);
        }
        (Step::CheckSplit, Outcome::SplitPlan { to_clone, total }) if to_clone > 0 => {
            let detail = format!(
                "split plan: {to_clone} of {total} shards of {} go to clone {}",
                m.primary_text(),
                m.clone_text()
            );
            m.goto(Step::PromoteClone, detail);
        }
        (Step::CheckSplit, Outcome::SplitPlan { total, .. }) => {
            let why = format!(
                "the split plan gives clone {} none of the {total} shards of {}",
                m.clone_text(),
                m.primary_text()
            );
            m.fall_back(why);
        }
        (Step::AddClone | Step::CheckSplit | Step::PromoteClone, Outcome::CloneUnusable(why)) => {
            m.fall_back(why)
        }
        (Step::PromoteClone, Outcome::Ok) => {
            let detail = format!(
                "clone {} promoted; the shards of {} split between the two",
                m.clone_text(),
                m.primary_text()
            );
            m.goto(Step::VerifySplit, detail);
        }
        (Step::VerifySplit, Outcome::Split { clone, primary }) if clone > 0 => {
            m.op.split = Some((clone, primary));
            let detail = format!(
                "clone {} is an active worker with {clone} placements; {primary} left on {}",
                m.clone_text(),
                m.primary_text()
            );
            m.succeed(detail);
        }
        (Step::VerifySplit, Outcome::Split { primary, .. }) => {
            let msg = format!(
                "clone {} holds no placements after the split ({primary} on {})",
                m.clone_text(),
                m.primary_text()
            );
            m.fail(msg);
        }
        (Step::DropClone, Outcome::Ok) => {
            let detail = format!(
                "clone {} left unused; going on as an ordinary scale-out",
                m.clone_text()
            );
            m.goto(Step::PickStandby, detail);
        }
        (step, other) => {
            m.fail(format!(
                "unexpected outcome {} at step {step} (a bug in the executor)",
                outcome_text(&other)
            ));
        }
    }
    m.into_transition()
}

/// Cancels a running operation at `now`. Rebalance and scale-out end `cancelled` at once (a
/// Citus job already started keeps running: stop it with `citus_rebalance_stop()` if wanted). A
/// scale-in that already set shouldhaveshards = false goes to the restore step first and ends
/// `cancelled` once restored. A scale-in whose node is already removed, or that is restoring,
/// cannot be cancelled.
pub fn cancel(op: &Operation, reason: &str, now: f64) -> Result<Transition, OpError> {
    if op.status != Status::Running {
        return Err(OpError::NotRunning {
            id: op.id,
            status: op.status,
        });
    }
    let msg = if reason.trim().is_empty() {
        "cancelled".to_string()
    } else {
        format!("cancelled: {}", reason.trim())
    };
    let mut m = Machine {
        op: op.clone(),
        events: Vec::new(),
        now,
    };
    match (op.kind, op.step) {
        (Kind::ScaleIn, Step::ReturnToPool) => {
            return Err(OpError::NotCancellable {
                id: op.id,
                step: op.step,
                why: "the node is already removed from the cluster; it finishes returning it to \
                      the pool",
            })
        }
        (Kind::ScaleIn, Step::Restore) => {
            return Err(OpError::NotCancellable {
                id: op.id,
                step: op.step,
                why: "it is already restoring shouldhaveshards and finishes as failed",
            })
        }
        (
            Kind::ScaleIn,
            Step::StartDrain
            | Step::WaitDrain
            | Step::Cleanup
            | Step::VerifyEmpty
            | Step::RemoveNode,
        ) => {
            m.op.cancelled = true;
            m.op.error = Some(msg.clone());
            let detail = format!("{msg}; restoring shouldhaveshards = true");
            m.goto(Step::Restore, detail);
        }
        _ => {
            m.op.status = Status::Cancelled;
            m.op.cancelled = true;
            m.op.error = Some(msg.clone());
            m.op.finished_at = Some(now);
            let mut message = format!("{}: {msg} at step {}", m.header(), op.step);
            if let (Some(id), Step::WaitRebalance) = (op.job_id, op.step) {
                message.push_str(&format!("; Citus job {id} keeps running"));
            }
            m.note(NOTE_CANCELLED, message);
        }
    }
    Ok(m.into_transition())
}

/// The followed job's progress (tasks done, total), once it has been polled.
pub fn progress(op: &Operation) -> Option<(i64, i64)> {
    op.job_state.map(|_| (op.progress_done, op.progress_total))
}

/// A one-line summary: `scale_in 127.0.0.1:9703: wait_drain, job 7 3/10`.
pub fn describe(op: &Operation) -> String {
    let mut s = format!("{}: ", header(op));
    match op.status {
        Status::Running => {
            s.push_str(op.step.as_str());
            if let Some(id) = op.job_id.filter(|_| is_wait(op.step)) {
                s.push_str(&format!(", job {id}"));
                if let Some((done, total)) = progress(op) {
                    s.push_str(&format!(" {done}/{total}"));
                }
                if let Some(state) = op.job_state.filter(|s| *s != JobState::Running) {
                    s.push_str(&format!(" ({state})"));
                }
            }
            if op.step == Step::CopyPlacements && op.progress_total > 0 {
                s.push_str(&format!(
                    ", {}/{} copies",
                    op.progress_done, op.progress_total
                ));
            }
            if let (Step::WaitForNode, Some(id)) = (op.step, op.request_id) {
                s.push_str(&format!(", provision request {id}"));
            }
            if op.step == Step::Restore {
                if let Some(e) = &op.error {
                    s.push_str(&format!(" after: {e}"));
                }
            }
            if op.attempts > 0 {
                s.push_str(&format!(
                    ", retrying ({} failed attempt{})",
                    op.attempts,
                    if op.attempts == 1 { "" } else { "s" }
                ));
            }
        }
        status => {
            s.push_str(status.as_str());
            if status != Status::Succeeded && op.step != Step::Done {
                s.push_str(&format!(" at {}", op.step));
            }
            if let Some(e) = &op.error {
                s.push_str(&format!(": {e}"));
            }
        }
    }
    s
}

fn is_wait(step: Step) -> bool {
    matches!(step, Step::WaitRebalance | Step::WaitDrain)
}

/// `scale_in 127.0.0.1:9703`, or just the kind without a node. A scale-out of several nodes
/// names every node it added and the one it is adding.
fn header(op: &Operation) -> String {
    if op.kind == Kind::IsolateTenant {
        return isolate::header(op);
    }
    if op.kind == Kind::ReplaceDead {
        let by = op
            .node
            .as_ref()
            .map_or_else(String::new, |n| format!(" by {n}"));
        return format!("{} {}{by}", op.kind, dead_text(op));
    }
    let mut nodes = op.added.clone();
    if let Some(n) = op.node.as_ref().filter(|n| !op.added.contains(n)) {
        nodes.push(n.clone());
    }
    nodes.extend(op.also.iter().cloned());
    if nodes.is_empty() {
        op.kind.to_string()
    } else {
        format!("{} {}", op.kind, names(&nodes))
    }
}

/// The dead node of a replace_dead, or `the dead node`.
fn dead_text(op: &Operation) -> String {
    op.dead
        .as_ref()
        .map_or_else(|| "the dead node".to_string(), |n| n.to_string())
}

fn outcome_text(o: &Outcome) -> String {
    serde_json::to_string(o).unwrap_or_else(|_| format!("{o:?}"))
}

/// One transition being built.
struct Machine {
    op: Operation,
    events: Vec<Note>,
    now: f64,
}

impl Machine {
    fn into_transition(self) -> Transition {
        Transition {
            op: self.op,
            events: self.events,
        }
    }

    fn header(&self) -> String {
        header(&self.op)
    }

    /// The node, or for a scale-in of several, all of them: `127.0.0.1:9702, 127.0.0.1:9703`.
    fn node_text(&self) -> String {
        match self.op.leaving() {
            nodes if nodes.is_empty() => "the node".to_string(),
            nodes => names(&nodes),
        }
    }

    /// `node 127.0.0.1:9702`, or `nodes 127.0.0.1:9702, 127.0.0.1:9703`.
    fn subject(&self) -> String {
        format!("{} {}", self.verb("node", "nodes"), self.node_text())
    }

    /// The singular or the plural word, after the number of nodes.
    fn verb(&self, one: &'static str, several: &'static str) -> &'static str {
        if self.op.also.is_empty() {
            one
        } else {
            several
        }
    }

    fn note(&mut self, kind: &str, message: String) {
        self.events.push(Note {
            kind: kind.to_string(),
            message,
        });
    }

    /// Moves to `step`: attempts reset, step clock restarted, one step note.
    fn goto(&mut self, step: Step, detail: String) {
        let from = self.op.step;
        self.op.step = step;
        self.op.step_started_at = self.now;
        self.op.attempts = 0;
        let message = format!("{}: {from} -> {step}: {detail}", self.header());
        self.note(NOTE_STEP, message);
    }

    /// The current node is in the cluster: count it, then take the next standby while the
    /// scale-out wants more, else rebalance.
    fn joined(&mut self, detail: String) {
        if let Some(n) = self.op.node.clone() {
            if !self.op.added.contains(&n) {
                self.op.added.push(n);
            }
        }
        if self.op.kind == Kind::ReplaceDead {
            let detail = format!("{detail}: copying the dead node's shard groups to it");
            self.goto(Step::CopyPlacements, detail);
            return;
        }
        let (added, want) = (self.op.added.len(), self.op.want.max(1) as usize);
        let next = self.before_rebalance();
        if added < want {
            self.goto(Step::PickStandby, format!("{detail} ({added} of {want})"));
        } else if want > 1 {
            self.goto(next, format!("{detail} ({added} of {want})"));
        } else {
            self.goto(next, detail);
        }
    }

    /// The step after a scale-out's nodes joined: shed the coordinator's shards first when asked.
    fn before_rebalance(&self) -> Step {
        match (&self.op.coordinator, self.op.coordinator_shards) {
            (Some(_), Some(false)) => Step::CoordinatorShards,
            _ => Step::StartRebalance,
        }
    }

    fn job_started(&mut self, id: i64) {
        self.op.job_id = Some(id);
        self.op.job_state = None;
        self.op.progress_done = 0;
        self.op.progress_total = 0;
    }

    fn took(&self) -> String {
        format_secs(self.now - self.op.started_at)
    }

    fn succeed(&mut self, detail: String) {
        self.op.step = Step::Done;
        self.op.step_started_at = self.now;
        self.op.status = Status::Succeeded;
        self.op.attempts = 0;
        self.op.error = None;
        self.op.finished_at = Some(self.now);
        let message = format!("{}: succeeded in {}: {detail}", self.header(), self.took());
        self.note(NOTE_SUCCEEDED, message);
    }

    /// A poll of the followed job.
    fn job(&mut self, state: JobState, done: i64, total: i64, limits: &Limits) {
        let id = self.op.job_id.unwrap_or_default();
        let what = if self.op.step == Step::WaitDrain {
            "drain"
        } else {
            "rebalance"
        };
        let changed = self.op.job_state != Some(state)
            || self.op.progress_done != done
            || self.op.progress_total != total;
        self.op.job_state = Some(state);
        self.op.progress_done = done;
        self.op.progress_total = total;
        self.op.attempts = 0;
        match state {
            JobState::Finished => {
                let detail = format!("{what} job {id} finished ({done}/{total} tasks)");
                if self.op.step == Step::WaitDrain {
                    self.goto(Step::Cleanup, detail);
                } else {
                    self.succeed(detail);
                }
            }
            JobState::Cancelled | JobState::Failed => {
                self.fail(format!(
                    "{what} job {id} ended in state {state} ({done}/{total} tasks done)"
                ));
            }
            JobState::Scheduled
                if limits.job_timeout >= 0.0
                    && self.now - self.op.step_started_at >= limits.job_timeout =>
            {
                let waited = format_secs(self.now - self.op.step_started_at);
                self.fail(format!(
                    "{what} job {id} scheduled for {waited} without starting (cf. Citus issue \
                     #7103); the job may still be cancelled with citus_job_cancel({id})"
                ));
            }
            _ if changed => {
                let message = format!(
                    "{}: {what} job {id} {state}, {done}/{total} tasks done",
                    self.header()
                );
                self.note(NOTE_PROGRESS, message);
            }
            _ => {}
        }
    }

    /// The action raised an error: retry the step, or fail once attempts are used up.
    fn error(&mut self, msg: &str, limits: &Limits) {
        let max = limits.max_attempts.max(1);
        let attempts = self.op.attempts.saturating_add(1);
        self.op.attempts = attempts;
        let step = self.op.step;
        if attempts < max {
            let message = format!(
                "{}: {step} failed (attempt {attempts} of {max}), retrying: {msg}",
                self.header()
            );
            self.note(NOTE_RETRY, message);
        } else if matches!(step, Step::CheckSplit | Step::AddClone | Step::PromoteClone) {
            self.fall_back(format!(
                "{step} failed after {attempts} attempt{}: {msg}",
                if attempts == 1 { "" } else { "s" }
            ));
        } else {
            self.fail(format!(
                "{step} failed after {attempts} attempt{}: {msg}",
                if attempts == 1 { "" } else { "s" }
            ));
        }
    }

    /// The split-out gives up its clone: one `split_fallback` note saying why, then the clone is
    /// dropped and the operation goes on as an ordinary scale-out.
    fn fall_back(&mut self, why: String) {
        let message = format!(
            "{}: falling back to the ordinary scale-out: {why}",
            self.header()
        );
        self.note(NOTE_FALLBACK, message);
        self.op.fallback = Some(why.clone());
        self.op.node = None;
        self.goto(Step::DropClone, format!("clone not used: {why}"));
    }

    fn clone_text(&self) -> String {
        self.op
            .clone
            .as_ref()
            .map_or_else(|| "?".to_string(), |n| n.to_string())
    }

    fn primary_text(&self) -> String {
        self.op
            .primary
            .as_ref()
            .map_or_else(|| "its primary".to_string(), |n| n.to_string())
    }

    /// The step failed for good. A scale-in whose node is still in the cluster goes to the restore
    /// step; a failed restore, or anything else, fails the operation where it stands.
    fn fail(&mut self, msg: String) {
        let step = self.op.step;
        match (self.op.kind, step) {
            (
                Kind::ScaleIn,
                Step::MarkDraining
                | Step::StartDrain
                | Step::WaitDrain
                | Step::Cleanup
                | Step::VerifyEmpty
                | Step::RemoveNode,
            ) => {
                let detail = format!("{msg}; restoring shouldhaveshards = true");
                self.op.error = Some(msg);
                self.goto(Step::Restore, detail);
            }
            (Kind::ScaleIn, Step::Restore) => {
                let mut full = format!(
                    "could not restore shouldhaveshards = true on {}: {msg}; set it by hand with \
                     citus_set_node_property",
                    self.node_text()
                );
                if let Some(before) = self.op.error.take() {
                    full.push_str(&format!(" (the operation had failed: {before})"));
                }
                self.fail_hard(full);
            }
            (Kind::ScaleIn, Step::ReturnToPool) => {
                let full = format!(
                    "{} {} removed from the cluster but not returned to the pool: {msg}",
                    self.subject(),
                    self.verb("was", "were")
                );
                self.fail_hard(full);
            }
            _ => self.fail_hard(msg),
        }
    }

    /// Fails the operation at its current step.
    fn fail_hard(&mut self, msg: String) {
        self.op.status = Status::Failed;
        self.op.finished_at = Some(self.now);
        let message = format!(
            "{}: failed at {} after {}: {msg}",
            self.header(),
            self.op.step,
            self.took()
        );
        self.op.error = Some(msg);
        self.note(NOTE_FAILED, message);
    }

    /// The restore step succeeded: the scale-in ends failed (or cancelled), error kept.
    fn restored(&mut self) {
        let status = if self.op.cancelled {
            Status::Cancelled
        } else {
            Status::Failed
        };
        self.op.step = Step::Done;
        self.op.step_started_at = self.now;
        self.op.status = status;
        self.op.attempts = 0;
        self.op.finished_at = Some(self.now);
        let error = self
            .op
            .error
            .clone()
            .unwrap_or_else(|| "unknown error".to_string());
        let restored = self.op.restore_set();
        let what = if restored.is_empty() {
            "shouldhaveshards left as it was before (false)".to_string()
        } else {
            format!("shouldhaveshards restored to true on {}", names(&restored))
        };
        let message = format!(
            "{}: {status} after {}: {error}; {what}",
            self.header(),
            self.took()
        );
        let kind = if self.op.cancelled {
            NOTE_CANCELLED
        } else {
            NOTE_FAILED
        };
        self.note(kind, message);
    }
}
