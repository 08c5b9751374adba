//! Decision-quality benchmark of the policy engine: replays synthetic load traces through four
//! policies and an oracle, and counts actions, time above 80% CPU, worker-minutes and flapping.
//!
//! Model: total demand D(t) in "worker-percent" (100 = one worker fully busy); per-worker CPU is
//! D(t) / workers, capped at 100. One sample every 5 s, one decision every 30 s. A scale operation
//! takes 3 minutes; the worker count changes when it finishes (operation_running meanwhile).
//! Start with 2 workers; bounds 2..16. Everything is deterministic (seeded xorshift noise).
//!
//! Policies:
//! - threshold: the default policy: cpu avg > 80 for 2 min / < 25 for 15 min, cooldowns 10 min,
//!   step 1;
//! - target: target tracking at 60% ±10%, scale-in stabilization 15 min, cooldowns 10 min,
//!   step 4 (target tracking sizes the change itself; the step only caps it);
//! - naive: an alert rule: > 80 on one evaluation scales out, < 25 on one evaluation scales in,
//!   no windows, no cooldowns, step 1 (still one operation at a time);
//! - predictive: target tracking as above with `predictive = true`: it also scales out when the
//!   forecast (time-of-day / hour-of-week profile x robust trend, fitted from what it has seen so
//!   far) crosses the target's band within the lead time, learned from its own scale-outs (p90 of
//!   their durations), and holds a scale-in back when a rise is forecast; its forecast also
//!   searches the last 3 days for a cycle of any period (`forecast::Config::cycle_window`, on by
//!   default as in the extension), used while it forecasts better;
//! - predictive_no_cycle: predictive without the cycle search (`cycle_window` 0);
//! - predictive_in20m .. predictive_in45m (real traces): predictive with a 20- to 45-minute
//!   scale-in window, the frontier of minutes above 80% and reversals against worker-minutes;
//! - predictive_schedule: predictive with a schedule (`schedule.rs`): at least 12 workers from
//!   07:00 UTC for 7 hours, around the daily peak of the diurnal trace (synthetic traces only);
//! - oracle: an omniscient scaler with the same operation time: it knows the future demand and,
//!   one operation at a time (a resize every 3 minutes at most, decided 3 minutes ahead), runs
//!   exactly the workers that keep the busiest 5 s of each 3-minute block at or below 80%, within
//!   2..16. Its worker-minutes are the least any scaler can spend without going above 80%.
//!
//! Traces: diurnal (48 h), spike, ramp, plateau near 80%, sawtooth (6 h each) and weekly (21 days:
//! business hours on weekdays with steep mornings, quiet weekends). "in bursts" is the part of
//! the minutes above 80% spent inside the noise's short bursts (30-90 s at 1.6-2.2x the load),
//! which no scaler whose operations take 3 minutes can absorb without running extra workers.
//!
//! A second table says what absorbing the bursts would cost: target tracking (predictive and
//! not) at lower targets, and a burst-blind oracle that knows the future demand without its
//! bursts and runs, per 3-minute block, the fewest workers that keep the burst-free peak at or
//! below 80% / headroom, for growing headroom until it meets the trace's goal (diurnal 10
//! minutes above 80%, ramp 5). It knows more than any forecaster can: everything but the bursts'
//! onsets, which are memoryless (a fixed chance per sample, whatever came before).
//!
//! Run: `bench/policy_replay.sh` (or `cargo run --release -q -p autoscale_core --example replay`).
//! Exits non-zero when a check fails.

use std::f64::consts::PI;

use autoscale_core::forecast::{Config, Forecaster};
use autoscale_core::policy::predict::PolicyForecast;
use autoscale_core::policy::simulate::{self, SimConfig, REVERSAL_WINDOW};
use autoscale_core::policy::{Direction, Metric, Policy};
use autoscale_core::schedule::{CompiledSchedule, Schedule};

const SAMPLE: f64 = 5.0;
const EVAL_EVERY: usize = 6; // samples: every 30 s
const OP_SECS: f64 = 180.0;
const T0: f64 = 1_700_000_000.0;
/// Samples kept beyond the policy's longest window (210 samples for the 15-minute windows).
const HISTORY_EXTRA: f64 = 145.0;
const START_WORKERS: u32 = 2;
const HOUR: f64 = 3600.0;

/// xorshift64*: tiny, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }
    /// Standard normal (Box-Muller).
    fn gauss(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// Multiplicative load noise: slow AR(1) wander + per-sample jitter + short bursts (batch
/// queries) and lulls (clients pausing), as 5-second CPU samples look in practice.
struct Noise {
    rng: Rng,
    ar: f64,
    ar_sd: f64,
    jitter: f64,
    burst_p: f64,
    lull_p: f64,
    event_left: u32,
    event_factor: f64,
}

impl Noise {
    fn new(seed: u64, ar_sd: f64, jitter: f64, burst_p: f64, lull_p: f64) -> Noise {
        Noise {
            rng: Rng(seed),
            ar: 0.0,
            ar_sd,
            jitter,
            burst_p,
            lull_p,
            event_left: 0,
            event_factor: 1.0,
        }
    }

    /// The next factor, and the factor of the burst under way (1 outside bursts).
    fn next(&mut self) -> (f64, f64) {
        let phi: f64 = (-SAMPLE / 120.0).exp();
        self.ar = phi * self.ar + self.ar_sd * (1.0 - phi * phi).sqrt() * self.rng.gauss();
        if self.event_left > 0 {
            self.event_left -= 1;
        } else {
            let u = self.rng.unit();
            if u < self.burst_p {
                self.event_left = self.rng.range(6.0, 18.0) as u32;
                self.event_factor = self.rng.range(1.6, 2.2);
            } else if u < self.burst_p + self.lull_p {
                self.event_left = self.rng.range(6.0, 18.0) as u32;
                self.event_factor = self.rng.range(0.25, 0.45);
            }
        }
        let event = if self.event_left > 0 {
            self.event_factor
        } else {
            1.0
        };
        let jitter = 1.0 + self.jitter * (2.0 * self.rng.unit() - 1.0);
        let burst = if self.event_left > 0 && self.event_factor > 1.0 {
            self.event_factor
        } else {
            1.0
        };
        ((1.0 + self.ar).max(0.2) * jitter * event, burst)
    }
}

struct Trace {
    name: &'static str,
    hours: f64,
    /// Demand without noise, worker-percent, at t seconds from the start.
    base: fn(f64) -> f64,
    noise: Noise,
    react: React,
    /// The goal on minutes above 80%, for the headroom table.
    goal: Option<f64>,
}

/// What the threshold, target and predictive policies must react to.
#[derive(Clone, Copy)]
enum React {
    Nothing,
    /// A step up at `start` s lasting until `end` s: the first scale-out within 5 minutes of
    /// `start`, and CPU below 100% (keeping up) one minute before `end`.
    Spike {
        start: f64,
        end: f64,
    },
    /// Growing load: CPU below 100% one minute before `end`.
    Ramp {
        end: f64,
    },
}

impl React {
    fn onset(self) -> Option<f64> {
        match self {
            React::Spike { start, .. } => Some(start),
            _ => None,
        }
    }
    /// When to read the CPU that tells whether the cluster keeps up.
    fn check_at(self) -> Option<f64> {
        match self {
            React::Spike { end, .. } | React::Ramp { end } => Some(end - 60.0),
            React::Nothing => None,
        }
    }
}

fn traces() -> Vec<Trace> {
    vec![
        Trace {
            name: "diurnal",
            hours: 48.0,
            base: |t| 80.0 + 520.0 * (1.0 - (2.0 * PI * t / 86_400.0).cos()) / 2.0,
            noise: Noise::new(0x9E37_79B9_7F4A_7C15, 0.08, 0.06, 0.002, 0.002),
            react: React::Nothing,
            goal: Some(10.0),
        },
        Trace {
            name: "spike",
            hours: 6.0,
            base: |t| {
                if (2.0 * HOUR..4.0 * HOUR).contains(&t) {
                    500.0
                } else {
                    100.0
                }
            },
            noise: Noise::new(0xD1B5_4A32_D192_ED03, 0.08, 0.06, 0.002, 0.002),
            react: React::Spike {
                start: 2.0 * HOUR,
                end: 4.0 * HOUR,
            },
            goal: None,
        },
        Trace {
            name: "ramp",
            hours: 6.0,
            base: |t| 100.0 + 1000.0 * t / (6.0 * HOUR),
            noise: Noise::new(0x94D0_49BB_1331_11EB, 0.08, 0.06, 0.002, 0.002),
            react: React::Ramp { end: 6.0 * HOUR },
            goal: Some(5.0),
        },
        Trace {
            name: "plateau80",
            hours: 6.0,
            base: |_| 155.0,
            noise: Noise::new(0xBF58_476D_1CE4_E5B9, 0.12, 0.10, 0.004, 0.004),
            react: React::Nothing,
            goal: None,
        },
        Trace {
            name: "weekly",
            hours: 21.0 * 24.0,
            base: weekly,
            noise: Noise::new(0x6A09_E667_F3BC_C908, 0.08, 0.06, 0.002, 0.002),
            react: React::Nothing,
            goal: None,
        },
        Trace {
            name: "sawtooth",
            hours: 6.0,
            base: |t| {
                let phase = (t % 2400.0) / 2400.0;
                100.0 + 400.0 * phase
            },
            noise: Noise::new(0x2545_F491_4F6C_DD1D, 0.08, 0.06, 0.002, 0.002),
            react: React::Nothing,
            goal: None,
        },
    ]
}

/// A smooth step from 0 at `a` to 1 at `b` (hours).
fn smooth(h: f64, a: f64, b: f64) -> f64 {
    let x = ((h - a) / (b - a)).clamp(0.0, 1.0);
    (1.0 - (PI * x).cos()) / 2.0
}

/// Business hours on weekdays (100 at night, 600 from 9:00 to 17:00, steep 7:00-9:00 mornings),
/// quiet weekends (a 250 midday bump); the trace starts on a Monday at midnight.
fn weekly(t: f64) -> f64 {
    let day = (t / 86_400.0).floor() as i64 % 7;
    let h = (t % 86_400.0) / 3600.0;
    if day < 5 {
        100.0 + 500.0 * (smooth(h, 7.0, 9.0) - smooth(h, 17.0, 19.0))
    } else {
        100.0 + 150.0 * (smooth(h, 10.0, 13.0) - smooth(h, 15.0, 18.0))
    }
}

fn threshold_policy() -> Policy {
    Policy::threshold("threshold", Metric::Cpu, 80.0, 25.0)
}

fn target_policy() -> Policy {
    let mut p = Policy::target("target", Metric::Cpu, 60.0);
    p.step = 4;
    p
}

fn predictive_policy() -> Policy {
    let mut p = target_policy();
    p.name = "predictive".into();
    p.predictive = true;
    p
}

/// Predictive target tracking whose forecast searches for no cycle
/// (`forecast::Config::cycle_window` 0).
fn predictive_no_cycle_policy() -> Policy {
    let mut p = predictive_policy();
    p.name = "predictive_no_cycle".into();
    p
}

/// The best a scaler without foresight can do here: target tracking at `target` on the demand
/// itself (load1, demand / workers, is not capped at 100 as the CPU is, so a jump is sized in
/// one operation), acting on the latest sample (no scale-up window), with no step cap and no
/// scale-out cooldown. What it still spends above 80% is the operation time after each rise.
fn reactive_bound_policy(name: &str, target: f64) -> Policy {
    let mut p = Policy::target(name, Metric::Load1, target);
    p.scale_out_for = 0.0;
    p.cooldown_out = 0.0;
    p.step = MAX_WORKERS;
    p
}

/// Predictive target tracking with a `minutes`-minute scale-in window.
fn predictive_scale_in_policy(minutes: u32) -> Policy {
    let mut p = predictive_policy();
    p.name = format!("predictive_in{minutes}m");
    p.scale_in_for = f64::from(minutes) * 60.0;
    p
}

/// Predictive target tracking with a schedule: at least 12 workers from 07:00 UTC for 7 hours,
/// around the diurnal trace's daily peak (demand 600, 7.5 workers at 80%, at 10:13 UTC).
fn predictive_schedule_policy() -> Policy {
    let mut p = predictive_policy();
    p.name = "predictive_schedule".into();
    p
}

fn schedules_of(p: &Policy) -> Vec<CompiledSchedule> {
    if p.name != "predictive_schedule" {
        return Vec::new();
    }
    let s = Schedule {
        name: "daily-peak".into(),
        cron: "0 7 * * *".into(),
        min_workers: Some(12),
        max_workers: None,
        time_zone: "UTC".into(),
        duration: 7.0 * HOUR,
    };
    vec![s.compile().expect("the benchmark schedule is valid")]
}

fn forecast_config(p: &Policy) -> Config {
    if p.name == "predictive_no_cycle" {
        Config {
            cycle_window: 0.0,
            ..Config::default()
        }
    } else {
        Config::default()
    }
}

fn naive_policy() -> Policy {
    let mut p = Policy::threshold("naive", Metric::Cpu, 80.0, 25.0);
    p.scale_out_for = 0.0;
    p.scale_in_for = 0.0;
    p.cooldown_out = 0.0;
    p.cooldown_in = 0.0;
    p
}

#[derive(Default)]
struct Outcome {
    outs: u32,
    ins: u32,
    secs_above_80: f64,
    /// Of those, inside a burst of the noise.
    secs_above_80_burst: f64,
    /// Of those, while a scale-out was running (decided, not yet landed) and while a scale-in was.
    secs_above_80_out_running: f64,
    secs_above_80_in_running: f64,
    worker_secs: f64,
    reversals: u32,
    /// Seconds from the onset of a spike to the first scale-out decided after it.
    reaction: Option<f64>,
    /// CPU when the reaction is checked (is the cluster keeping up?).
    cpu_at_check: Option<f64>,
}

/// One policy over a trace, through the library's simulator (`policy::simulate`, shared with
/// `autoscale.backtest_series()`), and the benchmark's own figures from its trace.
fn simulate(demand: &[f64], bursts: &[bool], react: React, policy: &Policy) -> Outcome {
    let at: Vec<f64> = (0..demand.len()).map(|i| T0 + i as f64 * SAMPLE).collect();
    // REPLAY_DEBUG_CYCLE=1: every simulated hour, what the cycle-searching forecast says (stderr)
    let debug_cycle = policy.name == "predictive" && std::env::var("REPLAY_DEBUG_CYCLE").is_ok();
    let mut observe = |now: f64, fc: &PolicyForecast, f: &Forecaster| {
        let t = now - T0;
        if !debug_cycle || t % HOUR != 0.0 {
            return;
        }
        let what = match &fc.model {
            Ok(m) => m.describe(),
            Err(e) => format!("{e} [{}]", f.cycle_note().unwrap_or("-")),
        };
        eprintln!("cycle-debug {:.1}h {what}", t / 3600.0);
    };
    let sim = simulate::simulate_observed(
        &at,
        demand,
        policy,
        &schedules_of(policy),
        &SimConfig {
            operation_secs: OP_SECS,
            start_workers: START_WORKERS,
            eval_every: EVAL_EVERY as f64 * SAMPLE,
            extra_history: HISTORY_EXTRA,
            forecast: forecast_config(policy),
        },
        &mut observe,
    );
    let summary = sim.summary(&[80.0]);
    let mut out = Outcome {
        outs: summary.scale_outs,
        ins: summary.scale_ins,
        secs_above_80: summary.minutes_above[0].1 * 60.0,
        worker_secs: summary.worker_minutes * 60.0,
        reversals: summary.reversals,
        ..Outcome::default()
    };
    // the action running at a step: the last one decided before it, until it lands
    let mut next = 0;
    for (step, burst) in sim.steps.iter().zip(bursts) {
        if step.value > 80.0 && *burst {
            out.secs_above_80_burst += step.secs;
        }
        while next < sim.actions.len() && sim.actions[next].at < step.at {
            next += 1;
        }
        let running = next
            .checked_sub(1)
            .map(|i| &sim.actions[i])
            .filter(|a| step.at < a.at + OP_SECS)
            .map(|a| a.direction);
        if step.value > 80.0 {
            match running {
                Some(Direction::Out) => out.secs_above_80_out_running += step.secs,
                Some(Direction::In) => out.secs_above_80_in_running += step.secs,
                _ => {}
            }
        }
        if react
            .check_at()
            .is_some_and(|c| (step.at - T0 - c).abs() < SAMPLE / 2.0)
        {
            out.cpu_at_check = Some(step.value);
        }
    }
    if let Some(start) = react.onset() {
        out.reaction = sim
            .actions
            .iter()
            .find(|a| a.direction == Direction::Out && a.at - T0 >= start)
            .map(|a| a.at - T0 - start);
    }
    out
}

/// The omniscient scaler: per block of OP_SECS, the fewest workers (2..16) that keep the block's
/// peak demand at or below 80% per worker. Returns (minutes above 80%, worker-minutes, resizes,
/// reversals: resizes opposite to the one before within REVERSAL_WINDOW, counted as for the
/// policies: what following the load exactly costs in reversals).
fn oracle(demand: &[f64]) -> (f64, f64, u32, u32) {
    let per_block = (OP_SECS / SAMPLE) as usize;
    let (mut above, mut worker_secs, mut resizes, mut reversals) = (0.0, 0.0, 0u32, 0u32);
    let mut prev: Option<u32> = None;
    let mut last_resize: Option<(f64, bool)> = None;
    for (k, block) in demand.chunks(per_block).enumerate() {
        let peak = block.iter().copied().fold(0.0, f64::max);
        let w = ((peak / 80.0 - 1e-9).ceil() as u32).clamp(START_WORKERS, 16);
        if let Some(p) = prev.filter(|p| *p != w) {
            resizes += 1;
            let (at, up) = (k as f64 * OP_SECS, w > p);
            if last_resize.is_some_and(|(t, u)| u != up && at - t < REVERSAL_WINDOW) {
                reversals += 1;
            }
            last_resize = Some((at, up));
        }
        prev = Some(w);
        for d in block {
            if (d / f64::from(w)).min(100.0) > 80.0 {
                above += SAMPLE;
            }
            worker_secs += f64::from(w) * SAMPLE;
        }
    }
    (above / 60.0, worker_secs / 60.0, resizes, reversals)
}

/// The burst-blind oracle: it knows the future demand without the bursts (`calm`) and, per block
/// of OP_SECS, runs the fewest workers (2..16) that keep the block's calm peak at or below
/// 80% / `headroom`. Returns (minutes above 80%, of them in bursts, worker-minutes).
fn burst_blind(demand: &[f64], calm: &[f64], bursts: &[bool], headroom: f64) -> (f64, f64, f64) {
    let per_block = (OP_SECS / SAMPLE) as usize;
    let (mut above, mut in_bursts, mut worker_secs) = (0.0, 0.0, 0.0);
    for (k, block) in calm.chunks(per_block).enumerate() {
        let peak = block.iter().copied().fold(0.0, f64::max);
        let w = ((peak * headroom / 80.0 - 1e-9).ceil() as u32).clamp(START_WORKERS, 16);
        for j in 0..block.len() {
            let i = k * per_block + j;
            if (demand[i] / f64::from(w)).min(100.0) > 80.0 {
                above += SAMPLE;
                if bursts[i] {
                    in_bursts += SAMPLE;
                }
            }
            worker_secs += f64::from(w) * SAMPLE;
        }
    }
    (above / 60.0, in_bursts / 60.0, worker_secs / 60.0)
}

/// Rows of the headroom table for one trace: target tracking at lower targets (predictive and
/// not), and the burst-blind oracle at growing headroom until it meets the trace's `goal`.
fn headroom_frontier(
    name: &str,
    goal: f64,
    demand: &[f64],
    calm: &[f64],
    bursts: &[bool],
    react: React,
) -> Vec<String> {
    let mut rows = Vec::new();
    let onsets = bursts.windows(2).filter(|w| !w[0] && w[1]).count()
        + usize::from(bursts.first() == Some(&true));
    let in_burst = bursts.iter().filter(|b| **b).count();
    // the highest burst-free minute of each hour against the highest minute with bursts
    let per_hour = (HOUR / SAMPLE) as usize;
    let ratio: Vec<f64> = demand
        .chunks(per_hour)
        .zip(calm.chunks(per_hour))
        .map(|(d, c)| {
            let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
            max(d) / max(c)
        })
        .collect();
    rows.push(format!(
        "{name}: {onsets} bursts ({:.1}% of the samples, {:.1} minutes); an hour's peak is on average \
         {:.2}x its peak without bursts",
        100.0 * in_burst as f64 / bursts.len() as f64,
        in_burst as f64 * SAMPLE / 60.0,
        ratio.iter().sum::<f64>() / ratio.len() as f64
    ));
    for target in [50.0, 45.0, 40.0, 36.0] {
        for predictive in [false, true] {
            let mut p = Policy::target("t", Metric::Cpu, target);
            p.step = 4;
            p.predictive = predictive;
            let r = simulate(demand, bursts, react, &p);
            rows.push(format!(
                "{:<10} {:<26} {:>9.1} {:>10.1} {:>11.0}",
                name,
                format!(
                    "{}target {target:.0}%",
                    if predictive { "predictive " } else { "" }
                ),
                r.secs_above_80 / 60.0,
                r.secs_above_80_burst / 60.0,
                r.worker_secs / 60.0
            ));
        }
    }
    // headroom 1.00, 1.05, ... 2.50: the rows at 1, 1.25 and 1.5, and the first that meets the goal
    for k in 0..=30u32 {
        let h = 1.0 + 0.05 * f64::from(k);
        let (above, in_bursts, wmin) = burst_blind(demand, calm, bursts, h);
        if [0, 5, 10].contains(&k) || above <= goal {
            rows.push(format!(
                "{:<10} {:<26} {:>9.1} {:>10.1} {:>11.0}",
                name,
                format!("burst-blind oracle x{h:.2}"),
                above,
                in_bursts,
                wmin
            ));
        }
        if above <= goal {
            break;
        }
    }
    rows
}

/// Max workers and the per-worker level the real traces are scaled to: the 99.9th percentile of
/// a trace's demand needs all 16 workers at 80%.
const MAX_WORKERS: u32 = 16;
const SCALE_TO: f64 = MAX_WORKERS as f64 * 80.0;

/// A real trace: request counts per `interval` seconds (*.counts.xz, written by
/// bench/traces/convert.py outside the clone and unpacked by bench/policy_replay.sh).
struct RealTrace {
    name: String,
    interval: f64,
    counts: Vec<f64>,
}

/// Reads every `*.counts` file of `dir` (sorted by name): `#` comments, `interval_secs N`, then
/// one count per line.
fn read_real_traces(dir: &str) -> Vec<RealTrace> {
    let mut paths: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "counts"))
            .collect(),
        Err(e) => {
            eprintln!("no real traces: {dir}: {e}");
            return Vec::new();
        }
    };
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("readable trace");
            let mut interval = SAMPLE;
            let mut counts = Vec::new();
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                if let Some(v) = line.strip_prefix("interval_secs ") {
                    interval = v.trim().parse().expect("interval_secs N");
                } else if !line.trim().is_empty() {
                    counts.push(line.trim().parse::<f64>().expect("a count per line"));
                }
            }
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("trace")
                .to_string();
            RealTrace {
                name,
                interval,
                counts,
            }
        })
        .collect()
}

/// 5-second demand from request counts: each bin's count spread evenly over its 5-s slots, a 60-s
/// moving sum (requests in the last minute: what a 5-s CPU sample of a server busy with them
/// reflects once smoothed over its requests), scaled so that the 99.9th percentile is
/// MAX_WORKERS x 80.
fn real_demand(t: &RealTrace) -> Vec<f64> {
    let per_bin = (t.interval / SAMPLE).round().max(1.0) as usize;
    let slots: Vec<f64> = t
        .counts
        .iter()
        .flat_map(|c| std::iter::repeat_n(c / per_bin as f64, per_bin))
        .collect();
    let window = (60.0 / SAMPLE) as usize;
    let mut sum = 0.0;
    let mut moving = Vec::with_capacity(slots.len());
    for (i, x) in slots.iter().enumerate() {
        sum += x;
        if i >= window {
            sum -= slots[i - window];
        }
        moving.push(sum.max(0.0));
    }
    let mut sorted = moving.clone();
    sorted.sort_by(f64::total_cmp);
    let p999 = sorted[((sorted.len() as f64 * 0.999) as usize).min(sorted.len() - 1)];
    let scale = if p999 > 0.0 { SCALE_TO / p999 } else { 1.0 };
    moving.iter().map(|m| m * scale).collect()
}

/// The policies whose minutes above 80% on a real trace are split by what was running then: a
/// scale-out (the operation time after a decision), a scale-in, or nothing (the scale-up window,
/// a load below the trigger's reach).
const WHERE_FROM: [&str; 3] = ["target", "predictive", "reactive_bound"];

/// One real trace: every policy next to the oracle. Returns the failed checks.
fn replay_real(t: &RealTrace, policies: &[Policy], naive: &str, check: &[&str]) -> Vec<String> {
    let demand = real_demand(t);
    let bursts = vec![false; demand.len()];
    let minutes = demand.len() as f64 * SAMPLE / 60.0;
    let (o_above, o_wmin, o_resizes, o_reversals) = oracle(&demand);
    println!(
        "{} ({:.1} days, 5-s demand from {} counts per {:.0} s; oracle: {:.1} min above 80%, {:.0} \
         worker-minutes, {} resizes)",
        t.name,
        minutes / 1440.0,
        t.counts.len(),
        t.interval,
        o_above,
        o_wmin,
        o_resizes
    );
    let results: Vec<(String, Outcome)> = policies
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                simulate(&demand, &bursts, React::Nothing, p),
            )
        })
        .collect();
    for (name, r) in &results {
        let above = r.secs_above_80 / 60.0;
        println!(
            "{:<12} {:<19} {:>8} {:>9} {:>9.1} {:>7.2}% {:>11.0} {:>7.2}x {:>10}",
            t.name,
            name,
            r.outs + r.ins,
            format!("{}/{}", r.outs, r.ins),
            above,
            100.0 * above / minutes,
            r.worker_secs / 60.0,
            r.worker_secs / 60.0 / o_wmin,
            r.reversals
        );
    }
    println!(
        "{:<12} {:<19} {:>8} {:>9} {:>9.1} {:>7.2}% {:>11.0} {:>7.2}x {:>10}",
        t.name,
        "oracle",
        o_resizes,
        "-",
        o_above,
        100.0 * o_above / minutes,
        o_wmin,
        1.0,
        o_reversals
    );
    for (name, r) in results
        .iter()
        .filter(|(n, _)| WHERE_FROM.contains(&n.as_str()))
    {
        let above = r.secs_above_80 / 60.0;
        let (out_running, in_running) = (
            r.secs_above_80_out_running / 60.0,
            r.secs_above_80_in_running / 60.0,
        );
        println!(
            "{:<12} {:<19} where the {above:.1} minutes above 80% fall: {out_running:.1} while a \
             scale-out ran, {in_running:.1} while a scale-in ran, {:.1} with nothing running",
            t.name,
            name,
            above - out_running - in_running
        );
    }
    let mut failures = Vec::new();
    let naive_rev = results
        .iter()
        .find(|(n, _)| n == naive)
        .map_or(0, |(_, r)| r.reversals);
    for (name, r) in results.iter().filter(|(n, _)| check.contains(&n.as_str())) {
        if !(r.reversals < naive_rev || (naive_rev == 0 && r.reversals == 0)) {
            failures.push(format!(
                "{}: {name} reverses {} times, naive {naive_rev}",
                t.name, r.reversals
            ));
        }
    }
    failures
}

fn main() {
    let policies = [
        threshold_policy(),
        target_policy(),
        naive_policy(),
        predictive_policy(),
        predictive_no_cycle_policy(),
        predictive_schedule_policy(),
    ];
    for p in &policies {
        p.validate().expect("benchmark policy is valid");
    }
    println!(
        "{:<10} {:<19} {:>8} {:>7} {:>9} {:>10} {:>11} {:>14}",
        "trace",
        "policy",
        "actions",
        "out/in",
        "min >80%",
        "in bursts",
        "worker-min",
        "reversals<30m"
    );
    let mut failures: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut frontier: Vec<Vec<String>> = Vec::new();
    for mut trace in traces() {
        let n = (trace.hours * HOUR / SAMPLE) as usize;
        let (demand, burst_factor): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|i| {
                let (factor, burst) = trace.noise.next();
                ((trace.base)(i as f64 * SAMPLE) * factor, burst)
            })
            .unzip();
        let bursts: Vec<bool> = burst_factor.iter().map(|f| *f > 1.0).collect();
        // the demand as it would be without the bursts (the slow wander, jitter and lulls stay)
        let calm: Vec<f64> = demand
            .iter()
            .zip(&burst_factor)
            .map(|(d, f)| d / f)
            .collect();
        let results: Vec<Outcome> = policies
            .iter()
            .map(|p| simulate(&demand, &bursts, trace.react, p))
            .collect();
        for (p, r) in policies.iter().zip(&results) {
            println!(
                "{:<10} {:<19} {:>8} {:>7} {:>9.1} {:>10.1} {:>11.0} {:>14}",
                trace.name,
                p.name,
                r.outs + r.ins,
                format!("{}/{}", r.outs, r.ins),
                r.secs_above_80 / 60.0,
                r.secs_above_80_burst / 60.0,
                r.worker_secs / 60.0,
                r.reversals
            );
        }
        let (o_above, o_wmin, o_resizes, o_reversals) = oracle(&demand);
        println!(
            "{:<10} {:<19} {:>8} {:>7} {:>9.1} {:>10} {:>11.0} {:>14}",
            trace.name, "oracle", o_resizes, "-", o_above, "-", o_wmin, o_reversals
        );
        if let Some(goal) = trace.goal {
            frontier.push(headroom_frontier(
                trace.name,
                goal,
                &demand,
                &calm,
                &bursts,
                trace.react,
            ));
        }
        let naive = &results[2];
        for (p, r) in policies
            .iter()
            .zip(&results)
            .filter(|(p, _)| p.name != "naive")
        {
            let ok = r.reversals < naive.reversals || (naive.reversals == 0 && r.reversals == 0);
            if !ok {
                failures.push(format!(
                    "{}: {} reverses {} times, naive {}",
                    trace.name, p.name, r.reversals, naive.reversals
                ));
            }
            if let Some(onset) = trace.react.onset() {
                match r.reaction {
                    Some(s) if s <= 300.0 => {}
                    other => failures.push(format!(
                        "{}: {} first scale-out after {:?} s (limit 300)",
                        trace.name, p.name, other
                    )),
                }
                notes.push(format!(
                    "{} {}: first scale-out {} after the onset at {:.0} min",
                    trace.name,
                    p.name,
                    r.reaction
                        .map_or("never".to_string(), |s| format!("{s:.0}s")),
                    onset / 60.0
                ));
            }
            if let Some(at) = trace.react.check_at() {
                let cpu = r.cpu_at_check.unwrap_or(100.0);
                if cpu >= 100.0 {
                    failures.push(format!(
                        "{}: {} still saturated at {:.0} min",
                        trace.name,
                        p.name,
                        at / 60.0
                    ));
                }
                notes.push(format!(
                    "{} {}: cpu {cpu:.0}% at {:.0} min, {} scale-outs",
                    trace.name,
                    p.name,
                    at / 60.0,
                    r.outs
                ));
            }
        }
    }
    for n in &notes {
        println!("{n}");
    }
    println!();
    println!(
        "What it costs to absorb the bursts: target tracking at lower targets, and a burst-blind \
         oracle that knows the future demand except the bursts (per 3-minute block the fewest \
         workers that keep its burst-free peak at or below 80% / headroom)."
    );
    println!(
        "{:<10} {:<26} {:>9} {:>10} {:>11}",
        "trace", "scaler", "min >80%", "in bursts", "worker-min"
    );
    for rows in &frontier {
        for r in rows {
            println!("{r}");
        }
    }
    if let Some(dir) = std::env::var("REPLAY_TRACES")
        .ok()
        .or_else(|| std::env::args().nth(1))
    {
        let traces = read_real_traces(&dir);
        // the experiment: target tracking with a 30-s scale-up window and no scale-out
        // cooldown (not the default: it flaps on the synthetic traces, docs/real-load.md)
        let mut target_30s = target_policy();
        target_30s.name = "target_30s".into();
        target_30s.scale_out_for = 30.0;
        target_30s.cooldown_out = 0.0;
        let mut real_policies = vec![
            threshold_policy(),
            target_policy(),
            naive_policy(),
            predictive_policy(),
            target_30s,
            predictive_no_cycle_policy(),
            reactive_bound_policy("reactive_bound", 60.0),
            reactive_bound_policy("reactive_bound_50", 50.0),
        ];
        // the scale-in window's frontier: minutes above 80% and reversals against worker-minutes
        real_policies.extend([20, 25, 30, 45].map(predictive_scale_in_policy));
        println!();
        println!(
            "Real traces (bench/traces/README.md): 5-s demand from request counts (60-s moving sum), scaled so \
             that the 99.9th percentile needs {MAX_WORKERS} workers at 80%. target_30s: target \
             tracking with a 30-s scale-up window and no scale-out cooldown. reactive_bound(_50): \
             the best without foresight: target tracking at 60% (50%) on the uncapped demand, on \
             the latest sample, no step cap, no cooldown. predictive_inNm: the default predictive \
             policy with an N-minute scale-in window (scale_in_for; default 15)."
        );
        println!(
            "{:<12} {:<19} {:>8} {:>9} {:>9} {:>8} {:>11} {:>8} {:>10}",
            "trace",
            "policy",
            "actions",
            "out/in",
            "min >80%",
            "share",
            "worker-min",
            "/oracle",
            "reversals"
        );
        for t in &traces {
            failures.extend(replay_real(
                t,
                &real_policies,
                "naive",
                &["threshold", "target", "predictive"],
            ));
        }
    }
    if failures.is_empty() {
        println!(
            "check: threshold, target and predictive flap less than naive on every trace and react \
             to the spike and the ramp: OK"
        );
    } else {
        for f in &failures {
            println!("check FAILED: {f}");
        }
        std::process::exit(1);
    }
}
