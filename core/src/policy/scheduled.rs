//! Schedules applied to the engine's decision: the bounds in force
//! ([`crate::schedule::effective_bounds`]) clamp the desired workers. The schedule module knows
//! nothing of policies; this is where the two meet (the tick, explain(), backtest() and the
//! replay simulator all apply schedules through [`apply`]).

use super::{Decision, Direction, EvalInput, Policy};
use crate::schedule::{effective_bounds, Bounds, CompiledSchedule, Effect};

/// The bounds of a set of policies combined as the engine combines their decisions (the largest
/// desired size wins): the highest min_workers and the highest max_workers.
pub fn policy_bounds<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Bounds {
    policies.into_iter().fold(
        Bounds {
            min_workers: 0,
            max_workers: 0,
        },
        |b, p| Bounds {
            min_workers: b.min_workers.max(p.min_workers),
            max_workers: b.max_workers.max(p.max_workers),
        },
    )
}

/// Applies `effect` to the engine's decision for `input`: a desired size outside the bounds in
/// force (a hold counts as the current size) is clamped and the direction follows the clamped
/// size. An operation running or a pause keeps the hold. The reasons get the schedule's line, or
/// the clamp's ("2 -> 6 workers: schedule ..."). Returns whether the decision changed.
pub fn apply(effect: &Effect, d: &mut Decision, input: &EvalInput) -> bool {
    let Some(line) = effect.explain() else {
        return false;
    };
    let blocked = input.operation_running
        || input.paused_until.is_some_and(|u| u > input.now)
        || !input.now.is_finite();
    let wanted = match d.direction {
        Direction::Hold => input.workers,
        _ => d.desired_workers,
    };
    match effect.apply(wanted) {
        (n, Some(why)) if !blocked => {
            d.desired_workers = n;
            d.direction = match n.cmp(&input.workers) {
                std::cmp::Ordering::Greater => Direction::Out,
                std::cmp::Ordering::Less => Direction::In,
                std::cmp::Ordering::Equal => Direction::Hold,
            };
            d.step = n.abs_diff(input.workers);
            d.reasons.push(why);
            true
        }
        _ => {
            d.reasons.push(line);
            false
        }
    }
}

/// The schedules at `input.now` applied to the decision for `policies` (nothing when there are
/// no schedules); returns the effect evaluated.
pub fn apply_schedules(
    schedules: &[CompiledSchedule],
    policies: &[Policy],
    d: &mut Decision,
    input: &EvalInput,
) -> Option<Effect> {
    if schedules.is_empty() {
        return None;
    }
    let effect = effective_bounds(policy_bounds(policies), schedules, input.now);
    apply(&effect, d, input);
    Some(effect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{evaluate, Metric, Point, PolicySeries};
    use crate::schedule::Schedule;

    const MIDNIGHT: f64 = 1_700_006_400.0; // 2023-11-15 00:00 UTC

    fn schedule(min: Option<u32>, max: Option<u32>) -> CompiledSchedule {
        Schedule {
            name: "s".into(),
            cron: "0 0 * * *".into(),
            min_workers: min,
            max_workers: max,
            time_zone: "UTC".into(),
            duration: 3600.0,
        }
        .compile()
        .unwrap()
    }

    fn input(workers: u32, value: f64, running: bool) -> (EvalInput, Policy) {
        let p = Policy::threshold("p", Metric::Cpu, 80.0, 25.0);
        let now = MIDNIGHT + 600.0;
        let points = (0..200)
            .map(|i| Point {
                at: now - f64::from(i) * 5.0,
                value: Some(value),
                workers,
                unreachable: 0,
                data_nodes: 0,
            })
            .rev()
            .collect();
        (
            EvalInput {
                now,
                sample_interval: 5.0,
                workers,
                operation_running: running,
                last_scale_out_finished: None,
                last_scale_in_finished: None,
                paused_until: None,
                series: vec![PolicySeries {
                    policy: p.clone(),
                    points,
                }],
                single_node: Default::default(),
            },
            p,
        )
    }

    #[test]
    fn min_workers_raises_a_hold_to_a_scale_out() {
        let (inp, p) = input(2, 50.0, false);
        let mut d = evaluate(&inp);
        assert_eq!(d.direction, Direction::Hold);
        let e = apply_schedules(&[schedule(Some(6), None)], &[p], &mut d, &inp).unwrap();
        assert_eq!(e.bounds.min_workers, 6);
        assert_eq!(
            (d.direction, d.desired_workers, d.step),
            (Direction::Out, 6, 4)
        );
        assert!(
            d.reasons
                .iter()
                .any(|r| r.starts_with("2 -> 6 workers: schedule 's'")),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn max_workers_lowers_a_scale_out() {
        let (inp, p) = input(3, 95.0, false);
        let mut d = evaluate(&inp);
        assert_eq!(d.direction, Direction::Out);
        apply_schedules(&[schedule(None, Some(3))], &[p], &mut d, &inp);
        assert_eq!((d.direction, d.desired_workers), (Direction::Hold, 3));
        assert!(d
            .reasons
            .iter()
            .any(|r| r.contains("lowers max_workers to 3")));
    }

    #[test]
    fn an_operation_running_keeps_the_hold_and_says_which_schedule_applies() {
        let (inp, p) = input(2, 50.0, true);
        let mut d = evaluate(&inp);
        apply_schedules(&[schedule(Some(6), None)], &[p], &mut d, &inp);
        assert_eq!(d.direction, Direction::Hold);
        assert!(d
            .reasons
            .iter()
            .any(|r| r.contains("raises min_workers to 6")));
    }

    #[test]
    fn no_schedule_applying_changes_nothing() {
        let (mut inp, p) = input(2, 50.0, false);
        inp.now = MIDNIGHT + 7200.0;
        for pt in &mut inp.series[0].points {
            pt.at += 6600.0;
        }
        let mut d = evaluate(&inp);
        let before = d.clone();
        let e = apply_schedules(&[schedule(Some(6), None)], &[p], &mut d, &inp).unwrap();
        assert!(e.active.is_empty());
        assert_eq!(d, before);
    }

    #[test]
    fn combined_bounds_are_the_highest() {
        let mut a = Policy::threshold("a", Metric::Cpu, 80.0, 25.0);
        a.min_workers = 3;
        a.max_workers = 8;
        let b = Policy::threshold("b", Metric::Cpu, 80.0, 25.0);
        let bb = policy_bounds([&a, &b]);
        assert_eq!((bb.min_workers, bb.max_workers), (3, 16));
    }
}
