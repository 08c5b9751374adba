use super::*;

fn n(port: i32) -> NodeAddr {
    NodeAddr::new("127.0.0.1", port)
}

fn reading(min: &str, scans: i64, read: i64, written: i64) -> GroupReading {
    GroupReading {
        key: GroupKey::new(1, min),
        counters: GroupCounters {
            scans,
            rows_read: read,
            rows_written: written,
        },
    }
}

/// Group "0" read on node `port` at `at` with `scans` (no rows read or written), smoothed over
/// `window` seconds, a gap of 600 s at most.
fn read_at(prev: Option<&GroupState>, port: i32, at: f64, scans: i64, window: f64) -> GroupState {
    update(
        prev,
        &n(port),
        at,
        &reading("0", scans, 0, 0),
        window,
        600.0,
    )
}

/// A group with a steady load on a node.
fn g(min: &str, node: NodeAddr, load: f64) -> GroupState {
    GroupState {
        key: GroupKey::new(1, min),
        node,
        node_time: 0.0,
        counters: GroupCounters::default(),
        rates: Some(GroupRates {
            scans_per_sec: load,
            ..Default::default()
        }),
    }
}

#[test]
fn wire_form_is_a_compact_array() {
    let r = reading("-2147483648", 10, 200, 3);
    let text = serde_json::to_string(&r).unwrap();
    assert_eq!(text, r#"[1,"-2147483648",10,200,3]"#);
    assert_eq!(serde_json::from_str::<GroupReading>(&text).unwrap(), r);
}

#[test]
fn first_reading_is_a_baseline() {
    let s = read_at(None, 1, 100.0, 10, 60.0);
    assert_eq!(s.rates, None);
    assert_eq!(s.load(), None);
    assert_eq!(s.counters.scans, 10);
}

#[test]
fn rates_then_smoothing() {
    let s0 = read_at(None, 1, 100.0, 0, 10.0);
    // 100 scans, 50 rows written, 1000 rows read in 10 s
    let s1 = update(
        Some(&s0),
        &n(1),
        110.0,
        &reading("0", 100, 1000, 50),
        10.0,
        600.0,
    );
    let r = s1.rates.unwrap();
    assert_eq!(r.scans_per_sec, 10.0);
    assert_eq!(r.rows_written_per_sec, 5.0);
    assert_eq!(r.rows_read_per_sec, 100.0);
    assert!((s1.load().unwrap() - (10.0 + 5.0 + 1.0)).abs() < 1e-9);
    // then idle for 10 s = one window: the smoothed scans go down by 1 - 1/e, not to zero
    let s2 = update(
        Some(&s1),
        &n(1),
        120.0,
        &reading("0", 100, 1000, 50),
        10.0,
        600.0,
    );
    let want = 10.0 * (-1.0f64).exp();
    assert!((s2.rates.unwrap().scans_per_sec - want).abs() < 1e-9);
    // no smoothing with window 0
    let s3 = update(
        Some(&s1),
        &n(1),
        120.0,
        &reading("0", 100, 1000, 50),
        0.0,
        600.0,
    );
    assert_eq!(s3.rates.unwrap().scans_per_sec, 0.0);
}

#[test]
fn a_moved_group_keeps_its_load_and_rebases() {
    let s0 = read_at(None, 1, 100.0, 0, 10.0);
    let s1 = read_at(Some(&s0), 1, 110.0, 100, 10.0);
    // now on node 2 with fresh counters
    let s2 = read_at(Some(&s1), 2, 120.0, 3, 10.0);
    assert_eq!(s2.node, n(2));
    assert_eq!(s2.rates, s1.rates);
    assert_eq!(s2.counters.scans, 3);
    // next reading on node 2 gives a rate from the new baseline
    let s3 = read_at(Some(&s2), 2, 130.0, 103, 0.0);
    assert_eq!(s3.rates.unwrap().scans_per_sec, 10.0);
}

#[test]
fn reset_counters_gap_and_clock_rebase() {
    let s0 = read_at(None, 1, 100.0, 0, 10.0);
    let s1 = read_at(Some(&s0), 1, 110.0, 100, 10.0);
    for (at, scans) in [(120.0, 5), (110.0, 200), (2000.0, 200)] {
        let s = read_at(Some(&s1), 1, at, scans, 10.0);
        assert_eq!(s.rates, s1.rates, "at {at} scans {scans}");
        assert_eq!(s.counters.scans, scans);
    }
}

#[test]
fn node_loads_count_every_node() {
    let groups = vec![g("a", n(1), 3.0), g("b", n(1), 4.0), g("c", n(3), 9.0)];
    let loads = node_loads(&groups, &[n(1), n(2)]);
    assert_eq!(loads, vec![(n(1), 7.0), (n(2), 0.0)]);
}

#[test]
fn top_per_node_bounds_history() {
    let mut groups = Vec::new();
    for i in 0..100 {
        groups.push(g(&format!("{i:03}"), n(1 + i % 2), i as f64));
    }
    groups.push(GroupState {
        rates: None,
        ..g("zz", n(1), 0.0)
    });
    let top = top_per_node(&groups, 3);
    assert_eq!(top.len(), 6);
    let loads: Vec<f64> = top.iter().map(|g| g.load().unwrap()).collect();
    assert_eq!(loads, vec![98.0, 96.0, 94.0, 99.0, 97.0, 95.0]);
}

#[test]
fn idle_groups_are_not_in_the_history() {
    // node 1 has one busy group and two idle ones, node 2 only idle ones
    let groups = vec![
        g("a", n(1), 0.0),
        g("b", n(1), 4.0),
        g("c", n(1), 0.0),
        g("d", n(2), 0.0),
    ];
    let top = top_per_node(&groups, 3);
    let keys: Vec<&str> = top.iter().map(|g| g.key.shardminvalue.as_str()).collect();
    assert_eq!(keys, vec!["b"]);
}

#[test]
fn cost_without_data_counts_groups() {
    assert_eq!(shard_cost(None, None, 0.0), 1.0);
    assert_eq!(shard_cost(Some(50.0), None, 0.0), 1.0);
    // with data: load plus a tenth of the mean group load
    assert_eq!(shard_cost(Some(50.0), Some(20.0), 80.0), 52.0);
    // a group not measured yet costs the base only
    assert_eq!(shard_cost(None, Some(20.0), 80.0), 2.0);
    // a busy cluster with idle groups: every idle group costs the same small base
    assert_eq!(shard_cost(Some(0.0), Some(0.0), MIN_MEAN_LOAD), MIN_BASE);
}

#[test]
fn an_idle_cluster_balances_by_count_whatever_its_noise() {
    // data nodes below MIN_MEAN_LOAD: a group with a little noise costs as much as a silent one,
    // so Citus's planner (improvement_threshold 0.2) finds nothing to move on a balanced count
    let idle = MIN_MEAN_LOAD * 0.9;
    assert_eq!(shard_cost(Some(0.8), Some(0.1), idle), 1.0);
    assert_eq!(shard_cost(Some(0.0), Some(0.1), idle), 1.0);
    // the same groups on a busy cluster cost their load
    assert!(shard_cost(Some(0.8), Some(0.1), 50.0) > shard_cost(Some(0.0), Some(0.1), 50.0));
}

#[test]
fn imbalance_needs_two_busy_nodes() {
    assert_eq!(imbalance(&[]), None);
    assert_eq!(imbalance(&[(n(1), 100.0)]), None, "one node");
    assert_eq!(imbalance(&[(n(1), 0.5), (n(2), 0.0)]), None, "idle");
    let i = imbalance(&[(n(1), 300.0), (n(2), 100.0)]).unwrap();
    assert_eq!(i.node, n(1));
    assert_eq!(i.ratio, 1.5);
    let eq = imbalance(&[(n(1), 100.0), (n(2), 100.0)]).unwrap();
    assert_eq!(eq.ratio, 1.0);
}

fn point(at: f64, a: f64, b: f64) -> LoadPoint {
    LoadPoint {
        at,
        loads: vec![(n(1), a), (n(2), b)],
        complete: true,
    }
}

#[test]
fn skew_must_hold_for_the_window() {
    assert_eq!(
        sustained_skew(&[], 100.0, 1.5, 30.0).unwrap_err(),
        "no load data yet"
    );
    let one = LoadPoint {
        at: 100.0,
        loads: vec![(n(1), 500.0)],
        complete: true,
    };
    assert!(sustained_skew(&[one], 100.0, 1.5, 0.0)
        .unwrap_err()
        .contains("1 data worker"));
    // equal load: no skew
    let equal: Vec<LoadPoint> = (0..10)
        .map(|i| point(i as f64 * 10.0, 100.0, 100.0))
        .collect();
    assert!(sustained_skew(&equal, 90.0, 1.5, 30.0)
        .unwrap_err()
        .starts_with("no load skew: 127.0.0.1:"));
    // skewed since t=60: at t=80 held 20 s of 30
    let mut s: Vec<LoadPoint> = (0..6)
        .map(|i| point(i as f64 * 10.0, 100.0, 100.0))
        .collect();
    s.extend((6..9).map(|i| point(i as f64 * 10.0, 1900.0, 100.0)));
    let e = sustained_skew(&s, 80.0, 1.5, 30.0).unwrap_err();
    assert!(e.contains("1.9x the mean, for 20s of 30s"), "{e}");
    s.push(point(90.0, 1900.0, 100.0));
    let ok = sustained_skew(&s, 90.0, 1.5, 30.0).unwrap();
    assert_eq!(ok.node, n(1));
    assert!((ok.ratio - 1.9).abs() < 1e-9);
    // a sample with a node missing breaks the streak
    s[7].complete = false;
    assert!(sustained_skew(&s, 90.0, 1.5, 30.0).is_err());
    // idle cluster
    let idle = vec![point(0.0, 0.9, 0.0), point(100.0, 0.9, 0.0)];
    assert!(sustained_skew(&idle, 100.0, 1.5, 30.0)
        .unwrap_err()
        .contains("idle"));
}

fn mv(min: &str, to: NodeAddr) -> PlannedMove {
    PlannedMove {
        key: GroupKey::new(1, min),
        target: to,
    }
}

#[test]
fn six_hot_tenants_on_one_node_spread() {
    let mut groups = Vec::new();
    for i in 0..6 {
        groups.push(g(&format!("h{i}"), n(1), 300.0));
    }
    for i in 0..5 {
        groups.push(g(&format!("c{i}"), n(1), 1.0));
        groups.push(g(&format!("d{i}"), n(2), 1.0));
    }
    let nodes = [n(1), n(2)];
    let now = imbalance(&node_loads(&groups, &nodes)).unwrap();
    assert!(now.ratio > 1.9);
    // the plan lists each moving shard (two colocated tables: each group twice)
    let moves = vec![
        mv("h0", n(2)),
        mv("h0", n(2)),
        mv("h1", n(2)),
        mv("h1", n(2)),
        mv("h2", n(2)),
        mv("h2", n(2)),
    ];
    let skew = load_rebalance(&now, &groups, &nodes, &moves).unwrap();
    assert_eq!(skew.moves, 3);
    assert!((skew.predicted_ratio - 1.0).abs() < 1e-9);
    assert_eq!(
        skew.reason(),
        "load skew: 127.0.0.1:1 carries 2.0x the mean; the plan moves 3 shard groups; predicted max/mean 1.0"
    );
}

#[test]
fn a_single_hot_group_that_cannot_be_split_is_left_alone() {
    let groups = vec![g("hot", n(1), 1000.0), g("a", n(1), 1.0), g("b", n(2), 1.0)];
    let nodes = [n(1), n(2)];
    let now = imbalance(&node_loads(&groups, &nodes)).unwrap();
    // moving the hot group only moves the hot spot
    let e = load_rebalance(&now, &groups, &nodes, &[mv("hot", n(2))]).unwrap_err();
    assert!(e.contains("not worth moving data"), "{e}");
    // moving the cold one off the hot node barely helps either
    let e = load_rebalance(&now, &groups, &nodes, &[mv("a", n(2))]).unwrap_err();
    assert!(e.contains("not worth moving data"), "{e}");
    // an empty plan
    let e = load_rebalance(&now, &groups, &nodes, &[]).unwrap_err();
    assert!(e.ends_with("the plan by load moves nothing"), "{e}");
}

#[test]
fn predict_applies_moves_once_per_group() {
    let groups = vec![g("a", n(1), 10.0), g("b", n(1), 5.0)];
    let after = predict(
        &groups,
        &[n(1), n(2), n(3)],
        &[mv("a", n(3)), mv("a", n(3))],
    );
    assert_eq!(after, vec![(n(1), 5.0), (n(2), 0.0), (n(3), 10.0)]);
}

#[test]
fn tenant_rates_over_the_last_period() {
    let text = r#"{"period_secs":60.0,"tenants":[[3,"42",600,1.5],[3,"7",-1,0.0]]}"#;
    let t: TenantStats = serde_json::from_str(text).unwrap();
    assert_eq!(t.tenants[0].tenant, "42");
    let r = t.rates();
    assert_eq!(r[0].1, 10.0);
    assert_eq!(r[0].2, 0.025);
    assert_eq!(r[1].1, 0.0, "a negative count reads as none");
    let zero = TenantStats {
        period_secs: 0.0,
        ..t
    };
    assert!(zero.rates().is_empty());
}

#[test]
fn idle_groups_are_not_rewritten() {
    let s0 = read_at(None, 1, 100.0, 5, 10.0);
    let s1 = read_at(Some(&s0), 1, 110.0, 5, 10.0);
    assert!(needs_write(None, &s0), "a new group is written");
    assert!(needs_write(Some(&s0), &s1), "its first rate is written");
    let s2 = read_at(Some(&s1), 1, 120.0, 5, 10.0);
    assert!(
        !needs_write(Some(&s1), &s2),
        "idle, same node, same counters: skipped"
    );
    // activity, a move, or a decaying load are written
    let busy = read_at(Some(&s1), 1, 120.0, 50, 10.0);
    assert!(needs_write(Some(&s1), &busy));
    let moved = read_at(Some(&s1), 2, 120.0, 0, 10.0);
    assert!(needs_write(Some(&s1), &moved));
    let decaying = read_at(Some(&busy), 1, 130.0, 50, 10.0);
    assert!(needs_write(Some(&busy), &decaying));
    // a skipped group that wakes up after a long gap: rebased, then rated
    let late = read_at(Some(&s1), 1, 1000.0, 80, 10.0);
    assert_eq!(late.rates, s1.rates);
    assert!(needs_write(Some(&s1), &late));
    let next = read_at(Some(&late), 1, 1010.0, 180, 0.0);
    assert_eq!(next.rates.unwrap().scans_per_sec, 10.0);
}

#[test]
fn replay_skew_fires_once_the_skew_held_and_then_once_per_interval() {
    // skewed from 10 s on, every 5 s, until 100 s; balanced after
    let mut s: Vec<LoadPoint> = (0..=40)
        .map(|i| {
            let at = 5.0 * f64::from(i);
            if (10.0..=100.0).contains(&at) {
                point(at, 300.0, 100.0)
            } else {
                point(at, 200.0, 200.0)
            }
        })
        .collect();
    let fired = replay_skew(&s, 1.4, 20.0, 60.0);
    let at: Vec<f64> = fired.iter().map(|f| f.0).collect();
    assert_eq!(at, vec![30.0, 90.0], "held 20 s at 30 s, then the interval");
    assert_eq!(fired[0].1.node, n(1));
    assert!((fired[0].1.ratio - 1.5).abs() < 1e-9);
    assert_eq!(fired[0].2, 20.0);
    // a missing node breaks the streak
    s[5].complete = false; // at 25 s
    let at: Vec<f64> = replay_skew(&s, 1.4, 20.0, 60.0)
        .iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(at, vec![50.0]);
    // off, never, or no data
    assert!(replay_skew(&s, 0.0, 20.0, 60.0).is_empty());
    assert!(replay_skew(&s, 1.4, 20.0, -1.0).is_empty());
    assert!(replay_skew(&[], 1.4, 20.0, 60.0).is_empty());
    // equal load, or one node: never
    let even: Vec<LoadPoint> = (0..20)
        .map(|i| point(5.0 * f64::from(i), 100.0, 100.0))
        .collect();
    assert!(replay_skew(&even, 1.4, 20.0, 60.0).is_empty());
}
