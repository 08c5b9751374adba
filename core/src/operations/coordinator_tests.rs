//! Operations that set the coordinator's shouldhaveshards: a scale-out from a single node that
//! sheds the coordinator's shards, and a scale-in back to a single node that gives them back.

use super::tests::{node, T0};
use super::*;

fn coord() -> NodeAddr {
    node(9700)
}

/// Applies the outcomes in order, one tick (5 s) apart; returns the operation and every action
/// it asked for on the way.
fn run(mut op: Operation, outcomes: &[Outcome]) -> (Operation, Vec<Action>) {
    let mut actions = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        actions.push(action(&op));
        op = advance(
            &op,
            o.clone(),
            T0 + 5.0 * (i + 1) as f64,
            &Limits::default(),
        )
        .op;
    }
    (op, actions)
}

fn finished() -> Outcome {
    Outcome::Job {
        state: JobState::Finished,
        done: 4,
        total: 4,
    }
}

#[test]
fn a_scale_out_that_keeps_the_coordinators_shards_rebalances_right_after_the_joins() {
    let op = new_scale_out(1, None, 2, "cpu", T0).unwrap();
    let (op, actions) = run(
        op,
        &[
            Outcome::Picked(node(9701)),
            Outcome::Ok,
            Outcome::Picked(node(9702)),
            Outcome::Ok,
        ],
    );
    assert_eq!(op.step, Step::StartRebalance);
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::SetCoordinatorShards { .. })));
}

#[test]
fn a_scale_out_that_sheds_sets_the_coordinator_false_before_its_one_rebalance() {
    let op = with_coordinator_shards(
        new_scale_out(1, None, 2, "cpu", T0).unwrap(),
        coord(),
        false,
    );
    assert_eq!(op.step, Step::PickStandby, "the nodes join first");
    let (op, actions) = run(
        op,
        &[
            Outcome::Picked(node(9701)),
            Outcome::Ok,
            Outcome::Picked(node(9702)),
            Outcome::Ok,
        ],
    );
    assert_eq!(op.step, Step::CoordinatorShards);
    assert_eq!(
        action(&op),
        Action::SetCoordinatorShards {
            node: coord(),
            value: false
        }
    );
    assert_eq!(actions.len(), 4);
    let t = advance(&op, Outcome::Ok, T0 + 30.0, &Limits::default());
    assert_eq!(t.op.step, Step::StartRebalance);
    assert!(
        t.events[0]
            .message
            .contains("shouldhaveshards = false on coordinator 127.0.0.1:9700"),
        "{:?}",
        t.events
    );
    let (op, _) = run(t.op, &[Outcome::JobStarted(Some(7)), finished()]);
    assert_eq!((op.status, op.step), (Status::Succeeded, Step::Done));
    assert_eq!(op.added, vec![node(9701), node(9702)]);
}

#[test]
fn a_scale_out_that_sheds_with_a_short_pool_still_sheds_before_rebalancing() {
    let op = with_coordinator_shards(
        new_scale_out(1, None, 2, "cpu", T0).unwrap(),
        coord(),
        false,
    );
    let (op, _) = run(
        op,
        &[Outcome::Picked(node(9701)), Outcome::Ok, Outcome::PoolEmpty],
    );
    assert_eq!(op.step, Step::CoordinatorShards);
}

#[test]
fn a_scale_in_to_a_single_node_gives_the_coordinator_its_shards_back_first_and_never_removes_it() {
    let workers = vec![node(9701), node(9702)];
    let op = with_coordinator_shards(
        new_scale_in(1, workers.clone(), "idle", T0).unwrap(),
        coord(),
        true,
    );
    assert_eq!(op.step, Step::CoordinatorShards);
    let (op, actions) = run(
        op,
        &[
            Outcome::Ok,
            Outcome::Ok,
            Outcome::JobStarted(Some(9)),
            finished(),
            Outcome::Ok,
            Outcome::Placements(0),
            Outcome::Ok,
            Outcome::Ok,
        ],
    );
    assert_eq!((op.status, op.step), (Status::Succeeded, Step::Done));
    assert_eq!(
        actions[0],
        Action::SetCoordinatorShards {
            node: coord(),
            value: true
        }
    );
    assert_eq!(
        actions[1],
        Action::SetShouldHaveShards {
            nodes: workers.clone(),
            value: false
        }
    );
    for a in &actions {
        match a {
            Action::SetShouldHaveShards { nodes, .. }
            | Action::CleanupOrphaned { nodes }
            | Action::CountPlacements { nodes }
            | Action::RemoveNode { nodes }
            | Action::ReturnToPool { nodes } => {
                assert_eq!(nodes, &workers, "{a:?}");
                assert!(
                    !nodes.contains(&coord()),
                    "the coordinator is never drained or removed"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn a_failure_before_the_drain_fails_without_restoring_the_workers() {
    let op = with_coordinator_shards(
        new_scale_in(1, vec![node(9701)], "idle", T0).unwrap(),
        coord(),
        true,
    );
    let e = || Outcome::Error("connection refused".into());
    let (op, _) = run(op, &[e(), e(), e()]);
    assert_eq!(
        (op.status, op.step),
        (Status::Failed, Step::CoordinatorShards)
    );
    assert!(op
        .error
        .as_deref()
        .unwrap()
        .contains("coordinator_shards failed after 3 attempts"));
}

#[test]
fn cancelling_at_the_coordinator_step_ends_at_once() {
    let op = with_coordinator_shards(
        new_scale_in(1, vec![node(9701)], "idle", T0).unwrap(),
        coord(),
        true,
    );
    let t = cancel(&op, "changed my mind", T0 + 1.0).unwrap();
    assert_eq!(t.op.status, Status::Cancelled);
    assert_eq!(t.op.step, Step::CoordinatorShards);
}

#[test]
fn a_rebalance_never_touches_the_coordinator_and_a_missing_value_is_inconsistent() {
    let op = new_operation(1, Kind::Rebalance, None, "skew", T0).unwrap();
    assert_eq!(with_coordinator_shards(op.clone(), coord(), false), op);
    let mut bad = with_coordinator_shards(
        new_scale_in(1, vec![node(9701)], "idle", T0).unwrap(),
        coord(),
        true,
    );
    bad.coordinator_shards = None;
    assert_eq!(action(&bad), Action::Nothing);
    let t = advance(&bad, Outcome::Ok, T0 + 5.0, &Limits::default());
    assert_eq!(t.op.status, Status::Failed);
    assert!(t
        .op
        .error
        .unwrap()
        .contains("coordinator_shards needs the coordinator"));
}

#[test]
fn old_rows_without_the_coordinator_fields_still_load() {
    let op = new_scale_out(1, None, 1, "cpu", T0).unwrap();
    let mut v = serde_json::to_value(&op).unwrap();
    let m = v.as_object_mut().unwrap();
    m.remove("coordinator");
    m.remove("coordinator_shards");
    let back: Operation = serde_json::from_value(v).unwrap();
    assert_eq!(back, op);
}
