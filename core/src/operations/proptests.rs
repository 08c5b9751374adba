//! Property tests of the operation state machine, the window and the trigger.

use proptest::prelude::*;

use super::tests::{node, paths, reach, start, T0};
use super::*;

fn arb_state() -> impl Strategy<Value = JobState> {
    prop::sample::select(JobState::ALL.to_vec())
}

/// Any outcome, sensible or not.
fn arb_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Ok),
        1 => prop::option::of(1i64..20).prop_map(Outcome::JobStarted),
        2 => (arb_state(), 0i64..10, 0i64..10)
            .prop_map(|(state, done, total)| Outcome::Job { state, done, total }),
        1 => (9701i32..9705).prop_map(|p| Outcome::Picked(node(p))),
        1 => Just(Outcome::PoolEmpty),
        1 => (1i64..100).prop_map(Outcome::Requested),
        1 => ((9701i32..9705), any::<bool>())
            .prop_map(|(p, in_cluster)| Outcome::Appeared { node: node(p), in_cluster }),
        1 => Just(Outcome::NotYet),
        2 => (-1i64..4).prop_map(Outcome::Placements),
        1 => (prop::option::of("[a-z ]{0,8}"), -1i64..4)
            .prop_map(|(shard, left)| Outcome::Copied { shard, left }),
        2 => "[a-z ]{0,12}".prop_map(Outcome::Error),
        1 => (0i64..4, 0i64..8).prop_map(|(to_clone, total)| Outcome::SplitPlan { to_clone, total }),
        1 => "[a-z ]{0,12}".prop_map(Outcome::CloneUnusable),
        1 => (0i64..4, 0i64..8).prop_map(|(clone, primary)| Outcome::Split { clone, primary }),
        1 => ((9701i32..9705), any::<bool>(), any::<bool>()).prop_map(|(p, isolated, changed)| {
            Outcome::Tenant { shard: 102_040, node: node(p), isolated, changed }
        }),
    ]
}

/// An outcome that fits the action (with random details), so runs get deep into the machine.
fn plausible(a: &Action, pick: u8) -> Outcome {
    let states = JobState::ALL;
    match a {
        Action::StartRebalance { .. } => {
            Outcome::JobStarted((!pick.is_multiple_of(4)).then_some(i64::from(pick)))
        }
        Action::PollJob { .. } => Outcome::Job {
            state: states[usize::from(pick) % states.len()],
            done: i64::from(pick % 5),
            total: 5,
        },
        Action::PickStandby if pick.is_multiple_of(2) => Outcome::PoolEmpty,
        Action::PickStandby => Outcome::Picked(node(9704)),
        Action::RequestNode => Outcome::Requested(i64::from(pick)),
        Action::CheckForNode { .. } => match pick % 3 {
            0 => Outcome::NotYet,
            1 => Outcome::Appeared {
                node: node(9706),
                in_cluster: true,
            },
            _ => Outcome::Appeared {
                node: node(9706),
                in_cluster: false,
            },
        },
        Action::CountPlacements { .. } => Outcome::Placements(i64::from(pick % 3)),
        Action::CopyPlacements { .. } => Outcome::Copied {
            shard: (!pick.is_multiple_of(3)).then(|| format!("shard {pick}")),
            left: i64::from(pick % 3),
        },
        Action::AddClone { .. } if pick.is_multiple_of(3) => Outcome::CloneUnusable("lag".into()),
        Action::CheckSplit { .. } => Outcome::SplitPlan {
            to_clone: i64::from(pick % 3),
            total: 4,
        },
        Action::PromoteClone { .. } if pick.is_multiple_of(3) => {
            Outcome::CloneUnusable("catch-up timed out".into())
        }
        Action::VerifySplit { .. } => Outcome::Split {
            clone: i64::from(pick % 3),
            primary: 2,
        },
        Action::IsolateTenant { .. } | Action::MoveTenant { .. } | Action::VerifyTenant { .. } => {
            Outcome::Tenant {
                shard: 102_040,
                // mostly on the target (9704), sometimes elsewhere
                node: node(if pick.is_multiple_of(5) { 9701 } else { 9704 }),
                isolated: !pick.is_multiple_of(7),
                changed: pick.is_multiple_of(2),
            }
        }
        _ => Outcome::Ok,
    }
}

/// Each tick: seconds elapsed, whether to use a plausible outcome, its pick, or any outcome.
fn arb_ticks(max: usize) -> impl Strategy<Value = Vec<(f64, bool, u8, Outcome)>> {
    prop::collection::vec(
        (
            0.0..400.0f64,
            prop::bool::weighted(0.8),
            any::<u8>(),
            arb_outcome(),
        ),
        0..max,
    )
}

fn arb_limits() -> impl Strategy<Value = Limits> {
    (
        prop_oneof![Just(-1.0), 0.0..2000.0f64],
        prop_oneof![Just(-1.0), 0.0..2000.0f64],
        0u32..5,
    )
        .prop_map(|(provision_timeout, job_timeout, max_attempts)| Limits {
            provision_timeout,
            job_timeout,
            max_attempts,
        })
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

/// `b` with `a`'s times when they are within a microsecond (serde_json without its
/// `float_roundtrip` feature may parse a float one ulp off).
fn with_times_of(a: &Operation, b: &Operation) -> Operation {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-6;
    let mut b = b.clone();
    if close(a.started_at, b.started_at) {
        b.started_at = a.started_at;
    }
    if close(a.step_started_at, b.step_started_at) {
        b.step_started_at = a.step_started_at;
    }
    if let (Some(x), Some(y)) = (a.finished_at, b.finished_at) {
        if close(x, y) {
            b.finished_at = a.finished_at;
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A scale-in never reaches remove_node / return_to_pool without a preceding Placements(0)
    /// at verify_empty; a drained node that is not removed gets shouldhaveshards back (or the
    /// failure says it could not).
    #[test]
    fn scale_in_never_removes_a_node_with_placements(
        ticks in arb_ticks(80),
        limits in arb_limits(),
    ) {
        let mut op = start(Kind::ScaleIn);
        let mut now = T0;
        let (mut saw_zero, mut marked, mut removed, mut restored) = (false, false, false, false);
        for (dt, use_plausible, pick, any) in ticks {
            let a = action(&op);
            if matches!(a, Action::RemoveNode { .. } | Action::ReturnToPool { .. }) {
                prop_assert!(saw_zero, "{a:?} without Placements(0): {op:?}");
            }
            let outcome = if use_plausible { plausible(&a, pick) } else { any };
            now += dt;
            let t = advance(&op, outcome.clone(), now, &limits);
            let (from, to) = (op.step, t.op.step);
            if to == Step::RemoveNode && from != Step::RemoveNode {
                prop_assert_eq!(from, Step::VerifyEmpty);
                prop_assert_eq!(&outcome, &Outcome::Placements(0));
                saw_zero = true;
            }
            if to == Step::ReturnToPool && from != Step::ReturnToPool {
                prop_assert_eq!(from, Step::RemoveNode);
                prop_assert!(saw_zero);
            }
            if op.status == Status::Running && outcome == Outcome::Ok {
                marked |= from == Step::MarkDraining;
                removed |= from == Step::RemoveNode;
                restored |= from == Step::Restore;
            }
            op = t.op;
        }
        match op.status {
            Status::Running => {}
            Status::Succeeded => prop_assert!(removed && saw_zero),
            Status::Failed | Status::Cancelled => {
                if marked && !removed {
                    let e = op.error.clone().unwrap_or_default();
                    prop_assert!(
                        restored || (op.step == Step::Restore && e.contains("could not restore")),
                        "drained node left without shouldhaveshards: {op:?}"
                    );
                }
            }
        }
    }

    /// Every operation, from any step, ends in a finished status within 2 * max_attempts ticks
    /// when every outcome is an error.
    #[test]
    fn all_errors_terminate(
        path in 0..paths().len(),
        limits in arb_limits(),
        dts in prop::collection::vec(0.0..100.0f64, 12),
    ) {
        let (kind, _, outcomes) = &paths()[path];
        let mut op = reach(*kind, outcomes);
        let bound = 2 * limits.max_attempts.max(1) as usize;
        let mut now = T0 + 1000.0;
        let mut ticks = 0;
        while op.status == Status::Running {
            prop_assert!(ticks < bound, "not finished after {ticks} errors: {op:?}");
            now += dts[ticks % dts.len()];
            op = advance(&op, Outcome::Error("down".into()), now, &limits).op;
            ticks += 1;
        }
        prop_assert!(op.finished_at.is_some());
        prop_assert!(op.error.clone().unwrap().contains("down"));
        prop_assert_eq!(action(&op), Action::Nothing);
    }

    /// Any outcomes on any kind: no panic; finished stays finished; every row survives a json
    /// round trip with the same action; running rows always have something to do; attempts stay
    /// below the limit; finishing emits exactly one final note.
    #[test]
    fn machine_invariants(
        kind in arb_kind(),
        ticks in arb_ticks(60),
        limits in arb_limits(),
    ) {
        let mut op = start(kind);
        let mut now = T0;
        for (dt, use_plausible, pick, any) in ticks {
            let a = action(&op);
            let json = serde_json::to_string(&op).unwrap();
            let back: Operation = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&with_times_of(&op, &back), &op);
            prop_assert_eq!(action(&back), a.clone());
            if op.status == Status::Running {
                prop_assert_ne!(&a, &Action::Nothing);
                prop_assert!(op.step.belongs_to(kind));
            }
            let outcome = if use_plausible { plausible(&a, pick) } else { any };
            now += dt;
            let t = advance(&op, outcome, now, &limits);
            if op.status != Status::Running {
                prop_assert_eq!(&t.op, &op);
                prop_assert!(t.events.is_empty());
            } else {
                prop_assert!(t.op.attempts < limits.max_attempts.max(1) || t.op.status != Status::Running);
                let finals = t
                    .events
                    .iter()
                    .filter(|e| [NOTE_SUCCEEDED, NOTE_FAILED, NOTE_CANCELLED].contains(&e.kind.as_str()))
                    .count();
                prop_assert_eq!(finals, usize::from(t.op.status != Status::Running));
                if t.op.step != op.step {
                    prop_assert_eq!(t.op.step_started_at, now);
                    prop_assert_eq!(t.op.attempts, 0);
                } else if t.op.status == Status::Running {
                    prop_assert_eq!(t.op.step_started_at, op.step_started_at);
                }
                if t.op.status == Status::Succeeded {
                    prop_assert_eq!(t.op.step, Step::Done);
                    prop_assert_eq!(&t.op.error, &None);
                }
                prop_assert!(!describe(&t.op).is_empty());
            }
            op = t.op;
        }
    }

    /// `contains` agrees with a brute-force definition: some opening instant s (an allowed day at
    /// the start minute) with s <= t < s + length.
    #[test]
    fn window_contains_matches_brute_force(
        days in 1u8..128,
        start in 0u16..1440,
        len in 1u16..1440,
        t in -1e9f64..3e9,
    ) {
        let end = if start + len > 1440 { start + len - 1440 } else { start + len };
        let day_names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let list: Vec<&str> = (0..7).filter(|d| days & (1 << d) != 0).map(|d| day_names[d]).collect();
        let text = format!(
            "{} {:02}:{:02}-{:02}:{:02}",
            list.join(","), start / 60, start % 60, end / 60, end % 60
        );
        let w = MaintenanceWindow::parse(&text).unwrap();
        prop_assert_eq!(MaintenanceWindow::parse(&w.to_string()).unwrap(), w);
        let day0 = (t / 86_400.0).floor();
        let mut brute = false;
        for back in -1..=0 {
            let day = day0 + f64::from(back);
            let weekday = ((day as i64 + 3).rem_euclid(7)) as u8;
            let s = day * 86_400.0 + f64::from(start) * 60.0;
            if days & (1 << weekday) != 0 && s <= t.floor() && t.floor() < s + f64::from(len) * 60.0 {
                brute = true;
            }
        }
        prop_assert_eq!(w.contains(t), brute, "{} at {}", text, t);
        let wait = w.opens_in(t).unwrap();
        prop_assert!((0.0..=8.0 * 86_400.0).contains(&wait));
        if brute {
            prop_assert_eq!(wait, 0.0);
        } else {
            prop_assert!(w.contains(t + wait + 0.5), "opens_in {} of {} at {}", wait, text, t);
        }
    }

    /// Nothing is ever due within the failure backoff, and plan_needed never says yes when a
    /// skew rebalance could not start.
    #[test]
    fn trigger_respects_backoff_and_plan_needed(
        added in any::<bool>(),
        moves in prop::option::of(-1i64..5),
        since_change in 0.0..100.0f64,
        since_rebalance in prop::option::of(0.0..10_000.0f64),
        since_failure in prop::option::of(0.0..1000.0f64),
        settle in 0.0..50.0f64,
        interval in prop_oneof![Just(-1.0), 0.0..5000.0f64],
        backoff in 0.0..500.0f64,
    ) {
        let mut active = vec![node(9701), node(9702)];
        if added {
            active.push(node(9703));
        }
        let i = TriggerInput {
            now: T0,
            active_workers: active,
            last_seen_workers: Some(vec![node(9701), node(9702)]),
            workers_changed_at: Some(T0 - since_change),
            plan_moves: moves,
            last_rebalance_started: since_rebalance.map(|s| T0 - s),
            last_failure: since_failure.map(|s| T0 - s),
            settle,
            interval,
            failure_backoff: backoff,
            load_skew: None,
        };
        let due = rebalance_due(&i);
        if since_failure.is_some_and(|s| s < backoff - 1e-6) {
            prop_assert!(due.is_err());
        }
        if let Ok(Some(RebalanceTrigger::Skew { moves: m })) = due {
            prop_assert!(m > 0 && interval >= 0.0 && !added);
        }
        if let Ok(Some(RebalanceTrigger::WorkersChanged { added: a, .. })) = &due {
            prop_assert!(added && since_change >= settle - 1e-6);
            prop_assert_eq!(a, &vec![node(9703)]);
        }
        if plan_needed(&i) {
            let probe = TriggerInput { plan_moves: Some(3), ..i.clone() };
            prop_assert_eq!(rebalance_due(&probe), Ok(Some(RebalanceTrigger::Skew { moves: 3 })));
        }
    }
}
