//! The deciding-and-acting half of a tick, after sampling: follow the running operation one step,
//! or ask the policy engine and the rebalance trigger whether to start one, within the guards.
//! In observe mode what would be done is recorded as an event and nothing else happens.

use autoscale_core::operations::{
    trigger, GuardVerdict, Kind, NodeAddr, Operation, RebalanceTrigger, Step, TriggerInput,
};
use autoscale_core::policy::Direction;
use serde::Serialize;

use crate::infra::errors::Result;
use crate::infra::{citus, clock, settings, subxact};
use crate::services::execute::{self, Stepped};
use crate::services::{dead, decide, isolate};
use crate::store::{control, events, load, operations, provision as outbox};

#[derive(Debug, Clone, Serialize, Default)]
pub struct ActReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<String>,
}

impl ActReport {
    /// Reports the operation the tick started, or records an `error` event saying why `kind`
    /// could not start.
    fn started(&mut self, kind: &str, started: Result<Operation>) -> Result<()> {
        match started {
            Ok(op) => self.operation = Some(autoscale_core::operations::describe(&op)),
            Err(e) => events::record("error", &format!("could not start {kind}: {e}"), None)?,
        }
        Ok(())
    }
}

/// Records a `settings_warning` event (at most once an hour per distinct warning) for settings
/// that silently keep scaling from working: a rebalance strategy Citus does not know, a history
/// retention shorter than a policy's window.
fn warn_about_settings() -> Result<()> {
    let mut warnings = decide::setting_conflicts()?;
    if citus::role() == citus::Role::Coordinator {
        // the default strategy of autoscale's rebalances; registered lazily, on the coordinator
        // only (CREATE EXTENSION is replayed on every worker, possibly before Citus is there)
        match subxact::catch(citus::ensure_load_strategy) {
            Ok(Ok(true)) => events::record(
                "load_strategy",
                &format!(
                    "registered the rebalance strategy {} (citus_add_rebalance_strategy, or its row \
                     pointed again at autoscale.shard_load_cost after the extension was created anew)",
                    citus::LOAD_STRATEGY
                ),
                None,
            )?,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warnings.push(format!(
                "could not register the rebalance strategy {}: {e}",
                citus::LOAD_STRATEGY
            )),
            Err(e) => warnings.push(format!(
                "could not register the rebalance strategy {}: {e}",
                citus::LOAD_STRATEGY
            )),
        }
        if let Some(s) = settings::rebalance_strategy() {
            if !citus::rebalance_strategy_exists(&s)? {
                warnings.push(format!(
                    "autoscale.rebalance_strategy = '{s}' is not a rebalance strategy of Citus \
                     (pg_dist_rebalance_strategy); every rebalance autoscale starts will fail"
                ));
            }
        }
    }
    for w in warnings {
        if !events::recorded_within_hour("settings_warning", &w)? {
            events::record("settings_warning", &w, None)?;
        }
    }
    Ok(())
}

/// One deciding-and-acting pass. Runs on the coordinator only (the caller checked).
pub fn run() -> Result<ActReport> {
    let mut report = ActReport::default();
    outbox::expire_orphaned()?;
    warn_about_settings()?;
    let citus_coordinator = citus::role() == citus::Role::Coordinator;
    let active = if citus_coordinator {
        citus::active_workers()?
    } else {
        Vec::new()
    };
    let now = clock::now()?;
    let newest_job = if citus_coordinator {
        citus::newest_job_id()?
    } else {
        None
    };
    let mut watch = control::load_watch()?.observe_jobs(&active, now, newest_job);
    // a join that a rebalance of anyone's (a person's citus_rebalance_start, by any strategy)
    // handled after it needs none of ours; the rebalance interval counts from that job
    // (the job table is asked only while a join is pending)
    if citus_coordinator && !watch.pending_join(&active).is_empty() {
        let finished = citus::finished_rebalance_job_after(watch.job_before_join.unwrap_or(0))?;
        if let Some(h) = watch.handled_join(&active, finished) {
            let detail = serde_json::json!({"job_id": h.job, "added": autoscale_core::operations::names(&h.added)});
            events::record("join_handled", &h.reason(), Some(detail))?;
            control::set_rebalance_observed()?;
            watch = h.watch;
        }
    }
    // dead workers are declared (one event each) whatever runs; the first replaceable one is
    // replaced before any policy or rebalance is considered
    let replace = if citus_coordinator {
        dead::review(now)?
    } else {
        None
    };

    // 1. a running operation advances one step and nothing else starts
    if let Some(op) = operations::running()? {
        match execute::step(&op)? {
            Stepped::Advanced(next) => {
                // a split-out's split is the rebalance its new worker needs; a replace_dead's new
                // worker took the dead one's shards: no rebalance for either
                if (matches!(next.kind, Kind::Rebalance | Kind::ScaleOut | Kind::SplitOut)
                    && matches!(next.step, Step::WaitRebalance | Step::Done))
                    || (next.kind == Kind::ReplaceDead && next.step == Step::Done)
                {
                    watch = watch.rebalanced(&active);
                }
                report.operation = Some(autoscale_core::operations::describe(&next));
            }
            Stepped::Held(why) => {
                report.operation = Some(autoscale_core::operations::describe(&op));
                report.held = Some(why);
            }
        }
        control::save_watch(&watch)?;
        return Ok(report);
    }

    // 2. the policy engine; no automatic operation starts within failure_backoff of a failed one
    let verdict = match (
        execute::check_guards(true)?,
        autoscale_core::safety::failure_backoff(
            operations::history()?.last_failure,
            settings::failure_backoff(),
            now,
        ),
    ) {
        (GuardVerdict::Act, Some(why)) => GuardVerdict::Blocked(why),
        (v, _) => v,
    };
    if let Some(node) = replace {
        let reason = format!(
            "worker {node} is dead (unreachable for longer than autoscale.dead_node_after) and every \
             placement on it has a healthy copy elsewhere"
        );
        match &verdict {
            GuardVerdict::Act => {
                report.started(
                    "replace_dead",
                    execute::start(Kind::ReplaceDead, vec![node], 1, &reason, "dead_node"),
                )?;
                control::save_watch(&watch)?;
                return Ok(report);
            }
            v => {
                report.held = Some(format!(
                    "would replace dead worker {node}: {}",
                    v.reason().unwrap_or("not allowed now")
                ))
            }
        }
    }
    let (decision, _) = decide::decide()?;
    decide::record_decision(&decision, !verdict.is_act())?;
    report.decision = Some(format!(
        "{} ({} -> {})",
        decision.direction.as_str(),
        decision.from_workers,
        decision.desired_workers
    ));
    let reasons = decision.reasons.join("; ");
    match (decision.direction, &verdict) {
        (Direction::Out, GuardVerdict::Act) => {
            // the policy's step: every node it asks for joins before one rebalance
            report.started(
                "scale_out",
                execute::start_scale_out(decision.step.max(1), &reasons, "policy"),
            )?;
            control::save_watch(&watch)?;
            return Ok(report);
        }
        (Direction::In, GuardVerdict::Act) => {
            // the policy's step: every node it lets go drains in one job
            let candidates = decide::scale_in_candidates(decision.step.max(1))?;
            let why: Vec<&str> = candidates.iter().map(|c| c.1.as_str()).collect();
            let reasons = format!("{reasons}; leaving: {}", why.join("; "));
            let nodes: Vec<NodeAddr> = candidates.into_iter().map(|c| c.0).collect();
            if nodes.is_empty() {
                report.held = Some("no worker to remove".into());
            } else {
                report.started(
                    "scale_in",
                    execute::start(Kind::ScaleIn, nodes, 1, &reasons, "policy"),
                )?;
            }
            control::save_watch(&watch)?;
            return Ok(report);
        }
        (Direction::Out | Direction::In, v) => report.held = v.reason().map(str::to_string),
        (Direction::Hold, _) => {}
    }

    // 3. the rebalance trigger: workers joined, or data skewed
    if citus_coordinator {
        let h = operations::history()?;
        let (observed, plan_checked) = control::rebalance_marks()?;
        let last_started = match (h.last_rebalance_started, observed) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let interval = settings::rebalance_interval();
        let mut input = TriggerInput {
            now,
            active_workers: active.clone(),
            last_seen_workers: watch.baseline.clone(),
            workers_changed_at: watch.changed_at,
            plan_moves: None,
            last_rebalance_started: last_started,
            last_failure: h.last_failure,
            settle: settings::rebalance_settle(),
            interval,
            failure_backoff: settings::failure_backoff(),
            load_skew: None,
        };
        // planning is not free on big clusters (Citus #7021): at most every tenth of the interval
        let plan_period = (interval / 10.0).clamp(settings::sample_interval().as_secs_f64(), 300.0);
        let may_plan = plan_checked.is_none_or(|t| now - t >= plan_period);
        // load skew: the busiest worker above load_skew_ratio x the mean for load_skew_for, and the
        // plan by load lowers it (the plan is computed only when the skew held long enough, at
        // most once per plan period; in between the last assessment stands)
        let assessment = if trigger::load_plan_needed(&input) {
            let (skew, text, planned) = load::assess(now, may_plan)?;
            if planned {
                control::set_plan_checked()?;
            }
            input.load_skew = skew;
            text
        } else {
            Some(match trigger::rebalance_due(&input) {
                Err(why) => format!("load skew not assessed: {why}"),
                Ok(Some(t)) => format!("load skew not assessed: rebalancing first ({})", t.reason()),
                Ok(None) => "load skew not assessed: skew rebalances are off (autoscale.rebalance_interval = -1)".into(),
            })
        };
        if let Some(text) = assessment {
            load::save_assessment(&text)?;
        }
        // With autoscale_by_load, a busy cluster is the load-skew trigger's (below): this one
        // plans only while the measured load is idle, when the strategy's costs are equal and
        // it balances shard groups by count.
        let strategy = settings::effective_rebalance_strategy();
        let by_plan = strategy != citus::LOAD_STRATEGY || !load::busy()?;
        if by_plan && trigger::plan_needed(&input) && may_plan {
            input.plan_moves = subxact::catch(|| citus::planned_moves(Some(&strategy)))
                .ok()
                .and_then(|r| r.ok());
            control::set_plan_checked()?;
        }
        match trigger::rebalance_due(&input) {
            Ok(Some(t)) => match &verdict {
                GuardVerdict::Act => {
                    report.started(
                        "rebalance",
                        execute::start(Kind::Rebalance, vec![], 1, &t.reason(), "trigger"),
                    )?;
                    watch = watch.rebalanced(&active);
                }
                GuardVerdict::Observe(_) => {
                    // Record it once. The baseline stays: a join seen in observe mode is
                    // rebalanced as soon as the mode becomes act.
                    let reported = match (&t, observed, watch.changed_at) {
                        (RebalanceTrigger::WorkersChanged { .. }, Some(o), Some(c)) => o >= c,
                        _ => false,
                    };
                    if !reported {
                        events::record(
                            "decision",
                            &format!("would rebalance: {}", t.reason()),
                            serde_json::to_value(&t).ok(),
                        )?;
                        control::set_rebalance_observed()?;
                    }
                    report.rebalance = Some(format!("would rebalance: {}", t.reason()));
                }
                GuardVerdict::Blocked(why) => {
                    report.rebalance = Some(format!("rebalance due ({}) but {why}", t.reason()))
                }
            },
            Ok(None) => {}
            Err(why) => report.rebalance = Some(why),
        }
        // 4. a hot tenant (opt-in): after the rebalance trigger, within its rate limit and guards
        if report.operation.is_none() {
            hot_tenant(now, &verdict, last_started, interval, &mut report)?;
        }
    }
    control::save_watch(&watch)?;
    Ok(report)
}

/// Assesses the hot tenants, records the assessment for status and explain(), and starts an
/// isolate_tenant when autoscale.isolate_hot_tenants is on, no rebalance or isolation started
/// within autoscale.rebalance_interval, and the guards allow acting.
fn hot_tenant(
    now: f64,
    verdict: &GuardVerdict,
    last_started: Option<f64>,
    interval: f64,
    report: &mut ActReport,
) -> Result<()> {
    let a = isolate::assess(now)?;
    let mut text = a.text;
    if let Some((hot, table)) = a.hot {
        let since = last_started.map(|t| now - t);
        if !settings::isolate_hot_tenants() {
            text.push_str("; not isolated: autoscale.isolate_hot_tenants is off");
        } else if interval < 0.0 {
            text.push_str("; not isolated: autoscale.rebalance_interval = -1");
        } else if let Some(ago) = since.filter(|ago| *ago < interval) {
            text.push_str(&format!(
                "; waiting: the last rebalance or isolation started {} ago (autoscale.rebalance_interval {})",
                autoscale_core::duration::format_secs(ago),
                autoscale_core::duration::format_secs(interval)
            ));
        } else {
            match verdict {
                GuardVerdict::Act => {
                    report.started(
                        "isolate_tenant",
                        execute::start_isolate_tenant(
                            &table,
                            &hot.tenant,
                            hot.to.clone(),
                            &hot.reason(),
                            "trigger",
                            false,
                        ),
                    )?;
                }
                GuardVerdict::Observe(_) => {
                    // recorded once an hour per tenant and target (the shares in the reason vary)
                    let would = format!(
                        "would isolate tenant {} (colocation {}) and move it to {}",
                        hot.tenant, hot.colocationid, hot.to
                    );
                    if !events::recorded_within_hour("decision", &would)? {
                        events::record("decision", &would, serde_json::to_value(&hot).ok())?;
                    }
                    report.rebalance = Some(format!("would isolate: {}", hot.reason()));
                }
                GuardVerdict::Blocked(why) => text.push_str(&format!("; blocked: {why}")),
            }
        }
    }
    Ok(load::save_hot_tenant(&text)?)
}
