//! Tests of the replace_dead kind: disable the dead node, a replacement joins, copies restore the
//! replication factor, the dead node is removed; never removed before its copies are back.

use super::tests::{node, T0};
use super::*;

fn lim() -> Limits {
    Limits::default()
}

fn copied(shard: Option<&str>, left: i64) -> Outcome {
    Outcome::Copied {
        shard: shard.map(str::to_string),
        left,
    }
}

fn start() -> Operation {
    new_operation(1, Kind::ReplaceDead, Some(node(9703)), "dead", T0).unwrap()
}

/// Applies `outcomes` one per 5 s; returns the operation and every note.
fn run(outcomes: &[Outcome]) -> (Operation, Vec<Note>) {
    let mut op = start();
    let mut notes = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        let t = advance(&op, o.clone(), T0 + 5.0 * (i + 1) as f64, &lim());
        op = t.op;
        notes.extend(t.events);
    }
    (op, notes)
}

#[test]
fn a_replace_dead_needs_its_dead_node_and_starts_by_disabling_it() {
    let e = new_operation(1, Kind::ReplaceDead, None, "x", T0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "a replace_dead operation needs a node (host, port)"
    );
    let op = start();
    assert_eq!(op.step, Step::DisableNode);
    assert_eq!(op.dead, Some(node(9703)));
    assert_eq!(op.node, None, "no replacement yet");
    assert_eq!(action(&op), Action::DisableNode { node: node(9703) });
}

#[test]
fn the_whole_path_copies_then_removes_the_dead_node() {
    use Outcome::*;
    let (op, notes) = run(&[
        Ok,
        Picked(node(9705)),
        Ok,
        copied(Some("shard 1 from a to b"), 1),
        copied(Some("shard 2 from a to b"), 0),
    ]);
    assert_eq!(
        (op.step, op.status),
        (Step::CopyPlacements, Status::Running)
    );
    assert_eq!((op.progress_done, op.progress_total), (2, 2));
    assert_eq!(
        action(&op),
        Action::CopyPlacements {
            dead: node(9703),
            target: Some(node(9705))
        }
    );
    assert!(
        describe(&op).contains("copy_placements, 2/2 copies"),
        "{}",
        describe(&op)
    );
    assert!(describe(&op).starts_with("replace_dead 127.0.0.1:9703 by 127.0.0.1:9705"));
    let t = advance(&op, copied(None, 0), T0 + 100.0, &lim());
    assert_eq!(t.op.step, Step::RemoveNode);
    assert_eq!(action(&t.op), Action::RemoveDeadNode { node: node(9703) });
    let t = advance(&t.op, Ok, T0 + 105.0, &lim());
    assert_eq!((t.op.step, t.op.status), (Step::Done, Status::Succeeded));
    let msg = &t.events.last().unwrap().message;
    assert!(msg.contains("dead node 127.0.0.1:9703 removed"), "{msg}");
    assert!(msg.contains("replaced by 127.0.0.1:9705"), "{msg}");
    assert!(notes
        .iter()
        .any(|n| n.kind == NOTE_PROGRESS && n.message.contains("1/2 copies done")));
}

#[test]
fn an_empty_pool_asks_the_provisioner_and_a_provisioned_node_gets_the_copies() {
    use Outcome::*;
    let (op, _) = run(&[Ok, PoolEmpty]);
    assert_eq!(op.step, Step::RequestNode);
    let (op, _) = run(&[
        Ok,
        PoolEmpty,
        Requested(4),
        Appeared {
            node: node(9706),
            in_cluster: true,
        },
    ]);
    assert_eq!(op.step, Step::CopyPlacements);
    assert_eq!(op.node, Some(node(9706)));
}

#[test]
fn the_dead_node_is_only_removed_after_copy_placements_found_nothing_left() {
    // every outcome at every step before remove_node: remove_node is entered only from
    // copy_placements with Copied { None, 0 }
    use Outcome::*;
    let outcomes = [
        Ok,
        Picked(node(9705)),
        PoolEmpty,
        Requested(1),
        NotYet,
        Placements(0),
        copied(Some("s"), 0),
        copied(Some("s"), 3),
        copied(None, 2),
        copied(None, 0),
        Error("x".into()),
    ];
    let prefixes: Vec<Vec<Outcome>> = vec![
        vec![],
        vec![Ok],
        vec![Ok, Picked(node(9705))],
        vec![Ok, PoolEmpty],
        vec![Ok, PoolEmpty, Requested(1)],
        vec![Ok, Picked(node(9705)), Ok],
    ];
    for p in prefixes {
        let (op, _) = run(&p);
        for o in &outcomes {
            let t = advance(&op, o.clone(), T0 + 500.0, &lim());
            if t.op.step == Step::RemoveNode {
                assert_eq!((op.step, o), (Step::CopyPlacements, &copied(None, 0)));
            }
        }
    }
}

#[test]
fn failing_or_cancelling_never_removes_and_says_where() {
    use Outcome::*;
    let (op, _) = run(&[Ok, Picked(node(9705)), Ok]);
    let mut op2 = op.clone();
    for i in 0..3 {
        op2 = advance(
            &op2,
            Error("no space".into()),
            T0 + 200.0 + i as f64,
            &lim(),
        )
        .op;
    }
    assert_eq!(
        (op2.step, op2.status),
        (Step::CopyPlacements, Status::Failed)
    );
    assert!(op2.error.as_deref().unwrap().contains("no space"));
    let t = cancel(&op, "operator", T0 + 300.0).unwrap();
    assert_eq!(
        (t.op.step, t.op.status),
        (Step::CopyPlacements, Status::Cancelled)
    );
    // a cancelled or failed replace_dead has nothing further to do
    assert_eq!(action(&t.op), Action::Nothing);
}

#[test]
fn a_row_without_its_dead_node_fails_as_inconsistent() {
    let mut op = start();
    op.dead = None;
    assert_eq!(action(&op), Action::Nothing);
    let t = advance(&op, Outcome::Ok, T0 + 1.0, &lim());
    assert_eq!(t.op.status, Status::Failed);
    assert!(t.op.error.unwrap().contains("needs the dead node"));
}

#[test]
fn rows_written_before_replace_dead_existed_still_parse() {
    // a 0.2.0 row of another kind has no "dead" field
    let json = r#"{"id":3,"kind":"rebalance","status":"running","step":"start_rebalance",
                   "started_at":1.0,"step_started_at":1.0}"#;
    let op: Operation = serde_json::from_str(json).unwrap();
    assert_eq!(op.dead, None);
}
