//! Evaluation: one policy at a time, then the combination into one decision.

use super::{
    format_duration, format_epoch, num, single_node_room, Decision, Direction, EvalInput, Point,
    Policy, PolicyEval, PolicyKind, PolicySeries,
};

/// Slack for comparing float times.
const EPS: f64 = 1e-6;
/// A sample older than this many intervals is stale; a gap longer than this many intervals
/// between two samples is a gap.
const GAP_INTERVALS: f64 = 3.0;
/// A target-tracking scale-out is sized from the highest recommendation over at least this long
/// (seconds, or `scale_out_for` when longer): the peak of the last minute, not its latest sample.
pub const SIZING_WINDOW: f64 = 60.0;

/// Decides for the whole cluster: evaluates every policy, then combines them (the largest
/// desired size wins; scale-in only when every policy says in).
pub fn evaluate(input: &EvalInput) -> Decision {
    let from = input.workers;
    let mut evals = Vec::with_capacity(input.series.len());
    let mut pending_out = Vec::with_capacity(input.series.len());
    for s in &input.series {
        let (ev, pending) = eval_one(input, s);
        evals.push(ev);
        pending_out.push(pending);
    }
    let hold = |reasons: Vec<String>, policies: Vec<PolicyEval>| Decision {
        direction: Direction::Hold,
        desired_workers: from,
        from_workers: from,
        step: 0,
        reasons,
        policies,
    };

    if !input.now.is_finite() {
        return hold(
            vec!["invalid input: now is not a finite time".into()],
            evals,
        );
    }
    if input.operation_running {
        return hold(vec!["operation in progress".into()], evals);
    }
    if let Some(until) = input.paused_until.filter(|u| *u > input.now) {
        let r = format!(
            "paused until {} ({} left)",
            format_epoch(until),
            format_duration(until - input.now)
        );
        return hold(vec![r], evals);
    }
    if evals.is_empty() {
        return hold(vec!["no policies".into()], evals);
    }

    let prefixed = |evs: &[&PolicyEval]| -> Vec<String> {
        evs.iter()
            .flat_map(|e| e.reasons.iter().map(move |r| format!("{}: {r}", e.name)))
            .collect()
    };

    let outs: Vec<&PolicyEval> = evals
        .iter()
        .filter(|e| e.direction == Direction::Out)
        .collect();
    if let Some(desired) = outs.iter().map(|e| e.desired_workers).max() {
        let reasons = prefixed(&outs);
        return Decision {
            direction: Direction::Out,
            desired_workers: desired,
            from_workers: from,
            step: desired.abs_diff(from),
            reasons,
            policies: evals,
        };
    }

    let n_in = evals
        .iter()
        .filter(|e| e.direction == Direction::In)
        .count();
    let any_pending = pending_out.iter().any(|p| *p);
    if n_in == evals.len() && !any_pending {
        let desired = evals
            .iter()
            .map(|e| e.desired_workers)
            .max()
            .unwrap_or(from);
        let all: Vec<&PolicyEval> = evals.iter().collect();
        let reasons = prefixed(&all);
        return Decision {
            direction: Direction::In,
            desired_workers: desired,
            from_workers: from,
            step: desired.abs_diff(from),
            reasons,
            policies: evals,
        };
    }

    let mut reasons = Vec::new();
    if n_in > 0 {
        let pending: Vec<&str> = evals
            .iter()
            .zip(&pending_out)
            .filter(|(_, p)| **p)
            .map(|(e, _)| e.name.as_str())
            .collect();
        if pending.is_empty() {
            reasons.push(format!(
                "no scale-in: only {n_in} of {} policies agree",
                evals.len()
            ));
        } else {
            reasons.push(format!(
                "no scale-in: above the scale-out threshold: {}",
                pending.join(", ")
            ));
        }
    }
    let all: Vec<&PolicyEval> = evals.iter().collect();
    reasons.extend(prefixed(&all));
    hold(reasons, evals)
}

/// What one policy says, ignoring the cluster-wide guards (operation running, pause).
pub fn evaluate_policy(input: &EvalInput, series: &PolicySeries) -> PolicyEval {
    eval_one(input, series).0
}

/// What the metric asks for before bounds of cooldown and min/max.
enum Want {
    Nothing,
    Out(u32),
    In(u32),
}

struct Ctx<'a> {
    p: &'a Policy,
    pts: Vec<Point>,
    now: f64,
    interval: f64,
    workers: u32,
    label: String,
    reasons: Vec<String>,
    held_for: f64,
    pending_out: bool,
    /// Target tracking during a scale-out cooldown: when the last scale-out finished. Only the
    /// samples since then count (they carry its capacity), and the cooldown does not block.
    out_since: Option<f64>,
}

/// Returns the evaluation and whether the policy is in a (partial or blocked) scale-out
/// condition, which forbids a scale-in by the other policies.
fn eval_one(input: &EvalInput, s: &PolicySeries) -> (PolicyEval, bool) {
    let p = &s.policy;
    let w = input.workers;
    let now = input.now;
    let mut ev = PolicyEval {
        name: p.name.clone(),
        metric: p.metric,
        aggregate: p.aggregate,
        current: None,
        threshold_or_target: p.threshold_or_target(),
        held_for: 0.0,
        cooldown_left: 0.0,
        desired_workers: w,
        direction: Direction::Hold,
        reasons: Vec::new(),
    };
    if let Err(e) = p.validate() {
        ev.reasons.push(format!("invalid policy: {e}"));
        return (ev, false);
    }
    if !now.is_finite() {
        ev.reasons
            .push("invalid input: now is not a finite time".into());
        return (ev, false);
    }
    let interval = input.sample_interval;
    if !(interval.is_finite() && interval > 0.0) {
        ev.reasons
            .push(format!("invalid sample_interval ({interval})"));
        return (ev, false);
    }

    let mut pts: Vec<Point> = s
        .points
        .iter()
        .filter(|pt| pt.at.is_finite())
        .map(|pt| Point {
            value: pt.value.filter(|v| v.is_finite()),
            ..*pt
        })
        .collect();
    pts.sort_by(|a, b| a.at.total_cmp(&b.at));
    ev.current = pts.last().and_then(|pt| pt.value);

    let cd_out = remaining(input.last_scale_out_finished, p.cooldown_out, now);
    let cd_in_after_in = remaining(input.last_scale_in_finished, p.cooldown_in, now);
    let cd_in_after_out = remaining(input.last_scale_out_finished, p.cooldown_in, now);
    let cd_in = cd_in_after_in.max(cd_in_after_out);

    let mut cx = Ctx {
        p,
        pts,
        now,
        interval,
        workers: w,
        label: format!("{} {}", p.metric, p.aggregate),
        reasons: Vec::new(),
        held_for: 0.0,
        pending_out: false,
        out_since: None,
    };
    let is_target = matches!(p.kind, PolicyKind::Target { .. });
    if is_target && cd_out > 0.0 {
        cx.out_since = input.last_scale_out_finished;
    }
    let want = cx.want();

    match want {
        Want::Nothing => ev.cooldown_left = cd_out.max(cd_in),
        Want::Out(d) => {
            ev.cooldown_left = cd_out;
            if d <= w {
                cx.pending_out = true;
                cx.reasons
                    .push(format!("at max_workers ({})", p.max_workers));
            } else if cd_out > 0.0 && !is_target {
                cx.pending_out = true;
                cx.reasons.push(format!(
                    "scale-out cooldown: {} left",
                    format_duration(cd_out)
                ));
            } else {
                if cd_out > 0.0 {
                    // AWS target tracking: during the cooldown the last scale-out's capacity
                    // counts toward the next one (only samples taken on it were read) and the
                    // cooldown does not block
                    cx.reasons.push(format!(
                        "scale-out cooldown ({} left) does not block target tracking: only samples \
                         since the last scale-out finished counted",
                        format_duration(cd_out)
                    ));
                }
                ev.direction = Direction::Out;
                ev.desired_workers = d;
                cx.reasons.push(format!("scale out {w} -> {d}"));
            }
        }
        Want::In(d) => {
            ev.cooldown_left = cd_in;
            let single = (d == 0)
                .then(|| single_node_room(&input.single_node).err())
                .flatten();
            if d >= w {
                cx.reasons
                    .push(format!("at min_workers ({})", p.min_workers));
            } else if let Some(why) = single {
                // never below the coordinator: zero workers is the coordinator alone, holding
                // every shard
                cx.reasons
                    .push(format!("no scale-in to a single node: {why}"));
            } else if cd_in > 0.0 {
                let after = if cd_in_after_out >= cd_in_after_in {
                    "scale-out"
                } else {
                    "scale-in"
                };
                cx.reasons.push(format!(
                    "scale-in cooldown after {after}: {} left",
                    format_duration(cd_in)
                ));
            } else {
                ev.direction = Direction::In;
                ev.desired_workers = d;
                cx.reasons.push(format!("scale in {w} -> {d}"));
            }
        }
    }
    ev.held_for = cx.held_for;
    ev.reasons = cx.reasons;
    (ev, cx.pending_out)
}

/// Cooldown left after an operation that finished at `finished`.
fn remaining(finished: Option<f64>, cooldown: f64, now: f64) -> f64 {
    match finished {
        Some(t) if t.is_finite() => (t + cooldown - now).max(0.0),
        _ => 0.0,
    }
}

impl Ctx<'_> {
    fn max_gap(&self) -> f64 {
        GAP_INTERVALS * self.interval
    }

    /// The metric's wish, with reasons; bounds first, then data, then the policy's rule.
    fn want(&mut self) -> Want {
        let p = self.p;
        let w = self.workers;
        if w < p.min_workers {
            self.reasons.push(format!(
                "{w} workers is below min_workers ({})",
                p.min_workers
            ));
            return Want::Out(p.min_workers.min(w.saturating_add(p.step)));
        }
        let Some(last) = self.pts.last().copied() else {
            self.reasons.push("no samples".into());
            return Want::Nothing;
        };
        let age = self.now - last.at;
        if age > self.max_gap() + EPS {
            self.reasons.push(format!(
                "latest sample is {} old (limit {})",
                format_duration(age),
                format_duration(self.max_gap())
            ));
            return Want::Nothing;
        }
        if w > p.max_workers {
            self.reasons.push(format!(
                "{w} workers is above max_workers ({})",
                p.max_workers
            ));
            let blockers = self.scale_in_blockers();
            if !blockers.is_empty() {
                self.reasons.extend(blockers);
                return Want::Nothing;
            }
            return Want::In(p.max_workers.max(w.saturating_sub(p.step)));
        }
        let Some(v) = last.value else {
            self.reasons
                .push("no current value: the latest sample is missing".into());
            return Want::Nothing;
        };
        match p.kind {
            PolicyKind::Threshold {
                scale_out_above,
                scale_in_below,
            } => self.threshold(v, scale_out_above, scale_in_below),
            PolicyKind::Target { target, tolerance } => self.target(v, last, target, tolerance),
        }
    }

    /// Start of the longest run of samples, ending with the latest, whose values all satisfy
    /// `pred`, with no missing value and no gap inside.
    fn run_start(&self, pred: impl Fn(f64) -> bool) -> Option<f64> {
        let mut start = None;
        for (i, pt) in self.pts.iter().enumerate().rev() {
            match pt.value {
                Some(v) if pred(v) => {}
                _ => break,
            }
            if let Some(next) = self.pts.get(i + 1) {
                if next.at - pt.at > self.max_gap() + EPS {
                    break;
                }
            }
            start = Some(pt.at);
        }
        start
    }

    fn held(&self, start: Option<f64>) -> f64 {
        start.map_or(0.0, |s| (self.now - s).max(0.0))
    }

    /// True when a run starting at `start` covers a window of `window` seconds (one sample
    /// interval of slack).
    fn covers(&self, start: Option<f64>, window: f64) -> bool {
        start.is_some_and(|s| s <= self.now - window + self.interval + EPS)
    }

    /// Index of the first sample inside the window `[now - window, now]`; at least the latest.
    fn window_start(&self, window: f64) -> usize {
        let ws = self.now - window;
        self.pts
            .partition_point(|pt| pt.at < ws - EPS)
            .min(self.pts.len().saturating_sub(1))
    }

    /// Why the data in the scale-in window does not allow a scale-in (empty: it does).
    fn scale_in_blockers(&self) -> Vec<String> {
        let mut out = Vec::new();
        let window = self.p.scale_in_for;
        let Some(oldest) = self.pts.first() else {
            out.push("no scale-in: no samples".into());
            return out;
        };
        let first = self.window_start(window);
        let win = &self.pts[first..];
        let missing = win.iter().filter(|pt| pt.value.is_none()).count();
        if missing > 0 {
            out.push(format!(
                "no scale-in: {missing} missing value{} in window",
                if missing == 1 { "" } else { "s" }
            ));
        }
        if win.iter().any(|pt| pt.unreachable > 0) {
            out.push("no scale-in: node unreachable in window".into());
        }
        let gap = (first.max(1)..self.pts.len())
            .map(|i| self.pts[i].at - self.pts[i - 1].at)
            .fold(0.0, f64::max);
        if gap > self.max_gap() + EPS {
            out.push(format!(
                "no scale-in: sample gap of {}",
                format_duration(gap)
            ));
        }
        if oldest.at > self.now - window + self.interval + EPS {
            out.push(format!(
                "no scale-in: only {} of history, need {}",
                format_duration(self.now - oldest.at),
                format_duration(window)
            ));
        }
        out
    }

    fn threshold(&mut self, v: f64, above: f64, below: f64) -> Want {
        let p = self.p;
        let w = self.workers;
        if v > above {
            let start = self.run_start(|x| x > above);
            self.held_for = self.held(start);
            let line = format!(
                "{} {v:.1} > {} for {}",
                self.label,
                num(above),
                format_duration(self.held_for)
            );
            if self.covers(start, p.scale_out_for) {
                self.reasons.push(line);
                Want::Out(w.saturating_add(p.step).min(p.max_workers))
            } else {
                self.pending_out = true;
                self.reasons
                    .push(format!("{line}, need {}", format_duration(p.scale_out_for)));
                Want::Nothing
            }
        } else if v < below {
            let start = self.run_start(|x| x < below);
            self.held_for = self.held(start);
            let held_ok = self.covers(start, p.scale_in_for);
            let line = format!(
                "{} {v:.1} < {} for {}",
                self.label,
                num(below),
                format_duration(self.held_for)
            );
            if held_ok {
                self.reasons.push(line);
            } else {
                self.reasons
                    .push(format!("{line}, need {}", format_duration(p.scale_in_for)));
            }
            let blockers = self.scale_in_blockers();
            if !blockers.is_empty() {
                self.reasons.extend(blockers);
                Want::Nothing
            } else if held_ok {
                Want::In(w.saturating_sub(p.step).max(p.min_workers))
            } else {
                Want::Nothing
            }
        } else {
            self.reasons.push(format!(
                "{} {v:.1} between {} and {}",
                self.label,
                num(below),
                num(above)
            ));
            Want::Nothing
        }
    }

    /// Target tracking: the workers recommended by a sample. The load spreads over the sample's
    /// data nodes, so `ceil(data_nodes * value / target)` data nodes are needed; the coordinator,
    /// when it was one of them, stays one, and the rest are workers.
    fn recommend(&self, pt: &Point, v: f64, target: f64, tolerance: f64) -> u32 {
        let pt = if pt.data_nodes == 0 && pt.workers == 0 {
            // unknown: read as a sample of the current size
            Point {
                workers: self.workers,
                ..*pt
            }
        } else {
            *pt
        };
        let ratio = v / target;
        if (ratio - 1.0).abs() <= tolerance {
            return pt.workers;
        }
        let (dn, coordinator) = pt.data_nodes_and_coordinator();
        let r = (f64::from(dn) * ratio - 1e-9).ceil();
        let nodes = if r <= 0.0 {
            0
        } else if r >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            r as u32
        };
        nodes.saturating_sub(coordinator)
    }

    fn target(&mut self, v: f64, last: Point, target: f64, tolerance: f64) -> Want {
        let p = self.p;
        let w = self.workers;
        let ratio = v / target;
        let dev = (ratio - 1.0).abs() * 100.0;
        if ratio - 1.0 > tolerance {
            let start = self.run_start(|x| x / target - 1.0 > tolerance);
            self.held_for = self.held(start);
            let latest = self.recommend(&last, v, target, tolerance);
            self.reasons.push(format!(
                "{} {v:.1} is {dev:.0}% above target {}: {latest} workers needed",
                self.label,
                num(target)
            ));
            // During a scale-out cooldown only the samples taken since it finished count: they
            // carry the capacity it added (AWS target tracking counts it toward the next one).
            let since = self.out_since.unwrap_or(f64::NEG_INFINITY);
            if last.at < since - EPS {
                self.pending_out = true;
                self.reasons
                    .push("no scale-out yet: no sample since the last scale-out finished".into());
                return Want::Nothing;
            }
            let now = self.now;
            let all: Vec<(f64, u32)> = self
                .pts
                .iter()
                .filter(|pt| pt.at >= since - EPS)
                .filter_map(|pt| {
                    pt.value
                        .map(|x| (pt.at, self.recommend(pt, x, target, tolerance)))
                })
                .collect();
            // the recommendations of the samples inside [now - window, now]; at least the latest
            let recs = |window: f64| {
                let inside: Vec<u32> = all
                    .iter()
                    .filter(|(at, _)| *at >= now - window - EPS)
                    .map(|(_, r)| *r)
                    .collect();
                if inside.is_empty() {
                    all.last().map(|(_, r)| *r).into_iter().collect()
                } else {
                    inside
                }
            };
            // Scale-up stabilization (Kubernetes HPA): the lowest recommendation over the last
            // scale_out_for seconds, so that a burst shorter than the window does not act.
            // With scale_out_for = 0 this is the latest value alone.
            let rec = recs(p.scale_out_for)
                .into_iter()
                .min()
                .unwrap_or(latest)
                .min(latest);
            if rec <= w {
                self.pending_out = true;
                if latest > w {
                    self.reasons.push(format!(
                        "no scale-out yet: the last {} recommend as few as {rec} workers",
                        format_duration(p.scale_out_for)
                    ));
                }
                return Want::Nothing;
            }
            if rec < latest {
                self.reasons.push(format!(
                    "lowest recommendation over the last {}: {rec} workers",
                    format_duration(p.scale_out_for)
                ));
            }
            // Sized from the peak of the window, not its latest or mean value: a load that rose
            // within the last minute is sized for where it got to, not caught up with one
            // operation later.
            let peak = recs(p.scale_out_for.max(SIZING_WINDOW))
                .into_iter()
                .max()
                .unwrap_or(rec)
                .max(rec);
            if peak > rec {
                self.reasons.push(format!(
                    "sized from the highest recommendation over the last {}: {peak} workers",
                    format_duration(p.scale_out_for.max(SIZING_WINDOW))
                ));
            }
            let rec = peak;
            let d = rec.min(w.saturating_add(p.step)).min(p.max_workers);
            if d < rec && d > w {
                let by = if d == p.max_workers && rec > p.max_workers {
                    format!("max_workers ({})", p.max_workers)
                } else {
                    format!("step ({})", p.step)
                };
                self.reasons.push(format!("limited to {d} by {by}"));
            }
            Want::Out(d)
        } else if 1.0 - ratio > tolerance {
            let start = self.run_start(|x| 1.0 - x / target > tolerance);
            self.held_for = self.held(start);
            self.reasons.push(format!(
                "{} {v:.1} is {dev:.0}% below target {}",
                self.label,
                num(target)
            ));
            let blockers = self.scale_in_blockers();
            if !blockers.is_empty() {
                self.reasons.extend(blockers);
                return Want::Nothing;
            }
            let first = self.window_start(p.scale_in_for);
            let rec = self.pts[first..]
                .iter()
                .filter_map(|pt| pt.value.map(|x| self.recommend(pt, x, target, tolerance)))
                .max()
                .unwrap_or(w);
            let window = format_duration(p.scale_in_for);
            if rec >= w {
                self.reasons.push(format!(
                    "no scale-in: the last {window} recommend up to {rec} workers"
                ));
                return Want::Nothing;
            }
            self.reasons.push(format!(
                "highest recommendation over the last {window}: {rec} workers"
            ));
            Want::In(rec.max(w.saturating_sub(p.step)).max(p.min_workers))
        } else {
            self.reasons.push(format!(
                "{} {v:.1} within {}% of target {}",
                self.label,
                num(tolerance * 100.0),
                num(target)
            ));
            Want::Nothing
        }
    }
}
