//! Property tests of the policy engine.

use proptest::prelude::*;

use super::tests::{constant, input, IV, NOW};
use super::*;

/// Windows, cooldowns, bounds and step; the kind is filled in by the caller.
fn arb_common() -> impl Strategy<Value = (f64, f64, f64, f64, u32, u32, u32)> {
    (
        0.0..400.0f64,
        0.0..1200.0f64,
        0.0..1200.0f64,
        0.0..1200.0f64,
        0u32..6,
        0u32..15,
        1u32..6,
    )
        .prop_map(|(so, si, co, ci, min, span, step)| {
            (so, si, co, ci, min, (min + span).max(1), step)
        })
}

fn build(kind: PolicyKind, c: (f64, f64, f64, f64, u32, u32, u32)) -> Policy {
    let (so, si, co, ci, min, max, step) = c;
    Policy {
        name: "p".into(),
        metric: Metric::Cpu,
        aggregate: Aggregate::Avg,
        kind,
        scale_out_for: so,
        scale_in_for: si,
        cooldown_out: co,
        cooldown_in: ci,
        min_workers: min,
        max_workers: max,
        step,
        predictive: false,
    }
}

fn arb_threshold() -> impl Strategy<Value = Policy> {
    (0.0..90.0f64, 1.0..50.0f64, arb_common()).prop_map(|(below, width, c)| {
        build(
            PolicyKind::Threshold {
                scale_in_below: below,
                scale_out_above: (below + width).min(100.0),
            },
            c,
        )
    })
}

fn arb_target() -> impl Strategy<Value = Policy> {
    (1.0..100.0f64, 0.0..0.5f64, arb_common())
        .prop_map(|(target, tolerance, c)| build(PolicyKind::Target { target, tolerance }, c))
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    prop_oneof![arb_threshold(), arb_target()]
}

/// Finished-operation times relative to NOW (None = never).
fn arb_history() -> impl Strategy<Value = (Option<f64>, Option<f64>)> {
    (
        proptest::option::of(0.0..2000.0f64),
        proptest::option::of(0.0..2000.0f64),
    )
        .prop_map(|(o, i)| (o.map(|x| NOW - x), i.map(|x| NOW - x)))
}

/// Per sample: value (None = missing), unreachable, extra delay before it (gaps).
fn arb_points(workers: u32) -> impl Strategy<Value = Vec<Point>> {
    proptest::collection::vec(
        (
            proptest::option::weighted(0.97, 0.0..100.0f64),
            proptest::bool::weighted(0.03),
            proptest::bool::weighted(0.02),
        ),
        1..300,
    )
    .prop_map(move |raw| {
        let mut at = NOW;
        let mut pts: Vec<Point> = raw
            .iter()
            .rev()
            .map(|&(value, unreachable, gap)| {
                let p = Point {
                    at,
                    value,
                    workers,
                    unreachable: u32::from(unreachable),
                    data_nodes: 0,
                };
                at -= if gap { 7.0 * IV } else { IV };
                p
            })
            .collect();
        pts.reverse();
        pts
    })
}

fn eval_one(
    p: Policy,
    pts: Vec<Point>,
    workers: u32,
    hist: (Option<f64>, Option<f64>),
) -> Decision {
    let mut i = input(
        workers,
        vec![PolicySeries {
            policy: p,
            points: pts,
        }],
    );
    i.last_scale_out_finished = hist.0;
    i.last_scale_in_finished = hist.1;
    evaluate(&i)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A metric oscillating strictly inside (scale_in_below, scale_out_above) never acts.
    #[test]
    fn inside_the_band_never_acts(
        p in arb_threshold(),
        fracs in proptest::collection::vec(0.001..0.999f64, 1..300),
        w_off in 0u32..20,
        hist in arb_history(),
    ) {
        let PolicyKind::Threshold { scale_out_above, scale_in_below } = p.kind else { unreachable!() };
        let workers = p.min_workers + w_off % (p.max_workers - p.min_workers + 1);
        let values: Vec<Option<f64>> = fracs
            .iter()
            .map(|f| Some(scale_in_below + f * (scale_out_above - scale_in_below)))
            .collect();
        let pts = super::tests::points(&values, workers);
        let d = eval_one(p, pts, workers, hist);
        prop_assert_eq!(d.direction, Direction::Hold, "{:?}", d.reasons);
        prop_assert_eq!(d.desired_workers, workers);
    }

    /// For a constant series, a higher value never gives a smaller desired size.
    #[test]
    fn monotonic_in_the_metric(
        p in arb_policy(),
        a in 0.0..100.0f64,
        b in 0.0..100.0f64,
        secs in 0.0..1500.0f64,
        w_off in 0u32..20,
        hist in arb_history(),
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let workers = p.min_workers + w_off % (p.max_workers - p.min_workers + 1);
        let d_lo = eval_one(p.clone(), constant(secs, lo, workers), workers, hist);
        let d_hi = eval_one(p, constant(secs, hi, workers), workers, hist);
        prop_assert!(
            d_lo.desired_workers <= d_hi.desired_workers,
            "{} -> {} ({:?}) but {} -> {} ({:?})",
            lo, d_lo.desired_workers, d_lo.reasons, hi, d_hi.desired_workers, d_hi.reasons
        );
    }

    /// Starting within bounds, the desired size stays within [min_workers, max_workers].
    #[test]
    fn desired_stays_within_bounds(
        policies in proptest::collection::vec(arb_policy(), 1..4),
        min in 0u32..6,
        span in 0u32..12,
        w_off in 0u32..20,
        seeds in proptest::collection::vec(arb_points(0), 3),
        hist in arb_history(),
    ) {
        let max = (min + span).max(1);
        let workers = min + w_off % (max - min + 1);
        let series: Vec<PolicySeries> = policies
            .into_iter()
            .enumerate()
            .map(|(k, mut policy)| {
                policy.name = format!("p{k}");
                policy.min_workers = min;
                policy.max_workers = max;
                let points = seeds[k % seeds.len()]
                    .iter()
                    .map(|pt| Point { workers, ..*pt })
                    .collect();
                PolicySeries { policy, points }
            })
            .collect();
        let mut i = input(workers, series);
        i.last_scale_out_finished = hist.0;
        i.last_scale_in_finished = hist.1;
        let d = evaluate(&i);
        prop_assert!(
            (min..=max).contains(&d.desired_workers),
            "{} not in {}..={}: {:?}", d.desired_workers, min, max, d.reasons
        );
        prop_assert_eq!(d.step, d.desired_workers.abs_diff(workers));
    }

    /// No scale-in when a point in the scale-in window is missing, unreachable or after a gap.
    #[test]
    fn trouble_in_the_window_blocks_scale_in(
        p in arb_policy(),
        value in 0.0..30.0f64,
        extra in 0.0..600.0f64,
        pos in 0.0..1.0f64,
        defect in 0u8..3,
        workers in 1u32..25,
    ) {
        // Quiet, low history longer than the window.
        let mut pts = constant(p.scale_in_for + IV * 4.0 + extra, value, workers);
        let ws = NOW - p.scale_in_for;
        let first = pts.iter().position(|pt| pt.at >= ws).unwrap();
        let k = first + ((pts.len() - first) as f64 * pos) as usize;
        let k = k.min(pts.len() - 1).max(1);
        match defect {
            0 => pts[k].value = None,
            1 => pts[k].unreachable = 1,
            _ => {
                for pt in &mut pts[..k] {
                    pt.at -= 3.0 * IV + 1.0;
                }
            }
        }
        let d = eval_one(p, pts, workers, (None, None));
        prop_assert_ne!(d.direction, Direction::In, "{:?}", d.reasons);
    }

    /// An action never starts inside its cooldown, except a target-tracking scale-out, which the
    /// scale-out cooldown does not block (AWS target tracking): it then reads only samples taken
    /// since the last scale-out finished, so the latest one is on the capacity it added.
    #[test]
    fn cooldowns_are_respected(
        p in arb_policy(),
        seed in arb_points(0),
        workers in 1u32..25,
        hist in arb_history(),
        level in 0.0..100.0f64,
        secs in 0.0..1500.0f64,
        use_constant in proptest::bool::ANY,
    ) {
        let pts = if use_constant {
            constant(secs, level, workers)
        } else {
            seed.into_iter().map(|pt| Point { workers, ..pt }).collect()
        };
        let (co, ci) = (p.cooldown_out, p.cooldown_in);
        let is_target = matches!(p.kind, PolicyKind::Target { .. });
        let latest = pts.iter().map(|pt| pt.at).fold(f64::NEG_INFINITY, f64::max);
        let d = eval_one(p, pts, workers, hist);
        let left = |t: Option<f64>, c: f64| t.map_or(0.0, |t| t + c - NOW);
        match d.direction {
            Direction::Out if is_target && left(hist.0, co) > 0.0 => {
                prop_assert!(latest >= hist.0.unwrap() - 1e-6, "{:?}", d.reasons);
                prop_assert!(
                    d.reasons.iter().any(|r| r.contains("does not block target tracking")),
                    "{:?}",
                    d.reasons
                );
            }
            Direction::Out => prop_assert!(left(hist.0, co) <= 0.0, "{:?}", d.reasons),
            Direction::In => {
                prop_assert!(left(hist.1, ci) <= 0.0, "{:?}", d.reasons);
                prop_assert!(left(hist.0, ci) <= 0.0, "{:?}", d.reasons);
            }
            Direction::Hold => {}
        }
    }

    /// A target-tracking scale-out is sized from the highest recommendation of the last
    /// max(scale_out_for, SIZING_WINDOW) seconds, within the step and max_workers: never below
    /// the latest value's recommendation, never above the window's peak.
    #[test]
    fn target_scale_out_is_sized_from_the_window_peak(
        values in proptest::collection::vec(0.0..100.0f64, 30..60),
        workers in 1u32..12,
        step in 1u32..20,
    ) {
        let mut p = Policy::target("p", Metric::Cpu, 50.0);
        p.scale_out_for = 0.0;
        p.step = step;
        // one worker is allowed: below min_workers the engine scales out to it, whatever the load
        p.min_workers = 1;
        p.max_workers = 40;
        let v: Vec<Option<f64>> = values.iter().copied().map(Some).collect();
        let pts = super::tests::points(&v, workers);
        let d = eval_one(p.clone(), pts, workers, (None, None));
        if d.direction == Direction::Out {
            let need = |x: f64| (f64::from(workers) * x / 50.0 - 1e-9).ceil() as u32;
            let window = (crate::policy::eval::SIZING_WINDOW / IV) as usize + 1;
            let peak = values.iter().rev().take(window).map(|x| need(*x)).max().unwrap();
            let latest = need(*values.last().unwrap());
            let cap = (workers + step).min(p.max_workers);
            prop_assert_eq!(d.desired_workers, peak.min(cap), "{:?}", d.reasons);
            prop_assert!(d.desired_workers >= latest.min(cap));
        }
    }
}
