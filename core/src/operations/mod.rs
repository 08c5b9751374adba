//! Operations: the persisted state machine of rebalance, scale-out and scale-in, the rebalance
//! trigger and the guards checked before any action.
//!
//! Pure and deterministic: no clock, no I/O. An operation is one row of `autoscale.operations`
//! ([`Operation`]), advanced ONE step per tick. Each tick the executor asks [`action`] what to do,
//! performs it against Citus in the same transaction that persists the result, and calls
//! [`advance`] with the [`Outcome`] to get the new row plus the event notes to record. Because the
//! action and the persisted step commit together, a crash at any point resumes at the recorded
//! step, and [`action`] on the persisted row asks for the same thing again.
//!
//! The steps of each kind, where each outcome leads, where failures and cancels go, are declared
//! in one table per kind ([`table`]); the words said about them are in [`messages`].
//!
//! Rules (docs/architecture.md, "The operation state machine", draws them from the tables):
//! - rebalance: `citus_rebalance_start` -> follow the job until it finishes, fails or is cancelled;
//! - scale-out: a standby from the pool (or a provision request and a wait for a node) ->
//!   `citus_add_node` -> the rebalance above;
//! - scale-in: shouldhaveshards = false -> drain_only job -> cleanup -> verify ZERO placements ->
//!   `citus_remove_node` -> back to the pool. A failure before the node is removed restores
//!   shouldhaveshards = true; a node with placements is never removed;
//! - replace_dead (a worker unreachable for longer than `autoscale.dead_node_after`, every
//!   placement of which has a healthy copy elsewhere): `citus_disable_node` -> a standby from the
//!   pool (or a provision request) -> `citus_add_node` -> one `citus_copy_shard_placement` per
//!   shard group that lost a copy, then `replicate_reference_tables` -> `citus_remove_node` of the
//!   dead node, checked again in the same transaction: never while it holds a sole copy;
//! - isolate_tenant (a hot tenant, opt-in; [`isolate`]): `isolate_tenant_to_new_shard(table,
//!   tenant, 'CASCADE')` unless the tenant has a shard of its own -> `citus_move_shard_placement`
//!   of that shard group to the least-loaded worker unless it is there -> verify both;
//! - transient errors are retried `max_attempts` times per step, then the operation fails
//!   (through the restore step for a scale-in).
//!
//! [`trigger`] decides when a rebalance is due; [`guards`] whether acting is allowed at all;
//! [`window`] parses the maintenance window.

pub mod candidates;
#[cfg(test)]
mod coordinator_tests;
pub mod dead;
pub mod diagram;
pub mod guards;
pub mod isolate;
#[cfg(test)]
mod isolate_tests;
mod machine;
pub mod messages;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod replace_tests;
#[cfg(test)]
mod resize_tests;
#[cfg(test)]
mod split_tests;
pub mod table;
#[cfg(test)]
mod tests;
mod texts;
pub mod trigger;
pub mod window;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::node::NodeAddr;
pub use guards::{GuardInput, GuardVerdict, Mode};
pub use machine::{
    action, advance, cancel, new_isolate_tenant, new_operation, new_scale_in, new_scale_out,
    new_split_out, progress, with_coordinator_shards,
};
pub use messages::describe;
pub use trigger::{
    load_plan_needed, plan_needed, rebalance_due, RebalanceTrigger, TriggerInput, WorkerWatch,
};
pub use window::MaintenanceWindow;

/// Default seconds a provision request waits for a node before the operation fails.
pub const DEFAULT_PROVISION_TIMEOUT: f64 = 900.0;
/// Default seconds a Citus job may stay `scheduled` before the operation gives up.
pub const DEFAULT_JOB_TIMEOUT: f64 = 600.0;
/// Default attempts of one step before a transient error fails the operation.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// Note kind: the operation moved to another step.
pub const NOTE_STEP: &str = "operation_step";
/// Note kind: the Citus job's state or progress changed.
pub const NOTE_PROGRESS: &str = "operation_progress";
/// Note kind: a step raised an error and will be tried again.
pub const NOTE_RETRY: &str = "operation_retry";
/// Note kind: the operation finished successfully.
pub const NOTE_SUCCEEDED: &str = "operation_succeeded";
/// Note kind: the operation failed.
pub const NOTE_FAILED: &str = "operation_failed";
/// Note kind: the operation was cancelled.
pub const NOTE_CANCELLED: &str = "operation_cancelled";
/// Note kind: a split-out gave up its clone and goes on as an ordinary scale-out (the message
/// says why).
pub const NOTE_FALLBACK: &str = "split_fallback";

/// A bad name or argument. The message names the bad value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("operation kind ({0:?}) must be one of {list}", list = names(Kind::ALL))]
    Kind(String),
    #[error("operation status ({0:?}) must be one of {list}", list = names(Status::ALL))]
    Status(String),
    #[error("operation step ({0:?}) must be one of {list}", list = names(Step::ALL))]
    Step(String),
    #[error("job state ({0:?}) must be one of {list}", list = names(JobState::ALL))]
    JobState(String),
    #[error(transparent)]
    Node(#[from] crate::node::NodeAddrError),
    #[error("a {0} operation needs a node (host, port)")]
    NodeRequired(Kind),
    #[error(
        "maintenance_window ({input:?}): {problem}; expected [days ]HH:MM-HH:MM in UTC, \
         for example \"02:00-04:00\", \"22:00-02:00\", \"sat,sun 00:00-06:00\" or \
         \"mon-fri 01:00-03:00\""
    )]
    Window { input: String, problem: String },
    #[error("mode ({0:?}) must be one of off, observe, act")]
    Mode(String),
    #[error("operation {id} is {status}; only a running operation can be cancelled")]
    NotRunning { id: i64, status: Status },
    #[error("operation {id} cannot be cancelled at step {step}: {why}")]
    NotCancellable {
        id: i64,
        step: Step,
        why: &'static str,
    },
}

/// `a, b, c`: how lists of nodes, steps and states read in messages.
pub fn names<T: fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A string-named enum: `ALL`, `as_str`, `parse` (ASCII case-insensitive, blanks ignored),
/// `Display`, `FromStr`; serde uses the same snake_case names.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $err:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The SQL-facing name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }

            /// Parses the SQL-facing name (ASCII case-insensitive, surrounding blanks ignored).
            pub fn parse(s: &str) -> Result<$name, OpError> {
                let t = s.trim();
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(t))
                    .ok_or_else(|| OpError::$err(s.to_string()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = OpError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }
    };
}

named_enum! {
    /// What an operation does.
    Kind, Kind {
        Rebalance => "rebalance",
        ScaleOut => "scale_out",
        ScaleIn => "scale_in",
        ReplaceDead => "replace_dead",
        /// A scale-out by Citus 13.2's snapshot split: a warm clone (a streaming replica of a
        /// worker) is promoted and takes half of its primary's shards; falls back to the steps
        /// of an ordinary scale-out when the clone cannot be used.
        SplitOut => "split_out",
        /// A hot tenant given a shard of its own and moved to the least-loaded worker.
        IsolateTenant => "isolate_tenant",
        /// A worker replaced by a larger one: a node of the requested size from the provisioner,
        /// added, then the old worker drained onto it and removed (the scale-in's steps).
        Resize => "resize",
    }
}

named_enum! {
    /// Where an operation is: running, or finished one way or another.
    Status, Status {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

named_enum! {
    /// The step an operation is at; [`action`] says what each one does.
    Step, Step {
        /// `citus_rebalance_start(...)` (rebalance, and the tail of scale-out).
        StartRebalance => "start_rebalance",
        /// Follow the rebalance job.
        WaitRebalance => "wait_rebalance",
        /// Take the first available node of the standby pool.
        PickStandby => "pick_standby",
        /// `citus_add_node(host, port)`.
        AddNode => "add_node",
        /// Ask the outside world for a node (request row, NOTIFY, webhook).
        RequestNode => "request_node",
        /// Wait for a provisioned node to appear in pg_dist_node or in the pool.
        WaitForNode => "wait_for_node",
        /// `citus_set_node_property(host, port, 'shouldhaveshards', false)`.
        MarkDraining => "mark_draining",
        /// `citus_rebalance_start(drain_only := true)`.
        StartDrain => "start_drain",
        /// Follow the drain job.
        WaitDrain => "wait_drain",
        /// `CALL citus_cleanup_orphaned_resources()`.
        Cleanup => "cleanup",
        /// Count the node's placements in `citus_shards`; only zero lets the node go.
        VerifyEmpty => "verify_empty",
        /// `citus_remove_node(host, port)`.
        RemoveNode => "remove_node",
        /// Put the node back in the pool and emit a deprovision request.
        ReturnToPool => "return_to_pool",
        /// Scale-in failure path: shouldhaveshards back to true, then the operation fails.
        Restore => "restore",
        /// `citus_set_node_property(coordinator, 'shouldhaveshards', value)`: a scale-out from a
        /// single node sheds the coordinator's shards (`autoscale.coordinator_shards = 'shed'`)
        /// before its rebalance; a scale-in to a single node gives them back before its drain.
        CoordinatorShards => "coordinator_shards",
        /// `citus_disable_node(host, port)` of a dead node: queries stop using its placements.
        DisableNode => "disable_node",
        /// One `citus_copy_shard_placement` per tick for a shard group that lost a copy on the
        /// dead node, then `replicate_reference_tables()`.
        CopyPlacements => "copy_placements",
        /// Split-out: check the clone again (streaming, lag), then `citus_add_clone_node(clone,
        /// primary)` unless it is registered.
        AddClone => "add_clone",
        /// Split-out: `get_snapshot_based_node_split_plan(primary, clone, strategy)`.
        CheckSplit => "check_split",
        /// Split-out: `citus_promote_clone_and_rebalance(clone, strategy, catch-up timeout)`.
        PromoteClone => "promote_clone",
        /// Split-out: the clone is an active primary holding placements.
        VerifySplit => "verify_split",
        /// Split-out falling back: unregister the unused clone (`citus_remove_clone_node`), put it
        /// back in the pool (or mark it failed when it was promoted without the split).
        DropClone => "drop_clone",
        /// Isolate-tenant: `isolate_tenant_to_new_shard(table, tenant, 'CASCADE')` unless the
        /// tenant already has a shard of its own.
        Isolate => "isolate",
        /// Isolate-tenant: `citus_move_shard_placement` of the tenant's shard group to the target
        /// worker unless it is there.
        MoveTenant => "move_tenant",
        /// Isolate-tenant: the tenant has a shard of its own on the target worker.
        VerifyTenant => "verify_tenant",
        /// Nothing left to do.
        Done => "done",
    }
}

named_enum! {
    /// A Citus background job's state, as `citus_job_status` prints it.
    JobState, JobState {
        Scheduled => "scheduled",
        Running => "running",
        Finished => "finished",
        Cancelling => "cancelling",
        Cancelled => "cancelled",
        Failing => "failing",
        Failed => "failed",
    }
}

impl Step {
    /// Whether this step is part of an operation of `kind`: it has a row in the kind's
    /// [`table`] (`done` is part of every kind).
    pub fn belongs_to(self, kind: Kind) -> bool {
        self == Step::Done || table::spec(kind, self).is_some()
    }
}

impl JobState {
    /// Finished, cancelled or failed: the job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Cancelled | JobState::Failed
        )
    }
}

/// One operation: one row of `autoscale.operations`. Times are epoch seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: i64,
    pub kind: Kind,
    pub status: Status,
    /// The step to perform next while running; where it stopped once finished (`done` after a
    /// complete path, including a scale-in whose restore succeeded).
    pub step: Step,
    /// The Citus job being followed (rebalance or drain).
    #[serde(default)]
    pub job_id: Option<i64>,
    /// The node added or removed.
    #[serde(default)]
    pub node: Option<NodeAddr>,
    /// The provision request waited on (scale-out with an empty pool).
    #[serde(default)]
    pub request_id: Option<i64>,
    /// Why it failed or was cancelled (kept through the restore step).
    #[serde(default)]
    pub error: Option<String>,
    pub started_at: f64,
    /// When the current step began (timeouts count from here).
    pub step_started_at: f64,
    #[serde(default)]
    pub finished_at: Option<f64>,
    /// Consecutive failed attempts of the current step (transient errors).
    #[serde(default)]
    pub attempts: u32,
    /// Why the operation was started.
    #[serde(default)]
    pub reason: String,
    /// Tasks done of the followed job, as last seen.
    #[serde(default)]
    pub progress_done: i64,
    /// Tasks in total of the followed job, as last seen.
    #[serde(default)]
    pub progress_total: i64,
    /// The followed job's state, as last seen (None before the first poll).
    #[serde(default)]
    pub job_state: Option<JobState>,
    /// Nodes a scale-out adds before its one rebalance (the policy's `step`; 1 otherwise).
    #[serde(default = "one")]
    pub want: u32,
    /// Nodes this scale-out has added so far, in order.
    #[serde(default)]
    pub added: Vec<NodeAddr>,
    /// Further nodes a scale-in drains and removes together with `node`, in one drain job (the
    /// policy's `step`; empty otherwise).
    #[serde(default)]
    pub also: Vec<NodeAddr>,
    /// Set by [`cancel`] on a scale-in that goes through the restore step first: it then ends
    /// `cancelled` instead of `failed`.
    #[serde(default)]
    pub cancelled: bool,
    /// The leaving nodes that had shouldhaveshards = true before `mark_draining` (recorded by it):
    /// the restore step puts back exactly these. None on rows written before 0.2.0 (all are
    /// restored to true then).
    #[serde(default)]
    pub had_shards: Option<Vec<NodeAddr>>,
    /// The coordinator, when this operation sets its shouldhaveshards (step
    /// `coordinator_shards`).
    #[serde(default)]
    pub coordinator: Option<NodeAddr>,
    /// The coordinator's shouldhaveshards this operation sets: false before a scale-out's
    /// rebalance (shed), true before a scale-in's drain to zero workers.
    #[serde(default)]
    pub coordinator_shards: Option<bool>,
    /// replace_dead: the dead worker being disabled, replaced and removed (`node` is the
    /// replacement, once picked).
    #[serde(default)]
    pub dead: Option<NodeAddr>,
    /// Split-out: the warm clone promoted and split with its primary.
    #[serde(default)]
    pub clone: Option<NodeAddr>,
    /// Split-out: the worker the clone streams from.
    #[serde(default)]
    pub primary: Option<NodeAddr>,
    /// Split-out: why it gave up the clone and went on as an ordinary scale-out.
    #[serde(default)]
    pub fallback: Option<String>,
    /// Split-out: placements on the clone and on its primary after the split.
    #[serde(default)]
    pub split: Option<(i64, i64)>,
    /// Isolate-tenant: the tenant (its table and value, then its own shard); the target worker
    /// is `node`.
    #[serde(default)]
    pub tenant: Option<isolate::TenantRef>,
    /// Resize: the worker being replaced (drained and removed once `node`, the larger one, is
    /// in the cluster).
    #[serde(default)]
    pub replaces: Option<NodeAddr>,
    /// Resize: the size asked of the provisioner (settings by name, e.g. shared_buffers).
    #[serde(default)]
    pub size: Option<serde_json::Value>,
}

impl Operation {
    /// The nodes a scale-in drains and removes: its node and the ones it takes along (`also`).
    /// Empty when no node is recorded.
    pub fn leaving(&self) -> Vec<NodeAddr> {
        // a resize drains the worker it replaces, not the one it added
        let first = if self.kind == Kind::Resize {
            &self.replaces
        } else {
            &self.node
        };
        first.iter().chain(&self.also).cloned().collect()
    }

    /// The nodes the restore step sets back to shouldhaveshards = true: those that had it before
    /// the scale-in (a node that was already false stays false).
    pub fn restore_set(&self) -> Vec<NodeAddr> {
        match &self.had_shards {
            Some(had) => self
                .leaving()
                .into_iter()
                .filter(|n| had.contains(n))
                .collect(),
            None => self.leaving(),
        }
    }
}

/// Whether performing `op`'s current action must pass the guards (mode, maintenance window, a
/// human's job, ...). Reads never do, and neither does a step that restores (the table says
/// which): putting shouldhaveshards back undoes autoscale's own change and must always run.
pub fn needs_guards(op: &Operation) -> bool {
    let restores = table::spec(op.kind, op.step).is_some_and(|r| r.restores);
    if op.status == Status::Running && restores {
        return false;
    }
    !matches!(
        action(op),
        Action::PollJob { .. }
            | Action::CheckForNode { .. }
            | Action::CountPlacements { .. }
            | Action::VerifySplit { .. }
            | Action::VerifyTenant { .. }
            | Action::Nothing
    )
}

/// What the executor must do for an operation's current step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// `citus_rebalance_start(strategy, drain_only, shard_transfer_mode)` ->
    /// [`Outcome::JobStarted`] (None when nothing to move).
    StartRebalance { drain_only: bool },
    /// `citus_job_status(job_id)` -> [`Outcome::Job`].
    PollJob { job_id: i64 },
    /// Claim the first available node of the pool -> [`Outcome::Picked`] or
    /// [`Outcome::PoolEmpty`].
    PickStandby,
    /// `citus_add_node(host, port)` -> [`Outcome::Ok`].
    AddNode { node: NodeAddr },
    /// Provision request row + NOTIFY + webhook -> [`Outcome::Requested`].
    RequestNode,
    /// Did a node appear (added to pg_dist_node by a provisioner, or put in the pool, then
    /// claimed like [`Action::PickStandby`])? -> [`Outcome::Appeared`] or [`Outcome::NotYet`].
    /// `answered_only` (a resize): only the node the provisioner answered the request with will
    /// do, never another node of the pool (it has the requested size).
    CheckForNode {
        request_id: Option<i64>,
        #[serde(default)]
        answered_only: bool,
    },
    /// `citus_set_node_property(host, port, 'shouldhaveshards', value)` -> [`Outcome::Ok`].
    SetShouldHaveShards { nodes: Vec<NodeAddr>, value: bool },
    /// The same on the coordinator (never a pool node) -> [`Outcome::Ok`].
    SetCoordinatorShards { node: NodeAddr, value: bool },
    /// `CALL citus_cleanup_orphaned_resources()` until nothing awaits cleanup on the nodes ->
    /// [`Outcome::Ok`].
    CleanupOrphaned { nodes: Vec<NodeAddr> },
    /// Placements left on the nodes, summed -> [`Outcome::Placements`].
    CountPlacements { nodes: Vec<NodeAddr> },
    /// `citus_remove_node(host, port)` for each node -> [`Outcome::Ok`].
    RemoveNode { nodes: Vec<NodeAddr> },
    /// Pool rows back to returned + a deprovision request per node -> [`Outcome::Ok`].
    ReturnToPool { nodes: Vec<NodeAddr> },
    /// `citus_disable_node(host, port)` unless it is already inactive, refused when it holds a
    /// sole copy -> [`Outcome::Ok`].
    DisableNode { node: NodeAddr },
    /// The next copy of [`dead::assess`]'s plan (`citus_copy_shard_placement`), or when none is
    /// left `replicate_reference_tables()` -> [`Outcome::Copied`]; a sole copy -> an error.
    CopyPlacements {
        dead: NodeAddr,
        target: Option<NodeAddr>,
    },
    /// `citus_remove_node` of the dead node once the plan is complete, checked in the same
    /// transaction -> [`Outcome::Ok`].
    RemoveDeadNode { node: NodeAddr },
    /// Check the clone again (streaming from its primary, lag within `autoscale.clone_max_lag`),
    /// then `citus_add_clone_node(clone, primary)` unless already registered -> [`Outcome::Ok`],
    /// or [`Outcome::CloneUnusable`] with the reason.
    AddClone { clone: NodeAddr, primary: NodeAddr },
    /// `get_snapshot_based_node_split_plan`: how many shards would go to the clone ->
    /// [`Outcome::SplitPlan`].
    CheckSplit { clone: NodeAddr, primary: NodeAddr },
    /// `citus_promote_clone_and_rebalance(clone's nodeid, strategy, catch-up timeout)`; a resumed
    /// step whose promotion committed does nothing -> [`Outcome::Ok`], or
    /// [`Outcome::CloneUnusable`] (catch-up timed out, or the clone was promoted by a call that
    /// did not commit and has diverged).
    PromoteClone { clone: NodeAddr, primary: NodeAddr },
    /// Placements on the clone and on its primary; the clone must be an active primary ->
    /// [`Outcome::Split`].
    VerifySplit { clone: NodeAddr, primary: NodeAddr },
    /// `citus_remove_clone_node(clone)` when registered, and the clone back to the pool
    /// (available, or failed when it no longer streams) -> [`Outcome::Ok`].
    DropClone { clone: NodeAddr },
    /// The tenant's shard (`get_shard_id_for_distribution_column`); unless its min value equals
    /// its max value (a shard of its own), `isolate_tenant_to_new_shard(table, tenant, 'CASCADE')`
    /// -> [`Outcome::Tenant`].
    IsolateTenant { table: String, tenant: String },
    /// `citus_move_shard_placement` of the tenant's shard (and its colocated shards) to `target`
    /// unless it is there -> [`Outcome::Tenant`].
    MoveTenant {
        table: String,
        tenant: String,
        target: NodeAddr,
    },
    /// The tenant's shard, whether it is its own and where it is -> [`Outcome::Tenant`].
    VerifyTenant {
        table: String,
        tenant: String,
        target: NodeAddr,
    },
    /// Nothing to do against Citus: a finished operation (then [`advance`] leaves it alone), or
    /// an inconsistent running row (then [`advance`] with [`Outcome::Ok`] fails it).
    Nothing,
}

impl Action {
    /// A short name for logs: `start_rebalance`, `poll_job`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Action::StartRebalance { .. } => "start_rebalance",
            Action::PollJob { .. } => "poll_job",
            Action::PickStandby => "pick_standby",
            Action::AddNode { .. } => "add_node",
            Action::RequestNode => "request_node",
            Action::CheckForNode { .. } => "check_for_node",
            Action::SetShouldHaveShards { .. } => "set_should_have_shards",
            Action::SetCoordinatorShards { .. } => "set_coordinator_shards",
            Action::CleanupOrphaned { .. } => "cleanup_orphaned",
            Action::CountPlacements { .. } => "count_placements",
            Action::RemoveNode { .. } => "remove_node",
            Action::ReturnToPool { .. } => "return_to_pool",
            Action::DisableNode { .. } => "disable_node",
            Action::CopyPlacements { .. } => "copy_placements",
            Action::RemoveDeadNode { .. } => "remove_dead_node",
            Action::CheckSplit { .. } => "check_split",
            Action::AddClone { .. } => "add_clone",
            Action::PromoteClone { .. } => "promote_clone",
            Action::VerifySplit { .. } => "verify_split",
            Action::DropClone { .. } => "drop_clone",
            Action::IsolateTenant { .. } => "isolate_tenant",
            Action::MoveTenant { .. } => "move_tenant",
            Action::VerifyTenant { .. } => "verify_tenant",
            Action::Nothing => "nothing",
        }
    }
}

/// What performing an [`Action`] gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum Outcome {
    /// The action succeeded and returns nothing.
    Ok,
    /// `citus_rebalance_start` returned a job id, or NULL when there was nothing to move.
    JobStarted(Option<i64>),
    /// `citus_job_status`: the job's state and its tasks done / total.
    Job {
        state: JobState,
        done: i64,
        total: i64,
    },
    /// A standby was claimed from the pool.
    Picked(NodeAddr),
    /// The pool has no available node.
    PoolEmpty,
    /// The provision request was written, with this id.
    Requested(i64),
    /// A node appeared: already in pg_dist_node (`in_cluster`) or in the pool.
    Appeared { node: NodeAddr, in_cluster: bool },
    /// No node yet.
    NotYet,
    /// Placements counted on the node.
    Placements(i64),
    /// `mark_draining` set shouldhaveshards = false; these nodes had it true before.
    Marked { had_shards: Vec<NodeAddr> },
    /// copy_placements: `shard` copied by this step (None when there was nothing left to copy;
    /// then the reference tables were replicated), and copies still to make after it.
    Copied { shard: Option<String>, left: i64 },
    /// `get_snapshot_based_node_split_plan`: shards that would go to the clone, of all the
    /// primary's shards.
    SplitPlan { to_clone: i64, total: i64 },
    /// The clone cannot be used for the split (the reason): the operation falls back to an
    /// ordinary scale-out.
    CloneUnusable(String),
    /// After the split: placements on the clone and on its primary.
    Split { clone: i64, primary: i64 },
    /// Isolate-tenant: after the step, the tenant's shard, the node holding it, whether it is the
    /// tenant's own (min value = max value) and whether this step changed anything (false: a
    /// resumed step found it done).
    Tenant {
        shard: i64,
        node: NodeAddr,
        isolated: bool,
        changed: bool,
    },
    /// The action raised an error (message).
    Error(String),
}

/// How long and how often the machine waits and retries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Seconds a provision request waits for a node before the operation fails; negative = never.
    pub provision_timeout: f64,
    /// Seconds a job may stay `scheduled` before the operation gives up (Citus issue #7103);
    /// negative (-1) = never.
    pub job_timeout: f64,
    /// Attempts of one step before a transient error fails the operation (0 counts as 1).
    pub max_attempts: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            provision_timeout: DEFAULT_PROVISION_TIMEOUT,
            job_timeout: DEFAULT_JOB_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// One event to record in `autoscale.events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// One of the `NOTE_*` constants: `operation_step`, `operation_progress`, `operation_retry`,
    /// `operation_succeeded`, `operation_failed`, `operation_cancelled`.
    pub kind: String,
    pub message: String,
}

/// The result of [`advance`] or [`cancel`]: the row to persist and the events to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub op: Operation,
    pub events: Vec<Note>,
}

fn one() -> u32 {
    1
}
