//! Every word the operation state machine says: the step, progress, retry, success, failure and
//! cancel events, [`describe`], and the errors of inconsistent rows. The transitions in
//! `machine.rs` decide; these functions only phrase. Scenarios and the regress files match this
//! text: change it on purpose only.

use crate::duration::format_secs;

use super::table::{spec, Ask, Job, On};
use super::{names, progress, JobState, Kind, Operation, Outcome, Status, Step};

pub use super::texts::{
    needs, CANCEL_ALREADY_REMOVED, CANCEL_ALREADY_RESTORING, NEEDS_CLONE, NEEDS_COORDINATOR,
    NEEDS_DEAD, NEEDS_JOB, NEEDS_NODE,
};

/// A running row at a step its kind does not have.
pub fn not_part_of(op: &Operation) -> String {
    format!(
        "inconsistent operation: step {} is not part of a {} operation",
        op.step, op.kind
    )
}

/// A running row at `done`.
pub const DONE_BUT_RUNNING: &str = "inconsistent operation: at step done but still running";

/// `scale_in 127.0.0.1:9703`, or just the kind without a node. A scale-out of several nodes
/// names every node it added and the one it is adding.
pub fn header(op: &Operation) -> String {
    if op.kind == Kind::IsolateTenant {
        return super::isolate::header(op);
    }
    if op.kind == Kind::Resize {
        let by = op
            .node
            .as_ref()
            .map_or_else(String::new, |n| format!(" by {n}"));
        let old = op
            .replaces
            .as_ref()
            .map_or_else(|| "the worker".to_string(), |n| n.to_string());
        return format!("{} {old}{by}", op.kind);
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

/// The node, or for a scale-in of several, all of them: `127.0.0.1:9702, 127.0.0.1:9703`.
fn node_text(op: &Operation) -> String {
    match op.leaving() {
        nodes if nodes.is_empty() => "the node".to_string(),
        nodes => names(&nodes),
    }
}

/// `node 127.0.0.1:9702`, or `nodes 127.0.0.1:9702, 127.0.0.1:9703`.
fn subject(op: &Operation) -> String {
    format!("{} {}", verb(op, "node", "nodes"), node_text(op))
}

/// The singular or the plural word, after the number of nodes.
fn verb(op: &Operation, one: &'static str, several: &'static str) -> &'static str {
    if op.also.is_empty() {
        one
    } else {
        several
    }
}

fn clone_text(op: &Operation) -> String {
    op.clone
        .as_ref()
        .map_or_else(|| "?".to_string(), |n| n.to_string())
}

fn primary_text(op: &Operation) -> String {
    op.primary
        .as_ref()
        .map_or_else(|| "its primary".to_string(), |n| n.to_string())
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What happened at `op`'s step: `outcome`, meaning `on`, leads to the step `to` (None: to an
/// end). `op` holds what the outcome recorded (a picked node, a job id), still at its step.
pub fn detail(
    op: &Operation,
    ask: Ask,
    outcome: &Outcome,
    on: On,
    to: Option<Step>,
    now: f64,
) -> String {
    let job = |j: Job| (j.as_str(), op.job_id.unwrap_or_default());
    let waited = || format_secs(now - op.step_started_at);
    match (on, ask, outcome) {
        (_, Ask::IsolateTenant | Ask::MoveTenant | Ask::VerifyTenant, _) => {
            super::isolate::detail(op, on, outcome)
        }
        (On::JobStarted, Ask::StartJob(j), _) => format!("{} job {} started", job(j).0, job(j).1),
        (On::NothingToMove, Ask::StartJob(Job::Rebalance), _) => {
            "nothing to move: the shards are balanced".to_string()
        }
        (On::NothingToMove, _, _) => format!("nothing to drain from {}", node_text(op)),
        (On::JobFinished, Ask::FollowJob(j), Outcome::Job { done, total, .. }) => {
            let (what, id) = job(j);
            format!("{what} job {id} finished ({done}/{total} tasks)")
        }
        (
            On::JobFailed | On::JobCancelled,
            Ask::FollowJob(j),
            Outcome::Job { state, done, total },
        ) => {
            let (what, id) = job(j);
            format!("{what} job {id} ended in state {state} ({done}/{total} tasks done)")
        }
        (On::JobStuck, Ask::FollowJob(j), _) => {
            let (what, id) = job(j);
            format!(
                "{what} job {id} scheduled for {} without starting (cf. Citus issue \
                 #7103); the job may still be cancelled with citus_job_cancel({id})",
                waited()
            )
        }
        (On::Picked, _, Outcome::Picked(node)) => format!("standby {node} taken from the pool"),
        (On::PoolEmpty, _, _) if to == Some(Step::RequestNode) => {
            "the standby pool is empty; asking for a node".to_string()
        }
        (On::PoolEmpty, _, _) => format!(
            "the standby pool is empty after {} of {} nodes; rebalancing onto those",
            op.added.len(),
            op.want
        ),
        (On::Ok, Ask::AddNode, _) if op.kind == Kind::Resize => {
            let new = op.node.as_ref().map_or_else(String::new, |n| n.to_string());
            format!("node {new} added: it replaces {}", node_text(op))
        }
        (On::Ok, Ask::AddNode, _) => joined(op, format!("node {} added", node_text(op)), to),
        (On::Requested, _, Outcome::Requested(id)) => {
            format!("provision request {id} sent; waiting for a node")
        }
        (On::NodeInPool, _, Outcome::Appeared { node, .. }) => {
            format!("node {node} appeared in the pool")
        }
        (On::NodeInCluster, _, Outcome::Appeared { node, .. }) => {
            joined(op, format!("node {node} joined the cluster"), to)
        }
        (On::NoNodeInTime, _, _) => {
            let request = match op.request_id {
                Some(id) => format!("provision request {id}"),
                None => "provision request".to_string(),
            };
            format!("{request} expired after {} without a node", waited())
        }
        (On::Ok, Ask::MarkDraining, _) => {
            format!("shouldhaveshards = false on {}", node_text(op))
        }
        (On::Ok, Ask::Cleanup, _) => "orphaned resources cleaned up".to_string(),
        (On::Empty, _, _) => format!(
            "{} {} no placements",
            node_text(op),
            verb(op, "holds", "hold")
        ),
        (On::PlacementsLeft, _, Outcome::Placements(n)) => format!(
            "{} still {} {n} placement{}; not removed",
            subject(op),
            verb(op, "holds", "hold"),
            if *n == 1 { "" } else { "s" }
        ),
        (On::Ok, Ask::DisableNode, _) => format!(
            "dead node {} disabled: queries use the other copies",
            dead_text(op)
        ),
        (On::AllCopied, _, _) => format!(
            "every shard group of {} has its copies back ({} copied), reference tables \
             replicated",
            dead_text(op),
            op.progress_done
        ),
        (On::Ok, Ask::RemoveDeadNode, _) => {
            let by = op
                .node
                .as_ref()
                .map_or_else(String::new, |n| format!(", replaced by {n}"));
            format!(
                "dead node {} removed from the cluster{by}; {} shard group copies restored",
                dead_text(op),
                op.progress_done
            )
        }
        (On::Ok, Ask::RemoveNodes, _) => format!("{} removed from the cluster", subject(op)),
        (On::Ok, Ask::ReturnToPool, _) => {
            format!("{} removed and returned to the pool", subject(op))
        }
        (On::Ok, Ask::CoordinatorShards, _) => {
            let c = op.coordinator.as_ref().map_or_else(
                || "the coordinator".to_string(),
                |c| format!("coordinator {c}"),
            );
            if to == Some(Step::MarkDraining) {
                format!("shouldhaveshards = true on {c}: the drain moves the workers' shards to it")
            } else {
                format!(
                    "shouldhaveshards = false on {c}: the rebalance moves its shards to the workers"
                )
            }
        }
        (On::Registered, _, _) => format!(
            "clone {} registered as a clone of {}",
            clone_text(op),
            primary_text(op)
        ),
        (On::SplitPlanned, _, Outcome::SplitPlan { to_clone, total }) => format!(
            "split plan: {to_clone} of {total} shards of {} go to clone {}",
            primary_text(op),
            clone_text(op)
        ),
        (On::NothingForClone, _, Outcome::SplitPlan { total, .. }) => format!(
            "the split plan gives clone {} none of the {total} shards of {}",
            clone_text(op),
            primary_text(op)
        ),
        (On::CloneNotReady | On::Diverged, _, Outcome::CloneUnusable(why)) => why.clone(),
        (On::Promoted, _, _) => format!(
            "clone {} promoted; the shards of {} split between the two",
            clone_text(op),
            primary_text(op)
        ),
        (On::HoldsShards, _, Outcome::Split { clone, primary }) => format!(
            "clone {} is an active worker with {clone} placements; {primary} left on {}",
            clone_text(op),
            primary_text(op)
        ),
        (On::HoldsNone, _, Outcome::Split { primary, .. }) => format!(
            "clone {} holds no placements after the split ({primary} on {})",
            clone_text(op),
            primary_text(op)
        ),
        (On::Ok, Ask::DropClone, _) => format!(
            "clone {} left unused; going on as an ordinary scale-out",
            clone_text(op)
        ),
        // waiting, the restore step and errors say it elsewhere
        _ => String::new(),
    }
}

/// A node joined (`detail`): a replacement goes on copying to it, a scale-out of several counts.
fn joined(op: &Operation, detail: String, to: Option<Step>) -> String {
    let (added, want) = (op.added.len(), op.want.max(1) as usize);
    if to == Some(Step::CopyPlacements) {
        format!("{detail}: copying the dead node's shard groups to it")
    } else if to == Some(Step::PickStandby) || want > 1 {
        format!("{detail} ({added} of {want})")
    } else {
        detail
    }
}

/// An outcome the step's action cannot give.
pub fn unexpected(step: Step, outcome: &Outcome) -> String {
    let text = serde_json::to_string(outcome).unwrap_or_else(|_| format!("{outcome:?}"));
    format!("unexpected outcome {text} at step {step} (a bug in the executor)")
}

/// The step note: `scale_in 127.0.0.1:9703: wait_drain -> cleanup: drain job 7 finished ...`.
pub fn step_note(op: &Operation, from: Step, to: Step, detail: &str) -> String {
    format!("{}: {from} -> {to}: {detail}", header(op))
}

/// The progress note of a followed job that is still going.
pub fn job_progress(op: &Operation, job: Job, state: JobState, done: i64, total: i64) -> String {
    let id = op.job_id.unwrap_or_default();
    let what = job.as_str();
    format!(
        "{}: {what} job {id} {state}, {done}/{total} tasks done",
        header(op)
    )
}

/// The progress note of copy_placements.
pub fn copy_progress(op: &Operation, shard: Option<&str>) -> String {
    format!(
        "{}: copied {}, {}/{} copies done",
        header(op),
        shard.unwrap_or("nothing"),
        op.progress_done,
        op.progress_total
    )
}

/// The retry note of a step that raised an error.
pub fn retrying(op: &Operation, attempts: u32, max: u32, msg: &str) -> String {
    format!(
        "{}: {} failed (attempt {attempts} of {max}), retrying: {msg}",
        header(op),
        op.step
    )
}

/// Why a step gave up after its attempts.
pub fn gave_up(step: Step, attempts: u32, msg: &str) -> String {
    format!(
        "{step} failed after {attempts} attempt{}: {msg}",
        plural(attempts)
    )
}

pub fn succeeded(op: &Operation, took: f64, detail: &str) -> String {
    format!(
        "{}: succeeded in {}: {detail}",
        header(op),
        format_secs(took)
    )
}

/// The `split_fallback` note.
pub fn falling_back(op: &Operation, why: &str) -> String {
    format!(
        "{}: falling back to the ordinary scale-out: {why}",
        header(op)
    )
}

/// The step detail of a split-out that gives up its clone.
pub fn clone_not_used(why: &str) -> String {
    format!("clone not used: {why}")
}

/// The step detail on the way to the restore step (failed or cancelled).
pub fn restoring(msg: &str) -> String {
    format!("{msg}; restoring shouldhaveshards = true")
}

/// Why an operation failed where it stands: `msg`, said more fully at the restore step (repair
/// by hand) and after the nodes left the cluster. `before` is the error the restore step was
/// restoring after.
pub fn failure(op: &Operation, restores: bool, msg: String, before: Option<String>) -> String {
    if restores {
        let mut full = format!(
            "could not restore shouldhaveshards = true on {}: {msg}; set it by hand with \
             citus_set_node_property",
            node_text(op)
        );
        if let Some(before) = before {
            full.push_str(&format!(" (the operation had failed: {before})"));
        }
        full
    } else if op.kind == Kind::ScaleIn && op.step == Step::ReturnToPool {
        format!(
            "{} {} removed from the cluster but not returned to the pool: {msg}",
            subject(op),
            verb(op, "was", "were")
        )
    } else {
        msg
    }
}

/// The `operation_failed` note.
pub fn failed(op: &Operation, took: f64, msg: &str) -> String {
    format!(
        "{}: failed at {} after {}: {msg}",
        header(op),
        op.step,
        format_secs(took)
    )
}

/// The note of a scale-in whose restore step succeeded; `status` is failed or cancelled.
pub fn restored(op: &Operation, status: Status, took: f64) -> String {
    let error = op.error.as_deref().unwrap_or("unknown error");
    let restored = op.restore_set();
    let what = if restored.is_empty() {
        "shouldhaveshards left as it was before (false)".to_string()
    } else {
        format!("shouldhaveshards restored to true on {}", names(&restored))
    };
    format!(
        "{}: {status} after {}: {error}; {what}",
        header(op),
        format_secs(took)
    )
}

/// The error recorded by a cancel, with its reason.
pub fn cancelled_because(reason: &str) -> String {
    if reason.trim().is_empty() {
        "cancelled".to_string()
    } else {
        format!("cancelled: {}", reason.trim())
    }
}

/// The `operation_cancelled` note of an operation that ends at once.
pub fn cancelled(op: &Operation, msg: &str) -> String {
    let mut message = format!("{}: {msg} at step {}", header(op), op.step);
    if let (Some(id), Step::WaitRebalance) = (op.job_id, op.step) {
        message.push_str(&format!("; Citus job {id} keeps running"));
    }
    message
}

/// A one-line summary: `scale_in 127.0.0.1:9703: wait_drain, job 7 3/10`.
pub fn describe(op: &Operation) -> String {
    let mut s = format!("{}: ", header(op));
    match op.status {
        Status::Running => {
            let ask = spec(op.kind, op.step).map(|r| (r.ask, r.restores));
            s.push_str(op.step.as_str());
            if let Some(id) = op
                .job_id
                .filter(|_| matches!(ask, Some((Ask::FollowJob(_), _))))
            {
                s.push_str(&format!(", job {id}"));
                if let Some((done, total)) = progress(op) {
                    s.push_str(&format!(" {done}/{total}"));
                }
                if let Some(state) = op.job_state.filter(|s| *s != JobState::Running) {
                    s.push_str(&format!(" ({state})"));
                }
            }
            if matches!(ask, Some((Ask::CopyPlacements, _))) && op.progress_total > 0 {
                s.push_str(&format!(
                    ", {}/{} copies",
                    op.progress_done, op.progress_total
                ));
            }
            if let (Some((Ask::WaitForNode, _)), Some(id)) = (ask, op.request_id) {
                s.push_str(&format!(", provision request {id}"));
            }
            if matches!(ask, Some((_, true))) {
                if let Some(e) = &op.error {
                    s.push_str(&format!(" after: {e}"));
                }
            }
            if op.attempts > 0 {
                s.push_str(&format!(
                    ", retrying ({} failed attempt{})",
                    op.attempts,
                    plural(op.attempts)
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
