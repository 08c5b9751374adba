//! Load units: what a policy's per-node value means as the cluster's load, and back.
//!
//! The one home of the conversions that the forecast ([`predict`](super::predict)) and the replay
//! ([`backtest`](super::backtest)) share: load that spreads over the data nodes (cpu, load1,
//! commits/s, tps, connections, connection saturation; see [`spreads_over_workers`]) is value x
//! data nodes, so a series recorded across a resize is one series; memory, disk and custom metrics
//! are taken as recorded. It imports nothing from its users, so the policy module has no import
//! circle: `predict` and `backtest` depend on it, `backtest` on `predict`, never the reverse.

use super::{spreads_over_workers, Metric, Point};

/// The cluster's load from one point of a policy's metric: value x data nodes (the workers, and
/// the coordinator when it holds shards) for metrics that spread over them, the value itself
/// otherwise.
pub fn load_of(metric: Metric, pt: &Point) -> Option<f64> {
    let v = pt.value.filter(|v| v.is_finite())?;
    let (dn, _) = pt.data_nodes_and_coordinator();
    Some(if spreads_over_workers(metric) {
        v * f64::from(dn)
    } else {
        v
    })
}

/// The value of the metric when `load` is spread over `workers` and the `coordinator` (1 when it
/// holds shards).
pub fn per_node(metric: Metric, load: f64, workers: u32, coordinator: u32) -> f64 {
    let nodes = workers.saturating_add(coordinator);
    if spreads_over_workers(metric) && nodes > 0 {
        load / f64::from(nodes)
    } else {
        load
    }
}

/// The value a sample recorded on `recorded` would have had with `simulated` workers: the data
/// nodes that are not workers (the coordinator holding shards) stay.
pub fn rescaled(m: Metric, v: Option<f64>, recorded: &Point, simulated: u32) -> Option<f64> {
    let (dn, coordinator) = recorded.data_nodes_and_coordinator();
    let sim = simulated + coordinator;
    match v {
        Some(x) if spreads_over_workers(m) && dn > 0 && sim > 0 => {
            Some(x * f64::from(dn) / f64::from(sim))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(value: f64, workers: u32, data_nodes: u32) -> Point {
        Point {
            at: 0.0,
            value: Some(value),
            workers,
            unreachable: 0,
            data_nodes,
        }
    }

    #[test]
    fn load_and_back_is_the_same_value_on_the_same_nodes() {
        for m in Metric::ALL {
            for (w, dn) in [(1, 0), (2, 2), (3, 4), (0, 1)] {
                let p = pt(42.0, w, dn);
                let load = load_of(m, &p).unwrap();
                let (_, coord) = p.data_nodes_and_coordinator();
                let back = per_node(m, load, w, coord);
                let same = if w + coord == 0 { load } else { 42.0 };
                assert!((back - same).abs() < 1e-9, "{m} {w} {dn}: {back}");
                assert_eq!(rescaled(m, Some(42.0), &p, w), Some(42.0), "{m} {w} {dn}");
            }
        }
    }

    #[test]
    fn spreading_load_is_relieved_by_added_workers_and_the_rest_is_not() {
        let p = pt(90.0, 2, 3); // two workers and the coordinator
        assert_eq!(rescaled(Metric::Cpu, Some(90.0), &p, 5), Some(45.0));
        assert_eq!(rescaled(Metric::Memory, Some(90.0), &p, 5), Some(90.0));
        assert_eq!(rescaled(Metric::Cpu, None, &p, 5), None);
        assert_eq!(per_node(Metric::Tps, 600.0, 2, 1), 200.0);
        assert_eq!(per_node(Metric::Disk, 600.0, 2, 1), 600.0);
    }
}
