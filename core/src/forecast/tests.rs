//! Tests of the forecast: the robust trend, the profiles, the error gate and the lead time.

use proptest::prelude::*;

use super::*;

/// Monday 2024-01-01 00:00 UTC.
const T0: f64 = 1_704_067_200.0;

/// Samples every `every` seconds over `secs`, ending at `T0 + secs`, of `f(t)`.
fn series(secs: f64, every: f64, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    let n = (secs / every) as usize;
    (0..n)
        .map(|i| {
            let t = T0 + i as f64 * every;
            (t, f(t))
        })
        .collect()
}

/// Deterministic noise in [-1, 1].
fn noise(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x as f64 / u64::MAX as f64) * 2.0 - 1.0
}

#[test]
fn theil_sen_recovers_a_line_and_ignores_outliers() {
    let mut pts: Vec<(f64, f64)> = (0..30).map(|i| (i as f64, 10.0 + 2.0 * i as f64)).collect();
    let l = theil_sen(&pts, 30.0).unwrap();
    assert!((l.slope - 2.0).abs() < 1e-9, "{l:?}");
    assert!((l.level - 70.0).abs() < 1e-9, "level at x0 = 30: {l:?}");
    // a burst on 4 of 30 points (the last one among them) barely moves it
    for i in [5, 12, 20, 29] {
        pts[i].1 *= 2.0;
    }
    let r = theil_sen(&pts, 30.0).unwrap();
    assert!((r.slope - 2.0).abs() < 0.25, "{r:?}");
    assert!((r.level - 70.0).abs() < 5.0, "{r:?}");
    // least squares is pulled far more by the same outliers
    let ls = linear_trend(&pts, 30.0).unwrap();
    assert!(
        (ls.level - 70.0).abs() > (r.level - 70.0).abs(),
        "{ls:?} vs {r:?}"
    );
    assert!(theil_sen(&pts[..1], 0.0).is_none());
}

#[test]
fn the_resolution_follows_the_sample_interval() {
    assert_eq!(Config::for_sample_interval(5.0), Config::default());
    assert_eq!(Config::for_sample_interval(30.0), Config::default());
    let fast = Config::for_sample_interval(0.5);
    assert_eq!(
        (fast.bucket, fast.trend_window, fast.error_window),
        (6.0, 180.0, 360.0)
    );
    assert_eq!(fast.min_history(), 150.0);
    assert_eq!(Config::for_sample_interval(0.01).bucket, 1.0);
    assert_eq!(Config::for_sample_interval(f64::NAN), Config::default());
}

#[test]
fn linear_trend_is_least_squares() {
    let pts = vec![(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, 7.0)];
    let l = linear_trend(&pts, 10.0).unwrap();
    assert!(
        (l.slope - 2.0).abs() < 1e-12 && (l.level - 21.0).abs() < 1e-12,
        "{l:?}"
    );
    assert!(
        linear_trend(&[(1.0, 1.0), (1.0, 2.0)], 0.0).is_none(),
        "same x twice"
    );
}

fn diurnal(t: f64) -> f64 {
    // 100 at midnight UTC, 500 at noon
    300.0 - 200.0 * (2.0 * std::f64::consts::PI * (t - T0) / DAY).cos()
}

fn hourly(secs: f64, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    // the average of an hour, taken at its middle
    series(secs, HOUR, |t| f(t + HOUR / 2.0))
}

#[test]
fn profile_by_hour_of_day_after_a_day() {
    let cfg = Config::default();
    assert!(
        Profile::fit(&hourly(23.0 * HOUR, diurnal), &cfg).is_none(),
        "less than a day"
    );
    let p = Profile::fit(&hourly(2.0 * DAY, diurnal), &cfg).expect("two days");
    assert_eq!(p.season, Season::Daily);
    assert_eq!(p.factors.len(), 24);
    let mean = p.factors.iter().sum::<f64>() / 24.0;
    assert!((mean - 1.0).abs() < 1e-9, "normalised: {mean}");
    // noon is 500/300 of the mean, midnight 100/300
    assert!(
        (p.at(T0 + 12.0 * HOUR) - 500.0 / 300.0).abs() < 0.05,
        "{}",
        p.at(T0 + 12.0 * HOUR)
    );
    assert!(
        (p.at(T0 + DAY) - 100.0 / 300.0).abs() < 0.05,
        "{}",
        p.at(T0 + DAY)
    );
}

#[test]
fn profile_by_hour_of_week_after_two_weeks() {
    let cfg = Config::default();
    // weekdays 400, weekends 100
    let weekly = |t: f64| {
        if ((t - T0) / DAY).floor() as i64 % 7 < 5 {
            400.0
        } else {
            100.0
        }
    };
    let short = Profile::fit(&hourly(13.0 * DAY, weekly), &cfg).unwrap();
    assert_eq!(short.season, Season::Daily, "13 days: time of day only");
    let p = Profile::fit(&hourly(14.0 * DAY, weekly), &cfg).unwrap();
    assert_eq!(p.season, Season::Weekly);
    assert_eq!(p.factors.len(), 168);
    let wed = p.at(T0 + 2.0 * DAY + 12.0 * HOUR);
    let sat = p.at(T0 + 5.0 * DAY + 12.0 * HOUR);
    assert!((wed / sat - 4.0).abs() < 0.01, "wed {wed} sat {sat}");
}

#[test]
fn a_profile_with_many_missing_hours_is_none() {
    let mut h = hourly(2.0 * DAY, diurnal);
    h.retain(|(t, _)| ((t - T0) / HOUR) as i64 % 2 == 0);
    assert!(Profile::fit(&h, &Config::default()).is_none());
    assert!(Profile::fit(&[], &Config::default()).is_none());
}

#[test]
fn too_short_a_history_gives_no_forecast() {
    let cfg = Config::default();
    let pts = series(10.0 * MINUTE, 5.0, |t| t - T0);
    match fit(&pts, &[], T0 + 10.0 * MINUTE, &cfg) {
        Err(NoForecast::TooShort { need, .. }) => {
            assert_eq!(need, cfg.min_history());
            assert_eq!(need, 25.0 * MINUTE);
        }
        other => panic!("{other:?}"),
    }
    let err = NoForecast::TooShort {
        have: 600.0,
        need: 1500.0,
    };
    assert_eq!(err.to_string(), "no forecast: 10m of history, need 25m");
    // just enough
    let pts = series(27.0 * MINUTE, 5.0, |t| 50.0 + (t - T0) / 60.0);
    assert!(fit(&pts, &[], T0 + 27.0 * MINUTE, &cfg).is_ok());
}

#[test]
fn a_ramp_is_extrapolated() {
    // 100 rising 3 per minute, a little noise
    let pts: Vec<(f64, f64)> = series(2.0 * HOUR, 5.0, |t| 100.0 + 3.0 * (t - T0) / 60.0)
        .into_iter()
        .enumerate()
        .map(|(i, (t, v))| (t, v * (1.0 + 0.03 * noise(i as u64))))
        .collect();
    let now = T0 + 2.0 * HOUR;
    let m = fit(&pts, &[], now, &Config::default()).unwrap();
    assert_eq!(m.season, Season::None);
    let truth = |t: f64| 100.0 + 3.0 * (t - T0) / 60.0;
    for ahead in [0.0, 300.0, 600.0] {
        let f = m.predict(now + ahead);
        assert!(
            (f - truth(now + ahead)).abs() < 8.0,
            "{ahead}: {f} vs {}",
            truth(now + ahead)
        );
    }
    assert!(m.relative_error < 0.05, "{}", m.describe());
    assert!((m.trend.slope * 60.0 - 3.0).abs() < 0.3, "{:?}", m.trend);
    let cross = m
        .first_crossing(truth(now + 420.0), now, now + 3600.0, 10.0)
        .unwrap();
    assert!(
        (cross - (now + 420.0)).abs() <= 90.0,
        "crosses {} s ahead",
        cross - now
    );
    assert!(m.first_crossing(1e9, now, now + 3600.0, 10.0).is_none());
}

#[test]
fn noise_too_large_closes_the_gate() {
    // a load jumping between 20 and 180 at random
    let pts: Vec<(f64, f64)> = (0..(2 * 720))
        .map(|i| (T0 + 5.0 * i as f64, 100.0 + 80.0 * noise(i).signum()))
        .collect();
    // 1-minute averages of +-80 noise over 12 samples still err by ~25%: use a coarse bucket
    let cfg = Config {
        bucket: 5.0,
        trend_window: 150.0,
        error_window: 300.0,
        cycle_window: 0.0,
        ..Config::default()
    };
    match fit(&pts, &[], T0 + 7200.0, &cfg) {
        Err(NoForecast::TooInaccurate {
            relative_error,
            max,
            cycle_note,
        }) => {
            assert!(relative_error > max, "{relative_error}");
            assert_eq!(cycle_note, None, "no cycle window, no search");
            let e = NoForecast::TooInaccurate {
                relative_error,
                max,
                cycle_note: Some("no cycle: the load is flat".into()),
            };
            assert!(e.to_string().starts_with("no forecast: its error ("), "{e}");
            assert!(
                e.to_string().ends_with("%; no cycle: the load is flat"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    // the same gate opens when it tolerates that much error
    let loose = Config {
        max_error: 10.0,
        ..cfg
    };
    assert!(fit(&pts, &[], T0 + 7200.0, &loose).is_ok());
}

#[test]
fn the_profile_is_used_when_it_forecasts_better() {
    // three days of a daily cycle, sampled every 30 s, with a little noise
    let pts: Vec<(f64, f64)> = series(3.0 * DAY, 30.0, diurnal)
        .into_iter()
        .enumerate()
        .map(|(i, (t, v))| (t, v * (1.0 + 0.02 * noise(i as u64))))
        .collect();
    // now = midnight, the load at its lowest: noon's peak is known from the profile alone
    let now = T0 + 3.0 * DAY;
    let recent: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|p| p.0 >= now - 2.0 * HOUR)
        .collect();
    let hourly: Vec<(f64, f64)> = hourly(3.0 * DAY - 2.0 * HOUR, diurnal);
    let m = fit(&recent, &hourly, now, &Config::default()).unwrap();
    assert_eq!(m.season, Season::Daily, "{}", m.describe());
    let noon = now + 12.0 * HOUR;
    assert!(
        (m.predict(noon) - 500.0).abs() < 40.0,
        "noon: {}",
        m.predict(noon)
    );
    let six = now + 6.0 * HOUR;
    assert!(
        (m.predict(six) - 300.0).abs() < 30.0,
        "06:00: {}",
        m.predict(six)
    );
    // the trend alone sees a flat night and knows nothing of noon
    let plain = fit(&recent, &[], now, &Config::default()).unwrap();
    assert_eq!(plain.season, Season::None);
    assert!(plain.predict(noon) < 150.0, "{}", plain.predict(noon));
}

/// The model without a cycle search: a [`Forecaster`] fed sample by sample searches every
/// `cycle_every`, a one-shot [`fit`] once, so only without one are they the same.
fn without_cycles() -> Config {
    Config {
        cycle_window: 0.0,
        ..Config::default()
    }
}

#[test]
fn incremental_and_batch_fits_agree() {
    let pts = series(90.0 * MINUTE, 5.0, |t| {
        200.0 + 40.0 * ((t - T0) / 600.0).sin()
    });
    let now = T0 + 90.0 * MINUTE;
    let mut f = Forecaster::new(without_cycles());
    for &(t, v) in &pts {
        f.push(t, v);
    }
    assert_eq!(
        f.model(now).unwrap(),
        fit(&pts, &[], now, &without_cycles()).unwrap()
    );
    // samples out of order are ignored
    f.push(T0, 1e6);
    assert_eq!(
        f.model(now).unwrap(),
        fit(&pts, &[], now, &without_cycles()).unwrap()
    );
}

#[test]
fn lead_time_is_the_p90_of_recent_scale_outs_unless_set() {
    let d: Vec<f64> = (1..=10).map(|m| m as f64 * 60.0).collect();
    let l = lead_time(&d, None, 300.0);
    assert_eq!(l.secs, 540.0, "p90 of 1..10 min by nearest rank");
    assert_eq!(l.source, LeadSource::Learned(10));
    assert_eq!(
        l.describe(),
        "a scale-out takes 9m here (p90 of 10 scale-outs)"
    );
    let set = lead_time(&d, Some(120.0), 300.0);
    assert_eq!((set.secs, set.source), (120.0, LeadSource::Setting));
    assert!(set.describe().contains("autoscale.forecast_lead_time"));
    let none = lead_time(&[], None, 300.0);
    assert_eq!((none.secs, none.source), (300.0, LeadSource::Default));
    assert_eq!(
        lead_time(&[f64::NAN, -5.0, 0.0], Some(0.0), 300.0).source,
        LeadSource::Default
    );
    // only the most recent LEAD_SAMPLES count: old slow ones are forgotten
    let mut d = vec![3600.0; 50];
    d.extend(vec![60.0; LEAD_SAMPLES]);
    assert_eq!(lead_time(&d, None, 0.0).secs, 60.0);
    assert_eq!(
        lead_time(&[400.0], None, 0.0).describe(),
        "a scale-out takes 6m40s here (p90 of 1 scale-out)"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A noiseless line is recovered exactly, whatever its slope and level.
    #[test]
    fn theil_sen_on_a_line(level in -1e4..1e4f64, slope in -100.0..100.0f64, n in 2usize..40) {
        let pts: Vec<(f64, f64)> = (0..n).map(|i| (i as f64 * 60.0, level + slope * i as f64 * 60.0)).collect();
        let l = theil_sen(&pts, 0.0).unwrap();
        prop_assert!((l.slope - slope).abs() < 1e-6);
        prop_assert!((l.level - level).abs() < 1e-6 * (1.0 + level.abs()));
    }

    /// The lead time lies within the recorded durations (or is the setting, or the default).
    #[test]
    fn lead_time_within_the_durations(d in proptest::collection::vec(1.0..7200.0f64, 0..60), default in 1.0..600.0f64) {
        let l = lead_time(&d, None, default);
        let recent: Vec<f64> = d.iter().rev().take(LEAD_SAMPLES).copied().collect();
        if recent.is_empty() {
            prop_assert_eq!(l.secs, default);
        } else {
            let lo = recent.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = recent.iter().copied().fold(0.0, f64::max);
            prop_assert!(lo <= l.secs && l.secs <= hi);
            let below = recent.iter().filter(|x| **x <= l.secs).count();
            prop_assert!(below as f64 >= 0.9 * recent.len() as f64, "p90: {} of {}", below, recent.len());
        }
    }

    /// A model that passes the gate has an error within it, and never forecasts negative load.
    #[test]
    fn gate_and_sign(
        base in 0.0..500.0f64,
        slope in -2.0..2.0f64,
        amp in 0.0..0.6f64,
        minutes in 10usize..120,
    ) {
        let pts: Vec<(f64, f64)> = (0..minutes * 12)
            .map(|i| {
                let t = T0 + 5.0 * i as f64;
                (t, (base + slope * i as f64 / 12.0).max(0.0) * (1.0 + amp * noise(i as u64)))
            })
            .collect();
        let now = T0 + 5.0 * (minutes * 12) as f64;
        let cfg = Config::default();
        match fit(&pts, &[], now, &cfg) {
            Ok(m) => {
                prop_assert!(m.relative_error <= cfg.max_error);
                prop_assert!(m.errors >= MIN_ERRORS);
                for k in 0..50 {
                    prop_assert!(m.predict(now + k as f64 * 600.0) >= 0.0);
                }
            }
            Err(NoForecast::TooShort { have, need }) => prop_assert!(have < need + cfg.bucket * 2.0),
            Err(NoForecast::TooInaccurate { relative_error, max, .. }) => prop_assert!(relative_error > max),
        }
    }
}
