//! Seasonality found in the data: the period a load repeats at (every two hours, daily, weekly,
//! whatever the series shows), by autocorrelation, and the load's shape over that period.
//!
//! [`detect_period`] takes an evenly spaced series (bucket means):
//!
//! 1. removes its least-squares line (a rising load correlates with itself at every lag);
//! 2. computes the autocorrelation `r(k)` at every candidate lag `k` (Pearson correlation of the
//!    series with itself shifted by `k`, over the overlap; at most half the series, so at least
//!    two periods are compared);
//! 3. keeps the *peaks*: lags where `r` is a local maximum (over 2 neighbours on each side),
//!    at least [`MIN_STRENGTH`] and `3 / sqrt(overlap)` (white noise's autocorrelation stays
//!    within about `2 / sqrt(n)`), and at least [`MIN_PROMINENCE`] above the lowest `r` at a
//!    shorter lag (the correlation must fall and rise again: a slowly wandering load correlates
//!    with itself at short lags without repeating);
//! 4. picks the shortest peak whose `r` is at least [`FUNDAMENTAL_SHARE`] of the strongest
//!    peak's, or at least [`HARMONIC_SHARE`] of it when the strongest peak's lag is 3 or more
//!    times it (within 2%) and twice it is a peak too: a load that repeats every two hours also repeats every four, six, ..., hours, nearly as
//!    strongly, and a daily shape on top of a two-hour one correlates best at a day; the
//!    two-hour shape is the one that can be averaged over many periods.
//!
//! The strength reported is `r` at the period (1 = the load repeats exactly).
//! [`Cycle::fit`] then averages each slot of the period over the latest whole periods.

use serde::Serialize;

use crate::duration::format_secs;

/// Least autocorrelation at a period.
pub const MIN_STRENGTH: f64 = 0.3;
/// A peak rises at least this much above the lowest autocorrelation at a shorter lag.
pub const MIN_PROMINENCE: f64 = 0.1;
/// The shortest peak at least this share of the strongest is the period.
pub const FUNDAMENTAL_SHARE: f64 = 0.85;
/// The shortest peak dividing the strongest is the period when at least this share of it.
pub const HARMONIC_SHARE: f64 = 0.5;
/// Smallest slot factor (as for the hourly profile).
const MIN_FACTOR: f64 = 0.05;

/// A period found in a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Periodicity {
    /// The period in seconds (`lag` x the series' step).
    pub period: f64,
    /// The period in steps of the series.
    pub lag: usize,
    /// Autocorrelation at the period (0..1).
    pub strength: f64,
    /// What a peak had to reach in this series.
    pub threshold: f64,
}

/// Why no period was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum NoPeriod {
    /// Fewer points than two periods of the shortest candidate lag (or 8).
    TooShort { have: usize, need: usize },
    /// The series is flat.
    Flat,
    /// No lag qualifies; the strongest autocorrelation at any candidate lag past the first dip.
    NoPeak {
        best_lag: Option<usize>,
        best: f64,
        threshold: f64,
    },
}

impl std::fmt::Display for NoPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoPeriod::TooShort { have, need } => {
                write!(f, "no cycle: {have} buckets of history, need {need}")
            }
            NoPeriod::Flat => write!(f, "no cycle: the load is flat"),
            NoPeriod::NoPeak { best, threshold, .. } => write!(
                f,
                "no cycle: the load does not repeat (autocorrelation at most {best:.2}, needs {threshold:.2})"
            ),
        }
    }
}

/// The period of `series` (evenly spaced, `step` seconds apart) among lags `min_lag..=max_lag`
/// (steps), or why there is none. Non-finite points are replaced by the previous one.
pub fn detect_period(
    series: &[f64],
    step: f64,
    min_lag: usize,
    max_lag: usize,
) -> Result<Periodicity, NoPeriod> {
    let min_lag = min_lag.max(2);
    let n = series.len();
    let need = (2 * min_lag).max(8);
    if n < need {
        return Err(NoPeriod::TooShort { have: n, need });
    }
    let mut x: Vec<f64> = Vec::with_capacity(n);
    let mut last = series
        .iter()
        .copied()
        .find(|v| v.is_finite())
        .unwrap_or(0.0);
    for v in series {
        if v.is_finite() {
            last = *v;
        }
        x.push(last);
    }
    // remove the least-squares line
    let nf = n as f64;
    let mt = (nf - 1.0) / 2.0;
    let my = x.iter().sum::<f64>() / nf;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let d = i as f64 - mt;
        sxy += d * (v - my);
        sxx += d * d;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    for (i, v) in x.iter_mut().enumerate() {
        *v -= my + slope * (i as f64 - mt);
    }
    let var: f64 = x.iter().map(|v| v * v).sum::<f64>() / nf;
    if var.is_nan() || var <= 1e-12 * my.abs().max(1.0).powi(2) {
        return Err(NoPeriod::Flat);
    }
    let max_lag = max_lag.min(n / 2);
    if max_lag < min_lag {
        return Err(NoPeriod::TooShort { have: n, need });
    }
    // r(k) for k in min_lag-2 ..= max_lag+2 (neighbours for the peak test)
    let lo = min_lag.saturating_sub(2).max(1);
    let hi = (max_lag + 2).min(n - 2);
    // prefix sums of squares: sum over a..b of x^2
    let mut sq = vec![0.0; n + 1];
    for (i, v) in x.iter().enumerate() {
        sq[i + 1] = sq[i] + v * v;
    }
    let mut r = vec![f64::NAN; hi + 1];
    for k in lo..=hi {
        let m = n - k;
        let dot: f64 = x[..m].iter().zip(&x[k..]).map(|(a, b)| a * b).sum();
        let den = ((sq[m] - sq[0]) * (sq[n] - sq[k])).sqrt();
        r[k] = if den > 0.0 { dot / den } else { 0.0 };
    }
    let mut peaks: Vec<(usize, f64, f64)> = Vec::new(); // (lag, r, threshold)
    let mut lowest = f64::INFINITY;
    let mut best: (Option<usize>, f64) = (None, f64::NEG_INFINITY);
    let mut threshold_at_best = MIN_STRENGTH;
    for k in lo..=max_lag {
        let rk = r[k];
        if k >= min_lag {
            let threshold = MIN_STRENGTH.max(3.0 / ((n - k) as f64).sqrt());
            let local = (k.saturating_sub(2).max(lo)..=(k + 2).min(hi))
                .all(|j| j == k || r[j].is_nan() || r[j] <= rk);
            if local && rk - lowest >= MIN_PROMINENCE {
                if rk > best.1 {
                    best = (Some(k), rk);
                    threshold_at_best = threshold;
                }
                if rk >= threshold {
                    peaks.push((k, rk, threshold));
                }
            }
        }
        lowest = lowest.min(rk);
    }
    let Some(strongest) = peaks.iter().map(|p| p.1).reduce(f64::max) else {
        return Err(NoPeriod::NoPeak {
            best_lag: best.0,
            best: best.1.max(0.0),
            threshold: threshold_at_best,
        });
    };
    let longest = peaks.iter().find(|p| p.1 == strongest).map_or(0, |p| p.0);
    // the strongest lag is 3 or more times `lag` (within 2%), and twice `lag` is a peak too
    let divides = |lag: usize| {
        let k = (longest as f64 / lag as f64).round();
        let near = |a: usize, b: usize| (a as f64 - b as f64).abs() <= (0.02 * b as f64).floor();
        k >= 3.0
            && (longest as f64 - k * lag as f64).abs() <= (0.02 * longest as f64).floor()
            && peaks
                .iter()
                .any(|p| near(p.0, 2 * lag) || p.0.abs_diff(2 * lag) <= 1)
    };
    let (lag, strength, threshold) = *peaks
        .iter()
        .find(|p| {
            p.1 >= FUNDAMENTAL_SHARE * strongest
                || (p.1 >= HARMONIC_SHARE * strongest && divides(p.0))
        })
        .expect("the strongest peak qualifies");
    Ok(Periodicity {
        period: lag as f64 * step,
        lag,
        strength,
        threshold,
    })
}

/// The load's shape over a found period: one factor per bucket of the period, mean 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cycle {
    pub found: Periodicity,
    /// Width of a slot (the bucket), seconds.
    pub slot: f64,
    /// One factor per slot; slot `j` holds times `t` with `floor(t / slot) mod len == j`.
    pub factors: Vec<f64>,
    /// Whole periods averaged.
    pub periods: usize,
}

impl Cycle {
    /// Fits the shape: `series[i]` is the mean of bucket `first_idx + i` (`slot` seconds wide);
    /// each slot's factor is its mean over the latest whole periods, relative to their mean.
    pub fn fit(found: Periodicity, series: &[f64], first_idx: i64, slot: f64) -> Option<Cycle> {
        let p = found.lag;
        if p < 2 || series.len() < 2 * p {
            return None;
        }
        let periods = series.len() / p;
        let start = series.len() - periods * p;
        let mut sum = vec![0.0; p];
        let mut cnt = vec![0usize; p];
        for (i, v) in series.iter().enumerate().skip(start) {
            if v.is_finite() {
                let j = (first_idx + i as i64).rem_euclid(p as i64) as usize;
                sum[j] += v;
                cnt[j] += 1;
            }
        }
        let means: Vec<f64> = sum
            .iter()
            .zip(&cnt)
            .map(|(s, c)| if *c > 0 { s / *c as f64 } else { f64::NAN })
            .collect();
        let known: Vec<f64> = means.iter().copied().filter(|m| m.is_finite()).collect();
        let mean = known.iter().sum::<f64>() / known.len().max(1) as f64;
        if mean.is_nan() || mean <= 0.0 {
            return None;
        }
        Some(Cycle {
            found,
            slot,
            factors: means
                .iter()
                .map(|m| {
                    if m.is_finite() {
                        (m / mean).max(MIN_FACTOR)
                    } else {
                        1.0
                    }
                })
                .collect(),
            periods,
        })
    }

    /// The factor at `t`.
    pub fn at(&self, t: f64) -> f64 {
        if !t.is_finite() || self.factors.is_empty() {
            return 1.0;
        }
        let idx = (t / self.slot).floor() as i64;
        self.factors[idx.rem_euclid(self.factors.len() as i64) as usize]
    }

    /// "a 2h cycle (strength 0.62)".
    pub fn describe(&self) -> String {
        format!(
            "a {} cycle (strength {:.2})",
            format_secs(self.found.period),
            self.found.strength
        )
    }
}

#[cfg(test)]
mod tests;
