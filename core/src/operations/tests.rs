//! Unit tests of the operation state machine, the trigger, the guards and the window.

use super::guards::check;
use super::*;

pub(crate) const T0: f64 = 1_700_000_000.0;

pub(crate) fn node(port: i32) -> NodeAddr {
    NodeAddr::new("127.0.0.1", port)
}

fn lim() -> Limits {
    Limits::default()
}

fn job(state: JobState, done: i64, total: i64) -> Outcome {
    Outcome::Job { state, done, total }
}

fn err(msg: &str) -> Outcome {
    Outcome::Error(msg.to_string())
}

/// An operation and a clock that moves 5 s per tick.
struct Run {
    op: Operation,
    now: f64,
    limits: Limits,
    events: Vec<Note>,
}

impl Run {
    fn new(kind: Kind, node: Option<NodeAddr>) -> Run {
        Run {
            op: new_operation(1, kind, node, "test", T0).unwrap(),
            now: T0,
            limits: lim(),
            events: Vec::new(),
        }
    }

    fn scale_in() -> Run {
        Run::new(Kind::ScaleIn, Some(node(9703)))
    }

    /// One tick: `dt` seconds later, apply `o`; returns this tick's notes.
    fn after(&mut self, dt: f64, o: Outcome) -> Vec<Note> {
        self.now += dt;
        let t = advance(&self.op, o, self.now, &self.limits);
        self.op = t.op;
        self.events.extend(t.events.clone());
        t.events
    }

    fn tick(&mut self, o: Outcome) -> Vec<Note> {
        self.after(5.0, o)
    }

    fn at(&self) -> (Step, Status) {
        (self.op.step, self.op.status)
    }
}

/// Every (kind, step) a running operation can be at, with the outcomes that lead there from
/// `new_operation` (a scale-out without a node).
pub(crate) fn paths() -> Vec<(Kind, Step, Vec<Outcome>)> {
    use Outcome::*;
    let n = node(9704);
    let fin = job(JobState::Finished, 3, 3);
    vec![
        (Kind::Rebalance, Step::StartRebalance, vec![]),
        (
            Kind::Rebalance,
            Step::WaitRebalance,
            vec![JobStarted(Some(7))],
        ),
        (Kind::ScaleOut, Step::PickStandby, vec![]),
        (Kind::ScaleOut, Step::AddNode, vec![Picked(n.clone())]),
        (Kind::ScaleOut, Step::RequestNode, vec![PoolEmpty]),
        (
            Kind::ScaleOut,
            Step::WaitForNode,
            vec![PoolEmpty, Requested(42)],
        ),
        (
            Kind::ScaleOut,
            Step::StartRebalance,
            vec![Picked(n.clone()), Ok],
        ),
        (
            Kind::ScaleOut,
            Step::WaitRebalance,
            vec![Picked(n.clone()), Ok, JobStarted(Some(7))],
        ),
        (Kind::ScaleIn, Step::MarkDraining, vec![]),
        (Kind::ScaleIn, Step::StartDrain, vec![Ok]),
        (
            Kind::ScaleIn,
            Step::WaitDrain,
            vec![Ok, JobStarted(Some(7))],
        ),
        (
            Kind::ScaleIn,
            Step::Cleanup,
            vec![Ok, JobStarted(Some(7)), fin.clone()],
        ),
        (
            Kind::ScaleIn,
            Step::VerifyEmpty,
            vec![Ok, JobStarted(Some(7)), fin.clone(), Ok],
        ),
        (
            Kind::ScaleIn,
            Step::RemoveNode,
            vec![Ok, JobStarted(Some(7)), fin.clone(), Ok, Placements(0)],
        ),
        (
            Kind::ScaleIn,
            Step::ReturnToPool,
            vec![Ok, JobStarted(Some(7)), fin.clone(), Ok, Placements(0), Ok],
        ),
        (
            Kind::ScaleIn,
            Step::Restore,
            vec![Ok, JobStarted(Some(7)), job(JobState::Failed, 1, 3)],
        ),
        (Kind::ReplaceDead, Step::DisableNode, vec![]),
        (Kind::ReplaceDead, Step::PickStandby, vec![Ok]),
        (
            Kind::ReplaceDead,
            Step::AddNode,
            vec![Ok, Picked(n.clone())],
        ),
        (Kind::ReplaceDead, Step::RequestNode, vec![Ok, PoolEmpty]),
        (
            Kind::ReplaceDead,
            Step::WaitForNode,
            vec![Ok, PoolEmpty, Requested(42)],
        ),
        (
            Kind::ReplaceDead,
            Step::CopyPlacements,
            vec![Ok, Picked(n.clone()), Ok],
        ),
        (
            Kind::ReplaceDead,
            Step::RemoveNode,
            vec![
                Ok,
                Picked(n.clone()),
                Ok,
                Copied {
                    shard: Some("shard 1".into()),
                    left: 0,
                },
                Copied {
                    shard: None,
                    left: 0,
                },
            ],
        ),
        (Kind::IsolateTenant, Step::Isolate, vec![]),
        (
            Kind::IsolateTenant,
            Step::MoveTenant,
            vec![tenant_at(9701, true)],
        ),
        (
            Kind::IsolateTenant,
            Step::VerifyTenant,
            vec![tenant_at(9701, true), tenant_at(9704, true)],
        ),
    ]
}

/// An isolate_tenant step's outcome: the tenant's shard on `port`.
pub(crate) fn tenant_at(port: i32, isolated: bool) -> Outcome {
    Outcome::Tenant {
        shard: 102_040,
        node: node(port),
        isolated,
        changed: true,
    }
}

pub(crate) fn start(kind: Kind) -> Operation {
    if kind == Kind::SplitOut {
        return crate::operations::new_split_out(1, node(9801), node(9701), "test", T0).unwrap();
    }
    if kind == Kind::IsolateTenant {
        return crate::operations::new_isolate_tenant(1, "t", "7", node(9704), "test", T0).unwrap();
    }
    let n = matches!(kind, Kind::ScaleIn | Kind::ReplaceDead | Kind::Resize).then(|| node(9703));
    new_operation(1, kind, n, "test", T0).unwrap()
}

/// The operation after the outcomes of `path`, one every 5 s.
pub(crate) fn reach(kind: Kind, outcomes: &[Outcome]) -> Operation {
    let mut op = start(kind);
    for (i, o) in outcomes.iter().enumerate() {
        op = advance(&op, o.clone(), T0 + 5.0 * (i + 1) as f64, &lim()).op;
    }
    op
}

// ---------------------------------------------------------------- names and types

#[test]
fn names_round_trip_and_match_serde() {
    for k in Kind::ALL {
        assert_eq!(Kind::parse(k.as_str()), Ok(*k));
        assert_eq!(serde_json::to_string(k).unwrap(), format!("\"{k}\""));
    }
    for s in Status::ALL {
        assert_eq!(Status::parse(s.as_str()), Ok(*s));
        assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
    }
    for s in Step::ALL {
        assert_eq!(Step::parse(s.as_str()), Ok(*s));
        assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        assert_eq!(
            serde_json::from_str::<Step>(&format!("\"{s}\"")).unwrap(),
            *s
        );
    }
}

#[test]
fn job_states_parse_citus_text() {
    for (text, s) in [
        ("scheduled", JobState::Scheduled),
        ("running", JobState::Running),
        ("finished", JobState::Finished),
        ("cancelling", JobState::Cancelling),
        ("cancelled", JobState::Cancelled),
        ("failing", JobState::Failing),
        ("failed", JobState::Failed),
    ] {
        assert_eq!(JobState::parse(text), Ok(s));
        assert_eq!(s.as_str(), text);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{text}\""));
    }
    assert_eq!(JobState::parse(" Running "), Ok(JobState::Running));
    assert!(JobState::Finished.is_terminal() && !JobState::Cancelling.is_terminal());
}

#[test]
fn bad_names_list_what_is_allowed() {
    let e = Kind::parse("grow").unwrap_err().to_string();
    assert_eq!(
        e,
        "operation kind (\"grow\") must be one of rebalance, scale_out, scale_in, replace_dead, split_out, \
         isolate_tenant, resize"
    );
    let e = Status::parse("ok").unwrap_err().to_string();
    assert!(e.contains("running, succeeded, failed, cancelled"), "{e}");
    let e = Step::parse("nap").unwrap_err().to_string();
    assert!(e.contains("\"nap\"") && e.contains("start_rebalance") && e.contains("done"));
    let e = JobState::parse("paused").unwrap_err().to_string();
    assert!(e.contains("scheduled, running, finished"), "{e}");
    assert_eq!(Kind::parse("SCALE_IN"), Ok(Kind::ScaleIn));
    assert_eq!("scale_out".parse::<Kind>(), Ok(Kind::ScaleOut));
}

#[test]
fn node_addr_display_and_parse() {
    let n = node(9703);
    assert_eq!(n.to_string(), "127.0.0.1:9703");
    assert_eq!(NodeAddr::parse("127.0.0.1:9703"), Ok(n.clone()));
    assert_eq!(NodeAddr::parse("::1:5432"), Ok(NodeAddr::new("::1", 5432)));
    for bad in ["", "host", "host:", ":5432", "h:0", "h:70000", "h:x"] {
        let e = NodeAddr::parse(bad).unwrap_err();
        assert!(e.to_string().contains("host:port"), "{bad}: {e}");
    }
    let json = serde_json::to_string(&n).unwrap();
    assert_eq!(json, r#"{"host":"127.0.0.1","port":9703}"#);
    assert!(node(9701) < node(9702));
}

#[test]
fn steps_belong_to_their_kinds() {
    assert!(Step::StartRebalance.belongs_to(Kind::Rebalance));
    assert!(Step::StartRebalance.belongs_to(Kind::ScaleOut));
    assert!(!Step::StartRebalance.belongs_to(Kind::ScaleIn));
    assert!(Step::Restore.belongs_to(Kind::ScaleIn));
    assert!(!Step::Restore.belongs_to(Kind::ScaleOut));
    for k in Kind::ALL {
        assert!(Step::Done.belongs_to(*k));
    }
    for (kind, step, _) in paths() {
        assert!(step.belongs_to(kind), "{kind} {step}");
    }
}

#[test]
fn limits_default() {
    assert_eq!(
        lim(),
        Limits {
            provision_timeout: 900.0,
            job_timeout: 600.0,
            max_attempts: 3
        }
    );
}

// ---------------------------------------------------------------- new_operation

#[test]
fn new_operations_start_at_their_first_step() {
    let op = new_operation(5, Kind::Rebalance, None, "skew", T0).unwrap();
    assert_eq!(op.step, Step::StartRebalance);
    assert_eq!(op.status, Status::Running);
    assert_eq!((op.started_at, op.step_started_at), (T0, T0));
    assert_eq!(op.reason, "skew");
    assert_eq!(op.attempts, 0);
    assert_eq!(op.finished_at, None);
    let op = new_operation(5, Kind::ScaleOut, None, "cpu", T0).unwrap();
    assert_eq!(op.step, Step::PickStandby);
    let op = new_operation(5, Kind::ScaleOut, Some(node(9705)), "manual", T0).unwrap();
    assert_eq!(op.step, Step::AddNode);
    assert_eq!(op.node, Some(node(9705)));
    let op = new_operation(5, Kind::ScaleIn, Some(node(9703)), "idle", T0).unwrap();
    assert_eq!(op.step, Step::MarkDraining);
    let e = new_operation(5, Kind::ScaleIn, None, "idle", T0).unwrap_err();
    assert_eq!(e, OpError::NodeRequired(Kind::ScaleIn));
    assert_eq!(
        e.to_string(),
        "a scale_in operation needs a node (host, port)"
    );
}

// ---------------------------------------------------------------- actions

#[test]
fn every_step_asks_for_its_action() {
    let n3 = node(9703);
    let n4 = node(9704);
    let expected = [
        Action::StartRebalance { drain_only: false },
        Action::PollJob { job_id: 7 },
        Action::PickStandby,
        Action::AddNode { node: n4.clone() },
        Action::RequestNode,
        Action::CheckForNode {
            request_id: Some(42),
            answered_only: false,
        },
        Action::StartRebalance { drain_only: false },
        Action::PollJob { job_id: 7 },
        Action::SetShouldHaveShards {
            nodes: vec![n3.clone()],
            value: false,
        },
        Action::StartRebalance { drain_only: true },
        Action::PollJob { job_id: 7 },
        Action::CleanupOrphaned {
            nodes: vec![n3.clone()],
        },
        Action::CountPlacements {
            nodes: vec![n3.clone()],
        },
        Action::RemoveNode {
            nodes: vec![n3.clone()],
        },
        Action::ReturnToPool {
            nodes: vec![n3.clone()],
        },
        Action::SetShouldHaveShards {
            nodes: vec![n3.clone()],
            value: true,
        },
        Action::DisableNode { node: n3.clone() },
        Action::PickStandby,
        Action::AddNode { node: n4.clone() },
        Action::RequestNode,
        Action::CheckForNode {
            request_id: Some(42),
            answered_only: false,
        },
        Action::CopyPlacements {
            dead: n3.clone(),
            target: Some(n4.clone()),
        },
        Action::RemoveDeadNode { node: n3.clone() },
        Action::IsolateTenant {
            table: "t".into(),
            tenant: "7".into(),
        },
        Action::MoveTenant {
            table: "t".into(),
            tenant: "7".into(),
            target: n4.clone(),
        },
        Action::VerifyTenant {
            table: "t".into(),
            tenant: "7".into(),
            target: n4.clone(),
        },
    ];
    let paths = paths();
    assert_eq!(paths.len(), expected.len());
    for ((kind, step, path), want) in paths.iter().zip(expected) {
        let op = reach(*kind, path);
        assert_eq!((op.step, op.status), (*step, Status::Running), "{kind}");
        assert_eq!(action(&op), want, "{kind} {step}");
    }
}

#[test]
fn actions_serialize_with_a_tag() {
    let a = Action::SetShouldHaveShards {
        nodes: vec![node(9703)],
        value: false,
    };
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(
        json,
        r#"{"action":"set_should_have_shards","nodes":[{"host":"127.0.0.1","port":9703}],"value":false}"#
    );
    assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), a);
    assert_eq!(a.name(), "set_should_have_shards");
    let o = Outcome::JobStarted(None);
    let json = serde_json::to_string(&o).unwrap();
    assert_eq!(json, r#"{"outcome":"job_started","value":null}"#);
    assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), o);
    let o = Outcome::Ok;
    let json = serde_json::to_string(&o).unwrap();
    assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), o);
}

// ---------------------------------------------------------------- rebalance

#[test]
fn rebalance_happy_path() {
    let mut r = Run::new(Kind::Rebalance, None);
    let ev = r.tick(Outcome::JobStarted(Some(7)));
    assert_eq!(r.at(), (Step::WaitRebalance, Status::Running));
    assert_eq!(r.op.job_id, Some(7));
    assert_eq!(r.op.step_started_at, T0 + 5.0);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, NOTE_STEP);
    assert_eq!(
        ev[0].message,
        "rebalance: start_rebalance -> wait_rebalance: rebalance job 7 started"
    );
    assert_eq!(action(&r.op), Action::PollJob { job_id: 7 });

    let ev = r.tick(job(JobState::Scheduled, 0, 10));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, NOTE_PROGRESS);
    assert_eq!(
        ev[0].message,
        "rebalance: rebalance job 7 scheduled, 0/10 tasks done"
    );
    // Same state and progress: no event spam, step clock unchanged.
    assert!(r.tick(job(JobState::Scheduled, 0, 10)).is_empty());
    assert_eq!(r.op.step_started_at, T0 + 5.0);
    let ev = r.tick(job(JobState::Running, 0, 10));
    assert_eq!(ev.len(), 1, "state change is noted");
    assert!(r.tick(job(JobState::Running, 0, 10)).is_empty());
    let ev = r.tick(job(JobState::Running, 3, 10));
    assert_eq!(
        ev[0].message,
        "rebalance: rebalance job 7 running, 3/10 tasks done"
    );
    assert_eq!(progress(&r.op), Some((3, 10)));
    assert_eq!(r.at(), (Step::WaitRebalance, Status::Running));

    let ev = r.tick(job(JobState::Finished, 10, 10));
    assert_eq!(r.at(), (Step::Done, Status::Succeeded));
    assert_eq!(r.op.finished_at, Some(r.now));
    assert_eq!(r.op.error, None);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, NOTE_SUCCEEDED);
    assert!(ev[0]
        .message
        .contains("rebalance job 7 finished (10/10 tasks)"));
    assert_eq!(action(&r.op), Action::Nothing);
    assert_eq!(progress(&r.op), Some((10, 10)));
}

#[test]
fn rebalance_with_nothing_to_move_succeeds_at_once() {
    let mut r = Run::new(Kind::Rebalance, None);
    let ev = r.tick(Outcome::JobStarted(None));
    assert_eq!(r.at(), (Step::Done, Status::Succeeded));
    assert_eq!(r.op.job_id, None);
    assert_eq!(ev[0].kind, NOTE_SUCCEEDED);
    assert!(
        ev[0].message.contains("nothing to move"),
        "{}",
        ev[0].message
    );
    assert_eq!(progress(&r.op), None);
}

#[test]
fn rebalance_job_failed_or_cancelled_fails_the_operation() {
    for state in [JobState::Failed, JobState::Cancelled] {
        let mut r = Run::new(Kind::Rebalance, None);
        r.tick(Outcome::JobStarted(Some(7)));
        let ev = r.tick(job(state, 4, 10));
        assert_eq!(r.at(), (Step::WaitRebalance, Status::Failed));
        let e = r.op.error.clone().unwrap();
        assert!(e.contains("job 7") && e.contains(state.as_str()), "{e}");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, NOTE_FAILED);
        assert_eq!(r.op.finished_at, Some(r.now));
    }
}

#[test]
fn cancelling_and_failing_jobs_are_waited_on() {
    for state in [
        JobState::Scheduled,
        JobState::Running,
        JobState::Cancelling,
        JobState::Failing,
    ] {
        let mut r = Run::new(Kind::Rebalance, None);
        r.tick(Outcome::JobStarted(Some(7)));
        r.tick(job(state, 1, 10));
        assert_eq!(r.at(), (Step::WaitRebalance, Status::Running), "{state}");
        assert_eq!(r.op.job_state, Some(state));
    }
}

#[test]
fn a_job_scheduled_too_long_fails() {
    let mut r = Run::new(Kind::Rebalance, None);
    r.tick(Outcome::JobStarted(Some(7)));
    r.after(599.0, job(JobState::Scheduled, 0, 10));
    assert_eq!(r.at(), (Step::WaitRebalance, Status::Running));
    let ev = r.after(1.0, job(JobState::Scheduled, 0, 10));
    assert_eq!(r.at(), (Step::WaitRebalance, Status::Failed));
    let e = r.op.error.clone().unwrap();
    assert!(
        e.starts_with("rebalance job 7 scheduled for 10m without starting"),
        "{e}"
    );
    assert!(e.contains("#7103"), "{e}");
    assert_eq!(ev[0].kind, NOTE_FAILED);

    // A running job is never timed out; neither is a scheduled one with job_timeout -1.
    let mut r = Run::new(Kind::Rebalance, None);
    r.tick(Outcome::JobStarted(Some(7)));
    r.after(10_000.0, job(JobState::Running, 1, 10));
    assert_eq!(r.at(), (Step::WaitRebalance, Status::Running));
    let mut r = Run::new(Kind::Rebalance, None);
    r.limits.job_timeout = -1.0;
    r.tick(Outcome::JobStarted(Some(7)));
    r.after(100_000.0, job(JobState::Scheduled, 0, 10));
    assert_eq!(r.at(), (Step::WaitRebalance, Status::Running));
}

// ---------------------------------------------------------------- scale-out

#[test]
fn scale_out_from_the_pool() {
    let mut r = Run::new(Kind::ScaleOut, None);
    assert_eq!(action(&r.op), Action::PickStandby);
    let ev = r.tick(Outcome::Picked(node(9704)));
    assert_eq!(r.at(), (Step::AddNode, Status::Running));
    assert_eq!(r.op.node, Some(node(9704)));
    assert_eq!(
        ev[0].message,
        "scale_out 127.0.0.1:9704: pick_standby -> add_node: standby 127.0.0.1:9704 taken from the pool"
    );
    assert_eq!(action(&r.op), Action::AddNode { node: node(9704) });
    r.tick(Outcome::Ok);
    assert_eq!(r.at(), (Step::StartRebalance, Status::Running));
    assert_eq!(action(&r.op), Action::StartRebalance { drain_only: false });
    r.tick(Outcome::JobStarted(Some(8)));
    assert_eq!(r.at(), (Step::WaitRebalance, Status::Running));
    assert_eq!(
        describe(&r.op),
        "scale_out 127.0.0.1:9704: wait_rebalance, job 8"
    );
    r.tick(job(JobState::Running, 2, 4));
    assert_eq!(
        describe(&r.op),
        "scale_out 127.0.0.1:9704: wait_rebalance, job 8 2/4"
    );
    let ev = r.tick(job(JobState::Finished, 4, 4));
    assert_eq!(r.at(), (Step::Done, Status::Succeeded));
    assert_eq!(ev[0].kind, NOTE_SUCCEEDED);
    assert_eq!(describe(&r.op), "scale_out 127.0.0.1:9704: succeeded");
}

#[test]
fn scale_out_with_a_given_node_adds_it() {
    let mut r = Run::new(Kind::ScaleOut, Some(node(9705)));
    assert_eq!(action(&r.op), Action::AddNode { node: node(9705) });
    r.tick(Outcome::Ok);
    r.tick(Outcome::JobStarted(None));
    assert_eq!(r.at(), (Step::Done, Status::Succeeded));
}

#[test]
fn scale_out_with_an_empty_pool_requests_a_node() {
    for in_cluster in [true, false] {
        let mut r = Run::new(Kind::ScaleOut, None);
        r.tick(Outcome::PoolEmpty);
        assert_eq!(r.at(), (Step::RequestNode, Status::Running));
        assert_eq!(action(&r.op), Action::RequestNode);
        r.tick(Outcome::Requested(42));
        assert_eq!(r.at(), (Step::WaitForNode, Status::Running));
        assert_eq!(r.op.request_id, Some(42));
        assert_eq!(
            action(&r.op),
            Action::CheckForNode {
                request_id: Some(42),
                answered_only: false,
            }
        );
        let since = r.op.step_started_at;
        for _ in 0..10 {
            assert!(r.tick(Outcome::NotYet).is_empty(), "waiting is quiet");
        }
        assert_eq!(r.op.step_started_at, since);
        assert_eq!(
            describe(&r.op),
            "scale_out: wait_for_node, provision request 42"
        );
        r.tick(Outcome::Appeared {
            node: node(9706),
            in_cluster,
        });
        assert_eq!(r.op.node, Some(node(9706)));
        if in_cluster {
            assert_eq!(r.at(), (Step::StartRebalance, Status::Running));
        } else {
            assert_eq!(r.at(), (Step::AddNode, Status::Running));
            assert_eq!(action(&r.op), Action::AddNode { node: node(9706) });
            r.tick(Outcome::Ok);
            assert_eq!(r.at(), (Step::StartRebalance, Status::Running));
        }
        r.tick(Outcome::JobStarted(Some(9)));
        r.tick(job(JobState::Finished, 1, 1));
        assert_eq!(r.at(), (Step::Done, Status::Succeeded));
    }
}

#[test]
fn scale_out_of_several_nodes_adds_them_all_then_rebalances_once() {
    let mut r = Run::new(Kind::ScaleOut, None);
    r.op = new_scale_out(1, None, 3, "test", T0).unwrap();
    for port in [9705, 9706, 9707] {
        assert_eq!(r.at(), (Step::PickStandby, Status::Running));
        r.tick(Outcome::Picked(node(port)));
        assert_eq!(action(&r.op), Action::AddNode { node: node(port) });
        r.tick(Outcome::Ok);
    }
    assert_eq!(r.at(), (Step::StartRebalance, Status::Running));
    assert_eq!(r.op.added, vec![node(9705), node(9706), node(9707)]);
    assert!(r
        .events
        .iter()
        .any(|e| e.message.ends_with("node 127.0.0.1:9707 added (3 of 3)")));
    r.tick(Outcome::JobStarted(Some(4)));
    r.tick(job(JobState::Finished, 6, 6));
    assert_eq!(r.at(), (Step::Done, Status::Succeeded));
    let rebalances = r
        .events
        .iter()
        .filter(|e| e.message.contains("start_rebalance -> wait_rebalance"))
        .count();
    assert_eq!(
        rebalances, 1,
        "one rebalance for all the nodes: {:?}",
        r.events
    );
    assert_eq!(
        describe(&r.op),
        "scale_out 127.0.0.1:9705, 127.0.0.1:9706, 127.0.0.1:9707: succeeded"
    );
}

#[test]
fn scale_out_of_several_rebalances_onto_what_the_pool_had() {
    let mut r = Run::new(Kind::ScaleOut, None);
    r.op = new_scale_out(1, None, 3, "test", T0).unwrap();
    r.tick(Outcome::Picked(node(9705)));
    r.tick(Outcome::Ok);
    let ev = r.tick(Outcome::PoolEmpty);
    assert_eq!(r.at(), (Step::StartRebalance, Status::Running));
    assert!(
        ev[0]
            .message
            .contains("the standby pool is empty after 1 of 3 nodes"),
        "{ev:?}"
    );

    // an empty pool from the start asks the provisioner once; the node it brings is enough to go on
    let mut r = Run::new(Kind::ScaleOut, None);
    r.op = new_scale_out(1, None, 2, "test", T0).unwrap();
    r.tick(Outcome::PoolEmpty);
    r.tick(Outcome::Requested(7));
    r.tick(Outcome::Appeared {
        node: node(9708),
        in_cluster: true,
    });
    assert_eq!(
        r.at(),
        (Step::PickStandby, Status::Running),
        "another standby may be there by now"
    );
    r.tick(Outcome::PoolEmpty);
    assert_eq!(r.at(), (Step::StartRebalance, Status::Running));
    assert_eq!(r.op.added, vec![node(9708)]);
}

#[test]
fn a_repeated_add_after_a_crash_counts_the_node_once() {
    let mut r = Run::new(Kind::ScaleOut, None);
    r.op = new_scale_out(1, None, 2, "test", T0).unwrap();
    r.tick(Outcome::Picked(node(9705)));
    let before = r.op.clone();
    r.tick(Outcome::Ok);
    // the crash lost the transition: the same row performs add_node again
    r.op = before;
    r.tick(Outcome::Ok);
    assert_eq!(r.op.added, vec![node(9705)]);
    assert_eq!(r.at(), (Step::PickStandby, Status::Running));
}

#[test]
fn an_operation_stored_before_want_existed_wants_one_node() {
    let mut v =
        serde_json::to_value(new_operation(1, Kind::ScaleOut, None, "t", T0).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("want");
    v.as_object_mut().unwrap().remove("added");
    let op: Operation = serde_json::from_value(v).unwrap();
    assert_eq!((op.want, op.added.len()), (1, 0));
}

#[test]
fn a_provision_request_expires() {
    let mut r = Run::new(Kind::ScaleOut, None);
    r.tick(Outcome::PoolEmpty);
    r.tick(Outcome::Requested(42));
    r.after(899.0, Outcome::NotYet);
    assert_eq!(r.at(), (Step::WaitForNode, Status::Running));
    let ev = r.after(1.0, Outcome::NotYet);
    assert_eq!(r.at(), (Step::WaitForNode, Status::Failed));
    assert_eq!(
        r.op.error.as_deref(),
        Some("provision request 42 expired after 15m without a node")
    );
    assert_eq!(ev[0].kind, NOTE_FAILED);

    // A node that appears late is still taken; -1 never expires.
    let mut r = Run::new(Kind::ScaleOut, None);
    r.tick(Outcome::PoolEmpty);
    r.tick(Outcome::Requested(42));
    r.after(
        5000.0,
        Outcome::Appeared {
            node: node(9706),
            in_cluster: true,
        },
    );
    assert_eq!(r.at(), (Step::StartRebalance, Status::Running));
    let mut r = Run::new(Kind::ScaleOut, None);
    r.limits.provision_timeout = -1.0;
    r.tick(Outcome::PoolEmpty);
    r.tick(Outcome::Requested(42));
    r.after(1e6, Outcome::NotYet);
    assert_eq!(r.at(), (Step::WaitForNode, Status::Running));
}

// ---------------------------------------------------------------- scale-in

#[test]
fn a_scale_in_of_several_nodes_drains_them_in_one_job() {
    let nodes = vec![node(9703), node(9704)];
    let mut r = Run::scale_in();
    r.op = new_scale_in(1, nodes.clone(), "test", T0).unwrap();
    assert_eq!(
        action(&r.op),
        Action::SetShouldHaveShards {
            nodes: nodes.clone(),
            value: false
        }
    );
    r.tick(Outcome::Ok);
    assert_eq!(action(&r.op), Action::StartRebalance { drain_only: true });
    r.tick(Outcome::JobStarted(Some(5)));
    r.tick(job(JobState::Finished, 8, 8));
    r.tick(Outcome::Ok); // cleanup
    assert_eq!(
        action(&r.op),
        Action::CountPlacements {
            nodes: nodes.clone()
        }
    );
    r.tick(Outcome::Placements(0));
    assert_eq!(
        action(&r.op),
        Action::RemoveNode {
            nodes: nodes.clone()
        }
    );
    r.tick(Outcome::Ok);
    assert_eq!(
        action(&r.op),
        Action::ReturnToPool {
            nodes: nodes.clone()
        }
    );
    r.tick(Outcome::Ok);
    assert_eq!(r.at(), (Step::Done, Status::Succeeded));
    assert_eq!(
        describe(&r.op),
        "scale_in 127.0.0.1:9703, 127.0.0.1:9704: succeeded"
    );
    let last = &r.events.last().unwrap().message;
    assert!(
        last.ends_with("nodes 127.0.0.1:9703, 127.0.0.1:9704 removed and returned to the pool"),
        "{last}"
    );
    let jobs = r
        .events
        .iter()
        .filter(|e| e.message.contains("drain job 5 started"))
        .count();
    assert_eq!(jobs, 1, "one drain job for both");
}

#[test]
fn a_scale_in_of_several_restores_every_node_when_one_still_holds_placements() {
    let nodes = vec![node(9703), node(9704)];
    let mut r = Run::scale_in();
    r.op = new_scale_in(1, nodes.clone(), "test", T0).unwrap();
    r.tick(Outcome::Ok);
    r.tick(Outcome::JobStarted(Some(5)));
    r.tick(job(JobState::Finished, 8, 8));
    r.tick(Outcome::Ok);
    r.tick(Outcome::Placements(2));
    assert_eq!(r.at(), (Step::Restore, Status::Running));
    assert_eq!(
        action(&r.op),
        Action::SetShouldHaveShards { nodes, value: true }
    );
    assert_eq!(
        r.op.error.as_deref(),
        Some("nodes 127.0.0.1:9703, 127.0.0.1:9704 still hold 2 placements; not removed")
    );
    r.tick(Outcome::Ok);
    assert_eq!(r.at(), (Step::Done, Status::Failed));
    assert!(
        new_scale_in(2, vec![], "t", T0).is_err(),
        "a scale-in needs a node"
    );
}

#[test]
fn scale_in_happy_path() {
    let n = node(9703);
    let mut r = Run::scale_in();
    let script = [
        (
            Action::SetShouldHaveShards {
                nodes: vec![n.clone()],
                value: false,
            },
            Outcome::Ok,
            Step::StartDrain,
        ),
        (
            Action::StartRebalance { drain_only: true },
            Outcome::JobStarted(Some(7)),
            Step::WaitDrain,
        ),
        (
            Action::PollJob { job_id: 7 },
            job(JobState::Running, 3, 10),
            Step::WaitDrain,
        ),
        (
            Action::PollJob { job_id: 7 },
            job(JobState::Finished, 10, 10),
            Step::Cleanup,
        ),
        (
            Action::CleanupOrphaned {
                nodes: vec![n.clone()],
            },
            Outcome::Ok,
            Step::VerifyEmpty,
        ),
        (
            Action::CountPlacements {
                nodes: vec![n.clone()],
            },
            Outcome::Placements(0),
            Step::RemoveNode,
        ),
        (
            Action::RemoveNode {
                nodes: vec![n.clone()],
            },
            Outcome::Ok,
            Step::ReturnToPool,
        ),
        (
            Action::ReturnToPool {
                nodes: vec![n.clone()],
            },
            Outcome::Ok,
            Step::Done,
        ),
    ];
    for (want_action, outcome, next) in script {
        assert_eq!(action(&r.op), want_action, "at {}", r.op.step);
        if r.op.step == Step::WaitDrain && r.op.job_state.is_some() {
            assert_eq!(
                describe(&r.op),
                "scale_in 127.0.0.1:9703: wait_drain, job 7 3/10"
            );
        }
        r.tick(outcome);
        assert_eq!(r.op.step, next);
    }
    assert_eq!(r.op.status, Status::Succeeded);
    assert_eq!(r.op.error, None);
    let last = r.events.last().unwrap();
    assert_eq!(last.kind, NOTE_SUCCEEDED);
    assert!(last.message.contains("removed and returned to the pool"));
    let steps: Vec<&str> = r
        .events
        .iter()
        .filter(|e| e.kind == NOTE_STEP)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(steps.len(), 6, "{steps:?}");
    assert_eq!(
        steps[0],
        "scale_in 127.0.0.1:9703: mark_draining -> start_drain: shouldhaveshards = false on 127.0.0.1:9703"
    );
}

#[test]
fn scale_in_with_nothing_to_drain_goes_to_cleanup() {
    let mut r = Run::scale_in();
    r.tick(Outcome::Ok);
    r.tick(Outcome::JobStarted(None));
    assert_eq!(r.at(), (Step::Cleanup, Status::Running));
    assert_eq!(r.op.job_id, None);
}

#[test]
fn a_failed_drain_restores_the_node() {
    for state in [JobState::Failed, JobState::Cancelled] {
        let mut r = Run::scale_in();
        r.tick(Outcome::Ok);
        r.tick(Outcome::JobStarted(Some(7)));
        let ev = r.tick(job(state, 2, 10));
        assert_eq!(r.at(), (Step::Restore, Status::Running));
        let e = r.op.error.clone().unwrap();
        assert!(
            e.contains("drain job 7") && e.contains(state.as_str()),
            "{e}"
        );
        assert_eq!(ev[0].kind, NOTE_STEP);
        assert!(ev[0].message.contains("restoring shouldhaveshards"));
        assert_eq!(
            action(&r.op),
            Action::SetShouldHaveShards {
                nodes: vec![node(9703)],
                value: true
            }
        );
        assert!(describe(&r.op).starts_with("scale_in 127.0.0.1:9703: restore after: drain job 7"));
        let ev = r.tick(Outcome::Ok);
        assert_eq!(r.at(), (Step::Done, Status::Failed));
        assert_eq!(r.op.error.as_deref(), Some(e.as_str()), "error preserved");
        assert_eq!(r.op.finished_at, Some(r.now));
        assert_eq!(ev[0].kind, NOTE_FAILED);
        assert!(ev[0]
            .message
            .contains("shouldhaveshards restored to true on 127.0.0.1:9703"));
        assert_eq!(
            describe(&r.op),
            format!("scale_in 127.0.0.1:9703: failed: {e}")
        );
    }
}

#[test]
fn a_node_with_placements_is_never_removed() {
    let mut r = Run::scale_in();
    r.tick(Outcome::Ok);
    r.tick(Outcome::JobStarted(Some(7)));
    r.tick(job(JobState::Finished, 10, 10));
    r.tick(Outcome::Ok);
    assert_eq!(r.op.step, Step::VerifyEmpty);
    r.tick(Outcome::Placements(3));
    assert_eq!(r.at(), (Step::Restore, Status::Running));
    assert_eq!(
        r.op.error.as_deref(),
        Some("node 127.0.0.1:9703 still holds 3 placements; not removed")
    );
    r.tick(Outcome::Ok);
    assert_eq!(r.at(), (Step::Done, Status::Failed));
    assert!(!r
        .events
        .iter()
        .any(|e| e.message.contains("-> remove_node")));

    // A negative count makes no sense: restore too, never remove.
    let mut r = Run::scale_in();
    for o in [
        Outcome::Ok,
        Outcome::JobStarted(None),
        Outcome::Ok,
        Outcome::Placements(-1),
    ] {
        r.tick(o);
    }
    assert_eq!(r.at(), (Step::Restore, Status::Running));
    assert!(r.op.error.clone().unwrap().contains("unexpected outcome"));
}

#[test]
fn a_drain_scheduled_too_long_restores() {
    let mut r = Run::scale_in();
    r.tick(Outcome::Ok);
    r.tick(Outcome::JobStarted(Some(7)));
    r.after(601.0, job(JobState::Scheduled, 0, 5));
    assert_eq!(r.at(), (Step::Restore, Status::Running));
    assert!(r
        .op
        .error
        .clone()
        .unwrap()
        .contains("drain job 7 scheduled for 10m1s"));
}

#[test]
fn a_failed_restore_fails_and_says_shouldhaveshards_was_not_restored() {
    let mut r = Run::scale_in();
    r.tick(Outcome::Ok);
    r.tick(Outcome::JobStarted(Some(7)));
    r.tick(job(JobState::Failed, 0, 1));
    assert_eq!(r.op.step, Step::Restore);
    for _ in 0..2 {
        r.tick(err("connection lost"));
        assert_eq!(r.at(), (Step::Restore, Status::Running));
    }
    let ev = r.tick(err("connection lost"));
    assert_eq!(r.at(), (Step::Restore, Status::Failed));
    let e = r.op.error.clone().unwrap();
    assert!(
        e.starts_with("could not restore shouldhaveshards = true on 127.0.0.1:9703"),
        "{e}"
    );
    assert!(
        e.contains("connection lost") && e.contains("drain job 7"),
        "{e}"
    );
    assert_eq!(ev[0].kind, NOTE_FAILED);
}

// ---------------------------------------------------------------- errors and retries

/// Where exhausting the attempts at each step leads.
#[test]
fn errors_exhausting_attempts_at_each_step() {
    for max_attempts in [1, 2, 3, 5] {
        for (kind, step, path) in paths() {
            let mut op = reach(kind, &path);
            let limits = Limits {
                max_attempts,
                ..lim()
            };
            let mut now = T0 + 1000.0;
            for attempt in 1..max_attempts {
                now += 5.0;
                let t = advance(&op, err("boom"), now, &limits);
                assert_eq!((t.op.step, t.op.status), (step, Status::Running));
                assert_eq!(t.op.attempts, attempt);
                assert_eq!(t.op.step_started_at, op.step_started_at);
                assert_eq!(t.events.len(), 1);
                assert_eq!(t.events[0].kind, NOTE_RETRY);
                assert!(
                    t.events[0]
                        .message
                        .contains(&format!("attempt {attempt} of {max_attempts}")),
                    "{}",
                    t.events[0].message
                );
                // The retried step asks for the same action.
                assert_eq!(action(&t.op), action(&op));
                op = t.op;
            }
            let t = advance(&op, err("boom"), now + 5.0, &limits);
            let e = t.op.error.clone().unwrap();
            assert!(e.contains("boom"), "{e}");
            match (kind, step) {
                (Kind::ScaleIn, Step::ReturnToPool) => {
                    assert_eq!((t.op.step, t.op.status), (step, Status::Failed));
                    assert!(
                        e.contains("removed from the cluster but not returned"),
                        "{e}"
                    );
                }
                (Kind::ScaleIn, Step::Restore) => {
                    assert_eq!((t.op.step, t.op.status), (step, Status::Failed));
                    assert!(e.contains("could not restore shouldhaveshards"), "{e}");
                }
                (Kind::ScaleIn, _) => {
                    assert_eq!(
                        (t.op.step, t.op.status),
                        (Step::Restore, Status::Running),
                        "{step}"
                    );
                    assert_eq!(t.op.attempts, 0);
                    assert_eq!(t.op.step_started_at, now + 5.0);
                    assert!(e.starts_with(&format!("{step} failed after {max_attempts} attempt")));
                    // Restore succeeds: failed, error kept.
                    let t2 = advance(&t.op, Outcome::Ok, now + 10.0, &limits);
                    assert_eq!((t2.op.step, t2.op.status), (Step::Done, Status::Failed));
                    assert_eq!(t2.op.error, t.op.error);
                }
                _ => {
                    assert_eq!((t.op.step, t.op.status), (step, Status::Failed), "{kind}");
                    assert_eq!(t.op.finished_at, Some(now + 5.0));
                    assert_eq!(t.events[0].kind, NOTE_FAILED);
                    assert_eq!(action(&t.op), Action::Nothing);
                }
            }
        }
    }
}

#[test]
fn max_attempts_zero_counts_as_one() {
    let mut r = Run::new(Kind::Rebalance, None);
    r.limits.max_attempts = 0;
    r.tick(err("x"));
    assert_eq!(r.at(), (Step::StartRebalance, Status::Failed));
    assert_eq!(
        r.op.error.as_deref(),
        Some("start_rebalance failed after 1 attempt: x")
    );
}

#[test]
fn a_success_resets_the_attempts() {
    let mut r = Run::new(Kind::Rebalance, None);
    r.tick(Outcome::JobStarted(Some(7)));
    r.tick(err("timeout"));
    r.tick(err("timeout"));
    assert_eq!(r.op.attempts, 2);
    assert_eq!(
        describe(&r.op),
        "rebalance: wait_rebalance, job 7, retrying (2 failed attempts)"
    );
    r.tick(job(JobState::Running, 1, 5));
    assert_eq!(r.op.attempts, 0);
    r.tick(err("timeout"));
    r.tick(err("timeout"));
    assert_eq!(r.at(), (Step::WaitRebalance, Status::Running));

    let mut r = Run::new(Kind::ScaleOut, None);
    r.tick(Outcome::PoolEmpty);
    r.tick(Outcome::Requested(1));
    r.tick(err("x"));
    r.tick(Outcome::NotYet);
    assert_eq!(r.op.attempts, 0);
}

#[test]
fn unexpected_outcomes_fail_without_panicking() {
    let mut r = Run::new(Kind::ScaleOut, Some(node(9705)));
    let ev = r.tick(Outcome::Placements(3));
    assert_eq!(r.at(), (Step::AddNode, Status::Failed));
    let e = r.op.error.clone().unwrap();
    assert!(e.starts_with("unexpected outcome"), "{e}");
    assert!(e.contains("placements") && e.contains("add_node"), "{e}");
    assert_eq!(ev[0].kind, NOTE_FAILED);

    let mut r = Run::new(Kind::Rebalance, None);
    r.tick(Outcome::Ok);
    assert_eq!(r.at(), (Step::StartRebalance, Status::Failed));

    // A scale-in restores first.
    let mut r = Run::scale_in();
    r.tick(Outcome::Ok);
    r.tick(Outcome::Picked(node(1)));
    assert_eq!(r.at(), (Step::Restore, Status::Running));
    assert!(r
        .op
        .error
        .clone()
        .unwrap()
        .starts_with("unexpected outcome"));

    // Every outcome at every step: never a panic, never remove_node without Placements(0).
    let outcomes = [
        Outcome::Ok,
        Outcome::JobStarted(Some(1)),
        Outcome::JobStarted(None),
        job(JobState::Running, 0, 1),
        Outcome::Picked(node(9)),
        Outcome::PoolEmpty,
        Outcome::Requested(1),
        Outcome::Appeared {
            node: node(9),
            in_cluster: true,
        },
        Outcome::NotYet,
        Outcome::Placements(0),
        Outcome::Placements(2),
        err("x"),
    ];
    for (kind, step, path) in paths() {
        let op = reach(kind, &path);
        for o in &outcomes {
            let t = advance(&op, o.clone(), T0 + 500.0, &lim());
            if t.op.step == Step::RemoveNode && step != Step::RemoveNode {
                assert_eq!((step, o), (Step::VerifyEmpty, &Outcome::Placements(0)));
            }
        }
    }
}

// ---------------------------------------------------------------- finished and inconsistent rows

#[test]
fn finished_operations_do_nothing_and_stay() {
    let mut done = start(Kind::Rebalance);
    done = advance(&done, Outcome::JobStarted(None), T0 + 1.0, &lim()).op;
    let once = Limits {
        max_attempts: 1,
        ..lim()
    };
    let failed = advance(&start(Kind::Rebalance), err("x"), T0 + 1.0, &once).op;
    let cancelled = cancel(&start(Kind::ScaleOut), "no", T0).unwrap().op;
    for op in [done, failed, cancelled] {
        assert_ne!(op.status, Status::Running);
        assert_eq!(action(&op), Action::Nothing);
        for o in [Outcome::Ok, err("x"), Outcome::JobStarted(Some(3))] {
            let t = advance(&op, o, T0 + 99.0, &lim());
            assert_eq!(t.op, op);
            assert!(t.events.is_empty());
        }
    }
}

#[test]
fn inconsistent_rows_fail_instead_of_acting() {
    // A step of another kind.
    let mut op = start(Kind::Rebalance);
    op.step = Step::RemoveNode;
    op.node = Some(node(9703));
    assert_eq!(action(&op), Action::Nothing);
    let t = advance(&op, Outcome::Ok, T0 + 1.0, &lim());
    assert_eq!((t.op.step, t.op.status), (Step::RemoveNode, Status::Failed));
    assert!(t
        .op
        .error
        .unwrap()
        .contains("not part of a rebalance operation"));

    // Waiting without a job id.
    let mut op = start(Kind::Rebalance);
    op.step = Step::WaitRebalance;
    assert_eq!(action(&op), Action::Nothing);
    let t = advance(&op, job(JobState::Finished, 1, 1), T0 + 1.0, &lim());
    assert_eq!(t.op.status, Status::Failed);
    assert!(t.op.error.unwrap().contains("needs a job id"));

    // A scale-in without a node, at a step that touches it.
    let mut op = start(Kind::ScaleIn);
    op.step = Step::VerifyEmpty;
    op.node = None;
    assert_eq!(action(&op), Action::Nothing);
    let t = advance(&op, Outcome::Placements(0), T0 + 1.0, &lim());
    assert_eq!(t.op.status, Status::Failed);
    assert_eq!(t.op.step, Step::VerifyEmpty);

    // Done but still running.
    let mut op = start(Kind::ScaleOut);
    op.step = Step::Done;
    assert_eq!(action(&op), Action::Nothing);
    let t = advance(&op, Outcome::Ok, T0 + 1.0, &lim());
    assert_eq!(t.op.status, Status::Failed);
}

// ---------------------------------------------------------------- resumption

#[test]
fn resumption_after_a_restart_at_each_step() {
    for (kind, step, path) in paths() {
        let op = reach(kind, &path);
        let before = action(&op);
        let json = serde_json::to_string(&op).unwrap();
        let back: Operation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, op, "{kind} {step}");
        assert_eq!(action(&back), before, "{kind} {step}");
        // Asking again (a crash before the commit) is the same question.
        assert_eq!(action(&back), action(&back));
        // And the row goes on as if nothing happened.
        let now = T0 + 700.0;
        for o in [
            Outcome::Ok,
            err("e"),
            Outcome::NotYet,
            Outcome::Placements(0),
        ] {
            assert_eq!(
                advance(&back, o.clone(), now, &lim()),
                advance(&op, o, now, &lim())
            );
        }
    }
}

#[test]
fn old_rows_without_the_new_fields_deserialize() {
    let json = r#"{"id":3,"kind":"scale_in","status":"running","step":"wait_drain","job_id":7,
        "node":{"host":"10.0.0.5","port":5432},"started_at":1.0,"step_started_at":2.0}"#;
    let op: Operation = serde_json::from_str(json).unwrap();
    assert_eq!(op.attempts, 0);
    assert_eq!(op.job_state, None);
    assert!(!op.cancelled);
    assert_eq!(action(&op), Action::PollJob { job_id: 7 });
}

// ---------------------------------------------------------------- cancel

#[test]
fn cancel_rebalance_and_scale_out_at_once() {
    let op = reach(Kind::Rebalance, &[Outcome::JobStarted(Some(7))]);
    let t = cancel(&op, "by admin", T0 + 50.0).unwrap();
    assert_eq!(t.op.status, Status::Cancelled);
    assert_eq!(t.op.step, Step::WaitRebalance);
    assert_eq!(t.op.error.as_deref(), Some("cancelled: by admin"));
    assert_eq!(t.op.finished_at, Some(T0 + 50.0));
    assert_eq!(t.events[0].kind, NOTE_CANCELLED);
    assert!(t.events[0].message.contains("Citus job 7 keeps running"));
    assert_eq!(
        describe(&t.op),
        "rebalance: cancelled at wait_rebalance: cancelled: by admin"
    );
    let e = cancel(&t.op, "", T0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "operation 1 is cancelled; only a running operation can be cancelled"
    );
}

#[test]
fn cancel_scale_in_restores_first() {
    let op = reach(Kind::ScaleIn, &[]);
    let t = cancel(&op, "", T0 + 1.0).unwrap();
    assert_eq!(
        (t.op.step, t.op.status),
        (Step::MarkDraining, Status::Cancelled)
    );

    let op = reach(Kind::ScaleIn, &[Outcome::Ok, Outcome::JobStarted(Some(7))]);
    let t = cancel(&op, "changed my mind", T0 + 20.0).unwrap();
    assert_eq!((t.op.step, t.op.status), (Step::Restore, Status::Running));
    assert!(t.op.cancelled);
    let t = advance(&t.op, Outcome::Ok, T0 + 25.0, &lim());
    assert_eq!((t.op.step, t.op.status), (Step::Done, Status::Cancelled));
    assert_eq!(t.op.error.as_deref(), Some("cancelled: changed my mind"));
    assert_eq!(t.events[0].kind, NOTE_CANCELLED);

    for (_, step, path) in paths().into_iter().filter(|p| p.0 == Kind::ScaleIn) {
        let op = reach(Kind::ScaleIn, &path);
        let r = cancel(&op, "x", T0 + 100.0);
        match step {
            Step::ReturnToPool | Step::Restore => {
                assert!(matches!(r, Err(OpError::NotCancellable { .. })), "{step}")
            }
            Step::MarkDraining => assert_eq!(r.unwrap().op.status, Status::Cancelled),
            _ => assert_eq!(r.unwrap().op.step, Step::Restore, "{step}"),
        }
    }
}

// ---------------------------------------------------------------- describe and progress

#[test]
fn describe_summarises() {
    let op = start(Kind::Rebalance);
    assert_eq!(describe(&op), "rebalance: start_rebalance");
    assert_eq!(progress(&op), None);
    let op = reach(
        Kind::ScaleIn,
        &[
            Outcome::Ok,
            Outcome::JobStarted(Some(7)),
            job(JobState::Scheduled, 0, 10),
        ],
    );
    assert_eq!(
        describe(&op),
        "scale_in 127.0.0.1:9703: wait_drain, job 7 0/10 (scheduled)"
    );
    assert_eq!(progress(&op), Some((0, 10)));
    let op = reach(
        Kind::ScaleIn,
        &[Outcome::Ok, Outcome::JobStarted(None), Outcome::Ok],
    );
    assert_eq!(describe(&op), "scale_in 127.0.0.1:9703: verify_empty");
}

// ---------------------------------------------------------------- maintenance window

/// 2023-11-13 was a Monday; `day` 0 = that Monday, at hh:mm UTC.
fn at(day: i64, hh: i64, mm: i64) -> f64 {
    let monday = 1_699_833_600; // 2023-11-13 00:00:00 UTC
    (monday + day * 86_400 + hh * 3600 + mm * 60) as f64
}

#[test]
fn window_daily() {
    let w = MaintenanceWindow::parse("02:00-04:00").unwrap();
    assert!(!w.contains(at(0, 1, 59)));
    assert!(w.contains(at(0, 2, 0)));
    assert!(w.contains(at(3, 3, 59)));
    assert!(!w.contains(at(6, 4, 0)));
    assert!(w.contains(at(0, 2, 0) + 59.9));
    assert_eq!(w.to_string(), "02:00-04:00 UTC");
    assert_eq!(w.opens_in(at(0, 1, 0)), Some(3600.0));
    assert_eq!(w.opens_in(at(0, 5, 0)), Some(21.0 * 3600.0));
    assert_eq!(w.opens_in(at(0, 3, 0)), Some(0.0));
    assert!(!w.contains(f64::NAN));
    assert_eq!(w.opens_in(f64::INFINITY), None);
}

#[test]
fn window_wraps_midnight() {
    let w = MaintenanceWindow::parse("22:00-02:00").unwrap();
    assert!(w.contains(at(0, 23, 0)));
    assert!(w.contains(at(1, 1, 59)));
    assert!(w.contains(at(0, 0, 30)));
    assert!(!w.contains(at(1, 2, 0)));
    assert!(!w.contains(at(1, 21, 59)));
    assert!(w.contains(at(1, 22, 0)));
}

#[test]
fn window_with_days() {
    let w = MaintenanceWindow::parse("sat,sun 00:00-06:00").unwrap();
    assert!(w.contains(at(5, 3, 0)));
    assert!(w.contains(at(6, 5, 59)));
    assert!(!w.contains(at(4, 3, 0)));
    assert!(!w.contains(at(7, 3, 0)), "next monday");
    assert!(!w.contains(at(5, 7, 0)));
    assert_eq!(w.to_string(), "sat,sun 00:00-06:00 UTC");
    assert_eq!(w.opens_in(at(4, 23, 0)), Some(3600.0));

    let w = MaintenanceWindow::parse("mon-fri 01:00-03:00").unwrap();
    for d in 0..5 {
        assert!(w.contains(at(d, 2, 0)), "day {d}");
    }
    assert!(!w.contains(at(5, 2, 0)) && !w.contains(at(6, 2, 0)));
    assert_eq!(w.to_string(), "mon-fri 01:00-03:00 UTC");
    // Friday 03:00 -> Monday 01:00.
    assert_eq!(w.opens_in(at(4, 3, 0)), Some((2.0 * 24.0 + 22.0) * 3600.0));

    // A wrapping window belongs to the day it starts on.
    let w = MaintenanceWindow::parse("fri 22:00-02:00").unwrap();
    assert!(w.contains(at(4, 23, 0)));
    assert!(w.contains(at(5, 1, 0)), "saturday early morning");
    assert!(
        !w.contains(at(4, 1, 0)),
        "friday early morning belongs to thursday"
    );
    assert!(!w.contains(at(5, 23, 0)));

    // Day ranges wrap; full names and odd spacing are fine; UTC suffix accepted.
    let w = MaintenanceWindow::parse(" Fri - Mon  20:00 - 24:00 utc").unwrap();
    assert_eq!(w.to_string(), "mon,fri-sun 20:00-24:00 UTC");
    assert!(w.contains(at(0, 23, 59)) && w.contains(at(6, 20, 0)));
    assert!(!w.contains(at(1, 21, 0)));
    let w = MaintenanceWindow::parse("Saturday 1:00-2:30").unwrap();
    assert_eq!(w.to_string(), "sat 01:00-02:30 UTC");
    assert_eq!((w.start_minute(), w.end_minute()), (60, 150));
    let w = MaintenanceWindow::parse("mon,wed,fri 00:00-24:00").unwrap();
    assert_eq!(w.to_string(), "mon,wed,fri 00:00-24:00 UTC");
    assert!(w.contains(at(2, 23, 59)) && !w.contains(at(1, 12, 0)));
}

#[test]
fn window_display_round_trips_and_serializes() {
    for s in [
        "02:00-04:00",
        "22:00-02:00",
        "sat,sun 00:00-06:00",
        "mon-fri 01:00-03:00",
        "thu-tue 05:00-05:01",
        "tue,thu 23:00-24:00",
    ] {
        let w = MaintenanceWindow::parse(s).unwrap();
        assert_eq!(MaintenanceWindow::parse(&w.to_string()).unwrap(), w, "{s}");
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, format!("\"{w}\""));
        assert_eq!(serde_json::from_str::<MaintenanceWindow>(&json).unwrap(), w);
    }
    assert!(serde_json::from_str::<MaintenanceWindow>("\"25:00-01:00\"").is_err());
}

#[test]
fn window_errors_name_the_bad_part() {
    for (input, part) in [
        ("", "empty window"),
        ("   ", "empty window"),
        ("weekends", "no time range"),
        ("02:00", "has no '-'"),
        ("25:00-04:00", "bad time \"25:00\""),
        ("02:00-04:60", "bad time \"04:60\""),
        ("24:00-02:00", "bad time \"24:00\""),
        ("2-4", "bad time \"2\""),
        ("02:0-04:00", "bad time \"02:0\""),
        ("-02:00-04:00", "bad day range \"-\""),
        ("funday 02:00-04:00", "bad day \"funday\""),
        ("mon,,tue 02:00-04:00", "empty day"),
        ("mon-xyz 02:00-04:00", "bad day \"xyz\""),
        ("03:00-03:00", "is empty"),
        ("02:00-04:00 CET", "bad time \"04:00 CET\""),
    ] {
        let e = MaintenanceWindow::parse(input).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(part), "{input:?}: {msg}");
        assert!(
            msg.contains("expected [days ]HH:MM-HH:MM in UTC"),
            "{input:?}: {msg}"
        );
        assert!(
            msg.starts_with(&format!("maintenance_window ({input:?})")),
            "{msg}"
        );
    }
}

// ---------------------------------------------------------------- trigger

fn tin() -> TriggerInput {
    TriggerInput {
        now: T0,
        active_workers: vec![node(9701), node(9702)],
        last_seen_workers: Some(vec![node(9701), node(9702)]),
        workers_changed_at: Some(T0 - 3600.0),
        plan_moves: Some(0),
        last_rebalance_started: None,
        last_failure: None,
        settle: 5.0,
        interval: 3600.0,
        failure_backoff: 300.0,
        load_skew: None,
    }
}

#[test]
fn trigger_nothing_when_stable_and_balanced() {
    assert_eq!(rebalance_due(&tin()), Ok(None));
    let i = TriggerInput {
        plan_moves: None,
        ..tin()
    };
    assert_eq!(rebalance_due(&i), Ok(None));
    assert!(plan_needed(&i));
}

#[test]
fn trigger_on_added_workers_after_settle() {
    let mut i = tin();
    i.active_workers.push(node(9703));
    i.workers_changed_at = Some(T0 - 3.0);
    assert_eq!(
        rebalance_due(&i),
        Err("settling: 3s of 5s since workers 127.0.0.1:9703 joined".to_string())
    );
    assert!(!plan_needed(&i));
    i.now = T0 + 2.0;
    let want = RebalanceTrigger::WorkersChanged {
        added: vec![node(9703)],
        removed: vec![],
    };
    assert_eq!(rebalance_due(&i), Ok(Some(want.clone())));
    assert_eq!(want.reason(), "workers added: 127.0.0.1:9703");
    // Settle counts from the change even if a rebalance ran recently (the interval is for skew).
    i.last_rebalance_started = Some(T0);
    assert_eq!(rebalance_due(&i), Ok(Some(want)));
}

#[test]
fn trigger_replaced_worker_and_removal_only() {
    let mut i = tin();
    i.active_workers = vec![node(9701), node(9703)];
    let got = rebalance_due(&i).unwrap().unwrap();
    assert_eq!(
        got,
        RebalanceTrigger::WorkersChanged {
            added: vec![node(9703)],
            removed: vec![node(9702)],
        }
    );
    assert_eq!(
        got.reason(),
        "workers added: 127.0.0.1:9703; removed: 127.0.0.1:9702"
    );
    let mut i = tin();
    i.active_workers = vec![node(9701)];
    i.workers_changed_at = Some(T0);
    assert_eq!(
        rebalance_due(&i),
        Ok(None),
        "removal alone needs no rebalance"
    );
    // No baseline yet: nothing is reported as added.
    let i = TriggerInput {
        last_seen_workers: None,
        ..tin()
    };
    assert_eq!(rebalance_due(&i), Ok(None));
}

#[test]
fn trigger_on_skew_at_most_once_per_interval() {
    let mut i = tin();
    i.plan_moves = Some(4);
    let skew = RebalanceTrigger::Skew { moves: 4 };
    assert_eq!(rebalance_due(&i), Ok(Some(skew.clone())));
    assert_eq!(skew.reason(), "skew: 4 planned shard group moves");
    i.last_rebalance_started = Some(T0 - 120.0);
    assert_eq!(
        rebalance_due(&i),
        Err("last rebalance started 2m ago, rebalance_interval 1h".to_string())
    );
    assert!(!plan_needed(&i));
    i.last_rebalance_started = Some(T0 - 3600.0);
    assert_eq!(rebalance_due(&i), Ok(Some(skew)));
    assert!(plan_needed(&i));
    i.interval = -1.0;
    assert_eq!(rebalance_due(&i), Ok(None), "-1 disables skew rebalances");
    assert!(!plan_needed(&i));
    i.interval = 0.0;
    i.last_rebalance_started = Some(T0);
    assert!(rebalance_due(&i).unwrap().is_some());
}

#[test]
fn trigger_on_load_skew_shares_the_interval_and_backoff() {
    let skew = crate::load::LoadSkew {
        node: node(9701),
        ratio: 2.6,
        moves: 3,
        predicted_ratio: 1.2,
    };
    let mut i = tin();
    assert!(load_plan_needed(&i));
    i.load_skew = Some(skew.clone());
    // the load skew wins over a shard-count plan: it is the more specific reason
    i.plan_moves = Some(4);
    let got = rebalance_due(&i).unwrap().unwrap();
    assert_eq!(got, RebalanceTrigger::LoadSkew(skew));
    assert_eq!(
        got.reason(),
        "load skew: 127.0.0.1:9701 carries 2.6x the mean; the plan moves 3 shard groups; predicted max/mean 1.2"
    );
    // the same rate limit as the shard-count skew
    i.last_rebalance_started = Some(T0 - 120.0);
    assert!(rebalance_due(&i).is_err());
    assert!(!load_plan_needed(&i));
    i.last_rebalance_started = None;
    i.last_failure = Some(T0 - 30.0);
    assert!(rebalance_due(&i).is_err());
    assert!(!load_plan_needed(&i));
    i.last_failure = None;
    i.interval = -1.0;
    assert_eq!(rebalance_due(&i), Ok(None), "-1 disables it too");
    assert!(!load_plan_needed(&i));
    // a worker join is rebalanced first, whatever the load says
    let mut i = tin();
    i.load_skew = Some(crate::load::LoadSkew {
        node: node(9701),
        ratio: 2.0,
        moves: 1,
        predicted_ratio: 1.0,
    });
    i.active_workers.push(node(9703));
    assert!(matches!(
        rebalance_due(&i),
        Ok(Some(RebalanceTrigger::WorkersChanged { .. }))
    ));
}

#[test]
fn trigger_backs_off_after_a_failure() {
    let mut i = tin();
    i.plan_moves = Some(4);
    i.active_workers.push(node(9703));
    i.last_failure = Some(T0 - 30.0);
    assert_eq!(
        rebalance_due(&i),
        Err("backing off after failure 30s ago (backoff 5m)".to_string())
    );
    assert!(!plan_needed(&i));
    i.last_failure = Some(T0 - 300.0);
    assert!(matches!(
        rebalance_due(&i),
        Ok(Some(RebalanceTrigger::WorkersChanged { .. }))
    ));
}

#[test]
fn worker_watch_follows_the_set() {
    let (a, b, c) = (node(9701), node(9702), node(9703));
    let w = WorkerWatch::default().observe(&[b.clone(), a.clone()], T0);
    assert_eq!(w.baseline, Some(vec![a.clone(), b.clone()]));
    assert_eq!(w.changed_at, None);
    let w = w.observe(&[a.clone(), b.clone()], T0 + 5.0);
    assert_eq!(w.changed_at, None, "same set: no change");

    // c joins: baseline stays until a rebalance, the settle clock starts.
    let w = w.observe(&[a.clone(), b.clone(), c.clone()], T0 + 10.0);
    assert_eq!(w.baseline, Some(vec![a.clone(), b.clone()]));
    assert_eq!(w.changed_at, Some(T0 + 10.0));
    let w2 = w.observe(&[a.clone(), b.clone(), c.clone()], T0 + 15.0);
    assert_eq!(w2.changed_at, Some(T0 + 10.0));
    let i = TriggerInput {
        now: T0 + 15.0,
        active_workers: vec![a.clone(), b.clone(), c.clone()],
        last_seen_workers: w2.baseline.clone(),
        workers_changed_at: w2.changed_at,
        ..tin()
    };
    assert!(matches!(
        rebalance_due(&i),
        Ok(Some(RebalanceTrigger::WorkersChanged { .. }))
    ));
    let w3 = w2.rebalanced(&[c.clone(), a.clone(), b.clone()]);
    assert_eq!(w3.baseline, Some(vec![a.clone(), b.clone(), c.clone()]));
    let i = TriggerInput {
        last_seen_workers: w3.baseline.clone(),
        ..i
    };
    assert_eq!(rebalance_due(&i), Ok(None));

    // b leaves: the baseline follows at once (no rebalance needed), and b coming back counts
    // as an addition.
    let w4 = w3.observe(&[a.clone(), c.clone()], T0 + 100.0);
    assert_eq!(w4.baseline, Some(vec![a.clone(), c.clone()]));
    let w5 = w4.observe(&[a.clone(), b.clone(), c.clone()], T0 + 200.0);
    assert_eq!(w5.baseline, Some(vec![a.clone(), c.clone()]));
    assert_eq!(w5.changed_at, Some(T0 + 200.0));

    // c joins then leaves before settling: nothing left to do.
    let w = WorkerWatch::default()
        .observe(std::slice::from_ref(&a), T0)
        .observe(&[a.clone(), c.clone()], T0 + 1.0)
        .observe(std::slice::from_ref(&a), T0 + 2.0);
    assert_eq!(w.baseline, Some(vec![a.clone()]));
    let json = serde_json::to_string(&w).unwrap();
    assert_eq!(serde_json::from_str::<WorkerWatch>(&json).unwrap(), w);
}

#[test]
fn a_join_is_handled_by_whichever_rebalance_runs_after_it() {
    let (a, b, c) = (node(9701), node(9702), node(9703));
    // two workers, Citus jobs up to 17 exist
    let w = WorkerWatch::default()
        .observe_jobs(&[a.clone(), b.clone()], T0, Some(17))
        .observe_jobs(&[a.clone(), b.clone()], T0 + 1.0, Some(17));
    assert_eq!(w.job_before_join, None);
    // c joins and a human's job 18 is created before the next tick sees either
    let w = w.observe_jobs(&[a.clone(), b.clone(), c.clone()], T0 + 2.0, Some(18));
    assert_eq!(
        w.job_before_join,
        Some(17),
        "the newest job the last tick before the join saw"
    );
    assert_eq!(
        w.pending_join(&[a.clone(), b.clone(), c.clone()]),
        vec![c.clone()]
    );
    let all = [a.clone(), b.clone(), c.clone()];
    // job 18 still running: no finished job after the join, nothing handled
    assert_eq!(w.handled_join(&all, None), None);
    // an older finished job (17, before the join) does not count
    assert_eq!(w.handled_join(&all, Some(17)), None);
    // job 18 finished: the join is handled, the baseline takes c, the trigger has nothing to do
    let h = w.handled_join(&all, Some(18)).expect("handled by job 18");
    assert_eq!(h.job, 18);
    assert_eq!(h.added, vec![c.clone()]);
    assert!(
        h.reason().contains("rebalanced by Citus job 18"),
        "{}",
        h.reason()
    );
    let i = TriggerInput {
        now: T0 + 60.0,
        active_workers: all.to_vec(),
        last_seen_workers: h.watch.baseline.clone(),
        workers_changed_at: h.watch.changed_at,
        ..tin()
    };
    assert_eq!(rebalance_due(&i), Ok(None));
    // and nothing pending afterwards: a later finished job changes nothing
    assert_eq!(h.watch.handled_join(&all, Some(40)), None);
}

#[test]
fn a_join_without_any_rebalance_still_triggers_one() {
    let (a, c) = (node(9701), node(9703));
    let w = WorkerWatch::default()
        .observe_jobs(std::slice::from_ref(&a), T0, None)
        .observe_jobs(&[a.clone(), c.clone()], T0 + 1.0, None);
    assert_eq!(w.job_before_join, Some(0), "no job before the join");
    assert_eq!(w.handled_join(&[a.clone(), c.clone()], None), None);
    let i = TriggerInput {
        now: T0 + 60.0,
        active_workers: vec![a.clone(), c.clone()],
        last_seen_workers: w.baseline.clone(),
        workers_changed_at: w.changed_at,
        ..tin()
    };
    assert!(matches!(
        rebalance_due(&i),
        Ok(Some(RebalanceTrigger::WorkersChanged { .. }))
    ));
    // the first job ever, after the join, handles it
    assert!(w.handled_join(&[a.clone(), c.clone()], Some(1)).is_some());
    // a watch persisted by 0.2.0 (no job fields) reads back with none
    let old = r#"{"baseline":[],"seen":[],"changed_at":null}"#;
    let w: WorkerWatch = serde_json::from_str(old).unwrap();
    assert_eq!((w.newest_job, w.job_before_join), (None, None));
}

// ---------------------------------------------------------------- guards

fn gin() -> GuardInput {
    GuardInput {
        mode: "act".to_string(),
        is_coordinator: true,
        in_recovery: false,
        citus_installed: true,
        cluster_changes_blocked: false,
        human_job_running: None,
        window: None,
        now_utc: at(0, 12, 0),
        ops_last_hour: 0,
        max_ops_per_hour: 6,
    }
}

fn blocked(g: &GuardInput) -> String {
    match check(g) {
        GuardVerdict::Blocked(r) => r,
        other => panic!("expected blocked, got {other:?}"),
    }
}

#[test]
fn guards_allow_acting() {
    assert_eq!(check(&gin()), GuardVerdict::Act);
    assert!(check(&gin()).is_act());
    assert_eq!(check(&gin()).reason(), None);
    let g = GuardInput {
        mode: " ACT ".into(),
        window: Some(MaintenanceWindow::parse("11:00-13:00").unwrap()),
        ops_last_hour: 5,
        ..gin()
    };
    assert_eq!(check(&g), GuardVerdict::Act);
    let g = GuardInput {
        max_ops_per_hour: 0,
        ops_last_hour: 1000,
        ..gin()
    };
    assert_eq!(check(&g), GuardVerdict::Act, "0 = no rate limit");
}

#[test]
fn guards_each_reason() {
    let g = GuardInput {
        citus_installed: false,
        ..gin()
    };
    assert_eq!(blocked(&g), "citus is not installed in this database");
    let g = GuardInput {
        is_coordinator: false,
        ..gin()
    };
    assert_eq!(blocked(&g), "this node is not the Citus coordinator");
    let g = GuardInput {
        in_recovery: true,
        ..gin()
    };
    assert!(blocked(&g).contains("recovery"));
    let g = GuardInput {
        mode: "off".into(),
        ..gin()
    };
    assert_eq!(blocked(&g), "autoscale.mode is off");
    let g = GuardInput {
        mode: "yolo".into(),
        ..gin()
    };
    assert_eq!(
        blocked(&g),
        "autoscale.mode (\"yolo\") must be one of off, observe, act"
    );
    let g = GuardInput {
        human_job_running: Some(12),
        ..gin()
    };
    assert!(blocked(&g).contains("Citus rebalance job 12"));
    let g = GuardInput {
        cluster_changes_blocked: true,
        ..gin()
    };
    assert!(blocked(&g).contains("cluster changes are blocked"));
    let g = GuardInput {
        window: Some(MaintenanceWindow::parse("sat,sun 00:00-06:00").unwrap()),
        ..gin()
    };
    assert_eq!(
        blocked(&g),
        "outside the maintenance window sat,sun 00:00-06:00 UTC (opens in 4d12h)"
    );
    let g = GuardInput {
        ops_last_hour: 6,
        ..gin()
    };
    assert_eq!(
        blocked(&g),
        "rate limit: 6 operations in the last hour, at most 6 allowed"
    );
    let g = GuardInput {
        mode: "observe".into(),
        ..gin()
    };
    assert!(matches!(check(&g), GuardVerdict::Observe(r) if r.contains("observe")));
}

#[test]
fn guards_check_in_order() {
    // Every guard failing at once; lifting them one by one reveals the next in order.
    let mut g = GuardInput {
        mode: "observe".into(),
        is_coordinator: false,
        in_recovery: true,
        citus_installed: false,
        cluster_changes_blocked: true,
        human_job_running: Some(3),
        window: Some(MaintenanceWindow::parse("sat 00:00-01:00").unwrap()),
        now_utc: at(0, 12, 0),
        ops_last_hour: 10,
        max_ops_per_hour: 1,
    };
    let mut seen = Vec::new();
    seen.push(blocked(&g));
    g.citus_installed = true;
    seen.push(blocked(&g));
    g.is_coordinator = true;
    seen.push(blocked(&g));
    g.in_recovery = false;
    let mode = std::mem::replace(&mut g.mode, "off".into());
    seen.push(blocked(&g));
    g.mode = mode;
    seen.push(blocked(&g));
    g.human_job_running = None;
    seen.push(blocked(&g));
    g.cluster_changes_blocked = false;
    seen.push(blocked(&g));
    g.window = None;
    seen.push(blocked(&g));
    g.ops_last_hour = 0;
    assert!(matches!(check(&g), GuardVerdict::Observe(_)));
    g.mode = "act".into();
    assert_eq!(check(&g), GuardVerdict::Act);
    let keys = [
        "citus is not installed",
        "not the Citus coordinator",
        "recovery",
        "mode is off",
        "Citus rebalance job 3",
        "cluster changes are blocked",
        "maintenance window",
        "rate limit",
    ];
    for (s, k) in seen.iter().zip(keys) {
        assert!(s.contains(k), "{s:?} should mention {k:?}");
    }
    let json = serde_json::to_string(&GuardVerdict::Blocked("x".into())).unwrap();
    assert_eq!(json, r#"{"verdict":"blocked","reason":"x"}"#);
    assert_eq!(Mode::parse("Observe"), Ok(Mode::Observe));
}

// ---- issue 10: the restore step puts back what was there and is never held by the guards ----

#[test]
fn restore_puts_back_the_previous_value_only() {
    let mut op = new_scale_in(1, vec![node(9702), node(9703)], "test", T0).unwrap();
    // 9702 had shouldhaveshards = false before the scale-in, 9703 true
    let t = advance(
        &op,
        Outcome::Marked {
            had_shards: vec![node(9703)],
        },
        T0 + 1.0,
        &lim(),
    );
    op = t.op;
    assert_eq!(op.step, Step::StartDrain);
    assert_eq!(op.had_shards, Some(vec![node(9703)]));
    let t = advance(
        &op,
        err("drain refused"),
        T0 + 2.0,
        &Limits {
            max_attempts: 1,
            ..lim()
        },
    );
    op = t.op;
    assert_eq!(op.step, Step::Restore);
    assert_eq!(
        action(&op),
        Action::SetShouldHaveShards {
            nodes: vec![node(9703)],
            value: true
        },
        "only the node that had shards gets them back"
    );
    let t = advance(&op, Outcome::Ok, T0 + 3.0, &lim());
    assert_eq!(t.op.status, Status::Failed);
    assert!(
        t.events[0]
            .message
            .ends_with("shouldhaveshards restored to true on 127.0.0.1:9703"),
        "{}",
        t.events[0].message
    );
    // nothing had shards: the restore sets nothing and says so
    let mut op = new_scale_in(2, vec![node(9702)], "test", T0).unwrap();
    op = advance(&op, Outcome::Marked { had_shards: vec![] }, T0, &lim()).op;
    op = cancel(&op, "stop", T0 + 1.0).unwrap().op;
    assert_eq!(
        action(&op),
        Action::SetShouldHaveShards {
            nodes: vec![],
            value: true
        }
    );
    let t = advance(&op, Outcome::Ok, T0 + 2.0, &lim());
    assert_eq!(t.op.status, Status::Cancelled);
    assert!(
        t.events[0].message.contains("left as it was before"),
        "{}",
        t.events[0].message
    );
}

#[test]
fn rows_from_0_1_restore_every_leaving_node() {
    let mut op = new_scale_in(1, vec![node(9702), node(9703)], "test", T0).unwrap();
    op = advance(&op, Outcome::Ok, T0, &lim()).op;
    op = cancel(&op, "stop", T0 + 1.0).unwrap().op;
    assert_eq!(
        action(&op),
        Action::SetShouldHaveShards {
            nodes: vec![node(9702), node(9703)],
            value: true
        }
    );
    // a 0.1.0 row without the field deserializes
    let mut v = serde_json::to_value(&op).unwrap();
    v.as_object_mut().unwrap().remove("had_shards");
    let old: Operation = serde_json::from_value(v).unwrap();
    assert_eq!(old.had_shards, None);
}

#[test]
fn the_restore_step_needs_no_guards_but_changes_do() {
    let mut op = new_scale_in(1, vec![node(9703)], "test", T0).unwrap();
    assert!(needs_guards(&op), "mark_draining changes the cluster");
    op = advance(
        &op,
        Outcome::Marked {
            had_shards: vec![node(9703)],
        },
        T0,
        &lim(),
    )
    .op;
    assert!(needs_guards(&op), "start_drain changes the cluster");
    op = cancel(&op, "stop", T0 + 1.0).unwrap().op;
    assert_eq!(op.step, Step::Restore);
    assert!(!needs_guards(&op), "restore always runs");
    let r = new_operation(2, Kind::Rebalance, None, "t", T0).unwrap();
    assert!(needs_guards(&r));
    let mut w = r.clone();
    w.step = Step::WaitRebalance;
    w.job_id = Some(3);
    assert!(!needs_guards(&w), "following a job is a read");
}
