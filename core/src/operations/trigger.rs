//! When a rebalance is due (docs/architecture.md, "Where each decision is made"):
//! - the set of active workers gained a node (added or activated): after `rebalance_settle`
//!   seconds without further change; a removal alone needs no rebalance;
//! - the load is skewed (the busiest worker above `load_skew_ratio` x the mean for
//!   `load_skew_for`, and the plan by load lowers it, see [`crate::load`]), or data is skewed
//!   (`get_rebalance_table_shards_plan()` has moves): at most once per `rebalance_interval`
//!   counted from the last rebalance started (-1 disables);
//! - never within `failure_backoff` after a failed rebalance (no retry storms).
//!
//! The caller keeps a [`WorkerWatch`] between ticks: [`WorkerWatch::observe`] every tick,
//! [`WorkerWatch::rebalanced`] when a rebalance starts (ours, whatever triggered it).

use serde::{Deserialize, Serialize};

use super::{names, NodeAddr};
use crate::duration::format_secs;
use crate::load::LoadSkew;

/// What the trigger looks at. Times are epoch seconds, durations seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerInput {
    pub now: f64,
    /// The active primary workers now, sorted.
    pub active_workers: Vec<NodeAddr>,
    /// The worker set the last rebalance accounted for ([`WorkerWatch::baseline`]); None before
    /// anything was observed (no change is then reported).
    pub last_seen_workers: Option<Vec<NodeAddr>>,
    /// When the active set last changed ([`WorkerWatch::changed_at`]); the settle time counts
    /// from here, so every further change restarts it.
    pub workers_changed_at: Option<f64>,
    /// Moves in the rebalance plan; None = not computed (see [`plan_needed`]).
    pub plan_moves: Option<i64>,
    /// When our last rebalance (of any trigger, or the tail of a scale-out) started.
    pub last_rebalance_started: Option<f64>,
    /// When our last rebalance failed.
    pub last_failure: Option<f64>,
    /// `autoscale.rebalance_settle`.
    pub settle: f64,
    /// `autoscale.rebalance_interval`; negative (-1) disables skew-triggered rebalances.
    pub interval: f64,
    /// No rebalance within this long after a failure.
    pub failure_backoff: f64,
    /// A sustained load skew that the plan by load fixes ([`crate::load::load_rebalance`]);
    /// None = none, or not computed (see [`load_plan_needed`]).
    #[serde(default)]
    pub load_skew: Option<LoadSkew>,
}

/// Why a rebalance is due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "trigger", rename_all = "snake_case")]
pub enum RebalanceTrigger {
    /// Workers were added or activated (and maybe others removed).
    WorkersChanged {
        added: Vec<NodeAddr>,
        removed: Vec<NodeAddr>,
    },
    /// The rebalance plan has moves.
    Skew { moves: i64 },
    /// The busiest worker carries more than load_skew_ratio x the mean load, and the plan by
    /// load brings it down.
    LoadSkew(LoadSkew),
}

impl RebalanceTrigger {
    /// A reason to record with the operation: "workers added: h:p" or "skew: 4 planned moves".
    pub fn reason(&self) -> String {
        match self {
            RebalanceTrigger::WorkersChanged { added, removed } => {
                let mut s = format!("workers added: {}", names(added));
                if !removed.is_empty() {
                    s.push_str(&format!("; removed: {}", names(removed)));
                }
                s
            }
            RebalanceTrigger::Skew { moves } => format!(
                "skew: {moves} planned shard group move{}",
                if *moves == 1 { "" } else { "s" }
            ),
            RebalanceTrigger::LoadSkew(l) => l.reason(),
        }
    }
}

/// Whether a rebalance is due now: `Ok(Some(trigger))` start one; `Ok(None)` nothing calls for
/// one; `Err(why)` held back (failure backoff, settling, interval), the text for explain.
pub fn rebalance_due(i: &TriggerInput) -> Result<Option<RebalanceTrigger>, String> {
    if let Some(failed) = i.last_failure {
        let ago = i.now - failed;
        if ago < i.failure_backoff {
            return Err(format!(
                "backing off after failure {} ago (backoff {})",
                format_secs(ago),
                format_secs(i.failure_backoff)
            ));
        }
    }
    if let Some(baseline) = &i.last_seen_workers {
        let added: Vec<NodeAddr> = i
            .active_workers
            .iter()
            .filter(|n| !baseline.contains(n))
            .cloned()
            .collect();
        if !added.is_empty() {
            let removed: Vec<NodeAddr> = baseline
                .iter()
                .filter(|n| !i.active_workers.contains(n))
                .cloned()
                .collect();
            let settled = i.workers_changed_at.map_or(i.settle, |t| i.now - t);
            if settled < i.settle {
                return Err(format!(
                    "settling: {} of {} since workers {} joined",
                    format_secs(settled),
                    format_secs(i.settle),
                    names(&added)
                ));
            }
            return Ok(Some(RebalanceTrigger::WorkersChanged { added, removed }));
        }
    }
    if i.interval < 0.0 {
        return Ok(None);
    }
    if let Some(started) = i.last_rebalance_started {
        let ago = i.now - started;
        if ago < i.interval {
            return Err(format!(
                "last rebalance started {} ago, rebalance_interval {}",
                format_secs(ago),
                format_secs(i.interval)
            ));
        }
    }
    if let Some(l) = &i.load_skew {
        return Ok(Some(RebalanceTrigger::LoadSkew(l.clone())));
    }
    match i.plan_moves {
        Some(moves) if moves > 0 => Ok(Some(RebalanceTrigger::Skew { moves })),
        _ => Ok(None),
    }
}

/// Whether assessing the load skew (reading the load history and, when it is sustained, the plan
/// by load) can lead to a rebalance now: the same conditions as [`plan_needed`].
pub fn load_plan_needed(i: &TriggerInput) -> bool {
    let probe = TriggerInput {
        plan_moves: None,
        load_skew: Some(LoadSkew {
            node: NodeAddr::new("probe", 1),
            ratio: 2.0,
            moves: 1,
            predicted_ratio: 1.0,
        }),
        ..i.clone()
    };
    matches!(
        rebalance_due(&probe),
        Ok(Some(RebalanceTrigger::LoadSkew(_)))
    )
}

/// Whether computing the rebalance plan (expensive on many shard groups, Citus #7021) can lead to
/// a skew rebalance now: not backing off, no worker change pending, interval enabled and elapsed.
pub fn plan_needed(i: &TriggerInput) -> bool {
    let probe = TriggerInput {
        plan_moves: Some(1),
        ..i.clone()
    };
    matches!(
        rebalance_due(&probe),
        Ok(Some(RebalanceTrigger::Skew { .. }))
    )
}

/// What the caller persists between ticks to follow the active worker set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkerWatch {
    /// The set the last rebalance accounted for (feeds [`TriggerInput::last_seen_workers`]).
    /// It follows removals at once (they need no rebalance) and additions only on
    /// [`WorkerWatch::rebalanced`].
    pub baseline: Option<Vec<NodeAddr>>,
    /// The set the previous tick saw.
    pub seen: Option<Vec<NodeAddr>>,
    /// When `seen` last changed (feeds [`TriggerInput::workers_changed_at`]).
    pub changed_at: Option<f64>,
    /// The newest Citus background job id the previous tick saw (see [`WorkerWatch::observe_jobs`]).
    #[serde(default)]
    pub newest_job: Option<i64>,
    /// The newest job id seen before the active set last gained workers: a rebalance job with a
    /// higher id was created after the last tick that saw the old set.
    #[serde(default)]
    pub job_before_join: Option<i64>,
}

/// A join someone else's rebalance took care of ([`WorkerWatch::handled_join`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HandledJoin {
    pub watch: WorkerWatch,
    /// The workers that joined.
    pub added: Vec<NodeAddr>,
    /// The finished rebalance job that came after them.
    pub job: i64,
}

impl HandledJoin {
    pub fn reason(&self) -> String {
        format!(
            "workers added: {}: rebalanced by Citus job {}, which started after they joined and finished; \
             no rebalance of autoscale's for the join",
            names(&self.added),
            self.job
        )
    }
}

impl WorkerWatch {
    /// Records this tick's active workers.
    pub fn observe(&self, active: &[NodeAddr], now: f64) -> WorkerWatch {
        let active = sorted(active);
        let mut w = self.clone();
        if w.seen.as_ref() != Some(&active) {
            if w.seen.is_some() {
                w.changed_at = Some(now);
            }
            w.seen = Some(active.clone());
        }
        let follow = match &w.baseline {
            None => true,
            Some(b) => active.iter().all(|n| b.contains(n)),
        };
        if follow {
            w.baseline = Some(active);
        }
        w
    }

    /// Also records the newest Citus background job id now (None: no job yet). When the active set
    /// gained workers since the previous tick, the id the previous tick saw is kept as
    /// [`WorkerWatch::job_before_join`].
    pub fn observe_jobs(
        &self,
        active: &[NodeAddr],
        now: f64,
        newest_job: Option<i64>,
    ) -> WorkerWatch {
        let before = self.seen.clone();
        let mut w = self.observe(active, now);
        let gained = match (&before, &w.seen) {
            (Some(b), Some(s)) => s.iter().any(|n| !b.contains(n)),
            _ => false,
        };
        if gained {
            w.job_before_join = Some(self.newest_job.unwrap_or(0));
        }
        w.newest_job = newest_job.or(self.newest_job);
        w
    }

    /// The workers that joined and no rebalance has accounted for yet.
    pub fn pending_join(&self, active: &[NodeAddr]) -> Vec<NodeAddr> {
        match &self.baseline {
            Some(b) => sorted(active)
                .into_iter()
                .filter(|n| !b.contains(n))
                .collect(),
            None => Vec::new(),
        }
    }

    /// A join is handled by whichever rebalance runs after it: when workers joined that no
    /// rebalance accounted for, and `finished_job` (the newest rebalance job of anyone's that
    /// finished successfully and was created after [`WorkerWatch::job_before_join`]) exists, the
    /// active set becomes the baseline. A job created between the last tick that saw the old set
    /// and the join itself counts too: the one case this can misjudge, left to the skew triggers.
    pub fn handled_join(
        &self,
        active: &[NodeAddr],
        finished_job: Option<i64>,
    ) -> Option<HandledJoin> {
        let added = self.pending_join(active);
        let job = finished_job?;
        if added.is_empty() || job <= self.job_before_join.unwrap_or(0) {
            return None;
        }
        Some(HandledJoin {
            watch: self.rebalanced(active),
            added,
            job,
        })
    }

    /// A rebalance started with these active workers: they are the new baseline.
    pub fn rebalanced(&self, active: &[NodeAddr]) -> WorkerWatch {
        WorkerWatch {
            baseline: Some(sorted(active)),
            ..self.clone()
        }
    }
}

fn sorted(nodes: &[NodeAddr]) -> Vec<NodeAddr> {
    let mut v = nodes.to_vec();
    v.sort();
    v.dedup();
    v
}
