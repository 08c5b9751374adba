//! The maintenance window (`autoscale.maintenance_window`): daily UTC hours, optionally on some
//! days of the week only.
//!
//! Forms: `02:00-04:00` (daily), `22:00-02:00` (wraps midnight: it belongs to the day it starts
//! on), `sat,sun 00:00-06:00`, `mon-fri 01:00-03:00`, `fri-mon 20:00-23:00` (day ranges wrap too).
//! Days are `mon`..`sun` or full names, case-insensitive; `24:00` is allowed as an end. A trailing
//! `UTC` is accepted. The empty string means "no window" and is handled by the caller.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::OpError;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const ALL_DAYS: u8 = 0b111_1111;
const DAY_MINUTES: u16 = 24 * 60;

/// A parsed maintenance window. Serialized as its canonical text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MaintenanceWindow {
    /// Bit 0 = Monday .. bit 6 = Sunday: the days the window starts on.
    days: u8,
    /// Minute of the day the window opens, 0..1440.
    start: u16,
    /// Minute of the day it closes, 1..=1440; at or before `start` it closes the next day.
    end: u16,
}

impl MaintenanceWindow {
    /// Parses `[days ]HH:MM-HH:MM[ UTC]`; errors name the bad part and the allowed format.
    pub fn parse(s: &str) -> Result<MaintenanceWindow, OpError> {
        let err = |problem: String| OpError::Window {
            input: s.to_string(),
            problem,
        };
        let mut text = s.trim();
        if text.is_empty() {
            return Err(err("empty window".to_string()));
        }
        if let Some((head, tail)) = text.rsplit_once(char::is_whitespace) {
            if tail.eq_ignore_ascii_case("utc") {
                text = head.trim_end();
            }
        }
        // Days never contain digits: the time range starts at the first digit.
        let split = text
            .find(|c: char| c.is_ascii_digit())
            .ok_or_else(|| err("no time range HH:MM-HH:MM".to_string()))?;
        let (days_text, range) = (text[..split].trim(), text[split..].trim());
        let days = if days_text.is_empty() {
            ALL_DAYS
        } else {
            parse_days(days_text).map_err(err)?
        };
        let (a, b) = range
            .split_once('-')
            .ok_or_else(|| err(format!("time range {range:?} has no '-'")))?;
        let start = parse_time(a, false).map_err(err)?;
        let end = parse_time(b, true).map_err(err)?;
        if start == end {
            return Err(err(format!(
                "time range {range:?} is empty (start equals end); use 00:00-24:00 for whole days"
            )));
        }
        Ok(MaintenanceWindow { days, start, end })
    }

    /// Whether the window is open at `epoch_secs` (UTC). Non-finite times are outside.
    pub fn contains(&self, epoch_secs: f64) -> bool {
        if !epoch_secs.is_finite() {
            return false;
        }
        let (weekday, minute) = weekday_minute(epoch_secs);
        if self.start < self.end {
            self.has_day(weekday) && self.start <= minute && minute < self.end
        } else {
            (self.has_day(weekday) && minute >= self.start)
                || (self.has_day((weekday + 6) % 7) && minute < self.end)
        }
    }

    /// Seconds until the window next opens: 0 when open now, None for a non-finite time.
    pub fn opens_in(&self, epoch_secs: f64) -> Option<f64> {
        if !epoch_secs.is_finite() {
            return None;
        }
        if self.contains(epoch_secs) {
            return Some(0.0);
        }
        let day_start = (epoch_secs / 86_400.0).floor() * 86_400.0;
        let (weekday, _) = weekday_minute(epoch_secs);
        (0..=7u8)
            .filter(|d| self.has_day((weekday + d) % 7))
            .map(|d| day_start + f64::from(d) * 86_400.0 + f64::from(self.start) * 60.0)
            .find(|t| *t > epoch_secs)
            .map(|t| t - epoch_secs)
    }

    /// Whether the window opens on `weekday` (0 = Monday .. 6 = Sunday).
    pub fn has_day(&self, weekday: u8) -> bool {
        weekday < 7 && self.days & (1 << weekday) != 0
    }

    /// Minute of the day the window opens (UTC).
    pub fn start_minute(&self) -> u16 {
        self.start
    }

    /// Minute of the day the window closes (UTC), 1..=1440; at or before the start it closes the
    /// next day.
    pub fn end_minute(&self) -> u16 {
        self.end
    }
}

/// (weekday 0 = Monday, minute of the day) of a finite epoch time, UTC.
fn weekday_minute(epoch_secs: f64) -> (u8, u16) {
    let t = epoch_secs.floor() as i64;
    let days = t.div_euclid(86_400);
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    let weekday = (days + 3).rem_euclid(7) as u8;
    let minute = (t.rem_euclid(86_400) / 60) as u16;
    (weekday, minute)
}

fn parse_day(s: &str) -> Result<u8, String> {
    let t = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| *d == t)
        .or_else(|| FULL_DAYS.iter().position(|d| *d == t))
        .map(|i| i as u8)
        .ok_or_else(|| {
            format!(
                "bad day {s:?} (use mon, tue, wed, thu, fri, sat, sun, a list such as sat,sun \
                 or a range such as mon-fri)"
            )
        })
}

fn parse_days(s: &str) -> Result<u8, String> {
    let mut mask = 0u8;
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("empty day in {s:?}"));
        }
        match item.split_once('-') {
            Some((a, b)) => {
                if a.trim().is_empty() || b.trim().is_empty() {
                    return Err(format!(
                        "bad day range {item:?} (a range is two days, such as mon-fri)"
                    ));
                }
                let (a, b) = (parse_day(a)?, parse_day(b)?);
                let mut d = a;
                loop {
                    mask |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << parse_day(item)?,
        }
    }
    Ok(mask)
}

/// `H:MM` or `HH:MM` as a minute of the day; `24:00` only as an end.
fn parse_time(s: &str, is_end: bool) -> Result<u16, String> {
    let bad = || {
        format!(
            "bad time {s:?} (use HH:MM from 00:00 to 23:59{})",
            if is_end { ", or 24:00 as an end" } else { "" }
        )
    };
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let digits = |x: &str, max_len: usize| {
        !x.is_empty() && x.len() <= max_len && x.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) if is_end => Ok(DAY_MINUTES),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl fmt::Display for MaintenanceWindow {
    /// Canonical text: `mon-fri 01:00-03:00 UTC`, `02:00-04:00 UTC` (every day).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.days & ALL_DAYS != ALL_DAYS {
            let mut parts = Vec::new();
            let mut d = 0u8;
            while d < 7 {
                if self.has_day(d) {
                    let first = d;
                    while d + 1 < 7 && self.has_day(d + 1) {
                        d += 1;
                    }
                    parts.push(match d - first {
                        0 => DAYS[first as usize].to_string(),
                        1 => format!("{},{}", DAYS[first as usize], DAYS[d as usize]),
                        _ => format!("{}-{}", DAYS[first as usize], DAYS[d as usize]),
                    });
                }
                d += 1;
            }
            write!(f, "{} ", parts.join(","))?;
        }
        write!(f, "{}-{} UTC", hhmm(self.start), hhmm(self.end))
    }
}

impl FromStr for MaintenanceWindow {
    type Err = OpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MaintenanceWindow::parse(s)
    }
}

impl TryFrom<String> for MaintenanceWindow {
    type Error = OpError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MaintenanceWindow::parse(&s)
    }
}

impl From<MaintenanceWindow> for String {
    fn from(w: MaintenanceWindow) -> String {
        w.to_string()
    }
}
