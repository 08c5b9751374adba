//! The capacity plan: months ahead, from the hourly rollups, with a linear trend (as the
//! capacity-planning playbook does): per metric the current value, the forecast at 3, 6 and 12
//! months, the date the scale-out threshold is crossed and the date `max_workers` is full, and
//! what to do, in plain words.
//!
//! Load that spreads over the data nodes (cpu, disk, connections, commits/s) is extrapolated as
//! the cluster's total (value per data node x data nodes) and judged per data node: on today's
//! data nodes for the threshold crossing, on `max_workers` (plus the coordinator when it holds
//! shards) for "full". The data nodes are the workers, and the coordinator when it holds shards
//! (a single-node cluster, or one grown from it with `shouldhaveshards`): its load is in the
//! averages, so dividing by the workers alone would overstate every per-node figure. Memory does
//! not spread (a new worker brings its own memory but the busiest node's share stays), so it is
//! judged as recorded.

use serde::Serialize;

use crate::duration::format_secs;
use crate::forecast::{linear_trend, DAY};

/// Days of a month in the plan.
pub const MONTH: f64 = 30.0 * DAY;
/// History the trend needs before it is trusted.
pub const MIN_HISTORY: f64 = 7.0 * DAY;
/// Hourly points the trend needs at least.
pub const MIN_POINTS: usize = 24;

/// One metric to plan.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricHistory {
    pub metric: &'static str,
    pub unit: &'static str,
    /// Whether the value is per data node and the load spreads over the data nodes.
    pub spreads: bool,
    /// `(time, value per data node or as recorded, data nodes)`, ascending.
    pub points: Vec<(f64, f64, f64)>,
    /// The scale-out threshold (per data node for spreading metrics), if any.
    pub threshold: Option<f64>,
    /// Where the threshold comes from ("policy cpu", "default").
    pub threshold_from: Option<String>,
}

/// The nodes the load spreads over, today and at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fleet {
    /// Active workers now.
    pub workers: u32,
    /// The coordinator holds shards: it is a data node next to the workers.
    pub coordinator: bool,
    /// The most workers the policies allow.
    pub max_workers: u32,
}

impl Fleet {
    /// Data nodes now (at least 1: a cluster always has somewhere its load runs).
    pub fn data_nodes(&self) -> f64 {
        f64::from(
            self.workers
                .saturating_add(u32::from(self.coordinator))
                .max(1),
        )
    }
    /// Data nodes at `max_workers`.
    pub fn max_data_nodes(&self) -> f64 {
        f64::from(self.max_workers.saturating_add(u32::from(self.coordinator)))
    }
    /// "4 workers", or "3 data nodes (2 workers and the coordinator)".
    fn describe_now(&self) -> String {
        if self.coordinator && self.workers == 0 {
            "1 data node (the coordinator alone)".to_string()
        } else if self.coordinator {
            format!(
                "{} data nodes ({} worker{} and the coordinator)",
                self.data_nodes(),
                self.workers,
                if self.workers == 1 { "" } else { "s" }
            )
        } else {
            format!("{} workers", self.data_nodes())
        }
    }
}

/// One row of `autoscale.capacity_plan()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRow {
    pub metric: String,
    pub unit: String,
    pub current: Option<f64>,
    pub in_3_months: Option<f64>,
    pub in_6_months: Option<f64>,
    pub in_12_months: Option<f64>,
    /// Growth per 30 days, in the value's unit.
    pub per_month: Option<f64>,
    pub threshold: Option<f64>,
    /// When the trend crosses the threshold on today's data nodes (epoch seconds).
    pub crosses_at: Option<f64>,
    /// When the trend crosses the threshold even on max_workers (and the coordinator when it
    /// holds shards; spreading metrics only).
    pub max_workers_full_at: Option<f64>,
    pub history_days: f64,
    pub action: String,
}

fn date(t: f64) -> String {
    let s = crate::policy::format_epoch(t);
    s.split(' ').next().unwrap_or_default().to_string()
}

/// When `f(t) = a + b (t - now)` first reaches `level`, at or after `now`.
fn reach(level_now: f64, slope: f64, level: f64, now: f64) -> Option<f64> {
    if level_now >= level {
        Some(now)
    } else if slope > 0.0 {
        Some(now + (level - level_now) / slope)
    } else {
        None
    }
}

/// Plans one metric at `now` on `fleet`.
pub fn plan(m: &MetricHistory, now: f64, fleet: &Fleet) -> PlanRow {
    let pts: Vec<&(f64, f64, f64)> = m
        .points
        .iter()
        .filter(|p| p.0.is_finite() && p.1.is_finite() && p.2.is_finite())
        .collect();
    let span = match (pts.first(), pts.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0.0,
    };
    let mut row = PlanRow {
        metric: m.metric.to_string(),
        unit: m.unit.to_string(),
        current: pts.last().map(|p| p.1),
        in_3_months: None,
        in_6_months: None,
        in_12_months: None,
        per_month: None,
        threshold: m.threshold,
        crosses_at: None,
        max_workers_full_at: None,
        history_days: span / DAY,
        action: String::new(),
    };
    if span < MIN_HISTORY || pts.len() < MIN_POINTS {
        row.action = format!(
            "too little history to plan: {} of hourly rollups, need {}",
            format_secs(span.max(0.0)),
            format_secs(MIN_HISTORY)
        );
        return row;
    }
    let nodes = fleet.data_nodes();
    let max_nodes = fleet.max_data_nodes();
    let load = |p: &(f64, f64, f64)| {
        if m.spreads && p.2 > 0.0 {
            p.1 * p.2
        } else {
            p.1
        }
    };
    let series: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, load(p))).collect();
    let Some(line) = linear_trend(&series, now) else {
        row.action = "too little history to plan: no spread in time".into();
        return row;
    };
    let per = |total: f64, w: f64| if m.spreads { total / w } else { total };
    let at = |months: f64| per(line.at(now + months * MONTH), nodes).max(0.0);
    row.in_3_months = Some(at(3.0));
    row.in_6_months = Some(at(6.0));
    row.in_12_months = Some(at(12.0));
    row.per_month = Some(per(line.slope * MONTH, nodes));
    let year = now + 12.0 * MONTH;
    if let Some(thr) = m.threshold {
        let scale = if m.spreads { nodes } else { 1.0 };
        row.crosses_at = reach(line.level, line.slope, thr * scale, now);
        if m.spreads && max_nodes > 0.0 {
            row.max_workers_full_at = reach(line.level, line.slope, thr * max_nodes, now);
        }
    }
    let from = m
        .threshold_from
        .as_deref()
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    row.action = match (m.threshold, row.crosses_at, row.max_workers_full_at) {
        (None, _, _) => {
            if line.slope > 0.0 {
                format!(
                    "no scale-out threshold on {}; growing {:.3} {} a month",
                    m.metric,
                    per(line.slope * MONTH, nodes),
                    m.unit
                )
            } else {
                format!("no scale-out threshold on {}; not growing", m.metric)
            }
        }
        (Some(_), _, Some(full)) if full <= year => format!(
            "raise max_workers ({}) or use bigger nodes before {}: even {} workers{} pass the \
             threshold{from} then",
            fleet.max_workers,
            date(full),
            fleet.max_workers,
            if fleet.coordinator {
                " and the coordinator"
            } else {
                ""
            }
        ),
        (Some(thr), Some(c), _) if c <= now => {
            format!("above the threshold {thr}{from} now: scale out now")
        }
        (Some(thr), Some(c), _) if c <= year && m.spreads => format!(
            "expect scale-outs from {}: {} passes {thr}{from} on today's {}; keep the standby \
             pool or provisioner ready",
            date(c),
            m.metric,
            fleet.describe_now()
        ),
        (Some(thr), Some(c), _) if c <= year => format!(
            "{} passes {thr}{from} around {}: plan bigger nodes before then (more workers do not \
             spread it)",
            m.metric,
            date(c)
        ),
        (Some(_), _, _) => {
            if line.slope > 0.0 {
                "none within 12 months at this trend".into()
            } else {
                "none: flat or falling".into()
            }
        }
    };
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_735_689_600.0; // 2025-01-01 00:00 UTC

    /// 90 days of hourly points ending now: cpu per worker 20% rising 0.5 a day on 4 workers.
    fn cpu(days: f64) -> MetricHistory {
        let n = (days * 24.0) as usize;
        MetricHistory {
            metric: "cpu",
            unit: "% per worker",
            spreads: true,
            points: (0..n)
                .map(|i| {
                    let t = NOW - (n - 1 - i) as f64 * 3600.0;
                    (t, 65.0 + 0.5 * (t - NOW) / DAY, 4.0)
                })
                .collect(),
            threshold: Some(80.0),
            threshold_from: Some("policy cpu".into()),
        }
    }

    /// `at` is `days` after NOW, within an hour.
    fn within_an_hour(at: Option<f64>, days: f64) {
        let at = at.expect("a date");
        assert!(
            (at - (NOW + days * DAY)).abs() < 3600.0,
            "{} days, expected {days}",
            (at - NOW) / DAY
        );
    }

    fn workers(workers: u32, max_workers: u32) -> Fleet {
        Fleet {
            workers,
            coordinator: false,
            max_workers,
        }
    }

    /// `days` of hourly points ending now: `per_node` per data node now, rising 0.5 a day, on
    /// `nodes` data nodes.
    fn cpu_on(days: f64, per_node: f64, nodes: f64) -> MetricHistory {
        let mut m = cpu(days);
        for p in &mut m.points {
            p.1 = per_node + 0.5 * (p.0 - NOW) / DAY;
            p.2 = nodes;
        }
        m
    }

    #[test]
    fn a_coordinator_that_holds_shards_is_one_of_the_nodes() {
        // 1 worker and the coordinator at 60% each, rising 0.5 a day: 80 per data node in 40
        // days (divided by the worker alone it would be 120% now, "scale out now")
        let fleet = Fleet {
            workers: 1,
            coordinator: true,
            max_workers: 3,
        };
        let r = plan(&cpu_on(90.0, 60.0, 2.0), NOW, &fleet);
        assert!((r.current.unwrap() - 60.0).abs() < 1e-6);
        within_an_hour(r.crosses_at, 40.0);
        assert!((r.in_3_months.unwrap() - 105.0).abs() < 1e-6);
        assert!((r.per_month.unwrap() - 15.0).abs() < 1e-6);
        // full: 3 workers and the coordinator: 2 x (60 + 0.5 d) = 4 x 80 -> d = 200
        within_an_hour(r.max_workers_full_at, 200.0);
        assert!(r
            .action
            .starts_with("raise max_workers (3) or use bigger nodes before 2025-07-20: even 3 workers and the coordinator pass"));
        let roomy = Fleet {
            max_workers: 100,
            ..fleet
        };
        assert_eq!(
            plan(&cpu_on(90.0, 60.0, 2.0), NOW, &roomy).action,
            "expect scale-outs from 2025-02-10: cpu passes 80 (policy cpu) on today's 2 data nodes \
             (1 worker and the coordinator); keep the standby pool or provisioner ready"
        );
        // a single node: the coordinator alone, 0 workers; max_workers 1 gives 2 data nodes
        let single = Fleet {
            workers: 0,
            coordinator: true,
            max_workers: 1,
        };
        let r = plan(&cpu_on(90.0, 60.0, 1.0), NOW, &single);
        within_an_hour(r.crosses_at, 40.0);
        // (60 + 0.5 d) = 2 x 80 -> d = 200
        within_an_hour(r.max_workers_full_at, 200.0);
        let action = |max_workers: u32| {
            plan(
                &cpu_on(90.0, 60.0, 1.0),
                NOW,
                &Fleet {
                    max_workers,
                    ..single
                },
            )
            .action
        };
        assert!(
            action(100).starts_with(
                "expect scale-outs from 2025-02-10: cpu passes 80 (policy cpu) on today's 1 data \
                 node (the coordinator alone)"
            ),
            "{}",
            action(100)
        );
        assert!(
            action(0).contains("even 0 workers and the coordinator pass"),
            "{}",
            action(0)
        );
    }

    #[test]
    fn a_known_trend_crosses_on_the_expected_date() {
        let r = plan(&cpu(90.0), NOW, &workers(4, 8));
        assert!((r.current.unwrap() - 65.0).abs() < 1e-6);
        // 65 + 0.5/day reaches 80 in 30 days
        within_an_hour(r.crosses_at, 30.0);
        // on 8 workers: 4 x (65 + 0.5 d) = 8 x 80 -> d = 190
        within_an_hour(r.max_workers_full_at, 190.0);
        assert!((r.in_3_months.unwrap() - 110.0).abs() < 1e-6);
        assert!((r.in_12_months.unwrap() - 245.0).abs() < 1e-6);
        assert!((r.per_month.unwrap() - 15.0).abs() < 1e-6);
        assert!(
            r.action
                .starts_with("raise max_workers (8) or use bigger nodes before 2025-07-10"),
            "{}",
            r.action
        );
        // with room to grow: scale-outs expected
        let r = plan(&cpu(90.0), NOW, &workers(4, 100));
        assert_eq!(
            r.action,
            "expect scale-outs from 2025-01-31: cpu passes 80 (policy cpu) on today's 4 workers; \
             keep the standby pool or provisioner ready"
        );
    }

    #[test]
    fn too_little_history_says_so() {
        let r = plan(&cpu(3.0), NOW, &workers(4, 8));
        assert_eq!(r.in_3_months, None);
        assert_eq!(r.crosses_at, None);
        assert_eq!(
            r.action,
            "too little history to plan: 2d23h of hourly rollups, need 7d"
        );
        assert!(r.current.is_some(), "the current value is still shown");
    }

    #[test]
    fn flat_memory_and_no_threshold() {
        let mut m = cpu(30.0);
        m.metric = "memory";
        m.spreads = false;
        for p in &mut m.points {
            p.1 = 50.0;
        }
        m.threshold = Some(90.0);
        let r = plan(&m, NOW, &workers(4, 8));
        assert_eq!(r.crosses_at, None);
        assert_eq!(r.max_workers_full_at, None);
        assert_eq!(r.action, "none: flat or falling");
        m.threshold = None;
        assert_eq!(
            plan(&m, NOW, &workers(4, 8)).action,
            "no scale-out threshold on memory; not growing"
        );
        // memory above its threshold
        for p in &mut m.points {
            p.1 = 95.0;
        }
        m.threshold = Some(90.0);
        m.threshold_from = Some("default".into());
        assert_eq!(
            plan(&m, NOW, &workers(4, 8)).action,
            "above the threshold 90 (default) now: scale out now"
        );
    }
}
