//! Tests of predictive policies: scale out ahead of a forecast crossing, never scale in on a
//! forecast, hold a scale-in back when a rise is forecast, and the gate.

use proptest::prelude::*;

use super::super::tests::{constant, input, NOW};
use super::*;
use crate::forecast::{LeadSource, Line, Season};
use crate::policy::{Metric, PolicySeries};

/// A model whose load is `level + slope * (t - NOW)` (load units: value x workers for cpu).
fn model(level: f64, slope_per_min: f64) -> Model {
    Model {
        now: NOW,
        season: Season::None,
        profile: None,
        cycle: None,
        cycle_note: None,
        trend: Line {
            x0: NOW,
            level,
            slope: slope_per_min / 60.0,
        },
        trend_horizon: 3600.0,
        mae: level * 0.05,
        relative_error: 0.05,
        errors: 60,
        history: 7200.0,
    }
}

fn lead(secs: f64) -> LeadTime {
    LeadTime {
        secs,
        source: LeadSource::Learned(4),
    }
}

fn fc(m: Model, lead_secs: f64) -> Option<PolicyForecast> {
    Some(PolicyForecast {
        model: Ok(m),
        lead: lead(lead_secs),
    })
}

fn predictive_cpu() -> Policy {
    let mut p = Policy::threshold("cpu", Metric::Cpu, 80.0, 25.0);
    p.predictive = true;
    p
}

fn one(p: Policy, value: f64, workers: u32) -> EvalInput {
    input(
        workers,
        vec![PolicySeries {
            policy: p,
            points: constant(1200.0, value, workers),
        }],
    )
}

#[test]
fn scales_out_when_the_forecast_crosses_within_the_lead_time() {
    // 4 workers at 70%: load 280, rising 6 per minute: 320 (80% of 4) in 6m40s
    let i = one(predictive_cpu(), 70.0, 4);
    let (d, o) = evaluate_predictive(&i, &[fc(model(280.0, 6.0), 480.0)]);
    assert_eq!(d.direction, Direction::Out, "{:?}", d.reasons);
    assert_eq!(d.desired_workers, 5);
    assert_eq!(d.step, 1);
    let r = d.reasons.join(" | ");
    assert!(r.contains("forecast to cross 80 in 6m"), "{r}");
    assert!(
        r.contains("a scale-out takes 8m here (p90 of 4 scale-outs)"),
        "{r}"
    );
    assert!(r.contains("scale out 4 -> 5 ahead of it"), "{r}");
    let o = o[0].as_ref().unwrap();
    assert_eq!(o.effect, Effect::ScaleOut);
    assert_eq!(o.horizon, 480.0);
    assert!(
        (o.forecast.unwrap() - (280.0 + 48.0) / 4.0).abs() < 1e-6,
        "{o:?}"
    );
    assert!(
        (o.model_error.unwrap() - 14.0 / 4.0).abs() < 1e-9,
        "mae in cpu % on 4 workers: {o:?}"
    );
    let c = o.crosses_in.unwrap();
    assert!((c - 400.0).abs() <= 48.0, "{c}");
    assert_eq!(d.policies[0].direction, Direction::Out);
    // the engine alone holds: 70 is between 25 and 80
    assert_eq!(evaluate(&i).direction, Direction::Hold);
}

#[test]
fn the_outlook_gives_the_period_of_the_cycle_the_model_uses() {
    let i = one(predictive_cpu(), 50.0, 4);
    // without a cycle: none
    let (_, o) = evaluate_predictive(&i, &[fc(model(200.0, 0.0), 300.0)]);
    assert_eq!(o[0].as_ref().unwrap().cycle_period, None);
    // a 2-hour cycle of 1-minute slots: its period
    let found = crate::forecast::Periodicity {
        period: 7200.0,
        lag: 120,
        strength: 0.6,
        threshold: 0.3,
    };
    let shape: Vec<f64> = (0..360)
        .map(|k| if k % 120 < 15 { 4.0 } else { 1.0 })
        .collect();
    let mut m = model(200.0, 0.0);
    m.cycle = crate::forecast::Cycle::fit(found, &shape, 0, 60.0);
    assert!(m.cycle.is_some());
    let (_, o) = evaluate_predictive(&i, &[fc(m, 300.0)]);
    assert_eq!(o[0].as_ref().unwrap().cycle_period, Some(7200.0));
    // no forecast: none
    let no = Some(PolicyForecast {
        model: Err(crate::forecast::NoForecast::TooShort {
            have: 60.0,
            need: 1500.0,
        }),
        lead: lead(300.0),
    });
    let (_, o) = evaluate_predictive(&i, &[no]);
    assert_eq!(o[0].as_ref().unwrap().cycle_period, None);
}

#[test]
fn a_crossing_beyond_the_lead_time_waits_and_says_when() {
    let i = one(predictive_cpu(), 70.0, 4);
    let (d, o) = evaluate_predictive(&i, &[fc(model(280.0, 6.0), 300.0)]);
    assert_eq!(d.direction, Direction::Hold, "{:?}", d.reasons);
    let o = o[0].as_ref().unwrap();
    assert_eq!(o.effect, Effect::None);
    assert!(
        o.note.starts_with("forecast to cross 80 in 6m"),
        "{}",
        o.note
    );
    assert!(o.note.contains("a scale-out takes 5m here"), "{}", o.note);
}

#[test]
fn target_tracking_sizes_for_the_forecast_peak_within_step() {
    let mut p = Policy::target("t", Metric::Cpu, 50.0);
    p.predictive = true;
    p.step = 4;
    // 4 workers at 52% (within 10% of 50): load 208, rising 20/min: 308 in 5 min
    let i = one(p.clone(), 52.0, 4);
    let (d, _) = evaluate_predictive(&i, &[fc(model(208.0, 20.0), 300.0)]);
    assert_eq!(d.direction, Direction::Out, "{:?}", d.reasons);
    // the fewest workers keeping 308 within the band (55 per worker): 6
    assert_eq!(d.desired_workers, 6);
    p.step = 1;
    let (d, _) = evaluate_predictive(&one(p, 52.0, 4), &[fc(model(208.0, 20.0), 300.0)]);
    assert_eq!(d.desired_workers, 5, "step caps it");
}

#[test]
fn the_coordinator_that_holds_shards_counts_as_a_data_node() {
    let mut p = Policy::target("t", Metric::Cpu, 50.0);
    p.predictive = true;
    p.step = 4;
    // 2 workers and the coordinator (3 data nodes) at 52%: load 156, rising 20/min: 256 in 5 min
    let mut i = one(p, 52.0, 2);
    for pt in &mut i.series[0].points {
        pt.data_nodes = 3;
    }
    let (d, o) = evaluate_predictive(&i, &[fc(model(156.0, 20.0), 300.0)]);
    assert_eq!(d.direction, Direction::Out, "{:?}", d.reasons);
    // 256 within the band (55 per data node) needs 5 data nodes: the coordinator and 4 workers
    assert_eq!(d.desired_workers, 4);
    let o = o[0].as_ref().unwrap();
    assert!(
        (o.forecast.unwrap() - 256.0 / 3.0).abs() < 1e-6,
        "spread over 3 data nodes: {o:?}"
    );
}

#[test]
fn policies_that_are_not_predictive_ignore_forecasts() {
    let mut p = predictive_cpu();
    p.predictive = false;
    let i = one(p, 70.0, 4);
    let (d, o) = evaluate_predictive(&i, &[fc(model(280.0, 60.0), 600.0)]);
    assert_eq!(d, evaluate(&i));
    assert!(o[0].is_none());
}

#[test]
fn no_forecast_no_effect_and_the_note_says_why() {
    let i = one(predictive_cpu(), 70.0, 4);
    for why in [
        NoForecast::TooShort {
            have: 300.0,
            need: 1500.0,
        },
        NoForecast::TooInaccurate {
            relative_error: 0.4,
            max: 0.25,
            cycle_note: None,
        },
    ] {
        let f = Some(PolicyForecast {
            model: Err(why.clone()),
            lead: lead(600.0),
        });
        let (d, o) = evaluate_predictive(&i, &[f]);
        assert_eq!(d, evaluate(&i));
        let o = o[0].as_ref().unwrap();
        assert_eq!(o.note, why.to_string());
        assert_eq!(o.forecast, None);
        assert_eq!(o.horizon, 600.0);
    }
}

#[test]
fn the_scale_out_cooldown_and_max_workers_hold_a_forecast_too() {
    let mut i = one(predictive_cpu(), 70.0, 4);
    i.last_scale_out_finished = Some(NOW - 60.0);
    let (d, o) = evaluate_predictive(&i, &[fc(model(280.0, 6.0), 480.0)]);
    assert_eq!(d.direction, Direction::Hold);
    assert!(o[0]
        .as_ref()
        .unwrap()
        .note
        .contains("scale-out cooldown: 9m left"));
    let mut p = predictive_cpu();
    p.max_workers = 4;
    let (d, o) = evaluate_predictive(&one(p, 70.0, 4), &[fc(model(280.0, 6.0), 480.0)]);
    assert_eq!(d.direction, Direction::Hold);
    assert!(o[0].as_ref().unwrap().note.contains("at max_workers (4)"));
}

#[test]
fn operations_and_pauses_still_hold() {
    let mut i = one(predictive_cpu(), 70.0, 4);
    i.operation_running = true;
    let (d, _) = evaluate_predictive(&i, &[fc(model(280.0, 60.0), 480.0)]);
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.reasons, vec!["operation in progress".to_string()]);
    let mut i = one(predictive_cpu(), 70.0, 4);
    i.paused_until = Some(NOW + 60.0);
    let (d, _) = evaluate_predictive(&i, &[fc(model(280.0, 60.0), 480.0)]);
    assert_eq!(d.direction, Direction::Hold);
}

#[test]
fn a_forecast_rise_holds_a_scale_in_back() {
    // 4 workers at 10% for 20 minutes: the engine scales in to 3
    let i = one(predictive_cpu(), 10.0, 4);
    assert_eq!(evaluate(&i).direction, Direction::In);
    // a rise to 40 -> 280 load within scale_in_for + 2 x lead (15m + 10m): on 3 workers above 80
    let (d, o) = evaluate_predictive(&i, &[fc(model(40.0, 10.0), 300.0)]);
    assert_eq!(d.direction, Direction::Hold, "{:?}", d.reasons);
    assert_eq!(d.desired_workers, 4);
    assert!(
        d.reasons[0].starts_with("no scale-in: a rise is forecast: cpu: forecast"),
        "{:?}",
        d.reasons
    );
    assert_eq!(o[0].as_ref().unwrap().effect, Effect::HoldScaleIn);
    // a flat forecast lets it go
    let (d, o) = evaluate_predictive(&i, &[fc(model(40.0, 0.0), 300.0)]);
    assert_eq!(d.direction, Direction::In);
    assert_eq!(d, evaluate(&i));
    assert_eq!(o[0].as_ref().unwrap().effect, Effect::None);
}

#[test]
fn load_spreads_over_workers_only_for_spreading_metrics() {
    let pt = Point {
        at: NOW,
        value: Some(50.0),
        workers: 4,
        unreachable: 0,
        data_nodes: 0,
    };
    assert_eq!(load_of(Metric::Cpu, &pt), Some(200.0));
    // the coordinator holds shards: 5 data nodes
    assert_eq!(
        load_of(
            Metric::Cpu,
            &Point {
                data_nodes: 5,
                ..pt
            }
        ),
        Some(250.0)
    );
    assert_eq!(load_of(Metric::CommitsPerSec, &pt), Some(200.0));
    assert_eq!(load_of(Metric::Memory, &pt), Some(50.0));
    assert_eq!(load_of(Metric::Custom, &pt), Some(50.0));
    assert_eq!(load_of(Metric::Cpu, &Point { value: None, ..pt }), None);
    assert_eq!(
        load_of(Metric::Cpu, &Point { workers: 0, ..pt }),
        Some(50.0)
    );
}

fn arb_model() -> impl Strategy<Value = Model> {
    (0.0..2000.0f64, -50.0..50.0f64).prop_map(|(level, slope)| model(level, slope))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A forecast never scales in on its own and never shrinks the engine's scale-out.
    #[test]
    fn never_scales_in_on_its_own(
        value in 0.0..100.0f64,
        workers in 1u32..12,
        m in arb_model(),
        lead_secs in 0.0..1800.0f64,
        target in proptest::bool::ANY,
        out_ago in proptest::option::of(0.0..3000.0f64),
        secs in 0.0..1800.0f64,
    ) {
        let mut p = if target { Policy::target("p", Metric::Cpu, 60.0) } else { predictive_cpu() };
        p.name = "p".into();
        p.predictive = true;
        p.min_workers = 1;
        p.max_workers = 16;
        let mut i = input(workers, vec![PolicySeries { policy: p, points: constant(secs, value, workers) }]);
        i.last_scale_out_finished = out_ago.map(|a| NOW - a);
        let base = evaluate(&i);
        let (d, _) = evaluate_predictive(&i, &[fc(m, lead_secs)]);
        match d.direction {
            Direction::In => {
                prop_assert_eq!(base.direction, Direction::In);
                prop_assert_eq!(d.desired_workers, base.desired_workers);
            }
            Direction::Out => prop_assert!(d.desired_workers > workers && d.desired_workers <= 16),
            Direction::Hold => prop_assert_ne!(base.direction, Direction::Out),
        }
        if base.direction == Direction::Out {
            prop_assert_eq!(d.direction, Direction::Out);
            prop_assert!(d.desired_workers >= base.desired_workers);
        }
        prop_assert_eq!(d.step, d.desired_workers.abs_diff(workers));
    }
}
