//! Tests of the cycle search and of the forecast with a cycle.

use proptest::prelude::*;

use super::*;
use crate::forecast::{fit, fit_with, Config, Forecaster, NoForecast, DAY, HOUR, MINUTE};

/// Deterministic noise in [-1, 1].
fn noise(i: u64) -> f64 {
    let mut x = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % 2_000_001) as f64 / 1_000_000.0 - 1.0
}

const T0: f64 = 1_700_000_000.0 - 1_700_000_000.0 % DAY;

/// Load 100 with 5% noise; from minute 37 (+0..2, varying) of every other hour, 3.5x for 15
/// minutes: the Twitter trace's shape.
fn two_hour_jumps(t: f64) -> f64 {
    let since = t - T0;
    let period = (since / (2.0 * HOUR)).floor();
    let jitter = (noise(period as u64 + 7).abs() * 2.0 * MINUTE).floor();
    let into = since - period * 2.0 * HOUR;
    let onset = 37.0 * MINUTE + jitter;
    let base = 100.0 * (1.0 + 0.05 * noise((t / 5.0) as u64));
    if into >= onset && into < onset + 15.0 * MINUTE {
        3.5 * base
    } else {
        base
    }
}

fn buckets(hours: f64, step: f64, f: impl Fn(f64) -> f64) -> Vec<f64> {
    (0..(hours * HOUR / step) as usize)
        .map(|i| f(T0 + i as f64 * step + step / 2.0))
        .collect()
}

#[test]
fn a_two_hour_recurring_jump_is_found() {
    let x = buckets(48.0, MINUTE, two_hour_jumps);
    let p = detect_period(&x, MINUTE, 10, x.len() / 2).unwrap();
    assert!((p.period - 2.0 * HOUR).abs() <= 3.0 * MINUTE, "{p:?}");
    assert!(p.strength > 0.5, "{p:?}");
    let c = Cycle::fit(p, &x, (T0 / MINUTE) as i64, MINUTE).unwrap();
    assert_eq!(c.periods, 24);
    // the jump's minutes stand out of the cycle's shape
    let jump = c.at(T0 + 2.0 * HOUR + 45.0 * MINUTE);
    let calm = c.at(T0 + 2.0 * HOUR + 90.0 * MINUTE);
    assert!(jump > 2.5 * calm, "{jump} {calm}");
    assert!(c.describe().starts_with("a 2h"), "{}", c.describe());
}

#[test]
fn a_daily_pattern_is_found() {
    let daily = |t: f64| {
        let h = (t - T0) / HOUR;
        100.0
            + 60.0 * (2.0 * std::f64::consts::PI * (h - 9.0) / 24.0).sin()
            + 10.0 * noise((t / 60.0) as u64)
    };
    let x = buckets(4.0 * 24.0, 5.0 * MINUTE, daily);
    let p = detect_period(&x, 5.0 * MINUTE, 2, x.len() / 2).unwrap();
    assert!((p.period - DAY).abs() <= HOUR, "{p:?}");
    assert!(p.strength > 0.8, "{p:?}");
}

#[test]
fn noise_and_a_wandering_load_have_no_period() {
    let x = buckets(48.0, MINUTE, |t| 100.0 + 20.0 * noise((t / 60.0) as u64));
    match detect_period(&x, MINUTE, 10, x.len() / 2) {
        Err(e @ NoPeriod::NoPeak { .. }) => {
            assert!(
                e.to_string()
                    .starts_with("no cycle: the load does not repeat"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
    // a random walk: correlated at short lags, never repeating
    let mut level = 100.0;
    let walk: Vec<f64> = (0..2880)
        .map(|i| {
            level += noise(i);
            level
        })
        .collect();
    assert!(detect_period(&walk, MINUTE, 10, 1440).is_err());
    assert_eq!(
        detect_period(&[5.0; 100], MINUTE, 10, 50),
        Err(NoPeriod::Flat)
    );
    assert!(matches!(
        detect_period(&[1.0, 2.0], MINUTE, 10, 50),
        Err(NoPeriod::TooShort { have: 2, need: 20 })
    ));
}

/// Load 100 with 5% noise, 3.5x for 15 minutes at irregular times (gaps of 50 to 250 minutes)
/// over `hours`.
fn irregular_jumps(hours: f64) -> impl Fn(f64) -> f64 {
    let mut onsets = Vec::new();
    let mut t = T0 + 30.0 * MINUTE;
    let mut k = 0;
    while t < T0 + hours * HOUR {
        onsets.push(t);
        t += (150.0 + 100.0 * noise(1000 + k)) * MINUTE;
        k += 1;
    }
    move |t: f64| {
        let base = 100.0 * (1.0 + 0.05 * noise((t / 5.0) as u64));
        if onsets.iter().any(|o| t >= *o && t < o + 15.0 * MINUTE) {
            3.5 * base
        } else {
            base
        }
    }
}

fn without_cycles() -> Config {
    Config {
        cycle_window: 0.0,
        ..Config::default()
    }
}

fn cycle_config() -> Config {
    Config {
        cycle_window: 2.0 * DAY,
        ..Config::default()
    }
}

/// Feeds `f` every 5 s from T0 for `hours`.
fn feed(cfg: Config, hours: f64, f: impl Fn(f64) -> f64) -> Forecaster {
    let mut fc = Forecaster::new(cfg);
    for i in 0..(hours * HOUR / 5.0) as usize {
        let t = T0 + 5.0 * i as f64;
        fc.push(t, f(t));
    }
    fc
}

#[test]
fn the_forecast_rises_before_a_recurring_jump() {
    // 26 h of history; the next jump starts at minute 37..39 of hour 26
    let now = T0 + 26.0 * HOUR + 27.0 * MINUTE;
    let hours = (now - T0) / HOUR;
    let lead = 12.0 * MINUTE;
    let mut fc = feed(cycle_config(), hours, two_hour_jumps);
    let m = fc.model(now).unwrap();
    let c = m.cycle.as_ref().expect("the cycle is used");
    assert!(
        (c.found.period - 2.0 * HOUR).abs() <= 3.0 * MINUTE,
        "{:?}",
        c.found
    );
    let note = m.cycle_note.clone().unwrap();
    assert!(
        note.starts_with("the cycle helps: its one-step error"),
        "{note}"
    );
    assert!(
        m.describe().starts_with("a 2h cycle (strength "),
        "{}",
        m.describe()
    );
    assert_eq!(fc.cycle_note(), Some(note.as_str()));
    // calm now, the jump forecast within the lead time
    assert!(m.predict(now) < 150.0, "{}", m.predict(now));
    let peak = m.peak(now, now + lead, 30.0);
    assert!(peak > 250.0, "{peak}");
    let cross = m.first_crossing(150.0, now, now + lead, 30.0).unwrap();
    // the jump itself, to the 5 s
    let onset = (0..1000)
        .map(|k| now + 5.0 * k as f64)
        .find(|t| two_hour_jumps(*t) > 250.0)
        .unwrap();
    assert!(onset <= now + lead);
    assert!(
        cross > now + 5.0 * MINUTE && cross <= onset,
        "{} {}",
        cross - now,
        onset - now
    );
    // without the cycle the same history forecasts no jump
    let mut plain = feed(without_cycles(), hours, two_hour_jumps);
    if let Ok(m) = plain.model(now) {
        assert!(m.cycle.is_none() && m.cycle_note.is_none());
        assert!(m.peak(now, now + lead, 30.0) < 150.0);
    }
}

#[test]
fn no_recurrence_no_cycle_in_the_forecast() {
    // pure noise: no cycle, said so
    let mut fc = feed(cycle_config(), 12.0, |t| {
        100.0 * (1.0 + 0.05 * noise((t / 5.0) as u64))
    });
    let m = fc.model(T0 + 12.0 * HOUR).unwrap();
    assert!(m.cycle.is_none());
    assert!(
        m.cycle_note.as_deref().unwrap().starts_with("no cycle:"),
        "{:?}",
        m.cycle_note
    );
    // jumps at irregular times (gaps of 50 to 250 minutes): whatever is found, the forecast
    // does not rely on a cycle that does not forecast better (or the gate keeps it out)
    let irregular = irregular_jumps(30.0);
    let mut fc = feed(cycle_config(), 30.0, irregular);
    match fc.model(T0 + 30.0 * HOUR) {
        Ok(m) => {
            assert!(m.cycle.is_none(), "{}", m.describe());
            assert!(m.cycle_note.is_some());
        }
        Err(NoForecast::TooInaccurate { .. }) => assert!(fc.cycle_note().is_some()),
        Err(e) => panic!("{e}"),
    }
}

/// `f` as the extension reads it: one point a minute (the 1-minute rollups) until 95 minutes
/// before `now`, then a sample every 5 s.
fn recorded(now: f64, hours: f64, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    let start = now - hours * HOUR;
    let raw_from = now - 95.0 * MINUTE;
    let minutes = ((raw_from - start) / MINUTE) as usize;
    let mut pts: Vec<(f64, f64)> = (0..minutes)
        .map(|i| {
            let m = start + i as f64 * MINUTE;
            let avg = (0..12).map(|k| f(m + 5.0 * k as f64)).sum::<f64>() / 12.0;
            (m, avg)
        })
        .collect();
    let first_raw = start + minutes as f64 * MINUTE;
    pts.extend(
        (0..((now - first_raw) / 5.0) as usize)
            .map(|i| first_raw + 5.0 * i as f64)
            .map(|t| (t, f(t))),
    );
    pts
}

#[test]
fn a_one_shot_fit_on_minute_rollups_forecasts_a_recurring_jump() {
    // as the extension fits it at every tick: 1-minute points, then the recent 5-s samples
    let now = T0 + 26.0 * HOUR + 27.0 * MINUTE;
    let lead = 12.0 * MINUTE;
    let pts = recorded(now, 26.0, two_hour_jumps);
    let m = fit(&pts, &[], now, &cycle_config()).unwrap();
    let c = m.cycle.as_ref().expect("the cycle is used");
    assert!(
        (c.found.period - 2.0 * HOUR).abs() <= 3.0 * MINUTE,
        "{:?}",
        c.found
    );
    let note = m.cycle_note.clone().unwrap();
    assert!(note.starts_with("the cycle helps"), "{note}");
    // judged on the tail the search did not see: three periods
    assert!(m.errors >= 300, "{}", m.errors);
    assert!(m.predict(now) < 150.0, "{}", m.predict(now));
    let cross = m.first_crossing(150.0, now, now + lead, 30.0).unwrap();
    let onset = (0..1000)
        .map(|k| now + 5.0 * k as f64)
        .find(|t| two_hour_jumps(*t) > 250.0)
        .unwrap();
    assert!(
        cross > now && cross <= onset,
        "{} {}",
        cross - now,
        onset - now
    );
    // the same history without a cycle window forecasts no jump
    if let Ok(m) = fit(&pts, &[], now, &without_cycles()) {
        assert!(m.cycle.is_none() && m.cycle_note.is_none());
        assert!(m.peak(now, now + lead, 30.0) < 150.0);
    }
}

#[test]
fn a_cycle_search_is_reused_for_an_hour_of_new_history_then_made_again() {
    let cfg = cycle_config();
    let now = T0 + 26.0 * HOUR + 27.0 * MINUTE;
    let at = |t: f64| recorded(t, (t - T0) / HOUR, two_hour_jumps);
    let mut search = None;
    let a = fit_with(&at(now), &[], now, &cfg, &mut search).unwrap();
    assert_eq!(a, fit(&at(now), &[], now, &cfg).unwrap());
    let first = search.clone().unwrap();
    assert!(
        (first.found().unwrap() - 2.0 * HOUR).abs() <= 3.0 * MINUTE,
        "{:?}",
        first.found()
    );
    // 10 minutes on: the search is reused, and so is the cycle
    let later = now + 10.0 * MINUTE;
    let b = fit_with(&at(later), &[], later, &cfg, &mut search).unwrap();
    assert_eq!(search.as_ref(), Some(&first));
    assert_eq!(b.cycle, a.cycle);
    assert!(b.cycle_note.unwrap().starts_with("the cycle helps"));
    // an hour of new history: searched again
    let hour = now + 61.0 * MINUTE;
    fit_with(&at(hour), &[], hour, &cfg, &mut search).unwrap();
    assert_ne!(search.as_ref(), Some(&first));
    // another configuration: searched again
    let again = search.clone();
    let other = Config {
        cycle_min: 20.0 * MINUTE,
        ..cfg.clone()
    };
    fit_with(&at(hour), &[], hour, &other, &mut search).unwrap();
    assert_ne!(search, again);
    // older points than the search's (a clock set back): searched again
    let mut s2 = again.clone();
    fit_with(&at(now), &[], now, &cfg, &mut s2).unwrap();
    assert_ne!(s2, again);
    // the history written again only where it is old (the jumps before the last 12 hours gone):
    // searched again, though the hours before the judged tail did not change
    let early_gone = |t: f64| {
        if t < hour - 12.0 * HOUR {
            100.0 * (1.0 + 0.05 * noise((t / 5.0) as u64))
        } else {
            two_hour_jumps(t)
        }
    };
    let mut s4 = search.clone();
    fit_with(
        &recorded(hour, (hour - T0) / HOUR, early_gone),
        &[],
        hour,
        &other,
        &mut s4,
    )
    .unwrap();
    assert_ne!(s4, search);
    // the history written again (no jumps now): searched again, and nothing repeats
    let mut s3 = search.clone();
    let flat = recorded(hour, (hour - T0) / HOUR, |t| {
        100.0 * (1.0 + 0.05 * noise((t / 5.0) as u64))
    });
    let m = fit_with(&flat, &[], hour, &other, &mut s3).unwrap();
    assert!(m.cycle.is_none());
    assert!(s3.unwrap().found().is_err());
}

#[test]
fn a_one_shot_fit_without_recurrence_keeps_the_cycle_out_and_says_why() {
    let now = T0 + 30.0 * HOUR;
    let pts = recorded(now, 30.0, irregular_jumps(30.0));
    match fit(&pts, &[], now, &cycle_config()) {
        Ok(m) => {
            assert!(m.cycle.is_none(), "{}", m.describe());
            let note = m.cycle_note.unwrap();
            assert!(
                note.starts_with("no cycle:") || note.contains("found, not used"),
                "{note}"
            );
        }
        Err(e @ NoForecast::TooInaccurate { .. }) => {
            let s = e.to_string();
            assert!(s.starts_with("no forecast: its error ("), "{s}");
            assert!(
                s.contains("; no cycle:") || s.contains("found, not used"),
                "{s}"
            );
        }
        Err(e) => panic!("{e}"),
    }
    // too little history for two periods of the shortest lag: said so
    let short = recorded(T0 + 2.0 * HOUR, 2.0, two_hour_jumps);
    let cfg = Config {
        cycle_min: 90.0 * MINUTE,
        ..cycle_config()
    };
    let note = match fit(&short, &[], T0 + 2.0 * HOUR, &cfg) {
        Ok(m) => m.cycle_note.unwrap(),
        Err(e) => e.to_string(),
    };
    assert!(note.contains("no cycle:"), "{note}");
}

#[test]
fn no_search_without_a_cycle_window() {
    let mut fc = feed(without_cycles(), 6.0, two_hour_jumps);
    assert!(fc.cycle().is_none());
    if let Ok(m) = fc.model(T0 + 6.0 * HOUR) {
        assert!(m.cycle_note.is_none());
    }
    assert!(fc.cycle_note().is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A load that jumps once a period (any period of 20 to 80 buckets, any width up to a
    /// third of it, any height), repeated 4 to 6 times with 5% noise, is found at its period.
    #[test]
    fn a_recurring_jump_is_found_at_its_period(
        p in 20usize..80,
        width in 0.05..0.33f64,
        at in 0.0..1.0f64,
        height in 1.5..5.0f64,
        reps in 4usize..7,
        seed in 0u64..1000,
    ) {
        let w = ((width * p as f64) as usize).max(1);
        let o = (at * p as f64) as usize;
        let x: Vec<f64> = (0..p * reps)
            .map(|i| {
                let j = (i + p - o) % p;
                let level = if j < w { 100.0 * height } else { 100.0 };
                level * (1.0 + 0.05 * noise(seed * 10_000 + i as u64))
            })
            .collect();
        let found = detect_period(&x, 60.0, 5, x.len() / 2).unwrap();
        prop_assert_eq!(found.lag, p);
        prop_assert_eq!(found.period, p as f64 * 60.0);
    }

    /// Whatever the series: no panic, and a period found lies within the lags searched and at
    /// least the threshold it reports.
    #[test]
    fn a_found_period_is_within_bounds(
        x in proptest::collection::vec(prop_oneof![Just(f64::NAN), -1e3..1e3f64], 0..300),
        min_lag in 0usize..40,
        max_lag in 0usize..200,
    ) {
        if let Ok(p) = detect_period(&x, 60.0, min_lag, max_lag) {
            prop_assert!(p.lag >= min_lag.max(2) && p.lag <= max_lag.min(x.len() / 2));
            prop_assert!(p.strength >= p.threshold && p.threshold >= MIN_STRENGTH);
            prop_assert!(p.strength <= 1.0 + 1e-9);
        }
    }
}

#[test]
fn a_two_hour_jump_on_a_daily_cycle_is_found_at_two_hours() {
    // the daily swing correlates best at a day, but the day is a multiple of the two hours
    let both = |t: f64| {
        let h = (t - T0) / HOUR;
        two_hour_jumps(t) * (1.0 + 0.5 * (2.0 * std::f64::consts::PI * h / 24.0).sin())
    };
    let x = buckets(72.0, MINUTE, both);
    let p = detect_period(&x, MINUTE, 10, x.len() / 2).unwrap();
    assert!((p.period - 2.0 * HOUR).abs() <= 3.0 * MINUTE, "{p:?}");
}
