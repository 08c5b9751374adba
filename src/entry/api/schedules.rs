//! Schedules and user-brought replays: set_schedule(), drop_schedule(), backtest_series().

use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::JsonB;

use super::{duration_arg, interval_secs, req};
use crate::infra::errors::{AutoscaleError, OrReport};
use crate::services::decide;
use crate::store::{events, schedules};

/// Creates or replaces a schedule: from every start the cron expression matches (on the wall clock
/// of `time_zone`), for `duration`, the cluster is kept within min_workers..max_workers (either
/// may be NULL: the policies' bound stays). Validated by the engine; errors name the argument.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn set_schedule(
    name: Option<&str>,
    cron: Option<&str>,
    min_workers: default!(Option<i32>, "NULL"),
    max_workers: default!(Option<i32>, "NULL"),
    time_zone: default!(Option<&str>, "'UTC'"),
    duration: default!(Option<Interval>, "'1 hour'"),
) -> JsonB {
    let name = req("name", name, "a schedule name of 1 to 63 characters");
    let cron = req(
        "cron",
        cron,
        "a 5-field cron expression: minute hour day-of-month month day-of-week",
    );
    let time_zone = req(
        "time_zone",
        time_zone,
        "an IANA time zone name such as Europe/Berlin or UTC",
    );
    let secs = interval_secs(req(
        "duration",
        duration,
        "an interval between 1 minute and 7 days",
    ));
    let s =
        decide::build_schedule(name, cron, min_workers, max_workers, time_zone, secs).or_report();
    schedules::store(&s).or_report();
    events::record(
        "schedule_set",
        &format!(
            "schedule {} set: {} for {} ({}), min_workers {}, max_workers {}",
            s.name,
            s.cron,
            autoscale_core::duration::format_secs(s.duration),
            s.time_zone,
            s.min_workers.map_or("-".into(), |v| v.to_string()),
            s.max_workers.map_or("-".into(), |v| v.to_string())
        ),
        serde_json::to_value(&s).ok(),
    )
    .or_report();
    JsonB(serde_json::to_value(&s).expect("schedule serializes"))
}

/// Drops a schedule; an unknown name is an error.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn drop_schedule(name: Option<&str>) -> bool {
    let name = req("name", name, "the name of a schedule");
    if !schedules::drop(name).or_report() {
        AutoscaleError::NotFound(format!("schedule \"{name}\" does not exist")).report();
    }
    events::record(
        "schedule_dropped",
        &format!("schedule {name} dropped"),
        None,
    )
    .or_report();
    true
}

/// Most points backtest_series() replays in one call (a week of 5-s samples, a month of 15-s ones;
/// the replay does not look at query cancellation until it returns).
const MAX_SERIES_POINTS: usize = 250_000;

/// Seconds since the Unix epoch of PostgreSQL's timestamp epoch (2000-01-01).
const PG_EPOCH_SECS: f64 = 946_684_800.0;

/// The series' instants, epoch seconds: every one given, finite and later than the one before.
fn series_times(ts: &[Option<TimestampWithTimeZone>]) -> Result<Vec<f64>, AutoscaleError> {
    let mut out: Vec<f64> = Vec::with_capacity(ts.len());
    for (i, t) in ts.iter().enumerate() {
        let pos = i + 1;
        let Some(t) = t else {
            return Err(AutoscaleError::invalid(
                "ts",
                format!("NULL at position {pos}"),
                "timestamps, none NULL",
            ));
        };
        let micros = pg_sys::TimestampTz::from(*t);
        if micros == i64::MAX || micros == i64::MIN {
            return Err(AutoscaleError::invalid(
                "ts",
                format!("infinity at position {pos}"),
                "finite timestamps",
            ));
        }
        let at = micros as f64 / 1e6 + PG_EPOCH_SECS;
        if let Some(prev) = out.last().filter(|p| **p >= at) {
            return Err(AutoscaleError::invalid(
                "ts",
                format!(
                    "position {pos} is not after position {i} ({at} <= {prev}, seconds since 1970)"
                ),
                "timestamps in strictly ascending order (sort them: ORDER BY ts)",
            ));
        }
        out.push(at);
    }
    Ok(out)
}

/// Replays a series the caller brings (say, exported from Prometheus: a timestamp and the
/// per-worker value of a policy's metric, measured with start_workers workers) through each
/// stored policy (or the one named) and the stored schedules, simulating that each scale-out or
/// scale-in changes the per-worker value as demand / workers after operation_time. Per policy:
/// minutes above each threshold, worker-minutes, scale-outs and scale-ins, reversals within 30
/// minutes. Acts on nothing, records nothing.
#[allow(clippy::type_complexity)]
#[pg_extern(stable)]
fn backtest_series(
    ts: Option<Vec<Option<TimestampWithTimeZone>>>,
    value: Option<Vec<Option<f64>>>,
    policy: default!(Option<&str>, "NULL"),
    operation_time: default!(Option<Interval>, "'3 minutes'"),
    start_workers: default!(Option<i32>, "NULL"),
    thresholds: default!(Option<Vec<Option<f64>>>, "'{70,80,90}'"),
) -> TableIterator<
    'static,
    (
        name!(policy, String),
        name!(minutes, f64),
        name!(minutes_above, JsonB),
        name!(worker_minutes, f64),
        name!(scale_outs, i32),
        name!(scale_ins, i32),
        name!(reversals, i32),
        name!(start_workers, i32),
        name!(end_workers, i32),
        name!(peak_workers, i32),
    ),
> {
    let ts = req("ts", ts, "an array of timestamps in ascending order");
    let value = req("value", value, "an array of numbers, one per timestamp");
    if ts.len() != value.len() {
        AutoscaleError::invalid(
            "value",
            format!("{} elements (ts has {})", value.len(), ts.len()),
            "as many elements as ts: one value per timestamp",
        )
        .report();
    }
    if ts.len() < 2 || ts.len() > MAX_SERIES_POINTS {
        AutoscaleError::invalid(
            "ts",
            format!("{} elements", ts.len()),
            format!("between 2 and {MAX_SERIES_POINTS} points"),
        )
        .report();
    }
    let at = series_times(&ts).or_report();
    let values: Vec<f64> = value
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(v) if v.is_finite() && *v >= 0.0 => *v,
            other => AutoscaleError::invalid(
                "value",
                format!(
                    "{} at position {}",
                    other.map_or("NULL".to_string(), |v| v.to_string()),
                    i + 1
                ),
                "finite numbers >= 0, none NULL",
            )
            .report(),
        })
        .collect();
    let op_secs = duration_arg(
        "operation_time",
        req("operation_time", operation_time, "an interval >= 0"),
    )
    .or_report();
    let start = start_workers.map(|w| {
        u32::try_from(w)
            .ok()
            .filter(|w| (1..=autoscale_core::schedule::MAX_WORKERS_LIMIT).contains(w))
            .unwrap_or_else(|| {
                AutoscaleError::invalid(
                    "start_workers",
                    w,
                    "an integer between 1 and 1000 (the workers the series was measured with), or \
                     NULL for each policy's min_workers",
                )
                .report()
            })
    });
    let thresholds: Vec<f64> = req("thresholds", thresholds, "an array of numbers")
        .into_iter()
        .map(|t| match t {
            Some(t) if t.is_finite() => t,
            other => AutoscaleError::invalid(
                "thresholds",
                other.map_or("NULL".to_string(), |v| v.to_string()),
                "finite numbers, none NULL",
            )
            .report(),
        })
        .collect();
    let rows = decide::backtest_series(&at, &values, policy, op_secs, start, &thresholds)
        .or_report()
        .into_iter()
        .map(|(name, s)| {
            let round = |v: f64| (v * 1000.0).round() / 1000.0;
            let above: serde_json::Map<String, serde_json::Value> = s
                .minutes_above
                .iter()
                .map(|(t, m)| (format!("{t}"), serde_json::json!(round(*m))))
                .collect();
            (
                name,
                round(s.minutes),
                JsonB(serde_json::Value::Object(above)),
                round(s.worker_minutes),
                s.scale_outs as i32,
                s.scale_ins as i32,
                s.reversals as i32,
                s.start_workers as i32,
                s.end_workers as i32,
                s.peak_workers as i32,
            )
        })
        .collect::<Vec<_>>();
    TableIterator::new(rows)
}
