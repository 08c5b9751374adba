//! Backtest: the engine replayed over recorded history, to see what a set of policies would have
//! done before letting them act.
//!
//! At every recorded sample the engine decides as the tick would, with a simulated worker count:
//! a decided scale-out adds `desired - workers` nodes and a scale-in removes one (as the executor
//! does), each finishing `operation_secs` later; cooldowns count from those finishes. Load that
//! spreads over workers (cpu, load1, commits/s, connections, active connections) is rescaled by
//! recorded workers / simulated workers, so a simulated scale-out relieves it; memory, disk and
//! custom metrics replay as recorded. It is a model: the recorded load itself does not react.
//!
//! Predictive policies are replayed with their forecast: a [`Forecaster`] per predictive policy
//! sees the recorded load sample by sample (never the future), and the lead time is learned from
//! the simulated scale-outs (each takes `operation_secs`).

use serde::Serialize;

use super::predict::{evaluate_predictive, PolicyForecast};
use super::scheduled;
use super::units::{load_of, rescaled};
use super::{Direction, EvalInput, Point, Policy, PolicySeries, SingleNode};
use crate::forecast::{lead_time, Config, Forecaster};
use crate::schedule::CompiledSchedule;

/// One recorded sample: when, how many workers were active and unreachable, how many data nodes
/// the values aggregate (0 = not known: the workers), and the value of each policy's metric (in
/// the order of the policies passed to [`backtest`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub at: f64,
    pub workers: u32,
    pub unreachable: u32,
    pub data_nodes: u32,
    pub values: Vec<Option<f64>>,
}

/// A scale action the policies would have taken.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestAction {
    pub at: f64,
    pub direction: Direction,
    pub from_workers: u32,
    pub to_workers: u32,
    pub reasons: Vec<String>,
}

/// Kept here too for callers that import it from the backtest.
pub use super::spreads_over_workers;

/// Replays `history` (ascending by time) through the engine; returns the actions it would take.
/// `single_node`: what a scale-in to zero workers depends on, as it is now.
pub fn backtest(
    policies: &[Policy],
    history: &[Recorded],
    sample_interval: f64,
    operation_secs: f64,
    single_node: &SingleNode,
) -> Vec<BacktestAction> {
    backtest_scheduled(
        policies,
        &[],
        history,
        sample_interval,
        operation_secs,
        single_node,
        &Config::for_sample_interval(sample_interval),
    )
}

/// [`backtest`] with `schedules` clamping each decision to the bounds in force at its sample
/// ([`scheduled::apply_schedules`]), predictive policies forecasting with `forecast`.
pub fn backtest_scheduled(
    policies: &[Policy],
    schedules: &[CompiledSchedule],
    history: &[Recorded],
    sample_interval: f64,
    operation_secs: f64,
    single_node: &SingleNode,
    forecast: &Config,
) -> Vec<BacktestAction> {
    let mut actions = Vec::new();
    let Some(first) = history.first() else {
        return actions;
    };
    if policies.is_empty() {
        return actions;
    }
    let window = policies
        .iter()
        .map(|p| p.scale_out_for.max(p.scale_in_for))
        .fold(0.0, f64::max)
        + 3.0 * sample_interval;
    let operation_secs = operation_secs.max(0.0);
    let mut workers = first.workers;
    let mut simulated: Vec<u32> = Vec::with_capacity(history.len());
    let mut running: Option<(f64, u32, Direction)> = None;
    let (mut last_out, mut last_in) = (None, None);
    let mut lo = 0;
    let mut forecasters: Vec<Option<Forecaster>> = policies
        .iter()
        .map(|p| p.predictive.then(|| Forecaster::new(forecast.clone())))
        .collect();
    let mut out_durations: Vec<f64> = Vec::new();
    for (i, h) in history.iter().enumerate() {
        let now = h.at;
        if let Some((finish, to, dir)) = running.filter(|(finish, _, _)| *finish <= now) {
            workers = to;
            match dir {
                Direction::Out => last_out = Some(finish),
                _ => last_in = Some(finish),
            }
            running = None;
        }
        simulated.push(workers);
        while history[lo].at < now - window {
            lo += 1;
        }
        let series = policies
            .iter()
            .enumerate()
            .map(|(k, p)| PolicySeries {
                policy: p.clone(),
                points: (lo..=i)
                    .map(|j| {
                        let recorded = Point {
                            at: history[j].at,
                            value: None,
                            workers: history[j].workers,
                            unreachable: history[j].unreachable,
                            data_nodes: history[j].data_nodes,
                        };
                        let (_, coordinator) = recorded.data_nodes_and_coordinator();
                        Point {
                            value: rescaled(
                                p.metric,
                                history[j].values.get(k).copied().flatten(),
                                &recorded,
                                simulated[j],
                            ),
                            workers: simulated[j],
                            data_nodes: simulated[j] + coordinator,
                            ..recorded
                        }
                    })
                    .collect(),
            })
            .collect();
        let lead = lead_time(&out_durations, None, operation_secs);
        let forecasts: Vec<Option<PolicyForecast>> = forecasters
            .iter_mut()
            .enumerate()
            .map(|(k, f)| {
                let f = f.as_mut()?;
                let pt = Point {
                    at: now,
                    value: h.values.get(k).copied().flatten(),
                    workers: h.workers,
                    unreachable: h.unreachable,
                    data_nodes: h.data_nodes,
                };
                if let Some(load) = load_of(policies[k].metric, &pt) {
                    f.push(now, load);
                }
                Some(PolicyForecast {
                    model: f.model(now),
                    lead,
                })
            })
            .collect();
        let input = EvalInput {
            now,
            sample_interval,
            workers,
            operation_running: running.is_some(),
            last_scale_out_finished: last_out,
            last_scale_in_finished: last_in,
            paused_until: None,
            series,
            single_node: *single_node,
        };
        let (mut decision, _) = evaluate_predictive(&input, &forecasts);
        scheduled::apply_schedules(schedules, policies, &mut decision, &input);
        if running.is_some() || decision.direction == Direction::Hold {
            continue;
        }
        let to = match decision.direction {
            Direction::Out => decision.desired_workers,
            _ => workers.saturating_sub(1).max(decision.desired_workers),
        };
        actions.push(BacktestAction {
            at: now,
            direction: decision.direction,
            from_workers: workers,
            to_workers: to,
            reasons: decision.reasons,
        });
        if decision.direction == Direction::Out {
            out_durations.push(operation_secs);
        }
        running = Some((now + operation_secs, to, decision.direction));
        if operation_secs == 0.0 {
            // finished at once: the next sample sees the new size
            workers = to;
            match decision.direction {
                Direction::Out => last_out = Some(now),
                _ => last_in = Some(now),
            }
            running = None;
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Metric;

    const T0: f64 = 1_700_000_000.0;

    fn cpu_policy() -> Policy {
        cpu_policy_in_below(25.0)
    }

    fn cpu_policy_in_below(scale_in_below: f64) -> Policy {
        let mut p = Policy::threshold("cpu", Metric::Cpu, 80.0, scale_in_below);
        p.scale_out_for = 60.0;
        p.scale_in_for = 300.0;
        p.cooldown_out = 300.0;
        p.cooldown_in = 300.0;
        p.min_workers = 2;
        p.max_workers = 6;
        p
    }

    /// Samples every 5 s; `cpu(t)` is the average over the `workers` that were recorded.
    fn trace(secs: u32, workers: u32, cpu: impl Fn(f64) -> f64) -> Vec<Recorded> {
        (0..secs / 5)
            .map(|i| {
                let t = f64::from(i * 5);
                Recorded {
                    at: T0 + t,
                    workers,
                    unreachable: 0,
                    data_nodes: 0,
                    values: vec![Some(cpu(t))],
                }
            })
            .collect()
    }

    #[test]
    fn a_sustained_peak_scales_out_once_then_in_when_it_ends() {
        // 2 workers at 95% for 20 minutes (relieved to 63% on 3 workers), then 10% for 40 minutes
        let h = trace(3600, 2, |t| if t < 1200.0 { 95.0 } else { 10.0 });
        let a = backtest(&[cpu_policy()], &h, 5.0, 60.0, &SingleNode::default());
        let outs: Vec<_> = a.iter().filter(|x| x.direction == Direction::Out).collect();
        assert_eq!(outs.len(), 1, "{a:?}");
        assert_eq!((outs[0].from_workers, outs[0].to_workers), (2, 3));
        assert!(
            (55.0..=65.0).contains(&(outs[0].at - T0)),
            "after scale_out_for, less the interval a sample covers: {}",
            outs[0].at - T0
        );
        let ins: Vec<_> = a.iter().filter(|x| x.direction == Direction::In).collect();
        assert_eq!(ins.len(), 1, "back to min_workers once: {a:?}");
        assert_eq!((ins[0].from_workers, ins[0].to_workers), (3, 2));
        assert!(
            ins[0].at - T0 >= 1200.0 + 300.0 - 5.0,
            "after scale_in_for less one interval: {}",
            ins[0].at - T0
        );
        assert!(
            ins[0].reasons.iter().any(|r| r.contains("cpu")),
            "{:?}",
            ins[0].reasons
        );
    }

    #[test]
    fn load_that_needs_four_more_workers_gets_them_cooldown_apart() {
        // 1000 commits/s per worker on 2 workers: 3 give 667, 4 give 500, 5 give 400, 6 give 333
        let mut p = Policy::threshold("tps", Metric::CommitsPerSec, 300.0, 10.0);
        p.scale_out_for = 60.0;
        p.cooldown_out = 300.0;
        p.max_workers = 6;
        let h = trace(3600, 2, |_| 1000.0);
        let a = backtest(&[p], &h, 5.0, 60.0, &SingleNode::default());
        let sizes: Vec<_> = a.iter().map(|x| (x.from_workers, x.to_workers)).collect();
        assert_eq!(
            sizes,
            vec![(2, 3), (3, 4), (4, 5), (5, 6)],
            "max_workers stops it: {a:?}"
        );
        for w in a.windows(2) {
            assert!(
                w[1].at - w[0].at >= 60.0 + 300.0,
                "cooldown counts from the finish: {a:?}"
            );
        }
    }

    #[test]
    fn memory_replays_as_recorded_and_missing_data_never_scales_in() {
        let mut p = Policy::threshold("mem", Metric::Memory, 90.0, 20.0);
        p.scale_in_for = 60.0;
        p.min_workers = 1;
        let mut h = trace(900, 2, |_| 5.0);
        for r in h.iter_mut().step_by(6) {
            r.values = vec![None];
        }
        assert!(backtest(&[p.clone()], &h, 5.0, 0.0, &SingleNode::default()).is_empty());
        let h = trace(900, 2, |_| 5.0);
        let a = backtest(&[p], &h, 5.0, 0.0, &SingleNode::default());
        assert_eq!(
            a.len(),
            1,
            "one scale-in to min_workers, memory does not move: {a:?}"
        );
        assert_eq!((a[0].from_workers, a[0].to_workers), (2, 1));
    }

    #[test]
    fn nothing_to_replay_is_no_action() {
        assert!(backtest(&[cpu_policy()], &[], 5.0, 60.0, &SingleNode::default()).is_empty());
        assert!(backtest(
            &[],
            &trace(600, 2, |_| 99.0),
            5.0,
            60.0,
            &SingleNode::default()
        )
        .is_empty());
        assert!(backtest(
            &[cpu_policy()],
            &trace(600, 2, |_| 50.0),
            5.0,
            60.0,
            &SingleNode::default()
        )
        .is_empty());
    }

    #[test]
    fn the_backtest_replays_a_predictive_policy_ahead_of_the_reactive_one() {
        // 2 workers; cpu rising from 40% by 1% a minute for 2 hours
        let h: Vec<Recorded> = (0..1440)
            .map(|k| Recorded {
                at: T0 + 5.0 * k as f64,
                workers: 2,
                unreachable: 0,
                data_nodes: 0,
                values: vec![Some(40.0 + 5.0 * k as f64 / 60.0)],
            })
            .collect();
        let mut reactive = Policy::threshold("cpu", Metric::Cpu, 80.0, 10.0);
        reactive.max_workers = 20;
        let mut predictive = reactive.clone();
        predictive.predictive = true;
        let none = SingleNode::default();
        let a = backtest(&[reactive], &h, 5.0, 300.0, &none);
        let b = backtest(&[predictive], &h, 5.0, 300.0, &none);
        let first = |v: &[BacktestAction]| v.first().map(|x| x.at).unwrap();
        assert!(
            first(&b) < first(&a) - 120.0,
            "predictive {} vs reactive {}",
            first(&b) - T0,
            first(&a) - T0
        );
        assert!(
            b[0].reasons
                .iter()
                .any(|r| r.contains("forecast to cross 80")),
            "{:?}",
            b[0].reasons
        );
        assert!(b.iter().all(|x| x.direction == Direction::Out));
    }

    #[test]
    fn schedules_clamp_the_replayed_decisions() {
        // quiet load at 2 workers; a schedule asks for at least 4 from the first sample for 10
        // minutes, then the policy's own bounds return and the quiet load scales in again
        let start = 1_700_006_400.0; // 2023-11-15 00:00 UTC
        let h: Vec<Recorded> = trace(1800, 2, |_| 40.0)
            .into_iter()
            .map(|r| Recorded {
                at: r.at - T0 + start,
                ..r
            })
            .collect();
        let s = crate::schedule::Schedule {
            name: "midnight".into(),
            cron: "0 0 * * *".into(),
            min_workers: Some(4),
            max_workers: None,
            time_zone: "UTC".into(),
            duration: 600.0,
        }
        .compile()
        .unwrap();
        let a = backtest_scheduled(
            &[cpu_policy()],
            &[s],
            &h,
            5.0,
            60.0,
            &SingleNode::default(),
            &Config::for_sample_interval(5.0),
        );
        assert_eq!(a[0].at, start);
        assert_eq!(
            (a[0].direction, a[0].from_workers, a[0].to_workers),
            (Direction::Out, 2, 4)
        );
        assert!(
            a[0].reasons
                .iter()
                .any(|r| r.starts_with("2 -> 4 workers: schedule 'midnight'")),
            "{:?}",
            a[0].reasons
        );
        // while the window is open nothing goes below 4
        assert!(
            a.iter().all(|x| x.at >= start + 600.0 || x.to_workers >= 4),
            "{a:?}"
        );
        // after it the quiet load (40% at 2 workers, 20% at 4) scales in
        assert!(
            a.iter()
                .any(|x| x.direction == Direction::In && x.at >= start + 600.0),
            "{a:?}"
        );
        // without the schedule: no action at all
        assert!(backtest(&[cpu_policy()], &h, 5.0, 60.0, &SingleNode::default()).is_empty());
    }
}
