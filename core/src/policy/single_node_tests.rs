//! The engine on a single node and back: min_workers 0, load read from the data nodes (the
//! coordinator included), and never a scale-in below the coordinator.

use super::tests::{constant, input};
use super::*;

/// The scenario's policy: cpu > 70 for 10 s out, < 20 for 10 s in, 0..2 workers, step 2.
fn cpu0() -> Policy {
    let mut p = Policy::threshold("cpu", Metric::Cpu, 70.0, 20.0);
    p.scale_out_for = 10.0;
    p.scale_in_for = 10.0;
    p.min_workers = 0;
    p.max_workers = 2;
    p.step = 2;
    p
}

/// `secs` of a constant value recorded with `workers` workers over `data_nodes` data nodes.
fn on(secs: f64, v: f64, workers: u32, data_nodes: u32) -> Vec<Point> {
    constant(secs, v, workers)
        .into_iter()
        .map(|pt| Point { data_nodes, ..pt })
        .collect()
}

fn eval(p: Policy, pts: Vec<Point>, workers: u32, single: SingleNode) -> Decision {
    let mut i = input(
        workers,
        vec![PolicySeries {
            policy: p,
            points: pts,
        }],
    );
    i.single_node = single;
    evaluate(&i)
}

fn room() -> SingleNode {
    SingleNode {
        coordinator_takes_shards: true,
        shed_by_hand: false,
        coordinator_free_bytes: Some(10e9),
        worker_shard_bytes: Some(1e9),
    }
}

fn has(d: &Decision, needle: &str) -> bool {
    d.reasons.iter().any(|r| r.contains(needle))
}

#[test]
fn min_workers_zero_is_valid_and_max_workers_still_at_least_one() {
    let mut p = cpu0();
    assert_eq!(p.validate(), Ok(()));
    p.max_workers = 0;
    assert_eq!(
        p.validate().unwrap_err().to_string(),
        "max_workers (0) must be between 1 and 1000"
    );
}

#[test]
fn a_single_node_under_load_scales_out_by_step() {
    let d = eval(cpu0(), on(60.0, 93.0, 0, 1), 0, SingleNode::default());
    assert_eq!(
        (d.direction, d.from_workers, d.desired_workers, d.step),
        (Direction::Out, 0, 2, 2)
    );
    assert!(has(&d, "cpu avg 93.0 > 70"), "{:?}", d.reasons);
}

#[test]
fn a_quiet_single_node_stays_single() {
    let d = eval(cpu0(), on(60.0, 5.0, 0, 1), 0, room());
    assert_eq!((d.direction, d.desired_workers), (Direction::Hold, 0));
    assert!(has(&d, "at min_workers (0)"), "{:?}", d.reasons);
    // min_workers 1 is a floor of one worker: a single node grows to it whatever the load
    let mut p = cpu0();
    p.min_workers = 1;
    let d = eval(p, on(60.0, 5.0, 0, 1), 0, room());
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 1));
    assert!(
        has(&d, "0 workers is below min_workers (1)"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn shrinks_back_to_a_single_node_when_the_coordinator_has_room() {
    let d = eval(cpu0(), on(60.0, 3.0, 2, 3), 2, room());
    assert_eq!(
        (d.direction, d.desired_workers, d.step),
        (Direction::In, 0, 2)
    );
}

#[test]
fn never_below_the_coordinator() {
    // at zero workers there is nothing left to remove: the coordinator stays
    let d = eval(cpu0(), on(60.0, 0.0, 0, 1), 0, room());
    assert_eq!(d.direction, Direction::Hold);
    assert_eq!(d.desired_workers, 0);
    // a coordinator that cannot take shards: no scale-in to zero, and explain says why
    for (single, why) in [
        (
            SingleNode {
                coordinator_takes_shards: false,
                shed_by_hand: true,
                ..room()
            },
            "shouldhaveshards is false",
        ),
        (
            SingleNode {
                coordinator_takes_shards: false,
                ..room()
            },
            "not in the Citus metadata",
        ),
        (
            SingleNode {
                coordinator_free_bytes: Some(1.1e9),
                ..room()
            },
            "the coordinator has 1.0 GB free",
        ),
        (
            SingleNode {
                worker_shard_bytes: None,
                ..room()
            },
            "not known yet",
        ),
    ] {
        let d = eval(cpu0(), on(60.0, 3.0, 2, 3), 2, single);
        assert_eq!(
            (d.direction, d.desired_workers),
            (Direction::Hold, 2),
            "{single:?}"
        );
        assert!(
            has(&d, "cpu: no scale-in to a single node"),
            "{:?}",
            d.reasons
        );
        assert!(has(&d, why), "{why}: {:?}", d.reasons);
        // explain() shows it on the policy's own row
        assert_eq!(d.policies[0].direction, Direction::Hold);
        assert!(
            d.policies[0]
                .reasons
                .iter()
                .any(|r| r.starts_with("no scale-in to a single node")),
            "{:?}",
            d.policies[0].reasons
        );
    }
    // a scale-in that keeps a worker does not depend on the coordinator
    let mut p = cpu0();
    p.step = 1;
    let d = eval(p, on(60.0, 3.0, 2, 3), 2, SingleNode::default());
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 1));
}

#[test]
fn the_disk_guard_needs_headroom_over_the_bytes_to_move() {
    let s = |free: f64| SingleNode {
        coordinator_free_bytes: Some(free),
        worker_shard_bytes: Some(1000.0),
        ..room()
    };
    assert!(single_node_room(&s(1200.0)).is_ok());
    let e = single_node_room(&s(1199.0)).unwrap_err();
    assert_eq!(
        e,
        "the coordinator has 1.2 kB free, but the workers' shards take 1000 B (1.2 kB with 20% headroom)"
    );
}

#[test]
fn target_tracking_counts_the_coordinator_as_a_data_node() {
    let mut p = Policy::target("t", Metric::Cpu, 45.0);
    p.scale_out_for = 0.0;
    p.scale_in_for = 30.0;
    p.min_workers = 0;
    p.max_workers = 4;
    p.step = 4;
    // one data node at twice the target needs two: the coordinator and one worker
    let d = eval(p.clone(), on(60.0, 90.0, 0, 1), 0, room());
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 1));
    // three times: the coordinator and two workers
    let d = eval(p.clone(), on(60.0, 135.0, 0, 1), 0, room());
    assert_eq!((d.direction, d.desired_workers), (Direction::Out, 2));
    // coordinator and 2 workers at a third of the target: one data node is enough, the coordinator
    let d = eval(p.clone(), on(60.0, 15.0, 2, 3), 2, room());
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 0));
    // a coordinator without shards is no data node: 2 workers at half the target need 1
    let d = eval(p, on(60.0, 22.5, 2, 2), 2, room());
    assert_eq!((d.direction, d.desired_workers), (Direction::In, 1));
}

#[test]
fn backtest_relieves_the_coordinator_by_the_data_nodes_added() {
    use super::backtest::{backtest, Recorded};
    let mut p = cpu0();
    p.cooldown_out = 60.0;
    p.cooldown_in = 60.0;
    // 0 workers, the coordinator at 90% for 5 minutes: out to 2, then 90 / 3 = 30% is in the band
    let h: Vec<Recorded> = (0..60)
        .map(|i| Recorded {
            at: 1_700_000_000.0 + 5.0 * f64::from(i),
            workers: 0,
            unreachable: 0,
            data_nodes: 1,
            values: vec![Some(90.0)],
        })
        .collect();
    let a = backtest(&[p], &h, 5.0, 30.0, &room());
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        (a[0].direction, a[0].from_workers, a[0].to_workers),
        (Direction::Out, 0, 2)
    );
}

#[test]
fn the_refusals_read_as_one_sentence_each() {
    let by_hand = SingleNode {
        coordinator_takes_shards: false,
        shed_by_hand: true,
        ..room()
    };
    assert_eq!(
        single_node_room(&by_hand).unwrap_err(),
        "the coordinator's shouldhaveshards is false; a single node holds every shard, so set it first \
         with citus_set_node_property(<coordinator host>, <port>, 'shouldhaveshards', true), or let \
         autoscale do it with autoscale.coordinator_shards = 'shed'"
    );
    let unregistered = SingleNode {
        coordinator_takes_shards: false,
        ..room()
    };
    assert_eq!(
        single_node_room(&unregistered).unwrap_err(),
        "the coordinator is not in the Citus metadata (citus_set_coordinator_host) with \
         shouldhaveshards = true, so no node would be left to hold the shards"
    );
    assert_eq!(single_node_room(&room()), Ok(()));
}
