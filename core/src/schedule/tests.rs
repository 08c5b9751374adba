use chrono::{NaiveDate, TimeZone};
use proptest::prelude::*;

use super::*;

fn sched(
    name: &str,
    cron: &str,
    dur: f64,
    tz: &str,
    min: Option<u32>,
    max: Option<u32>,
) -> Schedule {
    Schedule {
        name: name.into(),
        cron: cron.into(),
        min_workers: min,
        max_workers: max,
        time_zone: tz.into(),
        duration: dur,
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> f64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp() as f64
}

fn berlin(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> f64 {
    chrono_tz::Europe::Berlin
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .unwrap()
        .timestamp() as f64
}

fn naive(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

fn err(cron: &str) -> String {
    Cron::parse(cron).unwrap_err().to_string()
}

const POLICY: Bounds = Bounds {
    min_workers: 2,
    max_workers: 16,
};

#[test]
fn cron_errors_name_the_field_value_and_range() {
    assert_eq!(
        err("61 * * * *"),
        r#"cron: "61 * * * *": minute 61 is outside 0-59"#
    );
    assert_eq!(
        err("0 24 * * *"),
        r#"cron: "0 24 * * *": hour 24 is outside 0-23"#
    );
    assert_eq!(
        err("0 0 0 * *"),
        r#"cron: "0 0 0 * *": day of month 0 is outside 1-31"#
    );
    assert_eq!(
        err("0 0 * 13 *"),
        r#"cron: "0 0 * 13 *": month 13 is outside 1-12"#
    );
    assert_eq!(
        err("0 0 * * 8"),
        r#"cron: "0 0 * * 8": day of week 8 is outside 0-7"#
    );
    assert!(err("0 8 * *")
        .contains("expected 5 fields (minute hour day-of-month month day-of-week), got 4"));
    assert!(err("*/0 * * * *").contains("minute step 0 is outside 1-59"));
    assert!(err("x * * * *").contains(r#"minute "x" is not a number"#));
    assert!(err("0 0 * foo *").contains(r#"month "foo" is not a number or a name (jan..dec)"#));
    assert!(err("0 18-8 * * *").contains("hour range 18-8 goes backwards"));
    assert!(err("0,,5 * * * *").contains("empty list item"));
}

#[test]
fn cron_fields_lists_ranges_steps_and_names() {
    let c = Cron::parse("*/15 8-17/3 * jan,jul MON-fri").unwrap();
    assert_eq!(c.as_str(), "*/15 8-17/3 * jan,jul MON-fri");
    // 2026-01-05 is a Monday
    assert!(c.matches(&naive(2026, 1, 5, 8, 0)));
    assert!(c.matches(&naive(2026, 1, 5, 11, 45)));
    assert!(c.matches(&naive(2026, 1, 5, 17, 30)));
    assert!(!c.matches(&naive(2026, 1, 5, 9, 0)));
    assert!(!c.matches(&naive(2026, 1, 5, 8, 10)));
    assert!(!c.matches(&naive(2026, 2, 2, 8, 0))); // February
    assert!(!c.matches(&naive(2026, 1, 4, 8, 0))); // Sunday
                                                   // 7 is Sunday too; a/n runs to the end of the range
    let c = Cron::parse("30/10 0 * * 7").unwrap();
    assert!(c.matches(&naive(2026, 1, 4, 0, 30)));
    assert!(c.matches(&naive(2026, 1, 4, 0, 50)));
    assert!(!c.matches(&naive(2026, 1, 4, 0, 20)));
    // both days restricted: either matches (the 1st of the month or a Monday)
    let c = Cron::parse("0 0 1 * mon").unwrap();
    assert!(c.matches(&naive(2026, 1, 1, 0, 0))); // a Thursday
    assert!(c.matches(&naive(2026, 1, 5, 0, 0))); // a Monday
    assert!(!c.matches(&naive(2026, 1, 6, 0, 0)));
    // one of them a star: both must match
    let c = Cron::parse("0 0 1-7 * *").unwrap();
    assert!(!c.matches(&naive(2026, 1, 8, 0, 0)));
}

#[test]
fn schedule_errors_name_the_argument() {
    let ok = sched(
        "business-hours",
        "0 8 * * 1-5",
        36_000.0,
        "Europe/Berlin",
        Some(6),
        None,
    );
    assert!(ok.compile().is_ok());
    let e = |s: Schedule| s.compile().unwrap_err();
    let bad_tz = Schedule {
        time_zone: "Mars/Base".into(),
        ..ok.clone()
    };
    assert_eq!(
        e(bad_tz.clone()).to_string(),
        r#"time_zone: "Mars/Base": not a known time zone (an IANA name such as Europe/Berlin, America/New_York or UTC)"#
    );
    assert_eq!(e(bad_tz).argument(), "time_zone");
    let bounds = Schedule {
        min_workers: Some(5),
        max_workers: Some(3),
        ..ok.clone()
    };
    assert_eq!(e(bounds).to_string(), "min_workers 5 > max_workers 3");
    let none = Schedule {
        min_workers: None,
        max_workers: None,
        ..ok.clone()
    };
    assert!(e(none).to_string().contains("neither given"));
    let short = Schedule {
        duration: 30.0,
        ..ok.clone()
    };
    assert_eq!(
        e(short).to_string(),
        "duration: 30s: must be between 1 minute and 7 days"
    );
    let long = Schedule {
        duration: 8.0 * 86_400.0,
        ..ok.clone()
    };
    assert_eq!(
        e(long).to_string(),
        "duration: 8d: must be between 1 minute and 7 days"
    );
    let nan = Schedule {
        duration: f64::NAN,
        ..ok.clone()
    };
    assert_eq!(e(nan).argument(), "duration");
    let max0 = Schedule {
        max_workers: Some(0),
        ..ok.clone()
    };
    assert_eq!(
        e(max0).to_string(),
        "max_workers: 0: must be between 1 and 1000"
    );
    let cron = Schedule {
        cron: "61 * * * *".into(),
        ..ok.clone()
    };
    assert_eq!(e(cron.clone()).argument(), "cron");
    assert_eq!(
        compile_all(&[ok.clone(), cron]).unwrap_err(),
        r#"schedule "business-hours": cron: "61 * * * *": minute 61 is outside 0-59"#
    );
    let noname = Schedule {
        name: " ".into(),
        ..ok.clone()
    };
    assert_eq!(e(noname).argument(), "name");
    // utc in any case, UTC by default from json
    assert!(Schedule {
        time_zone: "utc".into(),
        ..ok
    }
    .compile()
    .is_ok());
    let s: Schedule =
        serde_json::from_str(r#"{"name":"n","cron":"0 8 * * *","duration":3600,"min_workers":4}"#)
            .unwrap();
    assert_eq!(s.time_zone, "UTC");
    assert_eq!(s.max_workers, None);
}

#[test]
fn business_hours_in_berlin() {
    let s = sched(
        "business-hours",
        "0 8 * * 1-5",
        36_000.0,
        "Europe/Berlin",
        Some(6),
        None,
    )
    .compile()
    .unwrap();
    let all = [s];
    // Monday 2026-01-05, winter time (UTC+1): 08:00 local = 07:00 UTC
    let e = effective_bounds(POLICY, &all, utc(2026, 1, 5, 6, 59));
    assert!(e.active.is_empty());
    assert_eq!(e.bounds, POLICY);
    assert_eq!(e.explain(), None);
    let at = utc(2026, 1, 5, 7, 0);
    let e = effective_bounds(POLICY, &all, at);
    assert_eq!(
        e.bounds,
        Bounds {
            min_workers: 6,
            max_workers: 16
        }
    );
    assert_eq!(
        e.active[0].window,
        Window {
            start: at,
            end: at + 36_000.0
        }
    );
    assert_eq!(
        e.explain().unwrap(),
        "schedule 'business-hours' (0 8 * * 1-5, 10h, Europe/Berlin) raises min_workers to 6 until 18:00"
    );
    assert_eq!(clamp(3, &e), 6);
    assert_eq!(clamp(9, &e), 9);
    let (n, why) = e.apply(4);
    assert_eq!(n, 6);
    assert!(why
        .unwrap()
        .starts_with("4 -> 6 workers: schedule 'business-hours'"));
    assert_eq!(e.apply(8), (8, None));
    // 17:59 local still, 18:00 local no longer
    assert_eq!(
        effective_bounds(POLICY, &all, utc(2026, 1, 5, 16, 59))
            .bounds
            .min_workers,
        6
    );
    assert_eq!(
        effective_bounds(POLICY, &all, utc(2026, 1, 5, 17, 0))
            .bounds
            .min_workers,
        2
    );
    // summer time (UTC+2): 08:00 local = 06:00 UTC
    assert_eq!(
        effective_bounds(POLICY, &all, utc(2026, 7, 6, 6, 0))
            .bounds
            .min_workers,
        6
    );
    assert_eq!(
        effective_bounds(POLICY, &all, utc(2026, 7, 6, 5, 59))
            .bounds
            .min_workers,
        2
    );
    // Saturday
    assert!(effective_bounds(POLICY, &all, utc(2026, 1, 10, 10, 0))
        .active
        .is_empty());
    // next start from Friday evening: Monday 08:00
    let next = all[0]
        .next_start(utc(2026, 1, 9, 20, 0), 4.0 * 86_400.0)
        .unwrap();
    assert_eq!(next, utc(2026, 1, 12, 7, 0));
    assert_eq!(all[0].next_start(utc(2026, 1, 9, 20, 0), 3600.0), None);
}

#[test]
fn spring_forward_start_in_the_skipped_hour_happens_when_the_clocks_resume() {
    // 2026-03-29, last Sunday of March: Berlin 02:00 CET -> 03:00 CEST at 01:00 UTC
    let s = sched(
        "night",
        "30 2 * * *",
        3600.0,
        "Europe/Berlin",
        Some(4),
        None,
    )
    .compile()
    .unwrap();
    // the day before: 02:30 CET = 01:30 UTC
    assert!(s.starts_at(utc(2026, 3, 28, 1, 30) as i64));
    // 02:30 does not exist on the day: the window starts at 03:00 CEST = 01:00 UTC
    assert!(s.starts_at(utc(2026, 3, 29, 1, 0) as i64));
    let w = s.window_at(utc(2026, 3, 29, 1, 20)).unwrap();
    assert_eq!(w.start, utc(2026, 3, 29, 1, 0));
    assert_eq!(w.end, utc(2026, 3, 29, 2, 0));
    assert_eq!(s.window_at(utc(2026, 3, 29, 0, 59)), None);
    assert_eq!(s.window_at(utc(2026, 3, 29, 2, 0)), None);
    // exactly one start that day
    let starts = (0..24 * 60)
        .filter(|m| s.starts_at(utc(2026, 3, 28, 23, 0) as i64 + m * 60))
        .count();
    assert_eq!(starts, 1);
    // the day after: 02:30 CEST = 00:30 UTC
    assert!(s.starts_at(utc(2026, 3, 30, 0, 30) as i64));
    // a start before the change that runs across it lasts its elapsed duration
    let s = sched(
        "evening",
        "0 22 * * *",
        8.0 * 3600.0,
        "Europe/Berlin",
        Some(4),
        None,
    )
    .compile()
    .unwrap();
    // 22:00 CET on the 28th = 21:00 UTC; 8 h later is 05:00 UTC = 07:00 CEST
    let w = s.window_at(utc(2026, 3, 29, 4, 59)).unwrap();
    assert_eq!(w.start, utc(2026, 3, 28, 21, 0));
    let e = effective_bounds(POLICY, std::slice::from_ref(&s), utc(2026, 3, 29, 4, 0));
    assert_eq!(e.active[0].until, "07:00");
    assert_eq!(s.window_at(utc(2026, 3, 29, 5, 0)), None);
}

#[test]
fn fall_back_a_time_that_happens_twice_starts_once() {
    // 2026-10-25, last Sunday of October: Berlin 03:00 CEST -> 02:00 CET at 01:00 UTC;
    // 02:30 is 00:30 UTC (summer time) and 01:30 UTC (winter time)
    let s = sched(
        "night",
        "30 2 * * *",
        1800.0,
        "Europe/Berlin",
        Some(4),
        None,
    )
    .compile()
    .unwrap();
    assert!(s.starts_at(utc(2026, 10, 25, 0, 30) as i64));
    assert!(!s.starts_at(utc(2026, 10, 25, 1, 30) as i64));
    assert!(s.window_at(utc(2026, 10, 25, 0, 45)).is_some());
    assert_eq!(s.window_at(utc(2026, 10, 25, 1, 0)), None);
    assert_eq!(s.window_at(utc(2026, 10, 25, 1, 45)), None);
    let starts = (0..24 * 60)
        .filter(|m| s.starts_at(utc(2026, 10, 24, 22, 0) as i64 + m * 60))
        .count();
    assert_eq!(starts, 1);
    // every minute of the repeated hour: 60 starts, not 120
    let s = sched("each", "* 2 * * *", 60.0, "Europe/Berlin", Some(4), None)
        .compile()
        .unwrap();
    let starts = (0..24 * 60)
        .filter(|m| s.starts_at(utc(2026, 10, 24, 22, 0) as i64 + m * 60))
        .count();
    assert_eq!(starts, 60);
    // a window over the night lasts its elapsed time: 22:00 CEST + 8h = 05:00 CET
    let s = sched(
        "evening",
        "0 22 * * *",
        8.0 * 3600.0,
        "Europe/Berlin",
        Some(4),
        None,
    )
    .compile()
    .unwrap();
    let e = effective_bounds(POLICY, &[s], berlin(2026, 10, 25, 4, 0));
    assert_eq!(e.active[0].until, "05:00");
}

#[test]
fn overlaps_highest_min_and_highest_max_win() {
    let a = sched("a", "0 8 * * *", 10.0 * 3600.0, "UTC", Some(6), Some(10))
        .compile()
        .unwrap();
    let b = sched("b", "0 9 * * *", 3600.0, "UTC", Some(8), None)
        .compile()
        .unwrap();
    let c = sched("c", "0 9 * * *", 3600.0, "UTC", None, Some(4))
        .compile()
        .unwrap();
    let all = [a, b, c];
    let at = utc(2026, 1, 5, 9, 30);
    let e = effective_bounds(POLICY, &all, at);
    assert_eq!(e.active.len(), 3);
    assert_eq!(
        e.bounds,
        Bounds {
            min_workers: 8,
            max_workers: 10
        }
    );
    assert_eq!(e.active[e.min_from.unwrap()].name, "b");
    assert_eq!(e.active[e.max_from.unwrap()].name, "a");
    let x = e.explain().unwrap();
    assert!(
        x.contains("schedule 'b' (0 9 * * *, 1h, UTC) raises min_workers to 8 until 10:00"),
        "{x}"
    );
    assert!(
        x.contains("schedule 'a' (0 8 * * *, 10h, UTC) lowers max_workers to 10 until 18:00"),
        "{x}"
    );
    assert!(x.contains("also applying, bounds not higher: 'c'"), "{x}");
    // c alone caps the max below the policy's min: min stays, max lowered
    let e = effective_bounds(POLICY, &all[2..], at);
    assert_eq!(
        e.bounds,
        Bounds {
            min_workers: 2,
            max_workers: 4
        }
    );
    assert_eq!(clamp(9, &e), 4);
    // a min above every max: max raised to it
    let big = sched("big", "0 9 * * *", 3600.0, "UTC", Some(12), None)
        .compile()
        .unwrap();
    let e = effective_bounds(POLICY, &[all[2].clone(), big], at);
    assert_eq!(
        e.bounds,
        Bounds {
            min_workers: 12,
            max_workers: 12
        }
    );
    assert!(e.max_raised_to_min);
    assert!(e
        .explain()
        .unwrap()
        .contains("max_workers raised to 12 to meet min_workers"));
    // one schedule with both
    let e = effective_bounds(POLICY, &all[..1], at);
    assert_eq!(
        e.explain().unwrap(),
        "schedule 'a' (0 8 * * *, 10h, UTC) raises min_workers to 6 and lowers max_workers to 10 until 18:00"
    );
}

#[test]
fn overlapping_windows_of_one_schedule_last_until_the_latest_ends() {
    let s = sched("s", "*/5 * * * *", 600.0, "UTC", Some(3), None)
        .compile()
        .unwrap();
    let w = s.window_at(utc(2026, 1, 5, 9, 7) + 30.0).unwrap();
    assert_eq!(w.start, utc(2026, 1, 5, 9, 5));
    assert_eq!(w.end, utc(2026, 1, 5, 9, 15));
    // a window ending on another local day says the date
    let s = sched("s", "0 23 * * *", 7200.0, "UTC", Some(3), None)
        .compile()
        .unwrap();
    let e = effective_bounds(POLICY, &[s], utc(2026, 1, 5, 23, 30));
    assert_eq!(e.active[0].until, "2026-01-06 01:00");
}

fn field() -> impl Strategy<Value = (String, u32, u32)> {
    prop_oneof![
        Just(("*".to_string(), 0, 0)),
        (0u32..60).prop_map(|v| (v.to_string(), v, v)),
        (0u32..60, 0u32..60).prop_map(|(a, b)| {
            let (a, b) = (a.min(b), a.max(b));
            (format!("{a}-{b}"), a, b)
        }),
        (1u32..30).prop_map(|n| (format!("*/{n}"), n, 0)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Evaluation: an applying schedule's window contains the instant, started at a minute the
    /// schedule starts on, and no start lies between it and the instant; the bounds in force
    /// hold min <= max, lie within the given mins/maxes, and clamping lands inside them.
    #[test]
    fn evaluation_is_consistent(
        minute in field(),
        hour in 0u32..24,
        dur_min in 1u32..3000,
        tz in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]),
        at in 1_700_000_000i64..1_800_000_000i64,
        min in proptest::option::of(0u32..20),
        max in proptest::option::of(1u32..20),
        desired in 0u32..40,
    ) {
        let (min, max) = match (min, max) {
            (None, None) => (Some(3), None),
            (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
            other => other,
        };
        let cron = format!("{} {hour} * * *", minute.0);
        let s = sched("p", &cron, dur_min as f64 * 60.0, tz, min, max).compile().unwrap();
        let at = at as f64 + 0.5;
        let e = effective_bounds(POLICY, std::slice::from_ref(&s), at);
        prop_assert!(e.bounds.min_workers <= e.bounds.max_workers);
        let n = clamp(desired, &e);
        prop_assert!(n >= e.bounds.min_workers && n <= e.bounds.max_workers);
        match s.window_at(at) {
            Some(w) => {
                prop_assert!(w.start <= at && at < w.end);
                prop_assert!(s.starts_at(w.start as i64));
                let mut m = w.start as i64 + 60;
                while (m as f64) <= at {
                    prop_assert!(!s.starts_at(m));
                    m += 60;
                }
                prop_assert_eq!(e.active.len(), 1);
                if let Some(v) = min { prop_assert_eq!(e.bounds.min_workers, v); }
                if let Some(v) = max { prop_assert_eq!(e.bounds.max_workers, v.max(e.bounds.min_workers)); }
                prop_assert!(e.explain().is_some());
            }
            None => {
                prop_assert_eq!(e.bounds, POLICY);
                prop_assert!(e.active.is_empty());
                // no start within the duration before the instant
                let mut m = (at / 60.0).floor() as i64 * 60;
                while (m as f64) > at - s.schedule.duration {
                    prop_assert!(!s.starts_at(m));
                    m -= 60;
                }
            }
        }
    }

    /// A daily cron at a fixed wall-clock time starts exactly once every local day, whatever the
    /// time zone's changes that day (skipped or repeated hours).
    #[test]
    fn a_daily_start_happens_once_a_day(
        h in 0u32..24,
        m in 0u32..60,
        day in 0i64..730,
        tz in prop::sample::select(vec!["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]),
    ) {
        let s = sched("d", &format!("{m} {h} * * *"), 60.0, tz, Some(3), None).compile().unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(day);
        let tzv = s.tz;
        let first = tzv.from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap()).earliest()
            .unwrap_or_else(|| tzv.from_local_datetime(&date.and_hms_opt(1, 0, 0).unwrap()).earliest().unwrap());
        let next = date + chrono::Duration::days(1);
        let last = tzv.from_local_datetime(&next.and_hms_opt(0, 0, 0).unwrap()).earliest()
            .unwrap_or_else(|| tzv.from_local_datetime(&next.and_hms_opt(1, 0, 0).unwrap()).earliest().unwrap());
        let mut starts = 0;
        let mut t = first.timestamp();
        while t < last.timestamp() {
            if s.starts_at(t) { starts += 1; }
            t += 60;
        }
        prop_assert_eq!(starts, 1);
    }

    /// Parsing never panics, and what parses prints back as given (fields one space apart).
    #[test]
    fn cron_parse_total(s in "[0-9*/,a-z -]{0,24}") {
        if let Ok(c) = Cron::parse(&s) {
            prop_assert_eq!(c.as_str(), s.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
}
