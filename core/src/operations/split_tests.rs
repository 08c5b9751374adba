//! Unit tests of the split-out: the snapshot split of a warm clone, and its fallback to the
//! ordinary scale-out.

use super::tests::{node, T0};
use super::*;

fn lim() -> Limits {
    Limits::default()
}

fn split() -> Operation {
    new_split_out(1, node(9311), node(9301), "cpu above 80", T0).unwrap()
}

fn step(op: &Operation, o: Outcome, i: u32) -> Transition {
    advance(op, o, T0 + 5.0 * f64::from(i), &lim())
}

#[test]
fn a_split_out_checks_registers_promotes_verifies_and_succeeds() {
    let op = split();
    assert_eq!(op.step, Step::AddClone);
    assert_eq!(op.node, Some(node(9311)));
    assert_eq!(
        action(&op),
        Action::AddClone {
            clone: node(9311),
            primary: node(9301)
        }
    );
    let t = step(&op, Outcome::Ok, 1);
    assert_eq!(t.op.step, Step::CheckSplit);
    let t = step(
        &t.op,
        Outcome::SplitPlan {
            to_clone: 16,
            total: 32,
        },
        1,
    );
    assert!(t.events[0]
        .message
        .contains("16 of 32 shards of 127.0.0.1:9301 go to clone 127.0.0.1:9311"));
    assert_eq!(t.op.step, Step::PromoteClone);
    assert_eq!(
        action(&t.op),
        Action::PromoteClone {
            clone: node(9311),
            primary: node(9301)
        }
    );
    // a promotion that must be retried stays at its step: the executor finds out on resume
    // whether the earlier call committed
    let r = step(&t.op, Outcome::Error("connection lost".into()), 3);
    assert_eq!((r.op.step, r.op.attempts), (Step::PromoteClone, 1));
    let t = step(&r.op, Outcome::Ok, 4);
    assert_eq!(t.op.step, Step::VerifySplit);
    assert!(!needs_guards(&t.op), "verifying is a read");
    let t = step(
        &t.op,
        Outcome::Split {
            clone: 16,
            primary: 16,
        },
        5,
    );
    assert_eq!(t.op.status, Status::Succeeded);
    assert_eq!(t.op.split, Some((16, 16)));
    assert_eq!(t.events.last().unwrap().kind, NOTE_SUCCEEDED);
    assert!(t.events.last().unwrap().message.contains("16 placements"));
}

#[test]
fn an_unready_clone_falls_back_to_the_ordinary_scale_out_and_says_why() {
    let t = step(
        &split(),
        Outcome::CloneUnusable("clone 127.0.0.1:9311 lags 40.0 MB behind 127.0.0.1:9301".into()),
        1,
    );
    assert_eq!(t.op.step, Step::DropClone);
    assert_eq!(t.op.node, None);
    assert_eq!(t.events[0].kind, NOTE_FALLBACK);
    assert!(t.events[0]
        .message
        .contains("falling back to the ordinary scale-out: clone 127.0.0.1:9311 lags 40.0 MB"));
    assert_eq!(action(&t.op), Action::DropClone { clone: node(9311) });
    let t = step(&t.op, Outcome::Ok, 2);
    assert_eq!(t.op.step, Step::PickStandby);
    assert_eq!(action(&t.op), Action::PickStandby);
    // from here it is a scale-out
    let t = step(&t.op, Outcome::Picked(node(9305)), 3);
    let t = step(&t.op, Outcome::Ok, 4);
    assert_eq!(t.op.step, Step::StartRebalance);
    let t = step(&t.op, Outcome::JobStarted(Some(4)), 5);
    let t = step(
        &t.op,
        Outcome::Job {
            state: JobState::Finished,
            done: 3,
            total: 3,
        },
        6,
    );
    assert_eq!(t.op.status, Status::Succeeded);
    assert_eq!(t.op.kind, Kind::SplitOut);
    assert!(t.op.fallback.as_deref().unwrap().contains("lags 40.0 MB"));
    assert_eq!(t.op.added, vec![node(9305)]);
}

#[test]
fn a_catch_up_timeout_at_promotion_falls_back() {
    let mut op = split();
    op.step = Step::PromoteClone;
    let t = step(
        &op,
        Outcome::CloneUnusable("Clone 127.0.0.1:9311 failed to catch up within 10 seconds".into()),
        1,
    );
    assert_eq!(t.op.step, Step::DropClone);
    assert!(t.op.fallback.as_deref().unwrap().contains("catch up"));
}

#[test]
fn an_empty_plan_and_exhausted_errors_fall_back_but_not_after_the_split() {
    let mut op = split();
    op.step = Step::CheckSplit;
    let t = step(
        &op,
        Outcome::SplitPlan {
            to_clone: 0,
            total: 3,
        },
        1,
    );
    assert_eq!(t.op.step, Step::DropClone);
    assert!(t
        .op
        .fallback
        .as_deref()
        .unwrap()
        .contains("none of the 3 shards"));
    for s in [Step::CheckSplit, Step::AddClone, Step::PromoteClone] {
        let mut op = split();
        op.step = s;
        for i in 1..=lim().max_attempts {
            op = step(&op, Outcome::Error("down".into()), i).op;
        }
        assert_eq!(op.step, Step::DropClone, "{s}");
        assert_eq!(op.status, Status::Running, "{s}");
    }
    // once split, a failure to verify fails: the clone is a worker now, nothing to fall back to
    let mut op = split();
    op.step = Step::VerifySplit;
    let t = step(
        &op,
        Outcome::Split {
            clone: 0,
            primary: 8,
        },
        1,
    );
    assert_eq!(t.op.status, Status::Failed);
    assert!(t
        .op
        .error
        .as_deref()
        .unwrap()
        .contains("holds no placements"));
}

#[test]
fn a_split_out_without_its_primary_is_inconsistent() {
    let op = new_operation(1, Kind::SplitOut, Some(node(9311)), "", T0).unwrap();
    assert_eq!(action(&op), Action::Nothing);
    let t = step(&op, Outcome::Ok, 1);
    assert_eq!(t.op.status, Status::Failed);
    assert!(new_operation(1, Kind::SplitOut, None, "", T0).is_err());
}

#[test]
fn a_split_out_resumes_at_its_persisted_step() {
    // the row as a crash leaves it: the same action again from the json
    for s in [
        Step::CheckSplit,
        Step::AddClone,
        Step::PromoteClone,
        Step::VerifySplit,
        Step::DropClone,
    ] {
        let mut op = split();
        op.step = s;
        let back: Operation = serde_json::from_str(&serde_json::to_string(&op).unwrap()).unwrap();
        assert_eq!(action(&back), action(&op), "{s}");
        assert_ne!(action(&back), Action::Nothing, "{s}");
    }
}
