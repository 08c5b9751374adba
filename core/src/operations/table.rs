//! The operation state machine declared as data: per [`Kind`], one [`Table`] of its steps. Each
//! row ([`StepSpec`]) says what the step asks the executor for ([`Ask`]), where each outcome of
//! it leads ([`On`] -> [`Next`]), where a failure goes (straight to `failed`, or first to the
//! step that restores), what a cancel does, and whether the step is the one that restores.
//!
//! [`plan`](super::machine) reads the row for the action, [`advance`](super::advance) for the
//! next step and the failure path, [`cancel`](super::cancel) for the cancel path,
//! [`Step::belongs_to`] for membership, and [`diagram`](super::diagram) draws the tables. The
//! transitions only do the bookkeeping an outcome brings (a job id, a node) and say what
//! happened, in the words of [`messages`](super::messages).
//!
//! Adding a kind: one more table here, a start step in `new_operation`, and, when it needs
//! something new from Citus, one more [`Ask`] with its [`Action`] and the outcomes it classifies.

use super::texts;
use super::{Action, JobState, Kind, Limits, Operation, Outcome, Step};

/// The Citus background job a step starts or follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// `citus_rebalance_start(...)`.
    Rebalance,
    /// `citus_rebalance_start(drain_only := true)`.
    Drain,
}

impl Job {
    /// `rebalance` or `drain`, as the messages name the job.
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Rebalance => "rebalance",
            Job::Drain => "drain",
        }
    }
}

/// What a step asks the executor for; [`Ask::action`] fills in the arguments from the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    StartJob(Job),
    FollowJob(Job),
    PickStandby,
    AddNode,
    RequestNode,
    WaitForNode,
    /// shouldhaveshards = false on the leaving nodes.
    MarkDraining,
    /// shouldhaveshards = true again on the leaving nodes that had it ([`Operation::restore_set`]).
    RestoreShards,
    CoordinatorShards,
    Cleanup,
    CountPlacements,
    /// `citus_remove_node` of the leaving nodes.
    RemoveNodes,
    /// `citus_remove_node` of the dead node.
    RemoveDeadNode,
    ReturnToPool,
    DisableNode,
    CopyPlacements,
    AddClone,
    CheckSplit,
    PromoteClone,
    VerifySplit,
    DropClone,
    /// isolate_tenant: the tenant's own shard, split off unless it has one.
    IsolateTenant,
    /// isolate_tenant: its shard group to the target worker unless it is there.
    MoveTenant,
    /// isolate_tenant: where the tenant's shard is and whether it is its own.
    VerifyTenant,
}

/// What an outcome means at a step: [`classify`] sorts each [`Outcome`] of an [`Ask`] into one.
/// The label names it in the diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum On {
    /// The action succeeded (and returned nothing to decide on).
    Ok,
    /// add_clone: the clone is registered.
    Registered,
    /// promote_clone: promoted and split.
    Promoted,
    JobStarted,
    /// A rebalance or drain with nothing to move.
    NothingToMove,
    JobFinished,
    JobFailed,
    JobCancelled,
    /// The job stayed `scheduled` past `job_timeout`.
    JobStuck,
    /// The job is still scheduled or running.
    JobWaiting,
    Picked,
    PoolEmpty,
    Requested,
    NodeInPool,
    NodeInCluster,
    /// No node by `provision_timeout`.
    NoNodeInTime,
    NoNodeYet,
    /// No placement left on the leaving nodes.
    Empty,
    PlacementsLeft,
    /// One shard group copied (or nothing yet), copies still to make.
    CopiedOne,
    AllCopied,
    SplitPlanned,
    NothingForClone,
    /// add_clone, check_split: the clone does not stream, lags, or the split failed to plan.
    CloneNotReady,
    /// promote_clone: catch-up timed out, or the clone was promoted and diverged.
    Diverged,
    HoldsShards,
    HoldsNone,
    /// isolate_tenant: the tenant has a shard of its own (isolate step).
    Isolated,
    /// isolate_tenant: the tenant's shard holds other tenants too.
    StillShared,
    /// isolate_tenant: the tenant's shard is on the target worker (move step).
    OnTarget,
    /// isolate_tenant: the tenant's shard is on another worker than the target.
    Elsewhere,
    /// isolate_tenant: a shard of its own on the target (verify step).
    OwnShardOnTarget,
    /// The action raised an error, and the step's attempts are used up (before that the step is
    /// retried).
    Error,
}

impl On {
    /// How the diagram labels the edge.
    pub fn label(self) -> &'static str {
        match self {
            On::Ok => "ok",
            On::Registered => "registered",
            On::Promoted => "promoted and split",
            On::JobStarted => "job started",
            On::NothingToMove => "nothing to move",
            On::JobFinished => "job finished",
            On::JobFailed => "job failed",
            On::JobCancelled => "job cancelled",
            On::JobStuck => "job scheduled too long",
            On::JobWaiting => "job running",
            On::Picked => "picked",
            On::PoolEmpty => "pool empty",
            On::Requested => "requested",
            On::NodeInPool => "node in pool",
            On::NodeInCluster => "node in cluster",
            On::NoNodeInTime => "no node by provision_timeout",
            On::NoNodeYet => "no node yet",
            On::Empty => "empty",
            On::PlacementsLeft => "placements left",
            On::CopiedOne => "copied one",
            On::AllCopied => "all copied",
            On::SplitPlanned => "shards for the clone",
            On::NothingForClone => "nothing for the clone",
            On::CloneNotReady => "clone not ready",
            On::Diverged => "catch-up timed out, clone diverged",
            On::HoldsShards => "clone holds shards",
            On::HoldsNone => "clone holds none",
            On::Isolated => "isolated",
            On::StillShared => "still shared",
            On::OnTarget => "on the target",
            On::Elsewhere => "elsewhere",
            On::OwnShardOnTarget => "own shard on the target",
            On::Error => "error",
        }
    }
}

/// Where an outcome leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// To this step.
    Go(Step),
    /// To one of [`Choice::targets`], decided from the row.
    Choose(Choice),
    /// Stay at the step (waiting; the progress is recorded).
    Stay,
    /// The operation succeeded.
    Succeed,
    /// The step failed: through the row's `on_fail` step if it has one, else the operation fails.
    Fail,
    /// A split-out gives up its clone and goes to this step (one `split_fallback` note).
    FallBack(Step),
    /// The restore step is done: the operation ends failed, or cancelled when it was cancelled.
    Restored,
}

/// A next step decided from the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// A node joined a scale-out: the next standby while it wants more nodes, else
    /// [`Choice::before_rebalance`].
    NextNode,
    /// The pool is empty: a provision request when no node was added yet, else rebalance onto
    /// the nodes added ([`Choice::before_rebalance`]).
    PoolEmpty,
}

impl Choice {
    /// Every step it may choose.
    pub fn targets(self) -> &'static [Step] {
        match self {
            Choice::NextNode => &[
                Step::PickStandby,
                Step::CoordinatorShards,
                Step::StartRebalance,
            ],
            Choice::PoolEmpty => &[
                Step::RequestNode,
                Step::CoordinatorShards,
                Step::StartRebalance,
            ],
        }
    }

    /// The step chosen for `op` (with the outcome already recorded in it).
    pub fn pick(self, op: &Operation) -> Step {
        match self {
            Choice::NextNode if op.added.len() < op.want.max(1) as usize => Step::PickStandby,
            Choice::PoolEmpty if op.added.is_empty() => Step::RequestNode,
            _ => Choice::before_rebalance(op),
        }
    }

    /// The step after a scale-out's nodes joined: shed the coordinator's shards first when asked.
    fn before_rebalance(op: &Operation) -> Step {
        match (&op.coordinator, op.coordinator_shards) {
            (Some(_), Some(false)) => Step::CoordinatorShards,
            _ => Step::StartRebalance,
        }
    }
}

/// What [`cancel`](super::cancel) does at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// The operation ends `cancelled` at once.
    Now,
    /// It goes to this (restoring) step first and ends `cancelled` once that is done.
    Via(Step),
    /// Refused, for this reason.
    No(&'static str),
}

/// One step of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSpec {
    pub step: Step,
    pub ask: Ask,
    /// Where each outcome leads. An [`On::Error`] left out means [`Next::Fail`]; any other
    /// outcome left out is a bug in the executor and fails the operation.
    pub on: &'static [(On, Next)],
    /// Where a failure goes before the operation ends: the step that restores (None: it fails
    /// here).
    pub on_fail: Option<Step>,
    pub on_cancel: Cancel,
    /// This step undoes autoscale's own change: it runs without the guards, its success ends the
    /// operation failed (or cancelled), its failure says to repair by hand.
    pub restores: bool,
}

impl StepSpec {
    const fn new(step: Step, ask: Ask, on: &'static [(On, Next)]) -> StepSpec {
        StepSpec {
            step,
            ask,
            on,
            on_fail: None,
            on_cancel: Cancel::Now,
            restores: false,
        }
    }

    /// A failure, and a cancel, go through `step` first.
    const fn undone_by(mut self, step: Step) -> StepSpec {
        self.on_fail = Some(step);
        self.on_cancel = Cancel::Via(step);
        self
    }

    /// A failure goes through `step` first (a cancel ends at once: nothing to undo yet).
    const fn fails_via(mut self, step: Step) -> StepSpec {
        self.on_fail = Some(step);
        self
    }

    const fn not_cancellable(mut self, why: &'static str) -> StepSpec {
        self.on_cancel = Cancel::No(why);
        self
    }

    const fn restoring(mut self) -> StepSpec {
        self.restores = true;
        self
    }

    /// Where `on` leads from this step (None: an outcome this step does not expect).
    pub fn next(&self, on: On) -> Option<Next> {
        let declared = self.on.iter().find(|(o, _)| *o == on).map(|(_, n)| *n);
        match (declared, on) {
            (None, On::Error) => Some(Next::Fail),
            _ => declared,
        }
    }

    /// Every outcome of this step and where it leads, [`On::Error`] included.
    pub fn edges(&self) -> Vec<(On, Next)> {
        let mut v = self.on.to_vec();
        if !v.iter().any(|(o, _)| *o == On::Error) {
            v.push((On::Error, Next::Fail));
        }
        v
    }
}

/// The steps of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Where a new operation of the kind may start (`new_operation`, `with_coordinator_shards`).
    pub starts: &'static [Step],
    pub steps: &'static [StepSpec],
}

/// The table of `kind`.
pub fn table(kind: Kind) -> &'static Table {
    match kind {
        Kind::Rebalance => &REBALANCE,
        Kind::ScaleOut => &SCALE_OUT,
        Kind::ScaleIn => &SCALE_IN,
        Kind::ReplaceDead => &REPLACE_DEAD,
        Kind::SplitOut => &SPLIT_OUT,
        Kind::IsolateTenant => &ISOLATE_TENANT,
        Kind::Resize => &RESIZE,
    }
}

/// The row of `step` in `kind`'s table (None for `done` and for steps of other kinds).
pub fn spec(kind: Kind, step: Step) -> Option<&'static StepSpec> {
    table(kind).steps.iter().find(|s| s.step == step)
}

use Next::{Choose, Fail, FallBack, Go, Restored, Stay, Succeed};

const FOLLOW_JOB_END: [(On, Next); 4] = [
    (On::JobFailed, Fail),
    (On::JobCancelled, Fail),
    (On::JobStuck, Fail),
    (On::JobWaiting, Stay),
];

// The rebalance, also the tail of a scale-out.
const START_REBALANCE: StepSpec = StepSpec::new(
    Step::StartRebalance,
    Ask::StartJob(Job::Rebalance),
    &[
        (On::JobStarted, Go(Step::WaitRebalance)),
        (On::NothingToMove, Succeed),
    ],
);
const WAIT_REBALANCE: StepSpec = StepSpec::new(
    Step::WaitRebalance,
    Ask::FollowJob(Job::Rebalance),
    &[
        (On::JobFinished, Succeed),
        FOLLOW_JOB_END[0],
        FOLLOW_JOB_END[1],
        FOLLOW_JOB_END[2],
        FOLLOW_JOB_END[3],
    ],
);

// Taking nodes for a scale-out: the pool, else a provision request.
const PICK_STANDBY: StepSpec = StepSpec::new(
    Step::PickStandby,
    Ask::PickStandby,
    &[
        (On::Picked, Go(Step::AddNode)),
        (On::PoolEmpty, Choose(Choice::PoolEmpty)),
    ],
);
const ADD_NODE: StepSpec = StepSpec::new(
    Step::AddNode,
    Ask::AddNode,
    &[(On::Ok, Choose(Choice::NextNode))],
);
const REQUEST_NODE: StepSpec = StepSpec::new(
    Step::RequestNode,
    Ask::RequestNode,
    &[(On::Requested, Go(Step::WaitForNode))],
);
const WAIT_FOR_NODE: StepSpec = StepSpec::new(
    Step::WaitForNode,
    Ask::WaitForNode,
    &[
        (On::NodeInPool, Go(Step::AddNode)),
        (On::NodeInCluster, Choose(Choice::NextNode)),
        (On::NoNodeInTime, Fail),
        (On::NoNodeYet, Stay),
    ],
);
const SHED_COORDINATOR: StepSpec = StepSpec::new(
    Step::CoordinatorShards,
    Ask::CoordinatorShards,
    &[(On::Ok, Go(Step::StartRebalance))],
);

static REBALANCE: Table = Table {
    starts: &[Step::StartRebalance],
    steps: &[START_REBALANCE, WAIT_REBALANCE],
};

static SCALE_OUT: Table = Table {
    starts: &[Step::PickStandby, Step::AddNode],
    steps: &[
        START_REBALANCE,
        WAIT_REBALANCE,
        PICK_STANDBY,
        ADD_NODE,
        REQUEST_NODE,
        WAIT_FOR_NODE,
        SHED_COORDINATOR,
    ],
};

// Draining and removing the leaving nodes: the scale-in's steps, also the tail of a resize.
const MARK_DRAINING: StepSpec = StepSpec::new(
    Step::MarkDraining,
    Ask::MarkDraining,
    &[(On::Ok, Go(Step::StartDrain))],
)
.fails_via(Step::Restore);
const DRAIN_STEPS: [StepSpec; 7] = [
    StepSpec::new(
        Step::StartDrain,
        Ask::StartJob(Job::Drain),
        &[
            (On::JobStarted, Go(Step::WaitDrain)),
            (On::NothingToMove, Go(Step::Cleanup)),
        ],
    )
    .undone_by(Step::Restore),
    StepSpec::new(
        Step::WaitDrain,
        Ask::FollowJob(Job::Drain),
        &[
            (On::JobFinished, Go(Step::Cleanup)),
            FOLLOW_JOB_END[0],
            FOLLOW_JOB_END[1],
            FOLLOW_JOB_END[2],
            FOLLOW_JOB_END[3],
        ],
    )
    .undone_by(Step::Restore),
    StepSpec::new(
        Step::Cleanup,
        Ask::Cleanup,
        &[(On::Ok, Go(Step::VerifyEmpty))],
    )
    .undone_by(Step::Restore),
    StepSpec::new(
        Step::VerifyEmpty,
        Ask::CountPlacements,
        &[
            (On::Empty, Go(Step::RemoveNode)),
            (On::PlacementsLeft, Fail),
        ],
    )
    .undone_by(Step::Restore),
    StepSpec::new(
        Step::RemoveNode,
        Ask::RemoveNodes,
        &[(On::Ok, Go(Step::ReturnToPool))],
    )
    .undone_by(Step::Restore),
    // the node is out of the cluster: nothing to restore any more
    StepSpec::new(Step::ReturnToPool, Ask::ReturnToPool, &[(On::Ok, Succeed)])
        .not_cancellable(texts::CANCEL_ALREADY_REMOVED),
    StepSpec::new(Step::Restore, Ask::RestoreShards, &[(On::Ok, Restored)])
        .restoring()
        .not_cancellable(texts::CANCEL_ALREADY_RESTORING),
];

static SCALE_IN: Table = Table {
    starts: &[Step::MarkDraining, Step::CoordinatorShards],
    steps: &[
        // before mark_draining: nothing to undo yet
        StepSpec::new(
            Step::CoordinatorShards,
            Ask::CoordinatorShards,
            &[(On::Ok, Go(Step::MarkDraining))],
        ),
        MARK_DRAINING,
        DRAIN_STEPS[0],
        DRAIN_STEPS[1],
        DRAIN_STEPS[2],
        DRAIN_STEPS[3],
        DRAIN_STEPS[4],
        DRAIN_STEPS[5],
        DRAIN_STEPS[6],
    ],
};

// A resize: a node of the requested size (always from the provisioner: a pool node's size is
// unknown), added; then the replaced worker leaves as in a scale-in. Before mark_draining
// nothing of the old worker has changed; a failure after it restores its shouldhaveshards (the
// new node stays in the cluster, holding what the drain moved).
static RESIZE: Table = Table {
    starts: &[Step::RequestNode],
    steps: &[
        REQUEST_NODE,
        StepSpec::new(
            Step::WaitForNode,
            Ask::WaitForNode,
            &[
                (On::NodeInPool, Go(Step::AddNode)),
                (On::NodeInCluster, Go(Step::MarkDraining)),
                (On::NoNodeInTime, Fail),
                (On::NoNodeYet, Stay),
            ],
        ),
        StepSpec::new(
            Step::AddNode,
            Ask::AddNode,
            &[(On::Ok, Go(Step::MarkDraining))],
        ),
        MARK_DRAINING,
        DRAIN_STEPS[0],
        DRAIN_STEPS[1],
        DRAIN_STEPS[2],
        DRAIN_STEPS[3],
        DRAIN_STEPS[4],
        DRAIN_STEPS[5],
        DRAIN_STEPS[6],
    ],
};

static REPLACE_DEAD: Table = Table {
    starts: &[Step::DisableNode],
    steps: &[
        StepSpec::new(
            Step::DisableNode,
            Ask::DisableNode,
            &[(On::Ok, Go(Step::PickStandby))],
        ),
        StepSpec::new(
            Step::PickStandby,
            Ask::PickStandby,
            &[
                (On::Picked, Go(Step::AddNode)),
                (On::PoolEmpty, Go(Step::RequestNode)),
            ],
        ),
        StepSpec::new(
            Step::AddNode,
            Ask::AddNode,
            &[(On::Ok, Go(Step::CopyPlacements))],
        ),
        REQUEST_NODE,
        StepSpec::new(
            Step::WaitForNode,
            Ask::WaitForNode,
            &[
                (On::NodeInPool, Go(Step::AddNode)),
                (On::NodeInCluster, Go(Step::CopyPlacements)),
                (On::NoNodeInTime, Fail),
                (On::NoNodeYet, Stay),
            ],
        ),
        StepSpec::new(
            Step::CopyPlacements,
            Ask::CopyPlacements,
            &[(On::CopiedOne, Stay), (On::AllCopied, Go(Step::RemoveNode))],
        ),
        StepSpec::new(Step::RemoveNode, Ask::RemoveDeadNode, &[(On::Ok, Succeed)]),
    ],
};

static SPLIT_OUT: Table = Table {
    starts: &[Step::AddClone],
    steps: &[
        START_REBALANCE,
        WAIT_REBALANCE,
        PICK_STANDBY,
        ADD_NODE,
        REQUEST_NODE,
        WAIT_FOR_NODE,
        SHED_COORDINATOR,
        StepSpec::new(
            Step::AddClone,
            Ask::AddClone,
            &[
                (On::Registered, Go(Step::CheckSplit)),
                (On::CloneNotReady, FallBack(Step::DropClone)),
                (On::Error, FallBack(Step::DropClone)),
            ],
        ),
        StepSpec::new(
            Step::CheckSplit,
            Ask::CheckSplit,
            &[
                (On::SplitPlanned, Go(Step::PromoteClone)),
                (On::NothingForClone, FallBack(Step::DropClone)),
                (On::CloneNotReady, FallBack(Step::DropClone)),
                (On::Error, FallBack(Step::DropClone)),
            ],
        ),
        StepSpec::new(
            Step::PromoteClone,
            Ask::PromoteClone,
            &[
                (On::Promoted, Go(Step::VerifySplit)),
                (On::Diverged, FallBack(Step::DropClone)),
                (On::Error, FallBack(Step::DropClone)),
            ],
        ),
        StepSpec::new(
            Step::VerifySplit,
            Ask::VerifySplit,
            &[(On::HoldsShards, Succeed), (On::HoldsNone, Fail)],
        ),
        StepSpec::new(
            Step::DropClone,
            Ask::DropClone,
            &[(On::Ok, Go(Step::PickStandby))],
        ),
    ],
};

// A hot tenant's own shard, moved to the least-loaded worker (`isolate.rs`). Each step first
// looks where the tenant is, so a resumed step does not do its work twice.
static ISOLATE_TENANT: Table = Table {
    starts: &[Step::Isolate],
    steps: &[
        StepSpec::new(
            Step::Isolate,
            Ask::IsolateTenant,
            &[
                (On::Isolated, Go(Step::MoveTenant)),
                (On::StillShared, Fail),
            ],
        ),
        StepSpec::new(
            Step::MoveTenant,
            Ask::MoveTenant,
            &[
                (On::OnTarget, Go(Step::VerifyTenant)),
                (On::Elsewhere, Fail),
            ],
        ),
        StepSpec::new(
            Step::VerifyTenant,
            Ask::VerifyTenant,
            &[
                (On::OwnShardOnTarget, Succeed),
                (On::StillShared, Fail),
                (On::Elsewhere, Fail),
            ],
        ),
    ],
};

impl Ask {
    /// The action for `op` at its step, or why the row cannot go on (a value the step needs is
    /// not recorded).
    pub fn action(self, op: &Operation) -> Result<Action, String> {
        let needs = |what| texts::needs(op.step, what);
        let node = || op.node.clone().ok_or_else(|| needs(texts::NEEDS_NODE));
        // a scale-in acts on its node and the nodes it drains with it
        let nodes = || node().map(|_| op.leaving());
        let dead = || op.dead.clone().ok_or_else(|| needs(texts::NEEDS_DEAD));
        let pair = || match (&op.clone, &op.primary) {
            (Some(c), Some(p)) => Ok((c.clone(), p.clone())),
            _ => Err(needs(texts::NEEDS_CLONE)),
        };
        Ok(match self {
            Ask::StartJob(Job::Rebalance) => Action::StartRebalance { drain_only: false },
            Ask::StartJob(Job::Drain) => {
                node()?;
                Action::StartRebalance { drain_only: true }
            }
            Ask::FollowJob(_) => Action::PollJob {
                job_id: op.job_id.ok_or_else(|| needs(texts::NEEDS_JOB))?,
            },
            Ask::PickStandby => Action::PickStandby,
            Ask::AddNode => Action::AddNode { node: node()? },
            Ask::RequestNode => Action::RequestNode,
            Ask::WaitForNode => Action::CheckForNode {
                request_id: op.request_id,
                answered_only: op.kind == Kind::Resize,
            },
            Ask::MarkDraining => Action::SetShouldHaveShards {
                nodes: nodes()?,
                value: false,
            },
            Ask::RestoreShards => {
                node()?;
                Action::SetShouldHaveShards {
                    nodes: op.restore_set(),
                    value: true,
                }
            }
            Ask::CoordinatorShards => match (&op.coordinator, op.coordinator_shards) {
                (Some(c), Some(value)) => Action::SetCoordinatorShards {
                    node: c.clone(),
                    value,
                },
                _ => return Err(needs(texts::NEEDS_COORDINATOR)),
            },
            Ask::Cleanup => Action::CleanupOrphaned { nodes: nodes()? },
            Ask::CountPlacements => Action::CountPlacements { nodes: nodes()? },
            Ask::RemoveNodes => Action::RemoveNode { nodes: nodes()? },
            Ask::RemoveDeadNode => Action::RemoveDeadNode { node: dead()? },
            Ask::ReturnToPool => Action::ReturnToPool { nodes: nodes()? },
            Ask::DisableNode => Action::DisableNode { node: dead()? },
            Ask::CopyPlacements => Action::CopyPlacements {
                dead: dead()?,
                target: op.node.clone(),
            },
            Ask::AddClone | Ask::CheckSplit | Ask::PromoteClone | Ask::VerifySplit => {
                let (clone, primary) = pair()?;
                match self {
                    Ask::AddClone => Action::AddClone { clone, primary },
                    Ask::CheckSplit => Action::CheckSplit { clone, primary },
                    Ask::PromoteClone => Action::PromoteClone { clone, primary },
                    _ => Action::VerifySplit { clone, primary },
                }
            }
            Ask::DropClone => Action::DropClone { clone: pair()?.0 },
            Ask::IsolateTenant | Ask::MoveTenant | Ask::VerifyTenant => {
                return isolate_action(self, op)
            }
        })
    }
}

/// What `outcome` of `ask` means for `op` at `now` (timeouts count from the step's start).
/// None: an outcome this action cannot give (a bug in the executor).
pub fn classify(
    ask: Ask,
    outcome: &Outcome,
    op: &Operation,
    now: f64,
    limits: &Limits,
) -> Option<On> {
    use Outcome as O;
    let waited = now - op.step_started_at;
    Some(match (ask, outcome) {
        (_, O::Error(_)) => On::Error,
        (Ask::StartJob(_), O::JobStarted(Some(_))) => On::JobStarted,
        (Ask::StartJob(_), O::JobStarted(None)) => On::NothingToMove,
        (Ask::FollowJob(_), O::Job { state, .. }) => match state {
            JobState::Finished => On::JobFinished,
            JobState::Failed => On::JobFailed,
            JobState::Cancelled => On::JobCancelled,
            JobState::Scheduled if limits.job_timeout >= 0.0 && waited >= limits.job_timeout => {
                On::JobStuck
            }
            _ => On::JobWaiting,
        },
        (Ask::PickStandby, O::Picked(_)) => On::Picked,
        (Ask::PickStandby, O::PoolEmpty) => On::PoolEmpty,
        (Ask::RequestNode, O::Requested(_)) => On::Requested,
        (Ask::WaitForNode, O::Appeared { in_cluster, .. }) => {
            if *in_cluster {
                On::NodeInCluster
            } else {
                On::NodeInPool
            }
        }
        (Ask::WaitForNode, O::NotYet) => {
            if limits.provision_timeout >= 0.0 && waited >= limits.provision_timeout {
                On::NoNodeInTime
            } else {
                On::NoNodeYet
            }
        }
        (Ask::MarkDraining, O::Marked { .. }) => On::Ok,
        (
            Ask::AddNode
            | Ask::MarkDraining
            | Ask::RestoreShards
            | Ask::CoordinatorShards
            | Ask::Cleanup
            | Ask::RemoveNodes
            | Ask::RemoveDeadNode
            | Ask::ReturnToPool
            | Ask::DisableNode
            | Ask::DropClone,
            O::Ok,
        ) => On::Ok,
        (Ask::CountPlacements, O::Placements(0)) => On::Empty,
        (Ask::CountPlacements, O::Placements(n)) if *n > 0 => On::PlacementsLeft,
        (
            Ask::CopyPlacements,
            O::Copied {
                shard: None,
                left: 0,
            },
        ) => On::AllCopied,
        (Ask::CopyPlacements, O::Copied { .. }) => On::CopiedOne,
        (Ask::AddClone, O::Ok) => On::Registered,
        (Ask::AddClone | Ask::CheckSplit, O::CloneUnusable(_)) => On::CloneNotReady,
        (Ask::CheckSplit, O::SplitPlan { to_clone, .. }) if *to_clone > 0 => On::SplitPlanned,
        (Ask::CheckSplit, O::SplitPlan { .. }) => On::NothingForClone,
        (Ask::PromoteClone, O::Ok) => On::Promoted,
        (Ask::PromoteClone, O::CloneUnusable(_)) => On::Diverged,
        (Ask::VerifySplit, O::Split { clone, .. }) if *clone > 0 => On::HoldsShards,
        (Ask::VerifySplit, O::Split { .. }) => On::HoldsNone,
        (Ask::IsolateTenant | Ask::MoveTenant | Ask::VerifyTenant, O::Tenant { .. }) => {
            return isolate_classify(ask, outcome, op)
        }
        _ => return None,
    })
}

/// The action of an isolate_tenant step (`isolate`, `move_tenant`, `verify_tenant`).
fn isolate_action(ask: Ask, op: &Operation) -> Result<Action, String> {
    let t = op
        .tenant
        .as_ref()
        .ok_or_else(|| texts::needs(op.step, texts::NEEDS_TENANT))?;
    let (table, tenant) = (t.table.clone(), t.value.clone());
    let target = || {
        op.node
            .clone()
            .ok_or_else(|| texts::needs(op.step, texts::NEEDS_NODE))
    };
    Ok(match ask {
        Ask::MoveTenant => Action::MoveTenant {
            table,
            tenant,
            target: target()?,
        },
        Ask::VerifyTenant => Action::VerifyTenant {
            table,
            tenant,
            target: target()?,
        },
        _ => Action::IsolateTenant { table, tenant },
    })
}

/// What the tenant's place after the step means: isolated (or still shared) at `isolate`, on
/// the target (or elsewhere) at `move_tenant`, both at `verify_tenant`.
fn isolate_classify(ask: Ask, outcome: &Outcome, op: &Operation) -> Option<On> {
    let Outcome::Tenant { node, isolated, .. } = outcome else {
        return None;
    };
    let on_target = op.node.as_ref() == Some(node);
    Some(match ask {
        Ask::IsolateTenant if *isolated => On::Isolated,
        Ask::IsolateTenant => On::StillShared,
        Ask::MoveTenant if on_target => On::OnTarget,
        Ask::MoveTenant => On::Elsewhere,
        _ if !*isolated => On::StillShared,
        _ if on_target => On::OwnShardOnTarget,
        _ => On::Elsewhere,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each step at most once per table; every step a row leads to is in the same table; a
    /// restoring step is where failures and cancels go, and no other.
    #[test]
    fn the_tables_are_well_formed() {
        for &kind in Kind::ALL {
            let t = table(kind);
            let has = |s: Step| t.steps.iter().any(|r| r.step == s);
            for (i, row) in t.steps.iter().enumerate() {
                assert!(
                    t.steps[..i].iter().all(|r| r.step != row.step),
                    "{kind}: {} twice",
                    row.step
                );
                let mut to: Vec<Step> = Vec::new();
                for (_, next) in row.edges() {
                    match next {
                        Go(s) | FallBack(s) => to.push(s),
                        Choose(c) => to.extend(c.targets()),
                        _ => {}
                    }
                }
                if let Some(s) = row.on_fail {
                    assert!(spec(kind, s).is_some_and(|r| r.restores), "{kind}: {s}");
                    to.push(s);
                }
                if let Cancel::Via(s) = row.on_cancel {
                    assert_eq!(Some(s), row.on_fail, "{kind}: {}", row.step);
                }
                for s in to {
                    assert!(
                        has(s),
                        "{kind}: {} leads to {s}, not in the table",
                        row.step
                    );
                }
            }
            for s in t.starts {
                assert!(has(*s), "{kind} starts at {s}, not in the table");
            }
        }
    }
}
