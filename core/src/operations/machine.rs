//! The state machine's moves: new operations, and the transitions that follow the table of
//! `table.rs` (what each step asks for, where each outcome leads) and record what outcomes bring.

use super::isolate::{self, TenantRef};
use super::messages;
use super::table::{classify, spec, Ask, Cancel, Next, On, StepSpec};
use super::{
    Action, Kind, Limits, NodeAddr, Note, OpError, Operation, Outcome, Status, Step, Transition,
    NOTE_CANCELLED, NOTE_FAILED, NOTE_FALLBACK, NOTE_PROGRESS, NOTE_RETRY, NOTE_STEP,
    NOTE_SUCCEEDED,
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
        (Kind::Resize, Some(_)) => Step::RequestNode,
        (Kind::Resize, None) => return Err(OpError::NodeRequired(Kind::Resize)),
    };
    let clone = if kind == Kind::SplitOut {
        node.clone()
    } else {
        None
    };
    let (node, dead, replaces) = match kind {
        Kind::ReplaceDead => (None, node, None),
        Kind::Resize => (None, None, node),
        _ => (node, None, None),
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
        replaces,
        size: None,
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
    plan(op).map_or(Action::Nothing, |(_, a)| a)
}

/// The table row of a running operation's step and its action, or why the row cannot go on.
fn plan(op: &Operation) -> Result<(&'static StepSpec, Action), String> {
    if op.step == Step::Done {
        return Err(messages::DONE_BUT_RUNNING.to_string());
    }
    let row = spec(op.kind, op.step).ok_or_else(|| messages::not_part_of(op))?;
    Ok((row, row.ask.action(op)?))
}

/// Applies the outcome of [`action`] at `now`: the new row and the events to record.
/// Finished operations come back unchanged and without events. Never panics.
///
/// The step's table row says where the outcome leads; this only records what the outcome brings
/// (a job id, a node, progress) and has [`messages`] say what happened.
pub fn advance(op: &Operation, outcome: Outcome, now: f64, limits: &Limits) -> Transition {
    let mut m = Machine {
        op: op.clone(),
        events: Vec::new(),
        now,
    };
    if op.status != Status::Running {
        return m.into_transition();
    }
    let row = match plan(op) {
        Ok((row, _)) => row,
        Err(why) => {
            m.fail_hard(why);
            return m.into_transition();
        }
    };
    if let Outcome::Error(msg) = &outcome {
        m.error(row, msg, limits);
        return m.into_transition();
    }
    let Some((on, next)) =
        classify(row.ask, &outcome, op, now, limits).and_then(|on| Some((on, row.next(on)?)))
    else {
        m.fail(row, messages::unexpected(op.step, &outcome));
        return m.into_transition();
    };
    m.record(row.ask, on, &outcome);
    m.take(row, next, |m, to| {
        messages::detail(&m.op, row.ask, &outcome, on, to, now)
    });
    m.into_transition()
}

/// Cancels a running operation at `now`, as the step's table row says: most end `cancelled` at
/// once (a Citus job already started keeps running: stop it with `citus_rebalance_stop()` if
/// wanted); a scale-in that already set shouldhaveshards = false goes to the restore step first
/// and ends `cancelled` once restored; a scale-in whose node is already removed, or that is
/// restoring, cannot be cancelled.
pub fn cancel(op: &Operation, reason: &str, now: f64) -> Result<Transition, OpError> {
    if op.status != Status::Running {
        return Err(OpError::NotRunning {
            id: op.id,
            status: op.status,
        });
    }
    let msg = messages::cancelled_because(reason);
    let mut m = Machine {
        op: op.clone(),
        events: Vec::new(),
        now,
    };
    // a row at a step its kind does not have can always be cancelled
    match spec(op.kind, op.step).map_or(Cancel::Now, |r| r.on_cancel) {
        Cancel::No(why) => {
            return Err(OpError::NotCancellable {
                id: op.id,
                step: op.step,
                why,
            })
        }
        Cancel::Via(step) => {
            m.op.cancelled = true;
            m.op.error = Some(msg.clone());
            m.goto(step, &messages::restoring(&msg));
        }
        Cancel::Now => {
            m.op.status = Status::Cancelled;
            m.op.cancelled = true;
            m.op.error = Some(msg.clone());
            m.op.finished_at = Some(now);
            let message = messages::cancelled(op, &msg);
            m.note(NOTE_CANCELLED, message);
        }
    }
    Ok(m.into_transition())
}

/// The followed job's progress (tasks done, total), once it has been polled.
pub fn progress(op: &Operation) -> Option<(i64, i64)> {
    op.job_state.map(|_| (op.progress_done, op.progress_total))
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

    fn note(&mut self, kind: &str, message: String) {
        self.events.push(Note {
            kind: kind.to_string(),
            message,
        });
    }

    /// Records in the row what the outcome `on` of `ask` brings; a wait that stays notes its
    /// progress.
    fn record(&mut self, ask: Ask, on: On, outcome: &Outcome) {
        match (on, outcome) {
            (On::JobStarted, Outcome::JobStarted(Some(id))) => {
                self.op.job_id = Some(*id);
                self.op.job_state = None;
                self.op.progress_done = 0;
                self.op.progress_total = 0;
            }
            (_, &Outcome::Job { state, done, total }) => {
                let changed = self.op.job_state != Some(state)
                    || self.op.progress_done != done
                    || self.op.progress_total != total;
                self.op.job_state = Some(state);
                self.op.progress_done = done;
                self.op.progress_total = total;
                self.op.attempts = 0;
                if let (On::JobWaiting, Ask::FollowJob(job), true) = (on, ask, changed) {
                    let message = messages::job_progress(&self.op, job, state, done, total);
                    self.note(NOTE_PROGRESS, message);
                }
            }
            (_, Outcome::Picked(node)) => self.op.node = Some(node.clone()),
            (_, Outcome::Requested(id)) => self.op.request_id = Some(*id),
            (_, Outcome::Appeared { node, .. }) => {
                self.op.node = Some(node.clone());
                if on == On::NodeInCluster {
                    self.joined();
                }
            }
            (On::Ok, Outcome::Ok) if ask == Ask::AddNode => self.joined(),
            (_, Outcome::NotYet) => self.op.attempts = 0,
            (_, Outcome::Marked { had_shards }) => self.op.had_shards = Some(had_shards.clone()),
            (On::CopiedOne, Outcome::Copied { shard, left }) => {
                self.op.attempts = 0;
                if shard.is_some() {
                    self.op.progress_done += 1;
                }
                self.op.progress_total = self
                    .op
                    .progress_total
                    .max(self.op.progress_done + (*left).max(0));
                let message = messages::copy_progress(&self.op, shard.as_deref());
                self.note(NOTE_PROGRESS, message);
            }
            (On::HoldsShards, &Outcome::Split { clone, primary }) => {
                self.op.split = Some((clone, primary))
            }
            (_, Outcome::Tenant { .. }) => isolate::record(&mut self.op, on, outcome),
            _ => {}
        }
    }

    /// The current node is in the cluster: count it.
    fn joined(&mut self) {
        if let Some(n) = self.op.node.clone() {
            if !self.op.added.contains(&n) {
                self.op.added.push(n);
            }
        }
    }

    /// Goes where `next` says from the step of `row`; `text` says what happened, given the step
    /// it leads to (None: to an end).
    fn take(
        &mut self,
        row: &StepSpec,
        next: Next,
        text: impl FnOnce(&Machine, Option<Step>) -> String,
    ) {
        match next {
            Next::Stay => {}
            Next::Go(step) => {
                let detail = text(self, Some(step));
                self.goto(step, &detail);
            }
            Next::Choose(choice) => {
                let step = choice.pick(&self.op);
                let detail = text(self, Some(step));
                self.goto(step, &detail);
            }
            Next::Succeed => {
                let detail = text(self, None);
                self.succeed(&detail);
            }
            Next::Fail => {
                let msg = text(self, None);
                self.fail(row, msg);
            }
            Next::FallBack(step) => {
                let why = text(self, None);
                self.fall_back(step, why);
            }
            Next::Restored => self.restored(),
        }
    }

    /// Moves to `step`: attempts reset, step clock restarted, one step note.
    fn goto(&mut self, step: Step, detail: &str) {
        let from = self.op.step;
        self.op.step = step;
        self.op.step_started_at = self.now;
        self.op.attempts = 0;
        let message = messages::step_note(&self.op, from, step, detail);
        self.note(NOTE_STEP, message);
    }

    fn took(&self) -> f64 {
        self.now - self.op.started_at
    }

    fn succeed(&mut self, detail: &str) {
        self.op.step = Step::Done;
        self.op.step_started_at = self.now;
        self.op.status = Status::Succeeded;
        self.op.attempts = 0;
        self.op.error = None;
        self.op.finished_at = Some(self.now);
        let message = messages::succeeded(&self.op, self.took(), detail);
        self.note(NOTE_SUCCEEDED, message);
    }

    /// The action raised an error: retry the step, or once its attempts are used up go where the
    /// row sends an error (fail, or a split-out's fallback).
    fn error(&mut self, row: &StepSpec, msg: &str, limits: &Limits) {
        let max = limits.max_attempts.max(1);
        let attempts = self.op.attempts.saturating_add(1);
        self.op.attempts = attempts;
        if attempts < max {
            let message = messages::retrying(&self.op, attempts, max, msg);
            self.note(NOTE_RETRY, message);
        } else {
            let next = row.next(On::Error).unwrap_or(Next::Fail);
            self.take(row, next, |m, _| {
                messages::gave_up(m.op.step, attempts, msg)
            });
        }
    }

    /// The split-out gives up its clone: one `split_fallback` note saying why, then to `step`
    /// (the clone is dropped and the operation goes on as an ordinary scale-out).
    fn fall_back(&mut self, step: Step, why: String) {
        let message = messages::falling_back(&self.op, &why);
        self.note(NOTE_FALLBACK, message);
        self.op.fallback = Some(why.clone());
        self.op.node = None;
        self.goto(step, &messages::clone_not_used(&why));
    }

    /// The step of `row` failed for good: to its restoring step when it has one, else the
    /// operation fails where it stands.
    fn fail(&mut self, row: &StepSpec, msg: String) {
        match row.on_fail {
            Some(step) => {
                let detail = messages::restoring(&msg);
                self.op.error = Some(msg);
                self.goto(step, &detail);
            }
            None => {
                let before = if row.restores {
                    self.op.error.take()
                } else {
                    None
                };
                let full = messages::failure(&self.op, row.restores, msg, before);
                self.fail_hard(full);
            }
        }
    }

    /// Fails the operation at its current step.
    fn fail_hard(&mut self, msg: String) {
        self.op.status = Status::Failed;
        self.op.finished_at = Some(self.now);
        let message = messages::failed(&self.op, self.took(), &msg);
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
        let message = messages::restored(&self.op, status, self.took());
        let kind = if self.op.cancelled {
            NOTE_CANCELLED
        } else {
            NOTE_FAILED
        };
        self.note(kind, message);
    }
}
