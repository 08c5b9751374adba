//! What a predictive policy's forecast costs at every tick: the one-shot `forecast::fit()` the
//! extension runs per predictive policy, on what it reads (the 1-minute rollups of the cycle
//! window, then the last 95 minutes of 5-s samples), with and without the cycle search.
//!
//! Load: 100 with 5% noise, 3.5x for 15 minutes every two hours (a recurring jump), and the
//! same without the jumps (nothing recurs). Prints milliseconds per fit (median of `RUNS`,
//! default 21): with the search made (the first tick, and once an hour after), and reusing the
//! search the tick before made (`fit_with`, every other tick); and what the forecast found.

use std::time::Instant;

use autoscale_core::forecast::{fit, fit_with, Config, DAY, HOUR, MINUTE};

fn noise(i: u64) -> f64 {
    let mut x = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % 2_000_001) as f64 / 1_000_000.0 - 1.0
}

fn load(t: f64, jumps: bool) -> f64 {
    let base = 100.0 * (1.0 + 0.05 * noise((t / 5.0) as u64));
    let into = t.rem_euclid(2.0 * HOUR);
    if jumps && (37.0 * MINUTE..52.0 * MINUTE).contains(&into) {
        3.5 * base
    } else {
        base
    }
}

/// The rollups' minutes over `window` before the last 95 minutes, then 5-s samples to `now`.
fn recorded(now: f64, window: f64, jumps: bool) -> Vec<(f64, f64)> {
    let raw_from = now - 95.0 * MINUTE;
    let mut pts = Vec::new();
    let mut m = now - window;
    while m + MINUTE <= raw_from {
        let avg = (0..12)
            .map(|k| load(m + 5.0 * k as f64, jumps))
            .sum::<f64>()
            / 12.0;
        pts.push((m, avg));
        m += MINUTE;
    }
    let mut t = raw_from;
    while t < now {
        pts.push((t, load(t, jumps)));
        t += 5.0;
    }
    pts
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let now = 1_700_000_000.0 - 1_700_000_000.0f64.rem_euclid(DAY) + 3.0 * DAY + 27.0 * MINUTE;
    println!(
        "forecast::fit() per predictive policy and tick, median of {runs} runs (release build)"
    );
    println!(
        "{:<12} {:<14} {:>8} {:>10} {:>12}  model",
        "load", "cycle window", "points", "ms/search", "ms/reused"
    );
    for jumps in [true, false] {
        for window in [0.0, DAY, 3.0 * DAY] {
            let pts = recorded(now, window.max(95.0 * MINUTE), jumps);
            let cfg = Config {
                cycle_window: window,
                ..Config::default()
            };
            let mut times = Vec::with_capacity(runs);
            let mut reused = Vec::with_capacity(runs);
            let mut what = String::new();
            for _ in 0..runs {
                let t0 = Instant::now();
                let m = fit(&pts, &[], now, &cfg);
                times.push(t0.elapsed().as_secs_f64() * 1000.0);
                what = match m {
                    Ok(m) => m.describe(),
                    Err(e) => e.to_string(),
                };
                let mut search = None;
                let a = fit_with(&pts, &[], now, &cfg, &mut search);
                let t0 = Instant::now();
                let b = fit_with(&pts, &[], now, &cfg, &mut search);
                reused.push(t0.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(a, b, "a reused search gives the same model");
            }
            times.sort_by(f64::total_cmp);
            reused.sort_by(f64::total_cmp);
            println!(
                "{:<12} {:<14} {:>8} {:>10.2} {:>12.2}  {}",
                if jumps { "2h jumps" } else { "no jumps" },
                if window == 0.0 {
                    "off".to_string()
                } else {
                    format!("{} days", window / DAY)
                },
                pts.len(),
                times[times.len() / 2],
                reused[reused.len() / 2],
                what
            );
        }
    }
}
