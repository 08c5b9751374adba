//! The replay simulator: one policy (and its schedules) replayed over a demand series, the worker
//! count reacting to its own decisions. Shared by the decision-quality benchmark
//! (`examples/replay.rs`) and `autoscale.backtest_series()`.
//!
//! Model: the demand D(t) is the load of the whole cluster in the metric's unit times workers
//! ("worker-percent" for cpu: 100 = one worker fully busy). The per-worker value the policy sees
//! is D(t) / workers for metrics that spread over the workers (capped at 100 for a percentage),
//! D(t) itself for the others (memory, disk, custom). The policy decides every `eval_every`
//! seconds; a scale operation takes `operation_secs` and the worker count changes when it
//! finishes (operation_running meanwhile, cooldowns from the finish). A scale-out goes to the
//! desired size, a scale-in too (as the engine sizes it). Schedules applying at a decision clamp
//! its desired workers ([`scheduled::apply`]).

use super::predict::{evaluate_predictive, PolicyForecast};
use super::scheduled;
use super::units::load_of;
use super::{spreads_over_workers, Direction, EvalInput, Point, Policy, PolicySeries};
use crate::forecast::{lead_time, Config, Forecaster};
use crate::schedule::{effective_bounds, Bounds, CompiledSchedule};

/// Two scale actions in opposite directions closer than this are a reversal (flapping).
pub const REVERSAL_WINDOW: f64 = 1800.0;

/// How the simulation runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long a scale operation takes, seconds.
    pub operation_secs: f64,
    /// Workers at the first sample.
    pub start_workers: u32,
    /// Seconds between decisions (the first sample is decided on).
    pub eval_every: f64,
    /// Seconds of samples the policy sees at a decision, beyond its longest window.
    pub extra_history: f64,
    /// The forecast's configuration for a predictive policy.
    pub forecast: Config,
}

/// One sample as simulated: the workers running and the per-worker value the policy saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimStep {
    pub at: f64,
    pub workers: u32,
    pub value: f64,
    /// Seconds this sample stands for (to the next one; the last: the typical interval).
    pub secs: f64,
}

/// A scale action the policy decided.
#[derive(Debug, Clone, PartialEq)]
pub struct SimAction {
    pub at: f64,
    pub direction: Direction,
    pub from_workers: u32,
    pub to_workers: u32,
}

/// A simulation's trace.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    pub steps: Vec<SimStep>,
    pub actions: Vec<SimAction>,
    pub evaluations: u32,
}

/// The figures of a simulation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub minutes: f64,
    /// (threshold, minutes with the per-worker value above it), in the thresholds' order.
    pub minutes_above: Vec<(f64, f64)>,
    pub worker_minutes: f64,
    pub scale_outs: u32,
    pub scale_ins: u32,
    /// Actions in the direction opposite to the previous one, within [`REVERSAL_WINDOW`].
    pub reversals: u32,
    pub start_workers: u32,
    pub end_workers: u32,
    pub peak_workers: u32,
}

/// The per-worker value of `demand` with `workers` workers under `p`'s metric.
pub fn per_worker(p: &Policy, demand: f64, workers: u32) -> f64 {
    if !spreads_over_workers(p.metric) {
        return demand;
    }
    let v = demand / f64::from(workers.max(1));
    if p.metric.is_percent() {
        v.min(100.0)
    } else {
        v
    }
}

/// The demand that shows as the per-worker `value` with `workers` workers (the inverse of
/// [`per_worker`] below its cap).
pub fn demand(p: &Policy, value: f64, workers: u32) -> f64 {
    if spreads_over_workers(p.metric) {
        value * f64::from(workers.max(1))
    } else {
        value
    }
}

/// The typical spacing of `at` (the median of the steps; 0 for fewer than two points).
pub fn typical_interval(at: &[f64]) -> f64 {
    let mut d: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return 0.0;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

/// Replays `demand` (at the instants `at`, ascending) through `policy` clamped by `schedules`.
pub fn simulate(
    at: &[f64],
    demand: &[f64],
    policy: &Policy,
    schedules: &[CompiledSchedule],
    cfg: &SimConfig,
) -> Simulation {
    simulate_observed(at, demand, policy, schedules, cfg, &mut |_, _, _| {})
}

/// [`simulate`], calling `observe(now, forecast, forecaster)` at every decision of a predictive
/// policy (the benchmark prints what the forecast says).
pub fn simulate_observed(
    at: &[f64],
    demand: &[f64],
    policy: &Policy,
    schedules: &[CompiledSchedule],
    cfg: &SimConfig,
    observe: &mut dyn FnMut(f64, &PolicyForecast, &Forecaster),
) -> Simulation {
    let n = at.len().min(demand.len());
    let mut sim = Simulation::default();
    if n == 0 {
        return sim;
    }
    let interval = typical_interval(&at[..n]);
    let history = policy.scale_out_for.max(policy.scale_in_for) + cfg.extra_history;
    let operation_secs = cfg.operation_secs.max(0.0);
    let bounds = Bounds {
        min_workers: policy.min_workers,
        max_workers: policy.max_workers,
    };
    let mut workers = cfg.start_workers;
    let mut op: Option<(f64, u32, Direction)> = None;
    let (mut last_out, mut last_in) = (None, None);
    let mut points: std::collections::VecDeque<Point> = std::collections::VecDeque::new();
    let mut forecaster = policy
        .predictive
        .then(|| Forecaster::new(cfg.forecast.clone()));
    let mut out_durations: Vec<f64> = Vec::new();
    let mut next_eval = f64::NEG_INFINITY;
    for i in 0..n {
        let now = at[i];
        if let Some((fin, to, dir)) = op.filter(|(fin, _, _)| *fin <= now) {
            workers = to;
            match dir {
                Direction::Out => last_out = Some(fin),
                _ => last_in = Some(fin),
            }
            op = None;
        }
        let value = per_worker(policy, demand[i], workers);
        let secs = if i + 1 < n { at[i + 1] - now } else { interval };
        sim.steps.push(SimStep {
            at: now,
            workers,
            value,
            secs,
        });
        let point = Point {
            at: now,
            value: Some(value),
            workers,
            unreachable: 0,
            data_nodes: 0,
        };
        if let (Some(f), Some(load)) = (forecaster.as_mut(), load_of(policy.metric, &point)) {
            f.push(now, load);
        }
        points.push_back(point);
        while points.front().is_some_and(|p| p.at < now - history) {
            points.pop_front();
        }
        if now < next_eval {
            continue;
        }
        next_eval = now + cfg.eval_every;
        let input = EvalInput {
            now,
            sample_interval: interval,
            workers,
            operation_running: op.is_some(),
            last_scale_out_finished: last_out,
            last_scale_in_finished: last_in,
            paused_until: None,
            series: vec![PolicySeries {
                policy: policy.clone(),
                points: points.iter().copied().collect(),
            }],
            single_node: Default::default(),
        };
        let forecasts = [forecaster.as_mut().map(|f| PolicyForecast {
            model: f.model(now),
            lead: lead_time(&out_durations, None, operation_secs),
        })];
        if let (Some(fc), Some(f)) = (&forecasts[0], &forecaster) {
            observe(now, fc, f);
        }
        let (mut decision, _) = evaluate_predictive(&input, &forecasts);
        if !schedules.is_empty() {
            scheduled::apply(
                &effective_bounds(bounds, schedules, now),
                &mut decision,
                &input,
            );
        }
        sim.evaluations += 1;
        if decision.direction == Direction::Hold || op.is_some() {
            continue;
        }
        sim.actions.push(SimAction {
            at: now,
            direction: decision.direction,
            from_workers: workers,
            to_workers: decision.desired_workers,
        });
        if decision.direction == Direction::Out {
            out_durations.push(operation_secs);
        }
        op = Some((
            now + operation_secs,
            decision.desired_workers,
            decision.direction,
        ));
    }
    sim
}

impl Simulation {
    /// The figures, with minutes above each of `thresholds`.
    pub fn summary(&self, thresholds: &[f64]) -> Summary {
        let mut s = Summary {
            minutes_above: thresholds.iter().map(|t| (*t, 0.0)).collect(),
            start_workers: self.steps.first().map_or(0, |s| s.workers),
            end_workers: self.steps.last().map_or(0, |s| s.workers),
            ..Summary::default()
        };
        // seconds summed, minutes at the end (5-s samples add up exactly)
        let (mut secs, mut worker_secs) = (0.0, 0.0);
        let mut above = vec![0.0; thresholds.len()];
        for step in &self.steps {
            secs += step.secs;
            worker_secs += f64::from(step.workers) * step.secs;
            s.peak_workers = s.peak_workers.max(step.workers);
            for (t, a) in thresholds.iter().zip(above.iter_mut()) {
                if step.value > *t {
                    *a += step.secs;
                }
            }
        }
        s.minutes = secs / 60.0;
        s.worker_minutes = worker_secs / 60.0;
        for ((_, m), a) in s.minutes_above.iter_mut().zip(above) {
            *m = a / 60.0;
        }
        let mut prev: Option<&SimAction> = None;
        for a in &self.actions {
            match a.direction {
                Direction::Out => s.scale_outs += 1,
                _ => s.scale_ins += 1,
            }
            if let Some(p) = prev {
                if p.direction != a.direction && a.at - p.at < REVERSAL_WINDOW {
                    s.reversals += 1;
                }
            }
            prev = Some(a);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Metric;
    use crate::schedule::Schedule;

    const T0: f64 = 1_700_000_000.0;

    fn cfg(op: f64, start: u32) -> SimConfig {
        SimConfig {
            operation_secs: op,
            start_workers: start,
            eval_every: 30.0,
            extra_history: 150.0,
            forecast: Config::default(),
        }
    }

    fn series(minutes: f64, demand: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<f64>) {
        let n = (minutes * 12.0) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 * 5.0;
                (T0 + t, demand(t))
            })
            .unzip()
    }

    #[test]
    fn constant_load_above_threshold_scales_out_after_the_window_and_the_operation() {
        // 2 workers at 90% (demand 180) for an hour; threshold 80 for 2 min, op 3 min: the
        // scale-out is decided at 120 s, finishes at 300 s, then 60% per worker
        let (at, d) = series(60.0, |_| 180.0);
        let p = Policy::threshold("p", Metric::Cpu, 80.0, 25.0);
        let sim = simulate(&at, &d, &p, &[], &cfg(180.0, 2));
        assert_eq!(sim.actions.len(), 1, "{:?}", sim.actions);
        assert_eq!(sim.actions[0].at, T0 + 120.0);
        assert_eq!(sim.actions[0].to_workers, 3);
        let s = sim.summary(&[70.0, 80.0, 90.0]);
        assert!((s.minutes - 60.0).abs() < 1e-9);
        assert_eq!(s.minutes_above, vec![(70.0, 5.0), (80.0, 5.0), (90.0, 0.0)]);
        assert!((s.worker_minutes - (2.0 * 5.0 + 3.0 * 55.0)).abs() < 1e-9);
        assert_eq!((s.scale_outs, s.scale_ins, s.reversals), (1, 0, 0));
        assert_eq!((s.start_workers, s.end_workers, s.peak_workers), (2, 3, 3));
    }

    #[test]
    fn a_scale_in_soon_after_a_scale_out_is_a_reversal() {
        let (at, d) = series(60.0, |t| if t < 600.0 { 180.0 } else { 10.0 });
        let mut p = Policy::threshold("p", Metric::Cpu, 80.0, 25.0);
        p.scale_in_for = 60.0;
        p.cooldown_out = 0.0;
        p.cooldown_in = 0.0;
        let sim = simulate(&at, &d, &p, &[], &cfg(60.0, 2));
        let s = sim.summary(&[80.0]);
        assert_eq!(s.scale_outs, 1, "{:?}", sim.actions);
        assert!(s.scale_ins >= 1, "{:?}", sim.actions);
        assert!(s.reversals >= 1);
    }

    #[test]
    fn a_schedule_raises_the_workers_while_it_applies() {
        // quiet load, a schedule at least 5 workers from 00:00 UTC for 10 minutes
        let start = 1_700_006_400.0; // 2023-11-15 00:00 UTC
        let at: Vec<f64> = (0..240).map(|i| start + i as f64 * 5.0).collect();
        let d = vec![60.0; at.len()];
        let p = Policy::threshold("p", Metric::Cpu, 80.0, 25.0);
        let s = Schedule {
            name: "night".into(),
            cron: "0 0 * * *".into(),
            min_workers: Some(5),
            max_workers: None,
            time_zone: "UTC".into(),
            duration: 600.0,
        }
        .compile()
        .unwrap();
        let sim = simulate(&at, &d, &p, &[s], &cfg(0.0, 2));
        assert_eq!(sim.actions[0].direction, Direction::Out);
        assert_eq!(sim.actions[0].at, start);
        assert_eq!(sim.actions[0].to_workers, 5);
        assert_eq!(sim.steps[1].workers, 5);
    }

    #[test]
    fn metrics_that_do_not_spread_replay_as_given() {
        let p = Policy::threshold("m", Metric::Memory, 80.0, 25.0);
        assert_eq!(per_worker(&p, 85.0, 4), 85.0);
        let c = Policy::threshold("c", Metric::Cpu, 80.0, 25.0);
        assert_eq!(per_worker(&c, 500.0, 2), 100.0);
        assert_eq!(per_worker(&c, 150.0, 0), 100.0);
        assert_eq!(demand(&c, 45.0, 4), 180.0);
        assert_eq!(per_worker(&c, demand(&c, 45.0, 4), 4), 45.0);
        assert_eq!(demand(&p, 85.0, 4), 85.0);
    }
}
