//! Tests of the resize kind: a node of the requested size from the provisioner, added, then the
//! replaced worker drained onto it and removed; a failure after the drain began restores the old
//! worker's shouldhaveshards and never removes it.

use super::tests::{node, T0};
use super::*;

fn lim() -> Limits {
    Limits::default()
}

fn start() -> Operation {
    new_operation(1, Kind::Resize, Some(node(9703)), "bigger", T0).unwrap()
}

/// Applies `outcomes` one per 5 s.
fn run(outcomes: &[Outcome]) -> Operation {
    let mut op = start();
    for (i, o) in outcomes.iter().enumerate() {
        op = advance(&op, o.clone(), T0 + 5.0 * (i + 1) as f64, &lim()).op;
    }
    op
}

fn act(op: &Operation) -> Action {
    table::spec(op.kind, op.step)
        .expect("a step of resize")
        .ask
        .action(op)
        .unwrap()
}

#[test]
fn a_resize_needs_the_worker_it_replaces_and_asks_the_provisioner_first() {
    let e = new_operation(1, Kind::Resize, None, "x", T0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "a resize operation needs a node (host, port)"
    );
    let op = start();
    assert_eq!(
        op.step,
        Step::RequestNode,
        "never a pool node: its size is unknown"
    );
    assert_eq!(op.replaces, Some(node(9703)));
    assert_eq!(op.node, None);
    assert_eq!(act(&op), Action::RequestNode);
}

#[test]
fn the_answered_node_joins_and_the_replaced_worker_leaves() {
    let new = node(9801);
    let op = run(&[Outcome::Requested(42)]);
    assert_eq!(
        act(&op),
        Action::CheckForNode {
            request_id: Some(42),
            answered_only: true,
        },
        "only the node made for this request"
    );
    let op = run(&[
        Outcome::Requested(42),
        Outcome::Appeared {
            node: new.clone(),
            in_cluster: false,
        },
    ]);
    assert_eq!(op.step, Step::AddNode);
    assert_eq!(act(&op), Action::AddNode { node: new.clone() });
    let op = run(&[
        Outcome::Requested(42),
        Outcome::Appeared {
            node: new.clone(),
            in_cluster: false,
        },
        Outcome::Ok,
    ]);
    assert_eq!(op.step, Step::MarkDraining);
    // the drain acts on the replaced worker, never on the new one
    assert_eq!(
        act(&op),
        Action::SetShouldHaveShards {
            nodes: vec![node(9703)],
            value: false,
        }
    );
    let done = run(&[
        Outcome::Requested(42),
        Outcome::Appeared {
            node: new.clone(),
            in_cluster: false,
        },
        Outcome::Ok,
        Outcome::Marked {
            had_shards: vec![node(9703)],
        },
        Outcome::JobStarted(Some(7)),
        Outcome::Job {
            state: JobState::Finished,
            done: 4,
            total: 4,
        },
        Outcome::Ok,
        Outcome::Placements(0),
    ]);
    assert_eq!(done.step, Step::RemoveNode);
    assert_eq!(
        act(&done),
        Action::RemoveNode {
            nodes: vec![node(9703)]
        }
    );
    let done = advance(&done, Outcome::Ok, T0 + 100.0, &lim()).op;
    assert_eq!(
        act(&done),
        Action::ReturnToPool {
            nodes: vec![node(9703)]
        },
        "the old worker goes back to the provisioner"
    );
    let done = advance(&done, Outcome::Ok, T0 + 105.0, &lim()).op;
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(done.node, Some(new), "the new worker stays");
}

#[test]
fn the_events_name_the_old_worker_and_the_new_one() {
    let op = run(&[
        Outcome::Requested(42),
        Outcome::Appeared {
            node: node(9801),
            in_cluster: false,
        },
    ]);
    let t = advance(&op, Outcome::Ok, T0 + 20.0, &lim());
    let m = &t.events[0].message;
    assert!(
        m.starts_with("resize 127.0.0.1:9703 by 127.0.0.1:9801: add_node -> mark_draining"),
        "{m}"
    );
    assert!(
        m.ends_with("node 127.0.0.1:9801 added: it replaces 127.0.0.1:9703"),
        "{m}"
    );
}

#[test]
fn a_node_the_provisioner_added_itself_goes_straight_to_the_drain() {
    let op = run(&[
        Outcome::Requested(42),
        Outcome::Appeared {
            node: node(9801),
            in_cluster: true,
        },
    ]);
    assert_eq!(op.step, Step::MarkDraining);
}

#[test]
fn a_failed_drain_restores_the_old_worker_and_never_removes_it() {
    let op = run(&[
        Outcome::Requested(42),
        Outcome::Appeared {
            node: node(9801),
            in_cluster: false,
        },
        Outcome::Ok,
        Outcome::Marked {
            had_shards: vec![node(9703)],
        },
        Outcome::JobStarted(Some(7)),
        Outcome::Job {
            state: JobState::Failed,
            done: 1,
            total: 4,
        },
    ]);
    assert_eq!(op.step, Step::Restore);
    assert_eq!(
        act(&op),
        Action::SetShouldHaveShards {
            nodes: vec![node(9703)],
            value: true,
        }
    );
    let op = advance(&op, Outcome::Ok, T0 + 100.0, &lim()).op;
    assert_eq!(op.status, Status::Failed);
    // no provisioned node: fails before anything changed
    let mut waiting = run(&[Outcome::Requested(42)]);
    waiting.step_started_at = T0 - 10_000.0;
    let t = advance(&waiting, Outcome::NotYet, T0 + 10.0, &lim()).op;
    assert_eq!(t.status, Status::Failed, "no node by provision_timeout");
}
