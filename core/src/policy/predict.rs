//! Predictive policies: the engine's decision, then the forecast's say.
//!
//! [`evaluate_predictive`] first asks [`evaluate`](super::evaluate) as always, then, for every
//! policy with `predictive = true` and a usable forecast:
//! - **scale out ahead**: when the forecast at some time within the lead time (how long a
//!   scale-out takes here) is above `scale_out_above` (threshold) or above the target's band
//!   (target tracking), the policy asks for a scale-out now: one `step` (threshold) or
//!   `ceil(forecast peak / target)` workers (target tracking, at most `step` more), within
//!   `max_workers` and the scale-out cooldown. The largest desired size wins, as always;
//! - **never scale in on its own**: the forecast only ever adds a scale-out or removes a scale-in;
//! - **hold a scale-in back**: when the engine would scale in but the forecast, spread over the
//!   workers that would be left, plus the model's error, crosses the scale-out trigger within
//!   `scale_in_for` plus twice the lead time (the load had to be low for `scale_in_for` to scale
//!   in; it must be forecast to stay low as long after the scale-in and a scale-out back), the
//!   scale-in waits.
//!
//! Load that spreads over workers (cpu, load1, commits/s, connections) is forecast as value x
//! data nodes (the cluster's total; the coordinator is one when it holds shards) and divided by
//! the data nodes it is judged for, so a forecast made across a resize stays right; memory, disk
//! and custom metrics are forecast as recorded.

use serde::Serialize;

use super::spreads_over_workers;
pub use super::units::load_of;
use super::units::per_node;
use super::{
    evaluate, format_duration, num, Decision, Direction, EvalInput, Point, Policy, PolicyKind,
};
use crate::forecast::{LeadTime, Model, NoForecast};

/// A policy's forecast as its caller fitted it (on load units, see [`load_of`]), and the lead time.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyForecast {
    pub model: Result<Model, NoForecast>,
    pub lead: LeadTime,
}

/// What the forecast says about one predictive policy, for `explain()` and the reasons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlook {
    /// Forecast value of the policy's metric at now + lead, on the current workers.
    pub forecast: Option<f64>,
    /// The lead time, seconds.
    pub horizon: f64,
    /// Mean absolute one-step error of the model, in the metric's units on the current workers.
    pub model_error: Option<f64>,
    /// The same, relative to the mean load.
    pub relative_error: Option<f64>,
    /// Seconds from now until the forecast crosses the scale-out trigger (within the scan).
    pub crosses_in: Option<f64>,
    /// The period of the cycle the forecast uses, seconds (`None`: it uses none).
    pub cycle_period: Option<f64>,
    /// What the forecast did: scaled out, held a scale-in, nothing.
    pub effect: Effect,
    /// One line for people: "forecast to cross 80 in 7m; a scale-out takes 6m here (...) (model)".
    pub note: String,
}

/// What a forecast changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    None,
    ScaleOut,
    HoldScaleIn,
}

/// The level above which a policy asks for more workers.
fn trigger(p: &Policy) -> f64 {
    match p.kind {
        PolicyKind::Threshold {
            scale_out_above, ..
        } => scale_out_above,
        PolicyKind::Target { target, tolerance } => target * (1.0 + tolerance),
    }
}

/// The longest time ahead a crossing is looked for (and reported).
fn scan_secs(lead: f64) -> f64 {
    (4.0 * lead).max(3600.0)
}

/// How far ahead a rise holds a scale-in back: the load had to be low for `scale_in_for` to scale
/// in, so it must be forecast to stay low for as long after the scale-in and a scale-out back
/// (twice the lead time).
pub fn hold_horizon(p: &Policy, lead: f64) -> f64 {
    p.scale_in_for + 2.0 * lead
}

/// Cooldown left before a scale-out.
fn cooldown_out_left(input: &EvalInput, p: &Policy) -> f64 {
    input
        .last_scale_out_finished
        .filter(|t| t.is_finite())
        .map_or(0.0, |t| (t + p.cooldown_out - input.now).max(0.0))
}

/// Scan step for crossings: a tenth of the lead, between 5 s and 1 min.
fn scan_step(lead: f64) -> f64 {
    (lead / 10.0).clamp(5.0, 60.0)
}

struct Wish {
    policy: usize,
    desired: u32,
    reason: String,
}

/// The decision with the forecasts applied, and per series (same order) the outlook of a
/// predictive policy (`None` for the others). `forecasts` is aligned with `input.series`.
pub fn evaluate_predictive(
    input: &EvalInput,
    forecasts: &[Option<PolicyForecast>],
) -> (Decision, Vec<Option<Outlook>>) {
    let mut d = evaluate(input);
    let w = input.workers;
    let now = input.now;
    let mut outlooks: Vec<Option<Outlook>> = vec![None; input.series.len()];
    let mut wishes: Vec<Wish> = Vec::new();
    let mut holds: Vec<String> = Vec::new();
    // workers that a scale-in would leave
    let after_in = (d.direction == Direction::In).then_some(d.desired_workers);

    for (i, s) in input.series.iter().enumerate() {
        let p = &s.policy;
        if !p.predictive || p.validate().is_err() {
            continue;
        }
        let Some(Some(fc)) = forecasts.get(i) else {
            continue;
        };
        let lead = fc.lead.secs.max(0.0);
        let model = match &fc.model {
            Ok(m) => m,
            Err(why) => {
                outlooks[i] = Some(Outlook {
                    forecast: None,
                    horizon: lead,
                    model_error: None,
                    relative_error: None,
                    crosses_in: None,
                    cycle_period: None,
                    effect: Effect::None,
                    note: why.to_string(),
                });
                continue;
            }
        };
        let level = trigger(p);
        let step = scan_step(lead);
        // the coordinator counts as a data node when the latest sample says it holds shards
        let latest = s.points.last().copied().unwrap_or(Point {
            workers: w,
            ..Point::default()
        });
        let (_, coordinator) = latest.data_nodes_and_coordinator();
        let unit = |load: f64| per_node(p.metric, load, w, coordinator);
        let as_load = |value: f64| {
            if spreads_over_workers(p.metric) {
                value * f64::from(w.saturating_add(coordinator).max(1))
            } else {
                value
            }
        };
        let at_lead = model.predict(now + lead);
        let crosses = model
            .first_crossing(as_load(level), now, now + scan_secs(lead), step)
            .map(|t| t - now);
        let mut note = match crosses {
            Some(c) if c <= 0.0 => format!("forecast above {} now", num(level)),
            Some(c) => format!("forecast to cross {} in {}", num(level), format_duration(c)),
            None => format!(
                "forecast {:.1} in {}, below {} for the next {}",
                unit(at_lead),
                format_duration(lead),
                num(level),
                format_duration(scan_secs(lead))
            ),
        };
        note.push_str(&format!("; {} ({})", fc.lead.describe(), model.describe()));
        let mut effect = Effect::None;

        if crosses.is_some_and(|c| c <= lead) {
            let peak = model.peak(now, now + lead, step);
            let wanted = match p.kind {
                PolicyKind::Threshold { .. } => w.saturating_add(p.step),
                PolicyKind::Target { .. } if spreads_over_workers(p.metric) => {
                    // the fewest data nodes that keep the forecast peak inside the band; the
                    // coordinator stays one of them
                    let need =
                        ((peak / level - 1e-9).ceil().max(0.0) as u32).saturating_sub(coordinator);
                    need.max(w.saturating_add(1)).min(w.saturating_add(p.step))
                }
                // a metric that does not spread: one step, as a threshold would
                PolicyKind::Target { .. } => w.saturating_add(p.step),
            }
            .min(p.max_workers);
            // target tracking: the scale-out cooldown does not block (the forecast is judged on
            // the current workers, so the last scale-out's capacity is counted)
            let cd = match p.kind {
                PolicyKind::Threshold { .. } => cooldown_out_left(input, p),
                PolicyKind::Target { .. } => 0.0,
            };
            if wanted <= w {
                note.push_str(&format!("; at max_workers ({})", p.max_workers));
            } else if cd > 0.0 {
                note.push_str(&format!(
                    "; scale-out cooldown: {} left",
                    format_duration(cd)
                ));
            } else {
                effect = Effect::ScaleOut;
                wishes.push(Wish {
                    policy: i,
                    desired: wanted,
                    reason: format!(
                        "{} {}: {note}: scale out {w} -> {wanted} ahead of it",
                        p.metric, p.aggregate
                    ),
                });
            }
        } else if let Some(left) = after_in {
            let horizon = hold_horizon(p, lead);
            // removing capacity is the costly mistake: the forecast's own error counts against it
            let peak = model.peak(now, now + horizon, step) + model.mae;
            let on_left = per_node(p.metric, peak, left, coordinator);
            if on_left > level {
                effect = Effect::HoldScaleIn;
                holds.push(format!(
                    "{}: forecast {:.1} on {left} workers within {}, above {}",
                    p.name,
                    on_left,
                    format_duration(horizon),
                    num(level)
                ));
            }
        }
        outlooks[i] = Some(Outlook {
            forecast: Some(unit(at_lead)),
            horizon: lead,
            model_error: Some(unit(model.mae)),
            relative_error: Some(model.relative_error),
            crosses_in: crosses,
            cycle_period: model.cycle.as_ref().map(|c| c.found.period),
            effect,
            note,
        });
    }

    // the cluster-wide guards of evaluate() hold whatever the forecast says
    let guarded = !now.is_finite()
        || input.operation_running
        || input.paused_until.is_some_and(|u| u > now)
        || input.series.is_empty();
    if guarded {
        return (d, outlooks);
    }
    if !wishes.is_empty() {
        for wish in &wishes {
            let ev = &mut d.policies[wish.policy];
            if ev.direction != Direction::Out || ev.desired_workers < wish.desired {
                ev.direction = Direction::Out;
                ev.desired_workers = wish.desired;
            }
            ev.reasons.push(wish.reason.clone());
        }
        let best = wishes.iter().map(|x| x.desired).max().unwrap_or(w);
        let reasons: Vec<String> = wishes
            .iter()
            .map(|x| format!("{}: {}", input.series[x.policy].policy.name, x.reason))
            .collect();
        if d.direction == Direction::Out {
            d.desired_workers = d.desired_workers.max(best);
            d.reasons.extend(reasons);
        } else {
            d.direction = Direction::Out;
            d.desired_workers = best;
            d.reasons = reasons;
        }
        d.step = d.desired_workers.abs_diff(w);
        return (d, outlooks);
    }
    if d.direction == Direction::In && !holds.is_empty() {
        let mut reasons = vec![format!(
            "no scale-in: a rise is forecast: {}",
            holds.join(", ")
        )];
        reasons.append(&mut d.reasons);
        for (ev, o) in d.policies.iter_mut().zip(&outlooks) {
            if let Some(o) = o.as_ref().filter(|o| o.effect == Effect::HoldScaleIn) {
                ev.reasons.push(format!("scale-in held back: {}", o.note));
            }
        }
        d.direction = Direction::Hold;
        d.desired_workers = w;
        d.step = 0;
        d.reasons = reasons;
    }
    (d, outlooks)
}

#[cfg(test)]
mod tests;
