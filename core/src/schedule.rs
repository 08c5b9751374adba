//! Schedules: worker bounds by the clock (like AWS scheduled actions or KEDA's cron scaler).
//!
//! A schedule says "from these starts, for this long, keep the cluster between these bounds":
//!
//! ```text
//! name 'business-hours', cron '0 8 * * 1-5', duration 10h, time_zone 'Europe/Berlin', min_workers 6
//! ```
//!
//! - **cron** is a 5-field expression, `minute hour day-of-month month day-of-week`, read on the
//!   wall clock of `time_zone`. Each field is `*`, a number, a range `a-b`, a step `*/n`, `a-b/n`
//!   or `a/n` (from `a` to the end), or a comma-separated list of those. Months may be named
//!   (`jan`..`dec`) and days of the week too (`sun`..`sat`); day of week 0 and 7 are Sunday. As in
//!   every cron since Vixie's, when both day-of-month and day-of-week are restricted (neither
//!   starts with `*`) a day matches if either does.
//! - Every minute the cron matches **starts a window** that lasts **duration** (1 minute to 7
//!   days) of elapsed time. The schedule applies at an instant when a window started at or before
//!   it and has not ended: `start <= t < start + duration`. Windows of one schedule may overlap
//!   (`*/5 * * * *` with 10 minutes): the schedule applies until the latest one ends.
//! - **time_zone** is an IANA name (`Europe/Berlin`, `America/New_York`, `UTC`; default `UTC`).
//!   Daylight saving time:
//!   - *clocks go forward* (Europe/Berlin, last Sunday of March, 02:00 -> 03:00): a start in the
//!     skipped hour (`30 2 * * *`) happens when the clocks resume, at 03:00 local; it is not lost.
//!   - *clocks go back* (last Sunday of October, 03:00 -> 02:00): a wall-clock time that happens
//!     twice starts a window once, at its first occurrence (02:30 summer time).
//!   - the duration is elapsed time: a 10-hour window started at 20:00 on the night the clocks
//!     go back ends at 05:00 local, not 06:00.
//! - **min_workers** and/or **max_workers** (at least one): while the schedule applies, they
//!   replace the policy's bounds.
//! - **Overlaps**: when several schedules apply, the highest `min_workers` among those that give
//!   one and the highest `max_workers` among those that give one win: more capacity wins. A bound
//!   no applying schedule gives stays the policy's. When the result has min above max (a
//!   schedule's min_workers above the policy's or another schedule's max_workers), max_workers is
//!   raised to min_workers: a schedule's minimum is a promise of capacity.
//!
//! [`Schedule::compile`] validates (errors name the argument, the value and what is allowed),
//! [`effective_bounds`] evaluates at an instant, [`clamp`] applies the bounds to a decision's
//! desired workers, [`Effect::explain`] says it in one line.

use chrono::offset::LocalResult;
use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::duration::format_secs;

/// Shortest window.
pub const MIN_DURATION: f64 = 60.0;
/// Longest window: a week (a weekly cron with a week's duration covers all time).
pub const MAX_DURATION: f64 = 7.0 * 86_400.0;
/// Largest accepted worker bound (as for policies).
pub const MAX_WORKERS_LIMIT: u32 = 1000;

fn utc() -> String {
    "UTC".to_string()
}

/// A schedule as the user gives it. `duration` in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    #[serde(default)]
    pub min_workers: Option<u32>,
    #[serde(default)]
    pub max_workers: Option<u32>,
    #[serde(default = "utc")]
    pub time_zone: String,
    pub duration: f64,
}

/// Why a schedule is not valid. The message names the argument, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("name: {0:?}: must be 1 to 63 characters")]
    Name(String),
    #[error("cron: {cron:?}: {reason}")]
    Cron { cron: String, reason: String },
    #[error("time_zone: {0:?}: not a known time zone (an IANA name such as Europe/Berlin, America/New_York or UTC)")]
    TimeZone(String),
    #[error("duration: {0}: must be between 1 minute and 7 days")]
    Duration(String),
    #[error("min_workers and max_workers: neither given: a schedule sets at least one")]
    NoBounds,
    #[error("{argument}: {value}: must be between {low} and {MAX_WORKERS_LIMIT}")]
    Workers {
        argument: &'static str,
        value: u32,
        low: u32,
    },
    #[error("min_workers {min} > max_workers {max}")]
    Bounds { min: u32, max: u32 },
}

impl ScheduleError {
    /// The argument the error is about (for SQL error details).
    pub fn argument(&self) -> &'static str {
        match self {
            ScheduleError::Name(_) => "name",
            ScheduleError::Cron { .. } => "cron",
            ScheduleError::TimeZone(_) => "time_zone",
            ScheduleError::Duration(_) => "duration",
            ScheduleError::NoBounds | ScheduleError::Bounds { .. } => "min_workers",
            ScheduleError::Workers { argument, .. } => argument,
        }
    }
}

/// A parsed 5-field cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Day of month or day of week starts with `*`: both must match (else either).
    day_and: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    what: &'static str,
    lo: u32,
    hi: u32,
    names: &'static [&'static str],
    /// First name's value.
    name_base: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        what: "minute",
        lo: 0,
        hi: 59,
        names: &[],
        name_base: 0,
    },
    Field {
        what: "hour",
        lo: 0,
        hi: 23,
        names: &[],
        name_base: 0,
    },
    Field {
        what: "day of month",
        lo: 1,
        hi: 31,
        names: &[],
        name_base: 1,
    },
    Field {
        what: "month",
        lo: 1,
        hi: 12,
        names: &MONTHS,
        name_base: 1,
    },
    // 7 is Sunday too
    Field {
        what: "day of week",
        lo: 0,
        hi: 7,
        names: &WEEKDAYS,
        name_base: 0,
    },
];

impl Field {
    fn value(&self, s: &str) -> Result<u32, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(self.name_base + i as u32);
        }
        let v: u32 = s.parse().map_err(|_| {
            if self.names.is_empty() {
                format!("{} {s:?} is not a number", self.what)
            } else {
                format!(
                    "{} {s:?} is not a number or a name ({}..{})",
                    self.what,
                    self.names[0],
                    self.names[self.names.len() - 1]
                )
            }
        })?;
        if v < self.lo || v > self.hi {
            return Err(format!(
                "{} {v} is outside {}-{}",
                self.what, self.lo, self.hi
            ));
        }
        Ok(v)
    }

    /// The set of values (bit i = value i).
    fn parse(&self, s: &str) -> Result<u64, String> {
        let mut set = 0u64;
        for item in s.split(',') {
            if item.is_empty() {
                return Err(format!("{} {s:?} has an empty list item", self.what));
            }
            let (range, step) = match item.split_once('/') {
                Some((r, st)) => {
                    let n: u32 = st
                        .parse()
                        .map_err(|_| format!("{} step {st:?} is not a number", self.what))?;
                    if n == 0 || n > self.hi {
                        return Err(format!("{} step {n} is outside 1-{}", self.what, self.hi));
                    }
                    (r, Some(n))
                }
                None => (item, None),
            };
            let (a, b) = if range == "*" {
                (self.lo, self.hi)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(format!(
                        "{} range {a}-{b} goes backwards (write {a}-{} and {}-{b} as a list)",
                        self.what, self.hi, self.lo
                    ));
                }
                (a, b)
            } else {
                let a = self.value(range)?;
                (a, if step.is_some() { self.hi } else { a })
            };
            let mut v = a;
            while v <= b {
                set |= 1u64 << v;
                v += step.unwrap_or(1);
            }
        }
        Ok(set)
    }
}

impl Cron {
    /// Parses `minute hour day-of-month month day-of-week`; the error says which field and why.
    pub fn parse(s: &str) -> Result<Cron, ScheduleError> {
        let err = |reason: String| ScheduleError::Cron {
            cron: s.to_string(),
            reason,
        };
        let parts: Vec<&str> = s.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
                parts.len()
            )));
        }
        let mut sets = [0u64; 5];
        for (i, (f, p)) in FIELDS.iter().zip(&parts).enumerate() {
            sets[i] = f.parse(p).map_err(err)?;
        }
        let mut weekdays = sets[4];
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        Ok(Cron {
            text: parts.join(" "),
            minutes: sets[0],
            hours: sets[1] as u32,
            days: sets[2] as u32,
            months: sets[3] as u16,
            weekdays: weekdays as u8,
            day_and: parts[2].starts_with('*') || parts[4].starts_with('*'),
        })
    }

    /// The expression, fields separated by one space.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the wall-clock minute `t` matches (seconds are ignored).
    pub fn matches(&self, t: &NaiveDateTime) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        let day = if self.day_and { dom && dow } else { dom || dow };
        day && self.minutes & (1 << t.minute()) != 0
            && self.hours & (1 << t.hour()) != 0
            && self.months & (1 << t.month()) != 0
    }
}

/// A validated schedule: its cron parsed, its time zone found.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledSchedule {
    pub schedule: Schedule,
    pub cron: Cron,
    pub tz: Tz,
}

/// The time zone named `s` (an IANA name as spelled there; `utc` in any case).
pub fn parse_time_zone(s: &str) -> Result<Tz, ScheduleError> {
    let t = s.trim();
    let t = if t.eq_ignore_ascii_case("utc") {
        "UTC"
    } else {
        t
    };
    t.parse::<Tz>()
        .ok()
        .ok_or_else(|| ScheduleError::TimeZone(s.to_string()))
}

impl Schedule {
    /// Validates and compiles the schedule.
    pub fn compile(&self) -> Result<CompiledSchedule, ScheduleError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 63 {
            return Err(ScheduleError::Name(self.name.clone()));
        }
        let cron = Cron::parse(&self.cron)?;
        let tz = parse_time_zone(&self.time_zone)?;
        if !(self.duration.is_finite() && (MIN_DURATION..=MAX_DURATION).contains(&self.duration)) {
            let v = if self.duration.is_finite() && self.duration > 0.0 {
                format_secs(self.duration)
            } else {
                format!("{}s", self.duration)
            };
            return Err(ScheduleError::Duration(v));
        }
        if self.min_workers.is_none() && self.max_workers.is_none() {
            return Err(ScheduleError::NoBounds);
        }
        if let Some(v) = self.min_workers.filter(|v| *v > MAX_WORKERS_LIMIT) {
            return Err(ScheduleError::Workers {
                argument: "min_workers",
                value: v,
                low: 0,
            });
        }
        if let Some(v) = self
            .max_workers
            .filter(|v| *v < 1 || *v > MAX_WORKERS_LIMIT)
        {
            return Err(ScheduleError::Workers {
                argument: "max_workers",
                value: v,
                low: 1,
            });
        }
        if let (Some(min), Some(max)) = (self.min_workers, self.max_workers) {
            if min > max {
                return Err(ScheduleError::Bounds { min, max });
            }
        }
        Ok(CompiledSchedule {
            schedule: self.clone(),
            cron,
            tz,
        })
    }
}

/// Epoch seconds to an instant (`None` when out of chrono's range or not finite).
pub fn instant(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() {
        return None;
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos)
}

fn minute_floor(secs: f64) -> i64 {
    (secs / 60.0).floor() as i64 * 60
}

/// One window of a schedule, epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub start: f64,
    pub end: f64,
}

impl CompiledSchedule {
    fn local(&self, secs: i64) -> Option<NaiveDateTime> {
        Some(
            DateTime::from_timestamp(secs, 0)?
                .with_timezone(&self.tz)
                .naive_local(),
        )
    }

    /// Whether a window starts at the UTC minute `secs` (a multiple of 60).
    pub fn starts_at(&self, secs: i64) -> bool {
        let Some(local) = self.local(secs) else {
            return false;
        };
        if self.cron.matches(&local) {
            // a wall-clock time the clocks pass twice starts once, at its first occurrence
            return match self.tz.from_local_datetime(&local) {
                LocalResult::Ambiguous(_, later) => later.timestamp() != secs,
                _ => true,
            };
        }
        // the clocks jumped forward just before this minute: the skipped wall-clock minutes
        // that match start here
        let Some(prev) = self.local(secs - 60) else {
            return false;
        };
        let mut m = prev + chrono::Duration::minutes(1);
        let mut guard = 0;
        while m < local && guard < 24 * 60 {
            if self.cron.matches(&m) {
                return true;
            }
            m += chrono::Duration::minutes(1);
            guard += 1;
        }
        false
    }

    /// The window that applies at `at` (the latest-starting one), if any.
    pub fn window_at(&self, at: f64) -> Option<Window> {
        if !at.is_finite() {
            return None;
        }
        let d = self.schedule.duration;
        let mut s = minute_floor(at);
        while (s as f64) > at - d {
            if self.starts_at(s) {
                return Some(Window {
                    start: s as f64,
                    end: s as f64 + d,
                });
            }
            s -= 60;
        }
        None
    }

    /// The first window start after `at` and at most `within` seconds later.
    pub fn next_start(&self, at: f64, within: f64) -> Option<f64> {
        if !(at.is_finite() && within.is_finite()) {
            return None;
        }
        let mut s = minute_floor(at) + 60;
        while (s as f64) <= at + within {
            if self.starts_at(s) {
                return Some(s as f64);
            }
            s += 60;
        }
        None
    }

    /// "business-hours (0 8 * * 1-5, 10h, Europe/Berlin)".
    pub fn label(&self) -> String {
        format!(
            "'{}' ({}, {}, {})",
            self.schedule.name,
            self.cron.as_str(),
            format_secs(self.schedule.duration),
            self.tz.name()
        )
    }

    /// `secs` on this schedule's wall clock: "18:00" on the same local day as `at`, else
    /// "2026-03-30 18:00".
    pub fn local_time(&self, secs: f64, at: f64) -> String {
        let (Some(t), Some(a)) = (instant(secs), instant(at)) else {
            return format_secs(secs - at);
        };
        let (t, a) = (t.with_timezone(&self.tz), a.with_timezone(&self.tz));
        if t.date_naive() == a.date_naive() {
            t.format("%H:%M").to_string()
        } else {
            t.format("%Y-%m-%d %H:%M").to_string()
        }
    }
}

/// Worker bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    pub min_workers: u32,
    pub max_workers: u32,
}

/// A schedule that applies at the instant evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Active {
    /// Index in the list given to [`effective_bounds`].
    pub index: usize,
    pub name: String,
    pub min_workers: Option<u32>,
    pub max_workers: Option<u32>,
    pub window: Window,
    /// The window's end on the schedule's wall clock ("18:00").
    pub until: String,
    /// "'business-hours' (0 8 * * 1-5, 10h, Europe/Berlin)".
    pub label: String,
}

/// The bounds in force at an instant and where they come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effect {
    pub at: f64,
    /// The policy's own bounds.
    pub policy: Bounds,
    /// The bounds in force.
    pub bounds: Bounds,
    /// The schedules that apply, in the order given.
    pub active: Vec<Active>,
    /// Index into `active` of the schedule whose min_workers is in force.
    pub min_from: Option<usize>,
    /// Index into `active` of the schedule whose max_workers is in force.
    pub max_from: Option<usize>,
    /// max_workers was raised to the min_workers in force (a schedule's min above the max).
    pub max_raised_to_min: bool,
}

/// The bounds at `at` (epoch seconds) for a policy with bounds `policy`, under `schedules`:
/// the highest given min_workers and the highest given max_workers of the schedules that apply
/// (ties: the first in the list); the policy's where none gives one; max raised to min.
pub fn effective_bounds(policy: Bounds, schedules: &[CompiledSchedule], at: f64) -> Effect {
    let mut active = Vec::new();
    for (index, s) in schedules.iter().enumerate() {
        if let Some(window) = s.window_at(at) {
            active.push(Active {
                index,
                name: s.schedule.name.clone(),
                min_workers: s.schedule.min_workers,
                max_workers: s.schedule.max_workers,
                window,
                until: s.local_time(window.end, at),
                label: s.label(),
            });
        }
    }
    let pick = |get: fn(&Active) -> Option<u32>| -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (i, a) in active.iter().enumerate() {
            if let Some(v) = get(a) {
                if best.is_none_or(|(_, b)| v > b) {
                    best = Some((i, v));
                }
            }
        }
        best.map(|(i, _)| i)
    };
    let min_from = pick(|a| a.min_workers);
    let max_from = pick(|a| a.max_workers);
    let min = min_from.map_or(policy.min_workers, |i| active[i].min_workers.unwrap_or(0));
    let max = max_from.map_or(policy.max_workers, |i| active[i].max_workers.unwrap_or(0));
    let max_raised_to_min = min > max;
    Effect {
        at,
        policy,
        bounds: Bounds {
            min_workers: min,
            max_workers: max.max(min),
        },
        active,
        min_from,
        max_from,
        max_raised_to_min,
    }
}

/// `desired` workers within the bounds in force.
pub fn clamp(desired: u32, effect: &Effect) -> u32 {
    desired.clamp(effect.bounds.min_workers, effect.bounds.max_workers)
}

fn verb(new: u32, old: u32) -> &'static str {
    match new.cmp(&old) {
        std::cmp::Ordering::Greater => "raises",
        std::cmp::Ordering::Less => "lowers",
        std::cmp::Ordering::Equal => "keeps",
    }
}

impl Effect {
    /// One line for explain(): "schedule 'business-hours' (0 8 * * 1-5, 10h, Europe/Berlin)
    /// raises min_workers to 6 until 18:00"; `None` when no schedule applies.
    pub fn explain(&self) -> Option<String> {
        if self.active.is_empty() {
            return None;
        }
        let mut parts: Vec<String> = Vec::new();
        let mut said = |i: usize, what: String| {
            let a = &self.active[i];
            parts.push(format!("schedule {} {what} until {}", a.label, a.until));
        };
        match (self.min_from, self.max_from) {
            (Some(i), Some(j)) if i == j => said(
                i,
                format!(
                    "{} min_workers to {} and {} max_workers to {}",
                    verb(self.bounds.min_workers, self.policy.min_workers),
                    self.bounds.min_workers,
                    verb(
                        self.active[j].max_workers.unwrap_or(0),
                        self.policy.max_workers
                    ),
                    self.active[j].max_workers.unwrap_or(0)
                ),
            ),
            (min, max) => {
                if let Some(i) = min {
                    said(
                        i,
                        format!(
                            "{} min_workers to {}",
                            verb(self.bounds.min_workers, self.policy.min_workers),
                            self.bounds.min_workers
                        ),
                    );
                }
                if let Some(j) = max {
                    let v = self.active[j].max_workers.unwrap_or(0);
                    said(
                        j,
                        format!("{} max_workers to {v}", verb(v, self.policy.max_workers)),
                    );
                }
            }
        }
        if self.max_raised_to_min {
            parts.push(format!(
                "max_workers raised to {} to meet min_workers",
                self.bounds.max_workers
            ));
        }
        let shadowed: Vec<&str> = self
            .active
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.min_from && Some(*i) != self.max_from)
            .map(|(_, a)| a.name.as_str())
            .collect();
        if !shadowed.is_empty() {
            parts.push(format!(
                "also applying, bounds not higher: {}",
                shadowed
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Some(parts.join("; "))
    }

    /// `desired` clamped, and a line when the clamp changed it: "4 -> 6 workers: schedule ...".
    pub fn apply(&self, desired: u32) -> (u32, Option<String>) {
        let n = clamp(desired, self);
        if n == desired {
            return (n, None);
        }
        let why = self.explain().unwrap_or_else(|| {
            format!(
                "min_workers {}, max_workers {}",
                self.bounds.min_workers, self.bounds.max_workers
            )
        });
        (n, Some(format!("{desired} -> {n} workers: {why}")))
    }
}

/// Compiles every schedule; the first error is returned with the schedule's name in front.
pub fn compile_all(schedules: &[Schedule]) -> Result<Vec<CompiledSchedule>, String> {
    schedules
        .iter()
        .map(|s| {
            s.compile()
                .map_err(|e| format!("schedule {:?}: {e}", s.name))
        })
        .collect()
}

#[cfg(test)]
mod tests;
