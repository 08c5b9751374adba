//! Unit tests of the policy engine: types, validation, each rule.

use super::*;

pub(crate) const NOW: f64 = 1_700_000_000.0;
pub(crate) const IV: f64 = 5.0;

/// Points every `IV` seconds, the last one at `NOW`, all taken with `workers` workers.
pub(crate) fn points(values: &[Option<f64>], workers: u32) -> Vec<Point> {
    let n = values.len();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Point {
            at: NOW - IV * (n - 1 - i) as f64,
            value: *v,
            workers,
            unreachable: 0,
            data_nodes: 0,
        })
        .collect()
}

/// `secs` seconds (inclusive of both ends) of a constant value.
pub(crate) fn constant(secs: f64, v: f64, workers: u32) -> Vec<Point> {
    let n = (secs / IV).round() as usize + 1;
    points(&vec![Some(v); n], workers)
}

/// `a` for `secs_a` seconds, then `b` for the last `secs_b` seconds.
fn two_phase(secs_a: f64, a: f64, secs_b: f64, b: f64, workers: u32) -> Vec<Point> {
    let na = (secs_a / IV).round() as usize;
    let nb = (secs_b / IV).round() as usize + 1;
    let mut v = vec![Some(a); na];
    v.extend(vec![Some(b); nb]);
    points(&v, workers)
}

pub(crate) fn input(workers: u32, series: Vec<PolicySeries>) -> EvalInput {
    EvalInput {
        now: NOW,
        sample_interval: IV,
        workers,
        operation_running: false,
        last_scale_out_finished: None,
        last_scale_in_finished: None,
        paused_until: None,
        series,
        single_node: SingleNode::default(),
    }
}

fn cpu() -> Policy {
    Policy::threshold("cpu", Metric::Cpu, 80.0, 25.0)
}

fn tgt() -> Policy {
    Policy::target("cpu_target", Metric::Cpu, 60.0)
}

fn one(policy: Policy, pts: Vec<Point>, workers: u32) -> EvalInput {
    input(
        workers,
        vec![PolicySeries {
            policy,
            points: pts,
        }],
    )
}

fn has(reasons: &[String], needle: &str) -> bool {
    reasons.iter().any(|r| r.contains(needle))
}

#[track_caller]
fn assert_reason(d: &Decision, needle: &str) {
    assert!(
        has(&d.reasons, needle),
        "no reason containing {needle:?} in {:#?}",
        d.reasons
    );
}

// ---------------------------------------------------------------- metric, aggregate, helpers

#[test]
fn metric_names_round_trip() {
    for m in Metric::ALL {
        assert_eq!(Metric::parse(m.as_str()), Ok(m));
        assert_eq!(m.as_str().parse::<Metric>(), Ok(m));
        assert_eq!(m.to_string(), m.as_str());
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, format!("\"{}\"", m.as_str()));
    }
    assert_eq!(Metric::parse(" CPU "), Ok(Metric::Cpu));
    assert_eq!(
        Metric::parse("Active_Connections"),
        Ok(Metric::ActiveConnections)
    );
}

#[test]
fn metric_parse_error_names_argument_and_allowed() {
    let e = Metric::parse("gpu").unwrap_err();
    assert_eq!(e.argument(), "metric");
    assert_eq!(
        e.to_string(),
        "metric (\"gpu\") must be one of cpu, memory, disk, connections, active_connections, \
         commits_per_sec, load1, custom, tps, connection_saturation, replication_lag, \
         mean_statement_ms, cache_miss_ratio"
    );
}

#[test]
fn percent_metrics() {
    let pct: Vec<Metric> = Metric::ALL.into_iter().filter(|m| m.is_percent()).collect();
    assert_eq!(pct, vec![Metric::Cpu, Metric::Memory, Metric::Disk]);
}

#[test]
fn aggregate_names() {
    assert_eq!(Aggregate::parse("avg"), Ok(Aggregate::Avg));
    assert_eq!(Aggregate::parse("MAX"), Ok(Aggregate::Max));
    assert_eq!(Aggregate::Avg.as_str(), "avg");
    assert_eq!(Aggregate::Max.to_string(), "max");
    let e = Aggregate::parse("p99").unwrap_err();
    assert_eq!(e.argument(), "aggregate");
    assert_eq!(e.to_string(), "aggregate (\"p99\") must be avg or max");
}

#[test]
fn aggregate_values() {
    assert_eq!(aggregate(&[10.0, 20.0, 60.0], Aggregate::Avg), Some(30.0));
    assert_eq!(aggregate(&[10.0, 20.0, 60.0], Aggregate::Max), Some(60.0));
    assert_eq!(aggregate(&[], Aggregate::Avg), None);
    assert_eq!(aggregate(&[], Aggregate::Max), None);
    assert_eq!(aggregate(&[f64::NAN, 4.0], Aggregate::Avg), Some(4.0));
    assert_eq!(aggregate(&[f64::NAN, f64::INFINITY], Aggregate::Max), None);
    assert_eq!(aggregate(&[-3.0, -1.0], Aggregate::Max), Some(-1.0));
}

#[test]
fn durations_format() {
    assert_eq!(format_duration(0.0), "0s");
    assert_eq!(format_duration(-5.0), "0s");
    assert_eq!(format_duration(f64::NAN), "0s");
    assert_eq!(format_duration(45.0), "45s");
    assert_eq!(format_duration(59.6), "1m");
    assert_eq!(format_duration(120.0), "2m");
    assert_eq!(format_duration(130.0), "2m10s");
    assert_eq!(format_duration(3600.0), "1h");
    assert_eq!(format_duration(3720.0), "1h2m");
    assert_eq!(format_duration(86_400.0), "1d");
    assert_eq!(format_duration(93_600.0), "1d2h");
}

#[test]
fn numbers_and_epochs_format() {
    assert_eq!(num(80.0), "80");
    assert_eq!(num(80.5), "80.5");
    assert_eq!(num(0.1 + 0.2), "0.3");
    assert_eq!(num(-1.0), "-1");
    assert_eq!(format_epoch(0.0), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_epoch(NOW), "2023-11-14 22:13:20 UTC");
    assert_eq!(format_epoch(951_782_400.0), "2000-02-29 00:00:00 UTC");
}

#[test]
fn threshold_or_target_strings() {
    assert_eq!(cpu().threshold_or_target(), "> 80 / < 25");
    assert_eq!(tgt().threshold_or_target(), "target 60 ±10%");
    let mut p = Policy::threshold("c", Metric::Load1, 2.5, 0.75);
    assert_eq!(p.threshold_or_target(), "> 2.5 / < 0.75");
    p.kind = PolicyKind::Target {
        target: 1000.0,
        tolerance: 0.05,
    };
    assert_eq!(p.threshold_or_target(), "target 1000 ±5%");
}

#[test]
fn policy_serde_round_trip_and_defaults() {
    let p = cpu();
    let json = serde_json::to_string(&p).unwrap();
    let back: Policy = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    let minimal: Policy =
        serde_json::from_str(r#"{"name":"t","metric":"cpu","kind":{"type":"target","target":60}}"#)
            .unwrap();
    assert_eq!(minimal, Policy::target("t", Metric::Cpu, 60.0));
    assert_eq!(minimal.scale_out_for, 120.0);
    assert_eq!(minimal.scale_in_for, 900.0);
    assert_eq!(minimal.cooldown_out, 600.0);
    assert_eq!(minimal.cooldown_in, 600.0);
    assert_eq!(
        (minimal.min_workers, minimal.max_workers, minimal.step),
        (2, 16, 1)
    );
    assert_eq!(minimal.aggregate, Aggregate::Avg);
}

#[test]
fn decision_serializes() {
    let d = evaluate(&one(cpu(), constant(200.0, 90.0, 2), 2));
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["direction"], "out");
    assert_eq!(v["desired_workers"], 3);
    assert_eq!(v["policies"][0]["metric"], "cpu");
    assert_eq!(v["policies"][0]["aggregate"], "avg");
    assert_eq!(v["policies"][0]["threshold_or_target"], "> 80 / < 25");
    let back: Decision = serde_json::from_value(v).unwrap();
    assert_eq!(back, d);
}

// ---------------------------------------------------------------- validation

#[track_caller]
fn invalid(p: &Policy, argument: &str, message: &str) {
    let e = p.validate().expect_err("should be invalid");
    assert_eq!(e.argument(), argument, "{e}");
    assert_eq!(e.to_string(), message);
}

#[test]
fn defaults_are_valid() {
    assert_eq!(cpu().validate(), Ok(()));
    assert_eq!(tgt().validate(), Ok(()));
    for m in Metric::ALL {
        assert_eq!(Policy::threshold("p", m, 80.0, 25.0).validate(), Ok(()));
    }
}

#[test]
fn names() {
    let msg = |n: &str| {
        format!("name ({n:?}) must be 1 to 63 characters of a-z, 0-9 and _, starting with a letter")
    };
    for bad in ["", "Cpu", "1cpu", "_cpu", "cpu-high", "cpu high", "cpü"] {
        let mut p = cpu();
        p.name = bad.into();
        invalid(&p, "name", &msg(bad));
    }
    let mut p = cpu();
    p.name = format!("a{}", "b".repeat(62));
    assert_eq!(p.validate(), Ok(()));
    p.name.push('c');
    invalid(&p, "name", &msg(&p.name.clone()));
    p.name = "cpu_2".into();
    assert_eq!(p.validate(), Ok(()));
}

#[test]
fn threshold_order() {
    invalid(
        &Policy::threshold("p", Metric::Cpu, 80.0, 90.0),
        "scale_in_below",
        "scale_in_below (90) must be less than scale_out_above (80)",
    );
    invalid(
        &Policy::threshold("p", Metric::Connections, 50.0, 50.0),
        "scale_in_below",
        "scale_in_below (50) must be less than scale_out_above (50)",
    );
}

#[test]
fn percent_thresholds() {
    invalid(
        &Policy::threshold("p", Metric::Cpu, 120.0, 25.0),
        "scale_out_above",
        "scale_out_above (120) must be between 0 and 100 for the percent metric cpu",
    );
    invalid(
        &Policy::threshold("p", Metric::Disk, 90.0, -5.0),
        "scale_in_below",
        "scale_in_below (-5) must be between 0 and 100 for the percent metric disk",
    );
    invalid(
        &Policy::target("p", Metric::Memory, 150.0),
        "target",
        "target (150) must be between 0 and 100 for the percent metric memory",
    );
    assert_eq!(
        Policy::threshold("p", Metric::Connections, 5000.0, 100.0).validate(),
        Ok(())
    );
    assert_eq!(
        Policy::target("p", Metric::CommitsPerSec, 15000.0).validate(),
        Ok(())
    );
    assert_eq!(
        Policy::threshold("p", Metric::Custom, 0.5, -0.5).validate(),
        Ok(())
    );
}

#[test]
fn non_finite_numbers() {
    invalid(
        &Policy::threshold("p", Metric::Cpu, f64::NAN, 25.0),
        "scale_out_above",
        "scale_out_above (NaN) must be a finite number",
    );
    invalid(
        &Policy::threshold("p", Metric::Load1, 8.0, f64::NEG_INFINITY),
        "scale_in_below",
        "scale_in_below (-inf) must be a finite number",
    );
    invalid(
        &Policy::target("p", Metric::Load1, f64::INFINITY),
        "target",
        "target (inf) must be a finite number",
    );
    let mut p = cpu();
    p.cooldown_in = f64::NAN;
    invalid(
        &p,
        "cooldown_in",
        "cooldown_in (NaN) must be a finite number",
    );
    let mut p = tgt();
    p.kind = PolicyKind::Target {
        target: 60.0,
        tolerance: f64::NAN,
    };
    invalid(&p, "tolerance", "tolerance (NaN) must be a finite number");
}

#[test]
fn targets_and_tolerances() {
    invalid(
        &Policy::target("p", Metric::Cpu, 0.0),
        "target",
        "target (0) must be > 0",
    );
    invalid(
        &Policy::target("p", Metric::Load1, -2.0),
        "target",
        "target (-2) must be > 0",
    );
    for (tol, ok) in [
        (1.5, false),
        (-0.1, false),
        (0.0, true),
        (1.0, true),
        (0.25, true),
    ] {
        let mut p = tgt();
        p.kind = PolicyKind::Target {
            target: 60.0,
            tolerance: tol,
        };
        if ok {
            assert_eq!(p.validate(), Ok(()));
        } else {
            invalid(
                &p,
                "tolerance",
                &format!("tolerance ({tol}) must be between 0 and 1"),
            );
        }
    }
}

type Setter = fn(&mut Policy, f64);

#[test]
fn durations_must_not_be_negative() {
    let setters: [(&str, Setter); 4] = [
        ("scale_out_for", |p, v| p.scale_out_for = v),
        ("scale_in_for", |p, v| p.scale_in_for = v),
        ("cooldown_out", |p, v| p.cooldown_out = v),
        ("cooldown_in", |p, v| p.cooldown_in = v),
    ];
    for (arg, set) in setters {
        let mut p = cpu();
        set(&mut p, -1.0);
        invalid(&p, arg, &format!("{arg} (-1) must be >= 0 seconds"));
        set(&mut p, 0.0);
        assert_eq!(p.validate(), Ok(()));
    }
}

#[test]
fn worker_bounds_and_step() {
    let mut p = cpu();
    p.min_workers = 5;
    p.max_workers = 3;
    invalid(
        &p,
        "min_workers",
        "min_workers (5) must not exceed max_workers (3)",
    );
    // 0 workers is the coordinator alone (a single node)
    p.min_workers = 0;
    assert_eq!(p.validate(), Ok(()));
    p.min_workers = 1;
    p.max_workers = 0;
    invalid(
        &p,
        "max_workers",
        "max_workers (0) must be between 1 and 1000",
    );
    p.max_workers = 1001;
    invalid(
        &p,
        "max_workers",
        "max_workers (1001) must be between 1 and 1000",
    );
    p.max_workers = 1;
    assert_eq!(p.validate(), Ok(()));
    p.step = 0;
    invalid(&p, "step", "step (0) must be between 1 and 100");
    p.step = 101;
    invalid(&p, "step", "step (101) must be between 1 and 100");
    p.step = 100;
    assert_eq!(p.validate(), Ok(()));
}

// ---------------------------------------------------------------- threshold rules

#[test]
fn scale_out_after_holding_for_the_window() {
    let d = evaluate(&one(cpu(), two_phase(300.0, 50.0, 130.0, 87.0, 2), 2));
    assert_eq!(d.direction, Direction::Out);
    assert_eq!((d.from_workers, d.desired_workers, d.step), (2, 3, 1));
    assert_reason(&d, "cpu: cpu avg 87.0 > 80 for 2m10s");
    assert_reason(&d, "scale out 2 -> 3");
    let pe = &d.policies[0];
    assert_eq!(pe.held_for, 130.0);
    assert_eq!(pe.current, Some(87.0));
    assert_eq!(pe.direction, Direction::Out);
    assert_eq!(pe.desired_workers, 3);
}

#[test]
fn scale_out_waits_for_the_window() {
    let d = evaluate(&one(cpu(), two_phase(300.0, 50.0, 60.0, 90.0, 2), 2));
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.desired_workers, 2);
    assert_reason(&d, "cpu avg 90.0 > 80 for 1m, need 2m");
    assert_eq!(d.policies[0].held_for, 60.0);
}

#[test]
fn scale_out_window_allows_one_interval_of_slack() {
    // The run starts 115 s ago: within one interval of the 120 s window.
    let d = evaluate(&one(cpu(), two_phase(300.0, 50.0, 115.0, 90.0, 2), 2));
    assert_eq!(d.direction, Direction::Out);
    let d = evaluate(&one(cpu(), two_phase(300.0, 50.0, 110.0, 90.0, 2), 2));
    assert_eq!(d.direction, Direction::Hold);
}

#[test]
fn scale_out_needs_history_covering_the_window() {
    let d = evaluate(&one(cpu(), constant(60.0, 95.0, 2), 2));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "need 2m");
}

#[test]
fn one_dip_resets_the_scale_out_window() {
    let mut pts = constant(200.0, 90.0, 2);
    let n = pts.len();
    pts[n - 10].value = Some(79.0);
    let d = evaluate(&one(cpu(), pts, 2));
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.policies[0].held_for, 40.0);
}

#[test]
fn missing_value_blocks_scale_out() {
    let mut pts = constant(200.0, 90.0, 2);
    let n = pts.len();
    pts[n - 5].value = None;
    assert_eq!(evaluate(&one(cpu(), pts, 2)).direction, Direction::Hold);
}

#[test]
fn gap_blocks_scale_out() {
    let mut pts = constant(200.0, 90.0, 2);
    let n = pts.len();
    pts.drain(n - 10..n - 5); // a 30 s gap
    assert_eq!(evaluate(&one(cpu(), pts, 2)).direction, Direction::Hold);
}

#[test]
fn unreachable_node_does_not_block_scale_out() {
    let mut pts = constant(200.0, 90.0, 2);
    for p in &mut pts {
        p.unreachable = 1;
    }
    assert_eq!(evaluate(&one(cpu(), pts, 2)).direction, Direction::Out);
}

#[test]
fn scale_in_after_holding_for_the_window() {
    let d = evaluate(&one(cpu(), constant(960.0, 20.0, 3), 3));
    assert_eq!(d.direction, Direction::In);
    assert_eq!((d.from_workers, d.desired_workers, d.step), (3, 2, 1));
    assert_reason(&d, "cpu: cpu avg 20.0 < 25 for 16m");
    assert_reason(&d, "scale in 3 -> 2");
    assert_eq!(d.policies[0].held_for, 960.0);
}

#[test]
fn scale_in_waits_for_the_window() {
    let d = evaluate(&one(cpu(), two_phase(600.0, 50.0, 600.0, 20.0, 3), 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "cpu avg 20.0 < 25 for 10m, need 15m");
}

#[test]
fn short_history_blocks_scale_in() {
    let d = evaluate(&one(cpu(), constant(180.0, 10.0, 3), 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no scale-in: only 3m of history, need 15m");
}

#[test]
fn missing_value_blocks_scale_in() {
    let mut pts = constant(1200.0, 10.0, 3);
    let n = pts.len();
    pts[n - 100].value = None;
    let d = evaluate(&one(cpu(), pts, 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no scale-in: 1 missing value in window");
}

#[test]
fn nan_value_counts_as_missing() {
    let mut pts = constant(1200.0, 10.0, 3);
    let n = pts.len();
    pts[n - 3].value = Some(f64::NAN);
    let d = evaluate(&one(cpu(), pts, 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "missing value in window");
}

#[test]
fn unreachable_node_blocks_scale_in() {
    let mut pts = constant(1200.0, 10.0, 3);
    let n = pts.len();
    pts[n - 50].unreachable = 1;
    let d = evaluate(&one(cpu(), pts, 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no scale-in: node unreachable in window");
}

#[test]
fn gap_blocks_scale_in() {
    let mut pts = constant(1200.0, 10.0, 3);
    let n = pts.len();
    // Shift the older half back by 42 s: a 47 s gap between two samples in the window.
    for p in &mut pts[..n - 60] {
        p.at -= 42.0;
    }
    let d = evaluate(&one(cpu(), pts, 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no scale-in: sample gap of 47s");
}

#[test]
fn trouble_before_the_window_does_not_block_scale_in() {
    let mut pts = constant(1500.0, 10.0, 3);
    pts[0].value = None;
    pts[1].unreachable = 2;
    pts[2].at -= 100.0;
    let d = evaluate(&one(cpu(), pts, 3));
    assert_eq!(d.direction, Direction::In);
}

#[test]
fn between_thresholds_holds() {
    let d = evaluate(&one(cpu(), constant(1200.0, 50.0, 3), 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "cpu avg 50.0 between 25 and 80");
    assert_eq!(d.policies[0].held_for, 0.0);
}

#[test]
fn stale_data_holds() {
    let mut pts = constant(1200.0, 95.0, 3);
    for p in &mut pts {
        p.at -= 47.0;
    }
    let d = evaluate(&one(cpu(), pts, 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "latest sample is 47s old (limit 15s)");
}

#[test]
fn no_samples_holds() {
    let d = evaluate(&one(cpu(), vec![], 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no samples");
}

#[test]
fn missing_latest_value_holds() {
    let mut pts = constant(1200.0, 95.0, 3);
    pts.last_mut().unwrap().value = None;
    let d = evaluate(&one(cpu(), pts, 3));
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.policies[0].current, None);
    assert_reason(&d, "no current value");
}

#[test]
fn unsorted_points_are_sorted() {
    let mut pts = constant(200.0, 90.0, 2);
    pts.reverse();
    assert_eq!(evaluate(&one(cpu(), pts, 2)).direction, Direction::Out);
}

// ---------------------------------------------------------------- bounds and steps

#[test]
fn step_sets_the_size_of_a_change() {
    let mut p = cpu();
    p.step = 3;
    let d = evaluate(&one(p.clone(), constant(200.0, 90.0, 2), 2));
    assert_eq!(
        (d.direction, d.desired_workers, d.step),
        (Direction::Out, 5, 3)
    );
    let d = evaluate(&one(p.clone(), constant(200.0, 90.0, 15), 15));
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 16));
    let d = evaluate(&one(p.clone(), constant(1000.0, 10.0, 8), 8));
    assert_eq!(
        (d.direction, d.desired_workers, d.step),
        (Direction::In, 5, 3)
    );
    let d = evaluate(&one(p, constant(1000.0, 10.0, 3), 3));
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 2));
}

#[test]
fn at_max_workers_holds() {
    let d = evaluate(&one(cpu(), constant(200.0, 99.0, 16), 16));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "at max_workers (16)");
}

#[test]
fn at_min_workers_holds() {
    let d = evaluate(&one(cpu(), constant(1200.0, 5.0, 2), 2));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "at min_workers (2)");
}

#[test]
fn below_min_workers_scales_out_even_without_data() {
    let d = evaluate(&one(cpu(), vec![], 1));
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 2));
    assert_reason(&d, "1 workers is below min_workers (2)");
    let mut p = cpu();
    p.min_workers = 5;
    p.step = 2;
    let d = evaluate(&one(p, constant(1200.0, 5.0, 1), 1));
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 3));
}

#[test]
fn below_min_workers_respects_cooldown() {
    let mut i = one(cpu(), vec![], 1);
    i.last_scale_out_finished = Some(NOW - 60.0);
    assert_eq!(evaluate(&i).direction, Direction::Hold);
}

#[test]
fn above_max_workers_scales_in_with_good_data_only() {
    let mut p = cpu();
    p.max_workers = 16;
    let d = evaluate(&one(p.clone(), constant(1000.0, 95.0, 18), 18));
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 17));
    assert_reason(&d, "18 workers is above max_workers (16)");
    p.step = 5;
    let d = evaluate(&one(p.clone(), constant(1000.0, 50.0, 18), 18));
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 16));
    let mut pts = constant(1000.0, 50.0, 18);
    pts[150].unreachable = 1;
    let d = evaluate(&one(p.clone(), pts, 18));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "node unreachable");
    let d = evaluate(&one(p, constant(100.0, 50.0, 18), 18));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "only 1m40s of history");
}

// ---------------------------------------------------------------- cooldowns

#[test]
fn scale_out_cooldown() {
    let mut i = one(cpu(), constant(200.0, 90.0, 3), 3);
    i.last_scale_out_finished = Some(NOW - 300.0);
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.policies[0].cooldown_left, 300.0);
    assert_reason(&d, "scale-out cooldown: 5m left");
    i.last_scale_out_finished = Some(NOW - 600.0);
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Out);
    assert_eq!(d.policies[0].cooldown_left, 0.0);
}

#[test]
fn scale_in_cooldown_after_scale_in() {
    let mut i = one(cpu(), constant(1200.0, 10.0, 4), 4);
    i.last_scale_in_finished = Some(NOW - 500.0);
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.policies[0].cooldown_left, 100.0);
    assert_reason(&d, "scale-in cooldown after scale-in: 1m40s left");
    i.last_scale_in_finished = Some(NOW - 601.0);
    assert_eq!(evaluate(&i).direction, Direction::In);
}

#[test]
fn scale_in_waits_for_cooldown_after_scale_out() {
    let mut i = one(cpu(), constant(1200.0, 10.0, 4), 4);
    i.last_scale_out_finished = Some(NOW - 200.0);
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "scale-in cooldown after scale-out: 6m40s left");
}

#[test]
fn scale_in_cooldown_does_not_block_scale_out() {
    let mut i = one(cpu(), constant(200.0, 90.0, 3), 3);
    i.last_scale_in_finished = Some(NOW - 10.0);
    assert_eq!(evaluate(&i).direction, Direction::Out);
}

#[test]
fn cooldown_left_when_holding_is_the_larger_one() {
    let mut i = one(cpu(), constant(1200.0, 50.0, 3), 3);
    i.last_scale_out_finished = Some(NOW - 500.0);
    let mut p = cpu();
    p.cooldown_in = 900.0;
    i.series[0].policy = p;
    let d = evaluate(&i);
    assert_eq!(d.policies[0].cooldown_left, 400.0);
}

// ---------------------------------------------------------------- cluster-wide guards

#[test]
fn operation_running_holds() {
    let mut i = one(cpu(), constant(200.0, 95.0, 2), 2);
    i.operation_running = true;
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.reasons, vec!["operation in progress".to_string()]);
    assert_eq!(
        d.policies[0].direction,
        Direction::Out,
        "explain still shows the policy"
    );
}

#[test]
fn pause_holds() {
    let mut i = one(cpu(), constant(200.0, 95.0, 2), 2);
    i.paused_until = Some(NOW + 720.0);
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(
        d.reasons,
        vec!["paused until 2023-11-14 22:25:20 UTC (12m left)".to_string()]
    );
    i.paused_until = Some(NOW - 1.0);
    assert_eq!(evaluate(&i).direction, Direction::Out);
}

#[test]
fn no_policies_holds() {
    let d = evaluate(&input(3, vec![]));
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.reasons, vec!["no policies".to_string()]);
    assert_eq!(d.desired_workers, 3);
}

#[test]
fn invalid_policy_holds() {
    let mut p = cpu();
    p.step = 0;
    let d = evaluate(&one(p, constant(200.0, 95.0, 2), 2));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "invalid policy: step (0) must be between 1 and 100");
}

#[test]
fn invalid_sample_interval_holds() {
    let mut i = one(cpu(), constant(200.0, 95.0, 2), 2);
    i.sample_interval = 0.0;
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "invalid sample_interval (0)");
}

#[test]
fn same_input_same_output() {
    let i = one(cpu(), two_phase(300.0, 50.0, 130.0, 87.0, 2), 2);
    assert_eq!(evaluate(&i), evaluate(&i.clone()));
}

// ---------------------------------------------------------------- target tracking

fn tgt_step(step: u32) -> Policy {
    let mut p = tgt();
    p.step = step;
    p
}

#[test]
fn target_scales_out_on_the_latest_value_without_window() {
    let mut v = vec![Some(50.0); 100];
    v.push(Some(90.0));
    let mut p = tgt_step(4);
    p.scale_out_for = 0.0;
    let d = evaluate(&one(p, points(&v, 4), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 6));
    assert_reason(&d, "cpu avg 90.0 is 50% above target 60: 6 workers needed");
    assert_eq!(d.policies[0].held_for, 0.0);
}

#[test]
fn target_scale_up_stabilization_ignores_short_bursts() {
    // 90% for the last 30 s only: the 2 min window still recommends 4 (50% is within ceil).
    let d = evaluate(&one(tgt_step(4), two_phase(600.0, 50.0, 30.0, 90.0, 4), 4));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(
        &d,
        "no scale-out yet: the last 2m recommend as few as 4 workers",
    );
    let out = &d.policies[0];
    assert_eq!(out.held_for, 30.0);
    // 75% for 2 min then 90%: the lowest recommendation of the window decides that it scales
    // out (5 > 4 workers); the size is the window's peak (90% on 4 workers needs 6).
    let d = evaluate(&one(tgt_step(4), two_phase(600.0, 75.0, 30.0, 90.0, 4), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 6));
    assert_reason(&d, "lowest recommendation over the last 2m: 5 workers");
    assert_reason(
        &d,
        "sized from the highest recommendation over the last 2m: 6 workers",
    );
}

#[test]
fn target_scale_out_is_sized_from_the_peak_of_the_last_minute() {
    // 4 workers, no stabilization: 95% 40 s ago, 80% now; the latest alone asks for 6, the peak
    // of the last minute for 7
    let mut v = vec![Some(50.0); 100];
    v.extend([Some(95.0); 3]);
    v.extend([Some(80.0); 8]);
    let mut p = tgt_step(4);
    p.scale_out_for = 0.0;
    let d = evaluate(&one(p.clone(), points(&v, 4), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 7));
    assert_reason(
        &d,
        "sized from the highest recommendation over the last 1m: 7 workers",
    );
    // the peak is older than the sizing window: the latest decides
    v.extend([Some(80.0); 12]);
    let d = evaluate(&one(p, points(&v, 4), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 6));
}

#[test]
fn target_scale_out_cooldown_counts_the_added_capacity_and_does_not_block() {
    // 4 -> 6 workers finished 60 s ago (cooldown 10 min): before it 90% on 4 workers, since then
    // 90% on 6 workers; only the samples on 6 count: 6 x 90 / 60 = 9 workers
    let mut p = tgt_step(4);
    p.scale_out_for = 0.0;
    let mut pts = constant(600.0, 90.0, 4);
    for pt in pts.iter_mut().filter(|pt| pt.at >= NOW - 60.0) {
        pt.workers = 6;
    }
    let mut i = one(p.clone(), pts.clone(), 6);
    i.last_scale_out_finished = Some(NOW - 60.0);
    let d = evaluate(&i);
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 9));
    assert_reason(&d, "does not block target tracking");
    // the same samples in a threshold policy: the cooldown blocks
    let mut t = cpu();
    t.scale_out_for = 0.0;
    let mut i = one(t, pts.clone(), 6);
    i.last_scale_out_finished = Some(NOW - 60.0);
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "scale-out cooldown: 9m left");
    // the added capacity brought it inside the band: the samples before it (90% on 4 workers,
    // which recommend 6) do not count, so no further scale-out
    let mut pts = constant(600.0, 90.0, 4);
    for pt in pts.iter_mut().filter(|pt| pt.at >= NOW - 60.0) {
        pt.workers = 6;
        pt.value = Some(62.0);
    }
    let mut p2 = tgt_step(4);
    p2.scale_out_for = 120.0;
    let mut i = one(p2, pts, 6);
    i.last_scale_out_finished = Some(NOW - 60.0);
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold, "{:?}", d.reasons);
    // no sample since the scale-out finished yet: wait for one
    let mut i = one(p, constant(600.0, 90.0, 4), 6);
    i.last_scale_out_finished = Some(NOW + 1.0);
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no sample since the last scale-out finished");
}

#[test]
fn target_partial_scale_out_blocks_scale_in_of_others() {
    let i = input(
        4,
        vec![
            series(cpu(), constant(1200.0, 10.0, 4)),
            series(tgt_step(4), two_phase(600.0, 50.0, 30.0, 90.0, 4)),
        ],
    );
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no scale-in: above the scale-out threshold: cpu_target");
}

#[test]
fn target_scale_out_limited_by_step_and_max() {
    let d = evaluate(&one(tgt(), constant(100.0, 90.0, 4), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 5));
    assert_reason(&d, "limited to 5 by step (1)");
    let mut p = tgt_step(10);
    p.max_workers = 5;
    let d = evaluate(&one(p, constant(100.0, 90.0, 4), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 5));
    assert_reason(&d, "limited to 5 by max_workers (5)");
}

#[test]
fn target_within_tolerance_holds() {
    for v in [54.5, 60.0, 65.9] {
        let d = evaluate(&one(tgt_step(4), constant(1200.0, v, 4), 4));
        assert_eq!(d.direction, Direction::Hold, "{v}");
        assert_reason(&d, "within 10% of target 60");
    }
}

#[test]
fn target_scale_out_needs_fresh_data() {
    let mut pts = constant(100.0, 95.0, 4);
    for p in &mut pts {
        p.at -= 20.0;
    }
    let d = evaluate(&one(tgt_step(4), pts, 4));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "latest sample is 20s old");
}

#[test]
fn target_scales_in_to_the_highest_recommendation_of_the_window() {
    let d = evaluate(&one(tgt_step(4), constant(1200.0, 30.0, 4), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 2));
    assert_reason(&d, "cpu avg 30.0 is 50% below target 60");
    assert_reason(&d, "highest recommendation over the last 15m: 2 workers");
    // Default step 1.
    let d = evaluate(&one(tgt(), constant(1200.0, 30.0, 4), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 3));
}

#[test]
fn target_stabilization_window_keeps_the_peak() {
    let mut pts = constant(1200.0, 30.0, 4);
    let n = pts.len();
    pts[n - 120].value = Some(80.0); // 10 min ago: recommends 6
    let d = evaluate(&one(tgt_step(4), pts.clone(), 4));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no scale-in: the last 15m recommend up to 6 workers");
    pts[n - 120].value = Some(40.0); // recommends 3
    let d = evaluate(&one(tgt_step(4), pts.clone(), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 3));
    pts[n - 120].value = Some(30.0);
    pts[n - 200].value = Some(99.0); // 16m40s ago: outside the window
    let d = evaluate(&one(tgt_step(4), pts, 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 2));
}

#[test]
fn target_recommendations_use_the_workers_of_each_sample() {
    // 90% on 2 workers recommends 3; now on 4 workers at 30%, the peak does not block 3.
    let mut pts = constant(1200.0, 30.0, 4);
    let n = pts.len();
    pts[n - 100] = Point {
        value: Some(90.0),
        workers: 2,
        ..pts[n - 100]
    };
    let d = evaluate(&one(tgt_step(4), pts, 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 3));
}

#[test]
fn target_scale_in_is_conservative_with_missing_data() {
    let mut pts = constant(1200.0, 30.0, 4);
    let n = pts.len();
    pts[n - 20].unreachable = 1;
    assert_eq!(
        evaluate(&one(tgt_step(4), pts, 4)).direction,
        Direction::Hold
    );
    let d = evaluate(&one(tgt_step(4), constant(300.0, 30.0, 4), 4));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no scale-in: only 5m of history, need 15m");
}

#[test]
fn target_scale_in_clamped_to_min_workers() {
    let d = evaluate(&one(tgt_step(10), constant(1200.0, 5.0, 4), 4));
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 2));
    let d = evaluate(&one(tgt_step(10), constant(1200.0, 5.0, 2), 2));
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "at min_workers (2)");
}

#[test]
fn target_held_for_counts_the_condition() {
    let d = evaluate(&one(tgt_step(4), two_phase(600.0, 60.0, 45.0, 80.0, 4), 4));
    assert_eq!(d.policies[0].held_for, 45.0);
    let d = evaluate(&one(tgt_step(4), two_phase(600.0, 60.0, 300.0, 20.0, 4), 4));
    assert_eq!(d.policies[0].held_for, 300.0);
}

// ---------------------------------------------------------------- several policies

fn named(mut p: Policy, name: &str) -> Policy {
    p.name = name.into();
    p
}

fn series(p: Policy, pts: Vec<Point>) -> PolicySeries {
    PolicySeries {
        policy: p,
        points: pts,
    }
}

#[test]
fn largest_desired_size_wins() {
    let mut big = named(cpu(), "cpu_big");
    big.step = 2;
    let i = input(
        3,
        vec![
            series(cpu(), constant(200.0, 90.0, 3)),
            series(big, constant(200.0, 90.0, 3)),
        ],
    );
    let d = evaluate(&i);
    assert_eq!(
        (d.direction, d.desired_workers, d.step),
        (Direction::Out, 5, 2)
    );
}

#[test]
fn any_out_wins_over_in() {
    let mem = Policy::threshold("mem", Metric::Memory, 85.0, 30.0);
    let i = input(
        3,
        vec![
            series(cpu(), constant(1200.0, 10.0, 3)),
            series(mem, constant(200.0, 90.0, 3)),
        ],
    );
    let d = evaluate(&i);
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 4));
    assert_reason(&d, "mem: memory avg 90.0 > 85 for 3m20s");
    assert!(!has(&d.reasons, "cpu:"), "{:?}", d.reasons);
}

#[test]
fn scale_in_only_when_every_policy_agrees() {
    let mem = Policy::threshold("mem", Metric::Memory, 85.0, 30.0);
    let i = input(
        4,
        vec![
            series(cpu(), constant(1200.0, 10.0, 4)),
            series(mem.clone(), constant(1200.0, 50.0, 4)),
        ],
    );
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.desired_workers, 4);
    assert_reason(&d, "no scale-in: only 1 of 2 policies agree");
    assert_reason(&d, "mem: memory avg 50.0 between 30 and 85");

    let mut mem2 = mem;
    mem2.step = 2;
    let mut cpu3 = cpu();
    cpu3.step = 1;
    let i = input(
        5,
        vec![
            series(cpu3, constant(1200.0, 10.0, 5)),
            series(mem2, constant(1200.0, 10.0, 5)),
        ],
    );
    let d = evaluate(&i);
    assert_eq!(
        (d.direction, d.desired_workers),
        (Direction::In, 4),
        "the most conservative"
    );
}

#[test]
fn partial_scale_out_blocks_scale_in() {
    let mem = Policy::threshold("mem", Metric::Memory, 85.0, 30.0);
    let i = input(
        4,
        vec![
            series(cpu(), constant(1200.0, 10.0, 4)),
            series(mem, two_phase(1000.0, 20.0, 30.0, 90.0, 4)),
        ],
    );
    let d = evaluate(&i);
    assert_eq!(d.direction, Direction::Hold);
    assert_reason(&d, "no scale-in: above the scale-out threshold: mem");
    assert_reason(&d, "mem: memory avg 90.0 > 85 for 30s, need 2m");
}

#[test]
fn threshold_and_target_together() {
    let i = input(
        4,
        vec![
            series(cpu(), constant(1200.0, 20.0, 4)),
            series(tgt_step(4), constant(1200.0, 20.0, 4)),
        ],
    );
    let d = evaluate(&i);
    // cpu wants 3, target wants 2: the larger one wins.
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 3));
}
