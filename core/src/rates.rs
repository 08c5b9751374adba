//! Cumulative counters to rates, Prometheus-style: the rate over an interval is the counter's
//! increase divided by the time between the two readings, both taken on the node's own clock.

/// The cumulative part of one node's reading that rates are computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counters {
    /// Node clock, seconds since the epoch.
    pub at: f64,
    pub cpu_busy_seconds: f64,
    pub cpu_capacity_seconds: f64,
    pub commits: i64,
    pub rollbacks: i64,
    /// Shared-buffer hits and reads, when the node reports them.
    pub blocks: Option<(i64, i64)>,
    /// pg_stat_statements calls and total execution ms, when installed.
    pub statements: Option<(i64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    /// CPU busy percent over the interval, 0..=100.
    pub cpu_busy_pct: Option<f64>,
    pub commits_per_sec: Option<f64>,
    pub rollbacks_per_sec: Option<f64>,
    /// Commits plus rollbacks per second.
    pub tps: Option<f64>,
    /// Shared-buffer hits over hits plus reads in the interval, percent (none without reads).
    pub cache_hit_ratio: Option<f64>,
    /// Mean execution time of the statements run in the interval, ms (none without calls).
    pub mean_statement_ms: Option<f64>,
}

/// Why a rate could not be computed (kept for the sample's note).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoRate {
    FirstSample,
    ClockWentBack,
    GapTooLong,
}

/// Rates between `prev` and `cur`.
///
/// - No previous reading: no rates (the first sample of a node only sets the baseline).
/// - The clock did not advance, or the readings are more than `max_gap` seconds apart: no rates
///   (a rate over a long gap would hide what happened in it).
/// - A counter that went down was reset (server restart, `pg_stat_reset()`): as Prometheus does,
///   its increase is its current value. CPU counters that go down (a reboot, a cgroup change)
///   give no CPU rate, since their increase since the reset is unknown relative to capacity.
pub fn rates(prev: Option<&Counters>, cur: &Counters, max_gap: f64) -> Result<Rates, NoRate> {
    let prev = prev.ok_or(NoRate::FirstSample)?;
    let dt = cur.at - prev.at;
    if dt.is_nan() || dt <= 0.0 {
        return Err(NoRate::ClockWentBack);
    }
    if dt > max_gap {
        return Err(NoRate::GapTooLong);
    }
    let busy = cur.cpu_busy_seconds - prev.cpu_busy_seconds;
    let capacity = cur.cpu_capacity_seconds - prev.cpu_capacity_seconds;
    let cpu_busy_pct =
        (busy >= 0.0 && capacity > 0.0).then(|| (100.0 * busy / capacity).clamp(0.0, 100.0));
    let commits = increase(prev.commits, cur.commits) as f64 / dt;
    let rollbacks = increase(prev.rollbacks, cur.rollbacks) as f64 / dt;
    let cache_hit_ratio = prev
        .blocks
        .zip(cur.blocks)
        .and_then(|((h0, r0), (h1, r1))| {
            let (h, r) = (increase(h0, h1), increase(r0, r1));
            (h + r > 0).then(|| 100.0 * h as f64 / (h + r) as f64)
        });
    // statements evicted from pg_stat_statements lower its sums: no mean over such an interval
    let mean_statement_ms = prev
        .statements
        .zip(cur.statements)
        .and_then(|((c0, t0), (c1, t1))| {
            (c1 > c0 && t1 >= t0).then(|| (t1 - t0) / (c1 - c0) as f64)
        });
    Ok(Rates {
        cpu_busy_pct,
        commits_per_sec: Some(commits),
        rollbacks_per_sec: Some(rollbacks),
        tps: Some(commits + rollbacks),
        cache_hit_ratio,
        mean_statement_ms,
    })
}

/// Increase of a monotonic counter, treating a decrease as a reset to zero.
pub fn increase(prev: i64, cur: i64) -> i64 {
    if cur >= prev {
        cur - prev
    } else {
        cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(at: f64, busy: f64, cap: f64, commits: i64) -> Counters {
        Counters {
            at,
            cpu_busy_seconds: busy,
            cpu_capacity_seconds: cap,
            commits,
            rollbacks: commits / 10,
            blocks: None,
            statements: None,
        }
    }

    #[test]
    fn tps_cache_hits_and_statement_time() {
        let mut a = c(100.0, 10.0, 40.0, 1000);
        let mut b = c(110.0, 12.0, 60.0, 1500);
        a.blocks = Some((900, 100));
        b.blocks = Some((1890, 110));
        a.statements = Some((10, 50.0));
        b.statements = Some((30, 90.0));
        let r = rates(Some(&a), &b, 60.0).unwrap();
        assert_eq!(r.tps, Some(55.0), "50 commits/s + 5 rollbacks/s");
        assert_eq!(r.cache_hit_ratio, Some(99.0));
        assert_eq!(r.mean_statement_ms, Some(2.0));
        // nothing read, nothing run: no ratio, no mean (not 0)
        let mut idle = b;
        idle.at = 120.0;
        let r = rates(Some(&b), &idle, 60.0).unwrap();
        assert_eq!((r.cache_hit_ratio, r.mean_statement_ms), (None, None));
        assert_eq!(r.tps, Some(0.0));
        // pg_stat_statements lost entries: its sums went down
        let mut evicted = idle;
        evicted.at = 130.0;
        evicted.statements = Some((35, 10.0));
        assert_eq!(
            rates(Some(&idle), &evicted, 60.0)
                .unwrap()
                .mean_statement_ms,
            None
        );
        // not installed on one side
        evicted.statements = None;
        assert_eq!(
            rates(Some(&idle), &evicted, 60.0)
                .unwrap()
                .mean_statement_ms,
            None
        );
    }

    #[test]
    fn first_sample_has_no_rate() {
        assert_eq!(
            rates(None, &c(10.0, 1.0, 2.0, 5), 60.0),
            Err(NoRate::FirstSample)
        );
    }

    #[test]
    fn steady_rates() {
        let r = rates(
            Some(&c(100.0, 10.0, 40.0, 1000)),
            &c(105.0, 13.0, 60.0, 1500),
            60.0,
        )
        .unwrap();
        assert_eq!(r.cpu_busy_pct, Some(15.0));
        assert_eq!(r.commits_per_sec, Some(100.0));
        assert_eq!(r.rollbacks_per_sec, Some(10.0));
    }

    #[test]
    fn counter_reset_counts_from_zero() {
        let r = rates(
            Some(&c(100.0, 10.0, 40.0, 1000)),
            &c(110.0, 12.0, 60.0, 300),
            60.0,
        )
        .unwrap();
        assert_eq!(r.commits_per_sec, Some(30.0));
        assert_eq!(increase(1000, 300), 300);
        assert_eq!(increase(5, 5), 0);
    }

    #[test]
    fn cpu_counter_going_back_gives_no_cpu_rate() {
        let r = rates(
            Some(&c(100.0, 10.0, 40.0, 10)),
            &c(105.0, 1.0, 2.0, 20),
            60.0,
        )
        .unwrap();
        assert_eq!(r.cpu_busy_pct, None);
        assert_eq!(r.commits_per_sec, Some(2.0));
    }

    #[test]
    fn clock_gaps() {
        let a = c(100.0, 1.0, 4.0, 10);
        assert_eq!(
            rates(Some(&a), &c(100.0, 2.0, 8.0, 20), 60.0),
            Err(NoRate::ClockWentBack)
        );
        assert_eq!(
            rates(Some(&a), &c(90.0, 2.0, 8.0, 20), 60.0),
            Err(NoRate::ClockWentBack)
        );
        assert_eq!(
            rates(Some(&a), &c(161.0, 2.0, 8.0, 20), 60.0),
            Err(NoRate::GapTooLong)
        );
        assert!(rates(Some(&a), &c(160.0, 2.0, 8.0, 20), 60.0).is_ok());
    }

    #[test]
    fn cpu_pct_is_clamped() {
        // cgroup capacity is derived from wall time; jitter can make busy exceed it slightly
        let r = rates(Some(&c(0.0, 0.0, 0.0, 0)), &c(1.0, 1.01, 1.0, 0), 60.0).unwrap();
        assert_eq!(r.cpu_busy_pct, Some(100.0));
    }
}
