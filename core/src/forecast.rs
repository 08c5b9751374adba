//! Forecasting load a few minutes (or months) ahead, and how long a scale-out really takes.
//!
//! The short-term model is a seasonal profile times a recent trend:
//!
//! ```text
//! load(t) = (level + slope * (t - now)) * profile(t)
//! ```
//!
//! - `profile` is the load by hour of day, relative to its mean (1.0 = an average hour), fitted
//!   from hourly averages once a whole day is recorded, and by hour of week once two whole weeks
//!   are; linearly interpolated between hour centres. Without it the profile is 1.
//! - `level` and `slope` are a robust (Theil-Sen: median of pairwise slopes) line through the
//!   deseasonalised 1-minute averages of the last `trend_window`, so a burst or a lull of a minute
//!   does not tilt it.
//!   The slope is followed for one trend window past now, then held flat.
//! - The model measures its own error: the mean absolute error of one-step-ahead forecasts (each
//!   1-minute bucket forecast from the buckets before it) over the last `error_window`. It is not
//!   used while the history is too short to measure that, or while the error, relative to the mean
//!   load, is above `max_error`. When a profile exists, the seasonal model is used unless its
//!   error is more than 10% above the trend alone's.
//!
//! [`Forecaster`] is incremental (push samples one by one, as a replay does; each bucket's error
//! is computed once, when the bucket completes); [`fit`] builds one from recorded points.
//! [`lead_time`] turns recorded scale-out durations into the horizon a forecast must look ahead.
//! [`linear_trend`] is the least-squares line the capacity plan extrapolates by months.

use std::collections::VecDeque;

use serde::Serialize;

use crate::duration::format_secs;

mod cycle;
pub use cycle::{detect_period, Cycle, NoPeriod, Periodicity};

pub const MINUTE: f64 = 60.0;
pub const HOUR: f64 = 3600.0;
pub const DAY: f64 = 86_400.0;
pub const WEEK: f64 = 7.0 * DAY;

/// Smallest profile factor: an hour that was (nearly) idle must not divide by zero.
const MIN_PROFILE: f64 = 0.05;
/// The seasonal model is used while its one-step error is at most this times the trend's.
const SEASONAL_SLACK: f64 = 1.1;
/// Most buckets searched for a cycle (3 days of 1-minute buckets + a little).
pub const MAX_CYCLE_BUCKETS: usize = 4400;
/// A cycle's one-step forecasts are judged over this many of its periods (where one period
/// would judge it on whether the latest repetition came on time).
pub const CYCLE_JUDGED_PERIODS: usize = 3;
/// History searched for a cycle by default: 3 days (4320 buckets of a minute).
pub const DEFAULT_CYCLE_WINDOW: f64 = 3.0 * DAY;
/// One-step errors needed before the model's error is trusted.
pub const MIN_ERRORS: usize = 10;

/// Tuning of the short-term model. Durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Width of the buckets recent samples are averaged into.
    pub bucket: f64,
    /// The trend is fitted over this much recent history.
    pub trend_window: f64,
    /// One-step-ahead errors are averaged over this much history before now.
    pub error_window: f64,
    /// Largest mean absolute error, relative to the mean load, for the model to be used.
    pub max_error: f64,
    /// Hourly history needed for a time-of-day profile.
    pub daily_after: f64,
    /// Hourly history needed for an hour-of-week profile.
    pub weekly_after: f64,
    /// History searched for a cycle of any period (seconds; 0: none is searched). A cycle is
    /// searched among the completed buckets of this window, divided by the hourly profile when
    /// there is one, so it is what repeats besides the time of day and the hour of week.
    pub cycle_window: f64,
    /// Shortest period a cycle may have.
    pub cycle_min: f64,
    /// The cycle is searched again after this much new history.
    pub cycle_every: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bucket: MINUTE,
            trend_window: 30.0 * MINUTE,
            error_window: 60.0 * MINUTE,
            max_error: 0.25,
            daily_after: DAY,
            weekly_after: 2.0 * WEEK,
            cycle_window: DEFAULT_CYCLE_WINDOW,
            cycle_min: 10.0 * MINUTE,
            cycle_every: HOUR,
        }
    }
}

impl Config {
    /// The default model at the resolution of a sample interval: buckets of 12 samples, between
    /// 1 s and 1 minute (the default at 5 s and slower), the windows in buckets as by default.
    pub fn for_sample_interval(secs: f64) -> Config {
        let d = Config::default();
        let bucket = if secs.is_finite() && secs > 0.0 {
            (12.0 * secs).clamp(1.0, d.bucket)
        } else {
            d.bucket
        };
        let k = bucket / d.bucket;
        Config {
            bucket,
            trend_window: d.trend_window * k,
            error_window: d.error_window * k,
            ..d
        }
    }

    fn trend_buckets(&self) -> usize {
        ((self.trend_window / self.bucket).round() as usize).max(4)
    }
    /// Buckets a trend needs at least (half the window).
    fn min_fit(&self) -> usize {
        (self.trend_buckets() / 2).max(3)
    }
    fn error_buckets(&self) -> usize {
        ((self.error_window / self.bucket).round() as usize).max(MIN_ERRORS)
    }
    /// Buckets kept for the cycle search (0: none), at most [`MAX_CYCLE_BUCKETS`].
    fn cycle_buckets(&self) -> usize {
        if self.cycle_window.is_finite() && self.cycle_window > 0.0 {
            ((self.cycle_window / self.bucket).round() as usize).min(MAX_CYCLE_BUCKETS)
        } else {
            0
        }
    }
    /// History (seconds) needed before the model can be used at all.
    pub fn min_history(&self) -> f64 {
        (self.min_fit() + MIN_ERRORS) as f64 * self.bucket
    }
}

/// Which seasonal profile the model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Season {
    /// Trend only.
    None,
    /// Hour of day.
    Daily,
    /// Hour of week.
    Weekly,
}

impl Season {
    pub fn as_str(self) -> &'static str {
        match self {
            Season::None => "trend",
            Season::Daily => "time of day x trend",
            Season::Weekly => "hour of week x trend",
        }
    }
    fn period(self) -> Option<f64> {
        match self {
            Season::None => None,
            Season::Daily => Some(DAY),
            Season::Weekly => Some(WEEK),
        }
    }
}

/// Load by hour of the period, relative to the period's mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub season: Season,
    /// One factor per hour of the period (24 or 168), mean 1.
    pub factors: Vec<f64>,
}

impl Profile {
    /// The factor at `t`, linearly interpolated between hour centres.
    pub fn at(&self, t: f64) -> f64 {
        let Some(period) = self.season.period() else {
            return 1.0;
        };
        let n = self.factors.len();
        if n == 0 || !t.is_finite() {
            return 1.0;
        }
        let x = t.rem_euclid(period) / HOUR - 0.5;
        let i = x.floor();
        let f = x - i;
        let i0 = (i as i64).rem_euclid(n as i64) as usize;
        let i1 = (i0 + 1) % n;
        ((1.0 - f) * self.factors[i0] + f * self.factors[i1]).max(MIN_PROFILE)
    }

    /// Fits a profile from hourly averages `(hour start, load)`, ascending: hour of week once
    /// `weekly_after` is covered, hour of day once `daily_after` is, otherwise none. Only the
    /// latest whole periods are used, so every hour of the period weighs the same.
    pub fn fit(hourly: &[(f64, f64)], cfg: &Config) -> Option<Profile> {
        let pts: Vec<(f64, f64)> = hourly
            .iter()
            .copied()
            .filter(|(t, v)| t.is_finite() && v.is_finite() && *v >= 0.0)
            .collect();
        let (first, last) = (pts.first()?.0, pts.last()?.0);
        let span = last - first + HOUR;
        let season = if span >= cfg.weekly_after - 1.0 {
            Season::Weekly
        } else if span >= cfg.daily_after - 1.0 {
            Season::Daily
        } else {
            return None;
        };
        let period = season.period()?;
        let n = (period / HOUR).round() as usize;
        let periods = (span / period).floor().max(1.0);
        let from = last + HOUR - periods * period;
        let mut sum = vec![0.0; n];
        let mut cnt = vec![0usize; n];
        for (t, v) in pts.iter().filter(|(t, _)| *t >= from - 1.0) {
            let slot = ((t.rem_euclid(period) / HOUR).floor() as usize).min(n - 1);
            sum[slot] += v;
            cnt[slot] += 1;
        }
        // at most a few missing hours, filled from their neighbours
        let missing = cnt.iter().filter(|c| **c == 0).count();
        if missing * 8 > n {
            return None;
        }
        let mut means: Vec<Option<f64>> = sum
            .iter()
            .zip(&cnt)
            .map(|(s, c)| (*c > 0).then(|| s / *c as f64))
            .collect();
        for i in 0..n {
            if means[i].is_none() {
                let prev = (1..n).find_map(|k| means[(i + n - k) % n]);
                let next = (1..n).find_map(|k| means[(i + k) % n]);
                means[i] = match (prev, next) {
                    (Some(a), Some(b)) => Some((a + b) / 2.0),
                    (a, b) => a.or(b),
                };
            }
        }
        let means: Vec<f64> = means.into_iter().map(|m| m.unwrap_or(0.0)).collect();
        let mean = means.iter().sum::<f64>() / n as f64;
        if mean.is_nan() || mean <= 0.0 {
            return None;
        }
        Some(Profile {
            season,
            factors: means.iter().map(|m| (m / mean).max(MIN_PROFILE)).collect(),
        })
    }
}

/// A robust line: `y = level + slope * (x - x0)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Line {
    pub x0: f64,
    pub level: f64,
    pub slope: f64,
}

impl Line {
    pub fn at(&self, x: f64) -> f64 {
        self.level + self.slope * (x - self.x0)
    }
}

/// The median of `v` (sorted in place); `None` when empty.
pub(crate) fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Theil-Sen line through `pts`, its level given at `x0`. `None` for fewer than 2 points.
pub fn theil_sen(pts: &[(f64, f64)], x0: f64) -> Option<Line> {
    if pts.len() < 2 {
        return None;
    }
    let mut slopes = Vec::with_capacity(pts.len() * (pts.len() - 1) / 2);
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            let dx = b.0 - a.0;
            if dx.abs() > 1e-9 {
                slopes.push((b.1 - a.1) / dx);
            }
        }
    }
    let slope = median(&mut slopes)?;
    let mut res: Vec<f64> = pts.iter().map(|(x, y)| y - slope * (x - x0)).collect();
    let level = median(&mut res)?;
    Some(Line { x0, level, slope })
}

/// Least-squares line through `pts`, its level given at `x0`; `None` for fewer than 2 distinct x.
pub fn linear_trend(pts: &[(f64, f64)], x0: f64) -> Option<Line> {
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx.is_nan() || sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    Some(Line {
        x0,
        level: my + slope * (x0 - mx),
        slope,
    })
}

/// A fitted short-term model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub now: f64,
    pub season: Season,
    #[serde(skip)]
    pub profile: Option<Profile>,
    /// A cycle found in the data, used when it made the one-step forecasts better.
    #[serde(skip)]
    pub cycle: Option<Cycle>,
    /// What the cycle search found and whether the model uses it (`None`: no search).
    pub cycle_note: Option<String>,
    /// Deseasonalised trend, level at `now`.
    pub trend: Line,
    /// The trend's slope is followed this far past `now` (the trend window), then held flat: a
    /// line fitted over half an hour says little about the next day; the profile does.
    pub trend_horizon: f64,
    /// Mean absolute error of the one-step-ahead forecasts, in load units.
    pub mae: f64,
    /// `mae` relative to the mean load over the same buckets.
    pub relative_error: f64,
    /// One-step forecasts the error was measured on.
    pub errors: usize,
    /// Recent history the model saw, seconds.
    pub history: f64,
}

impl Model {
    /// The forecast load at `t` (never negative).
    pub fn predict(&self, t: f64) -> f64 {
        let p = self.profile.as_ref().map_or(1.0, |p| p.at(t))
            * self.cycle.as_ref().map_or(1.0, |c| c.at(t));
        let x = t.min(self.now + self.trend_horizon.max(0.0));
        (self.trend.at(x) * p).max(0.0)
    }

    /// First time in `[from, to]` at which the forecast is above `level`: scanned every `step`,
    /// then narrowed to a second between the last time below and the first above.
    pub fn first_crossing(&self, level: f64, from: f64, to: f64, step: f64) -> Option<f64> {
        let step = step.max(1.0);
        if self.predict(from) > level {
            return Some(from);
        }
        let mut below = from;
        let mut t = from;
        while t < to {
            t = (t + step).min(to);
            if self.predict(t) > level {
                let mut above = t;
                while above - below > 1.0 {
                    let mid = (below + above) / 2.0;
                    if self.predict(mid) > level {
                        above = mid;
                    } else {
                        below = mid;
                    }
                }
                return Some(above);
            }
            below = t;
        }
        None
    }

    /// Highest forecast in `[from, to]`, scanning every `step`.
    pub fn peak(&self, from: f64, to: f64, step: f64) -> f64 {
        let step = step.max(1.0);
        let mut t = from;
        let mut best = self.predict(from);
        while t <= to + 1e-9 {
            best = best.max(self.predict(t));
            t += step;
        }
        best.max(self.predict(to))
    }

    /// "time of day x trend, error 6% over 60 one-step forecasts", with a cycle "a 2h cycle
    /// (strength 0.62) x time of day x trend, error ...; <the cycle note>".
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}{}, error {:.0}% over {} one-step forecasts",
            self.cycle
                .as_ref()
                .map_or(String::new(), |c| format!("{} x ", c.describe())),
            self.season.as_str(),
            self.relative_error * 100.0,
            self.errors
        );
        if let Some(n) = &self.cycle_note {
            s.push_str("; ");
            s.push_str(n);
        }
        s
    }
}

/// Why there is no usable forecast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum NoForecast {
    /// Not enough recent history to measure the model's error.
    TooShort { have: f64, need: f64 },
    /// The model's error is above the gate; what the cycle search found, when one was made.
    TooInaccurate {
        relative_error: f64,
        max: f64,
        cycle_note: Option<String>,
    },
}

impl std::fmt::Display for NoForecast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoForecast::TooShort { have, need } => write!(
                f,
                "no forecast: {} of history, need {}",
                format_secs(*have),
                format_secs(*need)
            ),
            NoForecast::TooInaccurate {
                relative_error,
                max,
                cycle_note,
            } => {
                write!(
                    f,
                    "no forecast: its error ({:.0}%) is above {:.0}%",
                    relative_error * 100.0,
                    max * 100.0
                )?;
                match cycle_note {
                    Some(n) => write!(f, "; {n}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    idx: i64,
    sum: f64,
    n: u32,
}

impl Bucket {
    fn mean(&self) -> f64 {
        self.sum / f64::from(self.n)
    }
}

/// Where [`add_to`] put a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Added {
    /// Into the newest bucket.
    Same,
    /// Nowhere: it is older than the newest bucket.
    Older,
    /// Into a new bucket after the newest.
    New,
}

/// Adds a sample of bucket `idx` to `buckets` (ascending by index).
fn add_to(buckets: &mut VecDeque<Bucket>, idx: i64, load: f64) -> Added {
    match buckets.back_mut() {
        Some(b) if b.idx == idx => {
            b.sum += load;
            b.n += 1;
            Added::Same
        }
        Some(b) if b.idx > idx => Added::Older,
        _ => {
            buckets.push_back(Bucket {
                idx,
                sum: load,
                n: 1,
            });
            Added::New
        }
    }
}

/// One completed bucket's one-step-ahead errors: with the trend alone, with the profile.
#[derive(Debug, Clone, Copy)]
struct StepError {
    actual: f64,
    trend: f64,
    seasonal: Option<f64>,
    /// With the cycle (and the profile, when there is one).
    cycle: Option<f64>,
}

/// Incremental forecaster: push `(time, load)` samples in time order, ask for a model at any time.
#[derive(Debug, Clone)]
pub struct Forecaster {
    cfg: Config,
    buckets: VecDeque<Bucket>,
    hours: VecDeque<Bucket>,
    errors: VecDeque<StepError>,
    profile: Option<Profile>,
    profile_hours: usize,
    first_at: Option<f64>,
    last_at: Option<f64>,
    /// Completed buckets for the cycle search.
    series: VecDeque<Bucket>,
    cycle: Option<Cycle>,
    /// Why there is no cycle (after a search found none).
    no_cycle: Option<NoPeriod>,
    searched_at: Option<i64>,
    /// Whether completed buckets trigger a cycle search every `cycle_every` (a one-shot
    /// [`fit`] searches once, where its judged tail starts).
    searching: bool,
    /// What the last [`Forecaster::model`] said about the cycle.
    last_note: Option<String>,
}

impl Forecaster {
    pub fn new(cfg: Config) -> Forecaster {
        Forecaster {
            cfg,
            buckets: VecDeque::new(),
            hours: VecDeque::new(),
            errors: VecDeque::new(),
            profile: None,
            profile_hours: usize::MAX,
            first_at: None,
            last_at: None,
            series: VecDeque::new(),
            cycle: None,
            no_cycle: None,
            searched_at: None,
            searching: true,
            last_note: None,
        }
    }

    /// What the last [`Forecaster::model`] said about the cycle (also when its error gate kept
    /// the forecast out): "a 2h cycle (strength 0.62) used: ...", "no cycle: ...".
    pub fn cycle_note(&self) -> Option<&str> {
        self.last_note.as_deref()
    }

    /// One-step errors kept: the error window, or three periods of the cycle when longer (a
    /// cycle is judged on [`CYCLE_JUDGED_PERIODS`] periods, at most the cycle window).
    fn error_keep(&self) -> usize {
        self.cfg
            .error_buckets()
            .max(self.cycle.as_ref().map_or(0, |c| {
                (CYCLE_JUDGED_PERIODS * c.found.lag).min(self.cfg.cycle_buckets())
            }))
    }

    /// The cycle in use by the one-step forecasts, if any.
    pub fn cycle(&self) -> Option<&Cycle> {
        self.cycle.as_ref()
    }

    /// Records a completed bucket for the cycle search and searches when due.
    fn record_for_cycle(&mut self, b: Bucket) {
        let keep = self.cfg.cycle_buckets();
        if keep == 0 {
            return;
        }
        self.series.push_back(b);
        while self.series.len() > keep {
            self.series.pop_front();
        }
        let every = ((self.cfg.cycle_every / self.cfg.bucket).round() as i64).max(1);
        if !self.searching || self.searched_at.is_some_and(|s| b.idx - s < every) {
            return;
        }
        if self.cycle_series().is_some() {
            self.search_cycle();
        }
    }

    /// The shortest lag searched, in buckets.
    fn min_cycle_lag(&self) -> usize {
        ((self.cfg.cycle_min / self.cfg.bucket).round() as usize).max(2)
    }

    /// The cycle series as one contiguous vector (gaps NaN), deseasonalised by the hourly
    /// profile, and the index of its first bucket; `None` while shorter than a search needs.
    fn cycle_series(&self) -> Option<(Vec<f64>, i64)> {
        let first = self.series.front()?.idx;
        let last = self.series.back()?.idx;
        let span = (last - first + 1) as usize;
        if span < 2 * self.min_cycle_lag() + MIN_ERRORS {
            return None;
        }
        let mut x = vec![f64::NAN; span];
        for s in &self.series {
            let t = self.center(s.idx);
            x[(s.idx - first) as usize] = s.mean() / self.profile.as_ref().map_or(1.0, |p| p.at(t));
        }
        Some((x, first))
    }

    /// Searches the cycle series now (too short: [`NoPeriod::TooShort`]).
    fn search_cycle(&mut self) {
        self.searched_at = self.series.back().map(|b| b.idx);
        let min_lag = self.min_cycle_lag();
        let Some((x, first)) = self.cycle_series() else {
            self.cycle = None;
            self.no_cycle = Some(NoPeriod::TooShort {
                have: self.series.len(),
                need: 2 * min_lag + MIN_ERRORS,
            });
            return;
        };
        let span = x.len();
        match detect_period(&x, self.cfg.bucket, min_lag, span / 2) {
            Ok(found) => {
                self.cycle = Cycle::fit(found, &x, first, self.cfg.bucket);
                self.no_cycle = None;
            }
            Err(e) => {
                self.cycle = None;
                self.no_cycle = Some(e);
            }
        }
    }

    /// Adds an older sample to the hourly buckets and the cycle series only: no one-step
    /// errors, no search (a one-shot [`fit`]'s history before its judged tail).
    fn preload(&mut self, at: f64, load: f64) {
        if !(at.is_finite() && load.is_finite()) || self.last_at.is_some_and(|l| at < l) {
            return;
        }
        self.first_at.get_or_insert(at);
        self.last_at = Some(at);
        self.push_hour(at, load);
        let idx = (at / self.cfg.bucket).floor() as i64;
        if add_to(&mut self.series, idx, load) == Added::New {
            while self.series.len() > self.cfg.cycle_buckets() {
                self.series.pop_front();
            }
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Adds earlier hourly averages `(hour start, load)` (from rollups) before any sample.
    pub fn seed_hourly(&mut self, hourly: &[(f64, f64)]) {
        for &(t, v) in hourly {
            if t.is_finite() && v.is_finite() {
                add_to(&mut self.hours, (t / HOUR).floor() as i64, v);
            }
        }
        self.trim_hours();
    }

    fn trim_hours(&mut self) {
        let keep = (self.cfg.weekly_after / HOUR).ceil() as usize + 7 * 24;
        while self.hours.len() > keep {
            self.hours.pop_front();
        }
    }

    fn refresh_profile(&mut self) {
        // complete hours only: the newest hour bucket may still fill
        let complete = self.hours.len().saturating_sub(1);
        if complete == self.profile_hours {
            return;
        }
        self.profile_hours = complete;
        let pts: Vec<(f64, f64)> = self
            .hours
            .iter()
            .take(complete)
            .map(|b| (b.idx as f64 * HOUR, b.mean()))
            .collect();
        self.profile = Profile::fit(&pts, &self.cfg);
    }

    fn center(&self, idx: i64) -> f64 {
        (idx as f64 + 0.5) * self.cfg.bucket
    }

    /// Deseasonalised points of the completed buckets in the trend window before bucket `k`.
    fn trend_points(
        &self,
        k: usize,
        profile: Option<&Profile>,
        cycle: Option<&Cycle>,
    ) -> Vec<(f64, f64)> {
        let tb = self.cfg.trend_buckets();
        let end_idx = self.buckets[k].idx;
        self.buckets
            .range(k.saturating_sub(tb)..k)
            .filter(|b| b.idx >= end_idx - tb as i64)
            .map(|b| {
                let t = self.center(b.idx);
                (t, b.mean() / seasonal_factor(profile, cycle, t))
            })
            .collect()
    }

    /// The one-step forecast of bucket `k` from the buckets before it.
    fn one_step(&self, k: usize, profile: Option<&Profile>, cycle: Option<&Cycle>) -> Option<f64> {
        let pts = self.trend_points(k, profile, cycle);
        if pts.len() < self.cfg.min_fit() {
            return None;
        }
        let t = self.center(self.buckets[k].idx);
        let line = theil_sen(&pts, t)?;
        Some((line.level * seasonal_factor(profile, cycle, t)).max(0.0))
    }

    /// Bucket `k` just completed: record its one-step errors.
    fn complete(&mut self, k: usize) {
        self.refresh_profile();
        let actual = self.buckets[k].mean();
        let Some(trend) = self.one_step(k, None, None) else {
            return;
        };
        let seasonal = self
            .profile
            .as_ref()
            .and_then(|p| self.one_step(k, Some(p), None));
        let cycle = self
            .cycle
            .as_ref()
            .and_then(|c| self.one_step(k, self.profile.as_ref(), Some(c)));
        self.errors.push_back(StepError {
            actual,
            trend: (trend - actual).abs(),
            seasonal: seasonal.map(|s| (s - actual).abs()),
            cycle: cycle.map(|s| (s - actual).abs()),
        });
        while self.errors.len() > self.error_keep() {
            self.errors.pop_front();
        }
    }

    /// Adds one sample of the load (samples must come in time order; older ones are ignored).
    pub fn push(&mut self, at: f64, load: f64) {
        if !(at.is_finite() && load.is_finite()) {
            return;
        }
        if self.last_at.is_some_and(|l| at < l) {
            return;
        }
        self.first_at.get_or_insert(at);
        self.last_at = Some(at);
        let had = self.buckets.len();
        match add_to(
            &mut self.buckets,
            (at / self.cfg.bucket).floor() as i64,
            load,
        ) {
            Added::Older => return,
            // the bucket before the new one is complete
            Added::New if had > 0 => {
                let done = self.buckets[had - 1];
                self.record_for_cycle(done);
                self.complete(had - 1);
            }
            _ => {}
        }
        let keep = self.cfg.trend_buckets() + 2;
        while self.buckets.len() > keep {
            self.buckets.pop_front();
        }
        self.push_hour(at, load);
    }

    /// Adds a sample to its hour's bucket.
    fn push_hour(&mut self, at: f64, load: f64) {
        if add_to(&mut self.hours, (at / HOUR).floor() as i64, load) == Added::New {
            self.trim_hours();
        }
    }

    /// The model at `now`, or why there is none.
    pub fn model(&mut self, now: f64) -> Result<Model, NoForecast> {
        self.refresh_profile();
        let have = self
            .first_at
            .zip(self.last_at)
            .map_or(0.0, |(f, l)| (l - f).max(0.0));
        let need = self.cfg.min_history();
        let all = self.errors.len();
        let recent = self
            .errors
            .range(all.saturating_sub(self.cfg.error_buckets())..);
        let n = recent.len();
        if n < MIN_ERRORS {
            return Err(NoForecast::TooShort { have, need });
        }
        let mean_actual = recent.clone().map(|e| e.actual.abs()).sum::<f64>() / n as f64;
        let mae_trend = recent.clone().map(|e| e.trend).sum::<f64>() / n as f64;
        let seasonal: Vec<f64> = recent.clone().filter_map(|e| e.seasonal).collect();
        let mae_seasonal = (seasonal.len() >= MIN_ERRORS)
            .then(|| seasonal.iter().sum::<f64>() / seasonal.len() as f64);
        // the profile knows days or weeks the trend does not: it is used unless it makes the
        // one-step forecasts clearly worse than the trend alone
        let (mut profile, mut mae, mut errors) = match (&self.profile, mae_seasonal) {
            (Some(p), Some(m)) if m <= SEASONAL_SLACK * mae_trend => {
                (Some(p.clone()), m, seasonal.len())
            }
            _ => (None, mae_trend, n),
        };
        let relative = |mae: f64, mean_actual: f64| {
            if mean_actual > 0.0 {
                mae / mean_actual
            } else if mae == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        };
        let mut relative_error = relative(mae, mean_actual);
        // the cycle, judged over at least one period: used when its one-step forecasts beat the
        // model without it over the same buckets
        let mut cycle = None;
        let mut cycle_note = None;
        if self.cfg.cycle_buckets() > 0 {
            cycle_note = Some(match (&self.cycle, &self.no_cycle) {
                (Some(c), _) => {
                    let window = self.error_keep();
                    let judged: Vec<&StepError> = self
                        .errors
                        .range(all.saturating_sub(window)..)
                        .filter(|e| e.cycle.is_some())
                        .collect();
                    let m = judged.len();
                    if m < MIN_ERRORS {
                        format!(
                            "{} found, not judged yet ({m} one-step forecasts)",
                            c.describe()
                        )
                    } else {
                        let actual = judged.iter().map(|e| e.actual.abs()).sum::<f64>() / m as f64;
                        let with = judged.iter().filter_map(|e| e.cycle).sum::<f64>() / m as f64;
                        let without = judged
                            .iter()
                            .map(|e| match (&profile, e.seasonal) {
                                (Some(_), Some(s)) => s,
                                _ => e.trend,
                            })
                            .sum::<f64>()
                            / m as f64;
                        let (rw, ro) = (relative(with, actual), relative(without, actual));
                        if with < without {
                            cycle = Some(c.clone());
                            profile = self.profile.clone();
                            mae = with;
                            errors = m;
                            relative_error = rw;
                            format!(
                                "the cycle helps: its one-step error {:.0}% against {:.0}% without it",
                                rw * 100.0,
                                ro * 100.0
                            )
                        } else {
                            format!(
                                "{} found, not used: its one-step error {:.0}% is not below {:.0}% without it",
                                c.describe(),
                                rw * 100.0,
                                ro * 100.0
                            )
                        }
                    }
                }
                (None, Some(e)) => e.to_string(),
                (None, None) => "no cycle searched yet".to_string(),
            });
        }
        if relative_error > self.cfg.max_error {
            self.last_note = cycle_note.clone();
            return Err(NoForecast::TooInaccurate {
                relative_error,
                max: self.cfg.max_error,
                cycle_note,
            });
        }
        // the trend through every bucket in the window, the newest (maybe partial) included
        let tb = self.cfg.trend_buckets();
        let last_idx = self.buckets.back().map_or(0, |b| b.idx);
        let pts: Vec<(f64, f64)> = self
            .buckets
            .iter()
            .filter(|b| b.idx > last_idx - tb as i64)
            .map(|b| {
                let t = self.center(b.idx);
                (
                    t,
                    b.mean() / seasonal_factor(profile.as_ref(), cycle.as_ref(), t),
                )
            })
            .collect();
        self.last_note = cycle_note.clone();
        let trend = theil_sen(&pts, now).ok_or(NoForecast::TooShort { have, need })?;
        Ok(Model {
            now,
            season: profile.as_ref().map_or(Season::None, |p| p.season),
            profile,
            cycle,
            cycle_note,
            trend,
            trend_horizon: self.cfg.trend_window,
            mae,
            relative_error,
            errors,
            history: have,
        })
    }
}

fn seasonal_factor(profile: Option<&Profile>, cycle: Option<&Cycle>, t: f64) -> f64 {
    profile.map_or(1.0, |p| p.at(t)) * cycle.map_or(1.0, |c| c.at(t))
}

/// A model from recorded points: `recent` samples `(time, load)` (ascending; the last
/// `trend_window + error_window` or more, and the cycle window when one is searched) and
/// earlier hourly averages `(hour start, load)`.
///
/// With a cycle window the cycle is searched once, not every `cycle_every` as a [`Forecaster`]
/// fed sample by sample does: the history before the judged tail (the error window, or three
/// periods of the period the whole span shows, when longer) only fills the cycle series and the
/// hourly profile; the cycle found there is judged on the tail's one-step forecasts, which it
/// did not see.
pub fn fit(
    recent: &[(f64, f64)],
    hourly: &[(f64, f64)],
    now: f64,
    cfg: &Config,
) -> Result<Model, NoForecast> {
    fit_with(recent, hourly, now, cfg, &mut None)
}

/// A cycle search made by [`fit_with`], which its caller keeps to pass to the next one: it is
/// reused (not searched again) until `cycle_every` of newer history has come, as long as the
/// configuration is the same and the history it searched is what it was (a history written
/// again, as tests and repairs do, is searched again).
#[derive(Debug, Clone, PartialEq)]
pub struct CycleSearch {
    cfg: Config,
    /// The first bucket of the judged tail.
    tail_idx: i64,
    /// The history searched that stays in the window while the search is reused (from
    /// `cycle_every` after its first bucket to the tail): its first bucket, its points and their sum.
    check_from: i64,
    check: (usize, f64),
    /// The newest bucket of the points it was made with.
    last_idx: i64,
    cycle: Option<Cycle>,
    no_cycle: Option<NoPeriod>,
}

impl CycleSearch {
    /// What the search found: the period in seconds, or why there is none.
    pub fn found(&self) -> Result<f64, &NoPeriod> {
        match (&self.cycle, &self.no_cycle) {
            (Some(c), _) => Ok(c.found.period),
            (None, Some(e)) => Err(e),
            (None, None) => Err(&NoPeriod::Flat),
        }
    }
}

/// [`fit`], reusing the cycle search in `search` while it is recent (see [`CycleSearch`]) and
/// leaving the search it used there.
pub fn fit_with(
    recent: &[(f64, f64)],
    hourly: &[(f64, f64)],
    now: f64,
    cfg: &Config,
    search: &mut Option<CycleSearch>,
) -> Result<Model, NoForecast> {
    let mut f = Forecaster::new(cfg.clone());
    let first_recent = recent.first().map_or(f64::INFINITY, |p| p.0);
    let older: Vec<(f64, f64)> = hourly
        .iter()
        .copied()
        .filter(|(t, _)| *t + HOUR <= first_recent)
        .collect();
    f.seed_hourly(&older);
    let cb = cfg.cycle_buckets();
    let Some(&(last, _)) = recent.last().filter(|_| cb > 0) else {
        for &(t, v) in recent {
            f.push(t, v);
        }
        return f.model(now);
    };
    let last_idx = (last / cfg.bucket).floor() as i64;
    let every = ((cfg.cycle_every / cfg.bucket).round() as i64).max(1);
    let bucket_of = |t: f64| (t / cfg.bucket).floor() as i64;
    let check = |from: i64, tail_idx: i64| {
        recent
            .iter()
            .filter(|(t, _)| (from..tail_idx).contains(&bucket_of(*t)))
            .fold((0usize, 0.0), |(n, sum), (_, v)| (n + 1, sum + v))
    };
    let reuse = search
        .as_ref()
        .filter(|s| {
            s.cfg == *cfg
                && (0..every).contains(&(last_idx - s.last_idx))
                && check(s.check_from, s.tail_idx) == s.check
        })
        .cloned();
    let tail_idx = match &reuse {
        Some(s) => s.tail_idx,
        None => {
            // the period the whole span shows decides how long the judged tail is
            let mut probe = f.clone();
            for &(t, v) in recent {
                probe.preload(t, v);
            }
            probe.refresh_profile();
            let lag = probe
                .cycle_series()
                .and_then(|(x, _)| {
                    detect_period(&x, cfg.bucket, probe.min_cycle_lag(), x.len() / 2).ok()
                })
                .map_or(0, |p| p.lag);
            let trend = cfg.trend_buckets() + 2;
            let span = probe.series.len();
            let judged = cfg.error_buckets().max(
                (CYCLE_JUDGED_PERIODS * lag).min(span.saturating_sub(2 * lag + MIN_ERRORS + trend)),
            );
            last_idx - (judged + trend) as i64
        }
    };
    let split = recent.partition_point(|(t, _)| bucket_of(*t) < tail_idx);
    for &(t, v) in &recent[..split] {
        f.preload(t, v);
    }
    f.refresh_profile();
    match reuse {
        Some(s) => {
            f.cycle = s.cycle;
            f.no_cycle = s.no_cycle;
        }
        None => {
            f.search_cycle();
            // the window moves by less than `cycle_every` while the search is reused
            let check_from = bucket_of(recent[0].0).max(last_idx - cb as i64) + every;
            *search = Some(CycleSearch {
                cfg: cfg.clone(),
                tail_idx,
                check_from,
                check: check(check_from, tail_idx),
                last_idx,
                cycle: f.cycle.clone(),
                no_cycle: f.no_cycle.clone(),
            });
        }
    }
    f.searching = false;
    for &(t, v) in &recent[split..] {
        f.push(t, v);
    }
    f.model(now)
}

/// Where a lead time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadSource {
    /// The setting that overrides learning.
    Setting,
    /// The p90 of this many recorded scale-outs.
    Learned(usize),
    /// No scale-out recorded yet.
    Default,
}

/// How far ahead a forecast must look: how long a scale-out takes here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LeadTime {
    pub secs: f64,
    pub source: LeadSource,
}

impl LeadTime {
    /// "a scale-out takes 6m here (p90 of 4 scale-outs)".
    pub fn describe(&self) -> String {
        let how = match self.source {
            LeadSource::Setting => "autoscale.forecast_lead_time".to_string(),
            LeadSource::Learned(n) => {
                format!("p90 of {n} scale-out{}", if n == 1 { "" } else { "s" })
            }
            LeadSource::Default => "default: no scale-out recorded yet".to_string(),
        };
        format!("a scale-out takes {} here ({how})", format_secs(self.secs))
    }
}

/// Recent scale-outs a lead time is learned from (the most recent ones).
pub const LEAD_SAMPLES: usize = 20;

/// The lead time: `setting` when given (> 0), else the p90 (nearest rank) of the last
/// [`LEAD_SAMPLES`] of `durations` (seconds from start to the end of the rebalance, oldest
/// first), else `default`.
pub fn lead_time(durations: &[f64], setting: Option<f64>, default: f64) -> LeadTime {
    if let Some(s) = setting.filter(|s| s.is_finite() && *s > 0.0) {
        return LeadTime {
            secs: s,
            source: LeadSource::Setting,
        };
    }
    let mut d: Vec<f64> = durations
        .iter()
        .rev()
        .copied()
        .filter(|x| x.is_finite() && *x > 0.0)
        .take(LEAD_SAMPLES)
        .collect();
    if d.is_empty() {
        return LeadTime {
            secs: default.max(0.0),
            source: LeadSource::Default,
        };
    }
    d.sort_by(f64::total_cmp);
    let rank = ((0.9 * d.len() as f64).ceil() as usize).clamp(1, d.len());
    LeadTime {
        secs: d[rank - 1],
        source: LeadSource::Learned(d.len()),
    }
}

#[cfg(test)]
mod tests;
