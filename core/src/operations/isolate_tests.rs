//! isolate_tenant: the choice of the tenant and its target, and the kind's transitions.

use super::isolate::{choose, least_loaded, HotTenant, TenantLoad};
use super::*;
use crate::load::LoadPoint;

const T0: f64 = 1_000_000.0;

fn n(port: i32) -> NodeAddr {
    NodeAddr::new("10.0.0.1", port)
}

/// A sample every 5 s over the last 60 s with these loads.
fn series(loads: &[(i32, f64)]) -> Vec<LoadPoint> {
    (0..=12)
        .map(|i| LoadPoint {
            at: T0 - 60.0 + 5.0 * i as f64,
            loads: loads.iter().map(|(p, l)| (n(*p), *l)).collect(),
            complete: true,
        })
        .collect()
}

fn tenant(port: i32, name: &str, load: f64, isolated: bool) -> TenantLoad {
    TenantLoad {
        colocationid: 3,
        tenant: name.into(),
        node: n(port),
        load,
        isolated,
    }
}

fn pick(s: &[LoadPoint], tenants: &[TenantLoad]) -> Result<HotTenant, String> {
    choose(s, T0, 1.5, 30.0, tenants, 0.3)
}

/// Worker 1 carries two hot tenants sharing one shard group (a rebalance cannot split them) and a
/// little more; worker 2 little.
fn two_hot_in_one_group() -> (Vec<LoadPoint>, Vec<TenantLoad>) {
    (
        series(&[(1, 900.0), (2, 100.0)]),
        vec![
            tenant(1, "7", 400.0, false),
            tenant(1, "12", 390.0, false),
            tenant(1, "3", 60.0, false),
            tenant(2, "4", 90.0, false),
        ],
    )
}

#[test]
fn a_hot_tenant_on_the_busy_node_goes_to_the_least_loaded_worker() {
    let (s, t) = two_hot_in_one_group();
    let h = pick(&s, &t).expect("a hot tenant");
    assert_eq!(h.tenant, "7", "the busiest tenant first");
    assert_eq!((h.from.clone(), h.to.clone()), (n(1), n(2)));
    assert!((h.share - 400.0 / 850.0).abs() < 1e-9, "{}", h.share);
    assert!((h.ratio - 1.8).abs() < 1e-9);
    // 900 x 0.47 = 424 moves: 476 / 524, mean 500
    assert!(h.predicted_ratio < 1.1, "{}", h.predicted_ratio);
    assert_eq!(
        h.reason(),
        "hot tenant: tenant 7 (colocation 3) carries 47% of 10.0.0.1:1's load (1.8x the mean); \
         isolating it and moving it to 10.0.0.1:2 predicts max/mean 1.0"
    );
}

#[test]
fn the_target_is_the_least_loaded_of_three() {
    let s = series(&[(1, 900.0), (2, 300.0), (3, 120.0)]);
    let t = vec![tenant(1, "7", 400.0, false), tenant(1, "8", 400.0, false)];
    assert_eq!(pick(&s, &t).unwrap().to, n(3));
    assert_eq!(
        least_loaded(&[(n(2), 5.0), (n(1), 5.0), (n(3), 9.0)], None),
        Some(n(1)),
        "ties: the lowest address"
    );
    assert_eq!(least_loaded(&[(n(1), 5.0)], Some(&n(1))), None);
}

#[test]
fn no_data_no_isolation() {
    let err = pick(&[], &[]).unwrap_err();
    assert!(err.contains("no load data yet"), "{err}");
}

#[test]
fn one_node_no_isolation() {
    let s = series(&[(1, 900.0)]);
    let err = pick(&s, &[tenant(1, "7", 900.0, false)]).unwrap_err();
    assert!(
        err.contains("1 data worker: no load skew possible"),
        "{err}"
    );
}

#[test]
fn equal_load_no_isolation() {
    let s = series(&[(1, 500.0), (2, 500.0)]);
    let t = vec![tenant(1, "7", 400.0, false), tenant(2, "8", 400.0, false)];
    let err = pick(&s, &t).unwrap_err();
    assert!(err.contains("no load skew"), "{err}");
}

#[test]
fn a_skew_not_yet_held_long_enough_waits() {
    let mut s = series(&[(1, 500.0), (2, 500.0)]);
    let last = s.len() - 1;
    s[last].loads = vec![(n(1), 900.0), (n(2), 100.0)];
    let err = pick(&s, &two_hot_in_one_group().1).unwrap_err();
    assert!(err.contains("for 0s of 30s"), "{err}");
}

#[test]
fn a_single_hot_tenant_already_isolated_is_left_to_the_rebalancer() {
    let s = series(&[(1, 900.0), (2, 100.0)]);
    let t = vec![tenant(1, "7", 800.0, true), tenant(1, "3", 50.0, false)];
    let err = pick(&s, &t).unwrap_err();
    assert!(
        err.contains("tenant 7 on 10.0.0.1:1 already has a shard of its own"),
        "{err}"
    );
}

#[test]
fn an_isolated_hot_tenant_is_skipped_for_the_next_hot_one() {
    let (s, mut t) = two_hot_in_one_group();
    t[0].isolated = true;
    assert_eq!(pick(&s, &t).unwrap().tenant, "12");
}

#[test]
fn a_tenant_that_carries_nearly_all_the_load_only_moves_the_hot_spot() {
    // one tenant is 95% of the busy node: moving it makes the other node as hot
    let s = series(&[(1, 900.0), (2, 100.0)]);
    let t = vec![tenant(1, "7", 950.0, false), tenant(1, "3", 50.0, false)];
    let err = pick(&s, &t).unwrap_err();
    assert!(err.contains("it would only move the hot spot"), "{err}");
}

#[test]
fn no_tenant_above_the_share() {
    let s = series(&[(1, 900.0), (2, 100.0)]);
    let t: Vec<TenantLoad> = (0..10)
        .map(|i| tenant(1, &i.to_string(), 90.0, false))
        .collect();
    let err = pick(&s, &t).unwrap_err();
    assert!(err.contains("carries 10% of its load"), "{err}");
}

#[test]
fn no_tracked_tenants() {
    let s = series(&[(1, 900.0), (2, 100.0)]);
    let err = pick(&s, &[tenant(2, "4", 90.0, false)]).unwrap_err();
    assert!(err.contains("citus.stat_tenants_track"), "{err}");
}

#[test]
fn a_share_outside_0_1_is_refused() {
    let (s, t) = two_hot_in_one_group();
    for bad in [0.0, -0.5, 1.5, f64::NAN] {
        let err = choose(&s, T0, 1.5, 30.0, &t, bad).unwrap_err();
        assert!(err.contains("hot_tenant_share"), "{err}");
    }
}

// --- the kind's transitions

fn op() -> Operation {
    new_isolate_tenant(9, "t", "7", n(2), "hot", 0.0).unwrap()
}

fn at(op: &Operation, outcome: Outcome) -> Transition {
    advance(op, outcome, 10.0, &Limits::default())
}

fn tenant_on(port: i32, isolated: bool, changed: bool) -> Outcome {
    Outcome::Tenant {
        shard: 102_040,
        node: n(port),
        isolated,
        changed,
    }
}

#[test]
fn isolate_move_verify_succeeds() {
    let o = op();
    assert_eq!((o.kind, o.step), (Kind::IsolateTenant, Step::Isolate));
    assert_eq!(
        action(&o),
        Action::IsolateTenant {
            table: "t".into(),
            tenant: "7".into()
        }
    );
    assert!(needs_guards(&o));
    let t = at(&o, tenant_on(1, true, true));
    assert_eq!(t.op.step, Step::MoveTenant);
    let rec = t.op.tenant.clone().unwrap();
    assert_eq!((rec.shard, rec.from), (Some(102_040), Some(n(1))));
    assert_eq!(
        t.events[0].message,
        "isolate_tenant tenant 7 of t to 10.0.0.1:2: isolate -> move_tenant: tenant 7 of t isolated \
         to shard 102040 on 10.0.0.1:1 (isolate_tenant_to_new_shard, CASCADE)"
    );
    assert_eq!(
        action(&t.op),
        Action::MoveTenant {
            table: "t".into(),
            tenant: "7".into(),
            target: n(2)
        }
    );
    let t = at(&t.op, tenant_on(2, true, true));
    assert_eq!(t.op.step, Step::VerifyTenant);
    assert!(t.events[0]
        .message
        .contains("moved from 10.0.0.1:1 to 10.0.0.1:2"));
    assert!(!needs_guards(&t.op), "verify only reads");
    let t = at(&t.op, tenant_on(2, true, false));
    assert_eq!(t.op.status, Status::Succeeded);
    assert_eq!(t.events[0].kind, NOTE_SUCCEEDED);
    assert!(t.events[0]
        .message
        .ends_with("tenant 7 of t has shard 102040 of its own on 10.0.0.1:2"));
    assert_eq!(
        describe(&t.op),
        "isolate_tenant tenant 7 of t to 10.0.0.1:2: succeeded"
    );
}

#[test]
fn resumed_steps_that_find_the_work_done_say_so_and_go_on() {
    let t = at(&op(), tenant_on(1, true, false));
    assert_eq!(t.op.step, Step::MoveTenant);
    assert!(t.events[0]
        .message
        .contains("already has a shard of its own"));
    let t = at(&t.op, tenant_on(2, true, false));
    assert_eq!(t.op.step, Step::VerifyTenant);
    assert!(t.events[0]
        .message
        .contains("already on 10.0.0.1:2; not moved again"));
}

#[test]
fn a_tenant_still_shared_or_elsewhere_fails() {
    let t = at(&op(), tenant_on(1, false, true));
    assert_eq!(t.op.status, Status::Failed);
    assert!(t.op.error.unwrap().contains("still shares shard 102040"));
    let mut moving = op();
    moving.step = Step::MoveTenant;
    let t = at(&moving, tenant_on(1, true, true));
    assert_eq!(t.op.status, Status::Failed);
    let mut verify = op();
    verify.step = Step::VerifyTenant;
    let t = at(&verify, tenant_on(2, false, false));
    assert_eq!(t.op.status, Status::Failed);
    assert!(t.op.error.unwrap().contains("shared with other tenants"));
}

#[test]
fn errors_retry_then_fail_and_other_outcomes_are_bugs() {
    let limits = Limits::default();
    let mut o = op();
    for _ in 1..limits.max_attempts {
        o = at(&o, Outcome::Error("lock timeout".into())).op;
        assert_eq!((o.status, o.step), (Status::Running, Step::Isolate));
    }
    let t = at(&o, Outcome::Error("lock timeout".into()));
    assert_eq!(t.op.status, Status::Failed);
    let t = at(&op(), Outcome::Ok);
    assert_eq!(t.op.status, Status::Failed);
    assert!(t.op.error.unwrap().contains("a bug in the executor"));
}

#[test]
fn a_row_without_its_tenant_or_target_is_inconsistent() {
    let mut o = op();
    o.tenant = None;
    assert_eq!(action(&o), Action::Nothing);
    assert_eq!(at(&o, tenant_on(1, true, true)).op.status, Status::Failed);
    assert!(new_operation(1, Kind::IsolateTenant, None, "", 0.0).is_err());
}

#[test]
fn cancel_ends_it_at_once() {
    let mut o = op();
    o.step = Step::MoveTenant;
    let t = cancel(&o, "enough", 5.0).unwrap();
    assert_eq!(t.op.status, Status::Cancelled);
    assert_eq!(t.events[0].kind, NOTE_CANCELLED);
}

#[test]
fn the_row_round_trips_through_json() {
    let mut o = op();
    o.tenant.as_mut().unwrap().shard = Some(5);
    let back: Operation = serde_json::from_value(serde_json::to_value(&o).unwrap()).unwrap();
    assert_eq!(back, o);
    // rows written before the kind existed read without a tenant
    let mut v = serde_json::to_value(op()).unwrap();
    v.as_object_mut().unwrap().remove("tenant");
    let back: Operation = serde_json::from_value(v).unwrap();
    assert_eq!(back.tenant, None);
}
