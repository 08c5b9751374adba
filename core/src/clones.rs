//! Warm clones in the standby pool: when a clone is ready for a snapshot split, and which clone a
//! scale-out takes. Pure: the caller passes the pool rows, the sampled lag and the workers' load.
//!
//! A clone is a streaming replica of a worker (its primary), made for example with
//! `pg_basebackup -R`. Each sample records whether it streams from its primary and how many bytes
//! of WAL it has still to replay. A scale-out prefers a ready clone: Citus 13.2's
//! `citus_promote_clone_and_rebalance` promotes it and splits the primary's shards between the two,
//! so almost nothing is copied at decision time. Otherwise the ordinary scale-out (an empty node
//! and a logical rebalance) runs, and [`ScaleOutPath`] says why.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::node::NodeAddr;

/// A clone of the pool as the last sample saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneInfo {
    pub node: NodeAddr,
    pub primary: NodeAddr,
    /// Pool state (`available`, `joining`, `active`, ...): only available clones are used.
    pub state: String,
    /// The clone is in recovery and its WAL receiver streams from the primary, and the primary
    /// has a streaming asynchronous WAL sender; None before the first check.
    pub streaming: Option<bool>,
    /// Bytes of WAL the clone has still to replay (primary's current LSN - clone's replay LSN).
    pub lag_bytes: Option<i64>,
    /// Seconds since the last check of the clone.
    pub checked_ago: Option<f64>,
    /// What the last check found wrong (unreachable, not streaming, ...).
    pub error: Option<String>,
}

/// The limits a clone must meet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Readiness {
    /// Most bytes of replay lag a ready clone may have.
    pub max_lag_bytes: i64,
    /// A check older than this (seconds) does not count.
    pub max_check_age: f64,
}

/// Why `c` is not ready, or Ok when it is. `active_workers` are the active primary workers: the
/// clone's primary must be one of them.
pub fn readiness(c: &CloneInfo, r: &Readiness, active_workers: &[NodeAddr]) -> Result<(), String> {
    if c.state != "available" {
        return Err(format!("clone {} is {} in the pool", c.node, c.state));
    }
    if !active_workers.contains(&c.primary) {
        return Err(format!(
            "clone {}: its primary {} is not an active worker",
            c.node, c.primary
        ));
    }
    if let Some(e) = &c.error {
        return Err(format!("clone {}: {e}", c.node));
    }
    match (c.streaming, c.checked_ago) {
        (None, _) | (_, None) => {
            return Err(format!("clone {} has not been checked yet", c.node));
        }
        (Some(false), _) => {
            return Err(format!(
                "clone {} does not stream from {}",
                c.node, c.primary
            ));
        }
        (Some(true), Some(ago)) if ago > r.max_check_age => {
            return Err(format!(
                "clone {} was last checked {}s ago (more than {}s)",
                c.node,
                ago.round(),
                r.max_check_age.round()
            ));
        }
        _ => {}
    }
    match c.lag_bytes {
        Some(lag) if lag > r.max_lag_bytes => Err(format!(
            "clone {} lags {} behind {} (autoscale.clone_max_lag is {})",
            c.node,
            bytes(lag),
            c.primary,
            bytes(r.max_lag_bytes)
        )),
        None => Err(format!("clone {}: lag unknown", c.node)),
        _ => Ok(()),
    }
}

/// Which path a scale-out takes, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "path", rename_all = "snake_case")]
pub enum ScaleOutPath {
    /// A snapshot split of `clone` and its `primary`.
    Split {
        clone: NodeAddr,
        primary: NodeAddr,
        why: String,
    },
    /// The ordinary scale-out (a node from the pool or a provision request, then a logical
    /// rebalance).
    Logical { why: String },
}

impl ScaleOutPath {
    /// `split: ...` or `logical: ...`, for explain() and status.
    pub fn text(&self) -> String {
        match self {
            ScaleOutPath::Split { why, .. } => format!("split: {why}"),
            ScaleOutPath::Logical { why } => format!("logical: {why}"),
        }
    }
}

/// What "the busiest worker" is measured by, for each worker. Either may be empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerLoads {
    /// Each worker's shard load: the sum of its shard groups' smoothed load (operations/s,
    /// `autoscale.shard_group_load`, see `crate::load`), where measured.
    pub shard_load: HashMap<NodeAddr, f64>,
    /// Each worker's CPU busy % at its latest sample.
    pub cpu: HashMap<NodeAddr, f64>,
}

/// The measure a choice of clone goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBasis {
    /// The measured shard-group load: the workers carried at least
    /// [`crate::load::MIN_MEAN_LOAD`] operations/s on average.
    ShardLoad,
    /// No shard load measured (or the workers are idle): the CPU busy % of the latest sample.
    Cpu,
    /// Nothing measured.
    Unknown,
}

impl WorkerLoads {
    /// The measured shard load when the active `workers` carry one (on average at least
    /// [`crate::load::MIN_MEAN_LOAD`] operations/s, a worker without groups counting as 0), else
    /// the CPU when any worker has one.
    pub fn basis(&self, workers: &[NodeAddr]) -> LoadBasis {
        let measured: Vec<f64> = workers
            .iter()
            .filter_map(|w| self.shard_load.get(w).copied())
            .collect();
        if !measured.is_empty() && !workers.is_empty() {
            let mean = measured.iter().sum::<f64>() / workers.len() as f64;
            if mean >= crate::load::MIN_MEAN_LOAD {
                return LoadBasis::ShardLoad;
            }
        }
        if workers.iter().any(|w| self.cpu.contains_key(w)) {
            LoadBasis::Cpu
        } else {
            LoadBasis::Unknown
        }
    }

    /// `w`'s load by `basis` (unknown: None).
    pub fn of(&self, basis: LoadBasis, w: &NodeAddr) -> Option<f64> {
        match basis {
            LoadBasis::ShardLoad => Some(self.shard_load.get(w).copied().unwrap_or(0.0)),
            LoadBasis::Cpu => self.cpu.get(w).copied(),
            LoadBasis::Unknown => None,
        }
    }

    fn text(basis: LoadBasis, v: f64) -> String {
        match basis {
            LoadBasis::ShardLoad => format!("shard load {v:.1} op/s"),
            LoadBasis::Cpu => format!("cpu {v:.1}%"),
            LoadBasis::Unknown => String::new(),
        }
    }
}

/// The path of the next scale-out of `nodes` workers. A split needs clones enabled, one node
/// wanted, and a ready clone; among the ready ones it takes the clone of the busiest primary by
/// [`WorkerLoads::basis`] (the measured shard load, else the CPU; unknown counts as 0), then the
/// higher CPU (equal shard load), then the least lag, then by address. When the busiest active
/// worker has no ready clone, the clone of a less busy one is still taken (a split adds a node in
/// seconds) and the reason says that the busiest worker is not the one relieved (or that the
/// primary is within 10% of it: noise between evenly loaded workers).
pub fn choose(
    clones: &[CloneInfo],
    r: &Readiness,
    active_workers: &[NodeAddr],
    loads: &WorkerLoads,
    nodes: u32,
    enabled: bool,
) -> ScaleOutPath {
    if !enabled {
        return ScaleOutPath::Logical {
            why: "autoscale.split_out is off".into(),
        };
    }
    if clones.is_empty() {
        return ScaleOutPath::Logical {
            why: "no warm clone in the pool".into(),
        };
    }
    if nodes > 1 {
        return ScaleOutPath::Logical {
            why: format!("{nodes} nodes wanted; a split adds one"),
        };
    }
    // clones already used (active workers now) or being used are not candidates
    let offered: Vec<&CloneInfo> = clones.iter().filter(|c| c.state == "available").collect();
    if offered.is_empty() {
        return ScaleOutPath::Logical {
            why: "no warm clone available in the pool".into(),
        };
    }
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for c in offered {
        match readiness(c, r, active_workers) {
            Ok(()) => ready.push(c),
            Err(why) => not_ready.push(why),
        }
    }
    let basis = loads.basis(active_workers);
    let key = |c: &CloneInfo| loads.of(basis, &c.primary).unwrap_or(0.0);
    let cpu = |c: &CloneInfo| loads.cpu.get(&c.primary).copied().unwrap_or(0.0);
    ready.sort_by(|a, b| {
        key(b)
            .total_cmp(&key(a))
            .then(cpu(b).total_cmp(&cpu(a)))
            .then(a.lag_bytes.cmp(&b.lag_bytes))
            .then(a.node.cmp(&b.node))
    });
    let Some(c) = ready.first() else {
        return ScaleOutPath::Logical {
            why: format!("no clone is ready: {}", not_ready.join("; ")),
        };
    };
    let mut why = format!(
        "clone {} of {} is ready (lag {})",
        c.node,
        c.primary,
        bytes(c.lag_bytes.unwrap_or(0))
    );
    // the busiest active worker by the same measure (the first by address among equals)
    let busiest = active_workers
        .iter()
        .filter_map(|w| loads.of(basis, w).map(|v| (w, v)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(a.0)));
    match (basis, busiest) {
        (LoadBasis::Unknown, _) | (_, None) => why.push_str("; no load measured"),
        (_, Some((top, top_load))) => {
            let mine = loads.of(basis, &c.primary).unwrap_or(0.0);
            if mine >= top_load {
                why.push_str(&format!(
                    "; its primary is the busiest worker ({})",
                    WorkerLoads::text(basis, mine)
                ));
            } else if mine >= top_load * 0.9 {
                // measurement noise between evenly loaded workers
                why.push_str(&format!(
                    "; its primary carries {}, within 10% of the busiest worker {} ({})",
                    WorkerLoads::text(basis, mine),
                    top,
                    WorkerLoads::text(basis, top_load)
                ));
            } else {
                why.push_str(&format!(
                    "; its primary carries {}, less than the busiest worker {} ({}), which has no ready clone",
                    WorkerLoads::text(basis, mine),
                    top,
                    WorkerLoads::text(basis, top_load)
                ));
            }
        }
    }
    ScaleOutPath::Split {
        clone: c.node.clone(),
        primary: c.primary.clone(),
        why,
    }
}

/// What the primary says: its current WAL position and its WAL senders
/// (`pg_stat_replication`), as json.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PrimaryReport {
    pub lsn: String,
    #[serde(default)]
    pub senders: Option<Vec<Sender>>,
}

/// One row of the primary's `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sender {
    pub app: Option<String>,
    pub addr: Option<String>,
    pub host: Option<String>,
    pub state: Option<String>,
    pub sync: Option<String>,
}

/// What the clone says: in recovery, its replay position and its WAL receiver
/// (`pg_stat_wal_receiver`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CloneReport {
    pub recovery: bool,
    pub replay: Option<String>,
    pub status: Option<String>,
    pub sender_host: Option<String>,
    pub sender_port: Option<i32>,
}

/// The result of one check of a clone: streaming, lag in bytes, or what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub streaming: bool,
    pub lag_bytes: Option<i64>,
    pub error: Option<String>,
}

/// `16/B374D848` -> its byte position.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

fn loopback(h: &str) -> bool {
    matches!(h, "localhost" | "127.0.0.1" | "::1") || h.starts_with("127.")
}

/// Judges one clone from the json answers of its primary and of itself (either may have failed:
/// then the error text). The clone streams when it is in recovery with a streaming WAL receiver
/// connected to the primary's port (and host, loopback names counting as one), and the primary
/// has a streaming asynchronous WAL sender for it (application_name, client address or host
/// name equal to the clone's host, as Citus's `citus_add_clone_node` checks). A synchronous
/// sender is refused: Citus would refuse to promote it.
pub fn assess(
    clone: &NodeAddr,
    primary: &NodeAddr,
    primary_answer: Result<&str, &str>,
    clone_answer: Result<&str, &str>,
) -> Check {
    let bad = |error: String| Check {
        streaming: false,
        lag_bytes: None,
        error: Some(error),
    };
    let p: PrimaryReport = match primary_answer {
        Err(e) => return bad(format!("its primary {primary} does not answer: {e}")),
        Ok(j) => match serde_json::from_str(j) {
            Ok(p) => p,
            Err(e) => return bad(format!("unreadable answer of {primary}: {e}")),
        },
    };
    let c: CloneReport = match clone_answer {
        Err(e) => return bad(format!("does not answer: {e}")),
        Ok(j) => match serde_json::from_str(j) {
            Ok(c) => c,
            Err(e) => return bad(format!("unreadable answer: {e}")),
        },
    };
    let lag = match (parse_lsn(&p.lsn), c.replay.as_deref().and_then(parse_lsn)) {
        (Some(a), Some(b)) => Some(a.saturating_sub(b).min(i64::MAX as u64) as i64),
        _ => None,
    };
    let not = |why: String| Check {
        streaming: false,
        lag_bytes: lag,
        error: Some(why),
    };
    if !c.recovery {
        return not("is not in recovery: not a replica (or promoted), so no clone".into());
    }
    if c.status.as_deref() != Some("streaming") {
        return not(format!(
            "its WAL receiver is {}, not streaming",
            c.status.as_deref().unwrap_or("not running")
        ));
    }
    let host_ok = match c.sender_host.as_deref() {
        Some(h) => h == primary.host || (loopback(h) && loopback(&primary.host)),
        None => false,
    };
    if c.sender_port != Some(primary.port) || !host_ok {
        return not(format!(
            "streams from {}:{}, not from {primary}",
            c.sender_host.as_deref().unwrap_or("?"),
            c.sender_port
                .map_or_else(|| "?".to_string(), |p| p.to_string())
        ));
    }
    let senders = p.senders.unwrap_or_default();
    let mine: Vec<&Sender> = senders
        .iter()
        .filter(|s| {
            [&s.app, &s.addr, &s.host]
                .iter()
                .any(|v| v.as_deref() == Some(clone.host.as_str()))
                || (loopback(&clone.host) && s.addr.as_deref().is_some_and(loopback))
        })
        .collect();
    if !mine.iter().any(|s| s.state.as_deref() == Some("streaming")) {
        return not(format!(
            "{primary} has no streaming WAL sender for it (pg_stat_replication)"
        ));
    }
    if mine
        .iter()
        .all(|s| matches!(s.sync.as_deref(), Some("sync" | "quorum")))
    {
        return not(format!(
            "it is a synchronous standby of {primary}; Citus promotes only asynchronous clones"
        ));
    }
    Check {
        streaming: true,
        lag_bytes: lag,
        error: None,
    }
}

/// `512 B`, `3.0 MB`, `1.2 GB`.
pub fn bytes(n: i64) -> String {
    let f = n as f64;
    if n.abs() < 1024 {
        format!("{n} B")
    } else if f.abs() < 1024.0 * 1024.0 {
        format!("{:.1} kB", f / 1024.0)
    } else if f.abs() < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MB", f / 1024.0 / 1024.0)
    } else {
        format!("{:.1} GB", f / 1024.0 / 1024.0 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: i32) -> NodeAddr {
        NodeAddr::new("127.0.0.1", p)
    }

    fn clone(p: i32, primary: i32, lag: i64) -> CloneInfo {
        CloneInfo {
            node: n(p),
            primary: n(primary),
            state: "available".into(),
            streaming: Some(true),
            lag_bytes: Some(lag),
            checked_ago: Some(5.0),
            error: None,
        }
    }

    const R: Readiness = Readiness {
        max_lag_bytes: 16 * 1024 * 1024,
        max_check_age: 60.0,
    };

    fn workers() -> Vec<NodeAddr> {
        vec![n(9301), n(9302)]
    }

    #[test]
    fn a_streaming_clone_within_lag_is_ready() {
        assert_eq!(readiness(&clone(9311, 9301, 100), &R, &workers()), Ok(()));
    }

    #[test]
    fn lagging_stopped_stale_or_orphaned_clones_are_not_ready_and_say_why() {
        let lag = readiness(&clone(9311, 9301, 40 * 1024 * 1024), &R, &workers()).unwrap_err();
        assert_eq!(
            lag,
            "clone 127.0.0.1:9311 lags 40.0 MB behind 127.0.0.1:9301 (autoscale.clone_max_lag is 16.0 MB)"
        );
        let mut c = clone(9311, 9301, 0);
        c.streaming = Some(false);
        assert!(readiness(&c, &R, &workers())
            .unwrap_err()
            .contains("does not stream from 127.0.0.1:9301"));
        let mut c = clone(9311, 9301, 0);
        c.checked_ago = Some(600.0);
        assert!(readiness(&c, &R, &workers())
            .unwrap_err()
            .contains("last checked 600s ago"));
        let c = clone(9311, 9309, 0);
        assert!(readiness(&c, &R, &workers())
            .unwrap_err()
            .contains("its primary 127.0.0.1:9309 is not an active worker"));
        let mut c = clone(9311, 9301, 0);
        c.state = "joining".into();
        assert!(readiness(&c, &R, &workers()).is_err());
        let mut c = clone(9311, 9301, 0);
        c.error = Some("does not answer".into());
        assert!(readiness(&c, &R, &workers())
            .unwrap_err()
            .contains("does not answer"));
        let mut c = clone(9311, 9301, 0);
        c.streaming = None;
        assert!(readiness(&c, &R, &workers())
            .unwrap_err()
            .contains("not been checked"));
    }

    fn loads(shard: &[(i32, f64)], cpu: &[(i32, f64)]) -> WorkerLoads {
        WorkerLoads {
            shard_load: shard.iter().map(|(p, v)| (n(*p), *v)).collect(),
            cpu: cpu.iter().map(|(p, v)| (n(*p), *v)).collect(),
        }
    }

    fn split_of(p: ScaleOutPath) -> (NodeAddr, NodeAddr, String) {
        match p {
            ScaleOutPath::Split {
                clone,
                primary,
                why,
            } => (clone, primary, why),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_clone_of_the_busiest_worker_by_cpu_is_chosen_without_shard_load() {
        let clones = vec![clone(9311, 9301, 0), clone(9312, 9302, 0)];
        let cpu = loads(&[], &[(9301, 20.0), (9302, 90.0)]);
        let (chosen, primary, why) = split_of(choose(&clones, &R, &workers(), &cpu, 1, true));
        assert_eq!((chosen, primary), (n(9312), n(9302)));
        assert!(
            why.ends_with("; its primary is the busiest worker (cpu 90.0%)"),
            "{why}"
        );
        // the busiest worker's clone lags: the other one is taken, and the reason says so
        let clones = vec![clone(9311, 9301, 0), clone(9312, 9302, 1 << 30)];
        let (chosen, _, why) = split_of(choose(&clones, &R, &workers(), &cpu, 1, true));
        assert_eq!(chosen, n(9311));
        assert!(
            why.ends_with("; its primary carries cpu 20.0%, less than the busiest worker 127.0.0.1:9302 (cpu 90.0%), which has no ready clone"),
            "{why}"
        );
    }

    #[test]
    fn the_measured_shard_load_ranks_before_the_cpu() {
        let clones = vec![clone(9311, 9301, 0), clone(9312, 9302, 0)];
        // worker 1 carries the shard load, worker 2 burns CPU (another process, a vacuum...)
        let l = loads(
            &[(9301, 120.0), (9302, 30.0)],
            &[(9301, 40.0), (9302, 95.0)],
        );
        assert_eq!(l.basis(&workers()), LoadBasis::ShardLoad);
        let (chosen, primary, why) = split_of(choose(&clones, &R, &workers(), &l, 1, true));
        assert_eq!((chosen, primary), (n(9311), n(9301)));
        assert!(
            why.ends_with("; its primary is the busiest worker (shard load 120.0 op/s)"),
            "{why}"
        );
        // a worker without measured groups carries 0
        let l = loads(&[(9302, 5.0)], &[(9301, 99.0)]);
        assert_eq!(l.basis(&workers()), LoadBasis::ShardLoad);
        assert_eq!(l.of(LoadBasis::ShardLoad, &n(9301)), Some(0.0));
        assert_eq!(
            split_of(choose(&clones, &R, &workers(), &l, 1, true)).0,
            n(9312)
        );
    }

    #[test]
    fn no_data_or_an_idle_cluster_falls_back() {
        let clones = vec![clone(9311, 9301, 500), clone(9312, 9302, 10)];
        // no data at all: the least lag, and the reason says nothing was measured
        let none = WorkerLoads::default();
        assert_eq!(none.basis(&workers()), LoadBasis::Unknown);
        let (chosen, _, why) = split_of(choose(&clones, &R, &workers(), &none, 1, true));
        assert_eq!(chosen, n(9312));
        assert!(why.ends_with("; no load measured"), "{why}");
        // shard load measured but idle (mean under 1 op/s): the CPU decides
        let idle = loads(&[(9301, 0.4), (9302, 0.1)], &[(9301, 70.0), (9302, 10.0)]);
        assert_eq!(idle.basis(&workers()), LoadBasis::Cpu);
        let (chosen, _, why) = split_of(choose(&clones, &R, &workers(), &idle, 1, true));
        assert_eq!(chosen, n(9311));
        assert!(why.contains("(cpu 70.0%)"), "{why}");
        // load measured only on a node that is not an active worker (the coordinator): no basis
        let elsewhere = loads(&[(9300, 50.0)], &[]);
        assert_eq!(elsewhere.basis(&workers()), LoadBasis::Unknown);
    }

    #[test]
    fn equal_load_goes_by_cpu_then_lag_then_address() {
        let w = workers();
        let clones = vec![clone(9311, 9301, 500), clone(9312, 9302, 10)];
        let l = loads(&[(9301, 50.0), (9302, 50.0)], &[(9301, 80.0), (9302, 60.0)]);
        let (chosen, _, why) = split_of(choose(&clones, &R, &w, &l, 1, true));
        assert_eq!(chosen, n(9311), "equal shard load: the higher CPU");
        assert!(
            why.contains("is the busiest worker (shard load 50.0 op/s)"),
            "{why}"
        );
        let l = loads(&[(9301, 50.0), (9302, 50.0)], &[]);
        assert_eq!(
            split_of(choose(&clones, &R, &w, &l, 1, true)).0,
            n(9312),
            "equal load, no CPU: the least lag"
        );
        let same_lag = vec![clone(9312, 9302, 0), clone(9311, 9301, 0)];
        assert_eq!(
            split_of(choose(&same_lag, &R, &w, &l, 1, true)).0,
            n(9311),
            "all equal: by address"
        );
        // two clones of one primary: the least lag first
        let siblings = vec![clone(9311, 9301, 500), clone(9312, 9301, 10)];
        assert_eq!(split_of(choose(&siblings, &R, &w, &l, 1, true)).0, n(9312));
    }

    #[test]
    fn a_clone_of_a_worker_that_is_not_the_busiest_is_taken_and_the_reason_says_so() {
        // only worker 2 has a clone; worker 1 carries the load
        let clones = vec![clone(9312, 9302, 0)];
        let l = loads(&[(9301, 90.0), (9302, 10.0)], &[(9301, 95.0), (9302, 30.0)]);
        let (chosen, primary, why) = split_of(choose(&clones, &R, &workers(), &l, 1, true));
        assert_eq!((chosen, primary), (n(9312), n(9302)));
        assert_eq!(
            why,
            "clone 127.0.0.1:9312 of 127.0.0.1:9302 is ready (lag 0 B); its primary carries shard load \
             10.0 op/s, less than the busiest worker 127.0.0.1:9301 (shard load 90.0 op/s), which has no ready clone"
        );
        // about as busy as the busiest (within 10%): said so
        let even = loads(&[(9301, 50.1), (9302, 50.0)], &[]);
        let (_, _, why) = split_of(choose(&clones, &R, &workers(), &even, 1, true));
        assert!(
            why.ends_with("; its primary carries shard load 50.0 op/s, within 10% of the busiest worker 127.0.0.1:9301 (shard load 50.1 op/s)"),
            "{why}"
        );
        // the busiest worker's clone is there but not ready: the same, and the path text starts with split
        let mut lagging = clone(9311, 9301, 1 << 30);
        lagging.lag_bytes = Some(1 << 30);
        let p = choose(
            &[lagging, clone(9312, 9302, 0)],
            &R,
            &workers(),
            &l,
            1,
            true,
        );
        assert!(
            p.text().starts_with("split: clone 127.0.0.1:9312"),
            "{}",
            p.text()
        );
        assert!(p
            .text()
            .contains("less than the busiest worker 127.0.0.1:9301"));
    }

    #[test]
    fn the_logical_path_says_why() {
        let load = WorkerLoads::default();
        let lagging = vec![clone(9311, 9301, 1 << 30)];
        let p = choose(&lagging, &R, &workers(), &load, 1, true);
        assert!(
            p.text()
                .starts_with("logical: no clone is ready: clone 127.0.0.1:9311 lags 1.0 GB"),
            "{}",
            p.text()
        );
        assert_eq!(
            choose(&[], &R, &workers(), &load, 1, true).text(),
            "logical: no warm clone in the pool"
        );
        let mut used = clone(9311, 9301, 0);
        used.state = "active".into();
        assert_eq!(
            choose(&[used], &R, &workers(), &load, 1, true).text(),
            "logical: no warm clone available in the pool"
        );
        let ok = vec![clone(9311, 9301, 0)];
        assert_eq!(
            choose(&ok, &R, &workers(), &load, 2, true).text(),
            "logical: 2 nodes wanted; a split adds one"
        );
        assert_eq!(
            choose(&ok, &R, &workers(), &load, 1, false).text(),
            "logical: autoscale.split_out is off"
        );
    }

    const PRIMARY_OK: &str = r#"{"lsn":"0/3000100","senders":[{"app":"walreceiver","addr":"127.0.0.1","host":null,"state":"streaming","sync":"async"}]}"#;
    const CLONE_OK: &str = r#"{"recovery":true,"replay":"0/3000000","status":"streaming","sender_host":"127.0.0.1","sender_port":9301}"#;

    #[test]
    fn a_check_measures_lag_and_requires_streaming_from_the_primary() {
        let c = assess(&n(9311), &n(9301), Ok(PRIMARY_OK), Ok(CLONE_OK));
        assert_eq!(
            c,
            Check {
                streaming: true,
                lag_bytes: Some(0x100),
                error: None
            }
        );
        // streams from another worker
        let other = CLONE_OK.replace("9301", "9302");
        let c = assess(&n(9311), &n(9301), Ok(PRIMARY_OK), Ok(&other));
        assert!(!c.streaming);
        assert!(c
            .error
            .unwrap()
            .contains("streams from 127.0.0.1:9302, not from 127.0.0.1:9301"));
        // promoted
        let promoted = CLONE_OK.replace("\"recovery\":true", "\"recovery\":false");
        let c = assess(&n(9311), &n(9301), Ok(PRIMARY_OK), Ok(&promoted));
        assert!(c.error.unwrap().contains("not in recovery"));
        // receiver stopped
        let stopped = r#"{"recovery":true,"replay":"0/3000000","status":null,"sender_host":null,"sender_port":null}"#;
        let c = assess(&n(9311), &n(9301), Ok(PRIMARY_OK), Ok(stopped));
        assert!(c.error.unwrap().contains("not running"));
        // primary without a sender
        let c = assess(
            &n(9311),
            &n(9301),
            Ok(r#"{"lsn":"0/3000100","senders":null}"#),
            Ok(CLONE_OK),
        );
        assert!(c.error.unwrap().contains("no streaming WAL sender"));
        // synchronous
        let sync = PRIMARY_OK.replace("async", "sync");
        let c = assess(&n(9311), &n(9301), Ok(&sync), Ok(CLONE_OK));
        assert!(c.error.unwrap().contains("synchronous"));
        // unreachable
        let c = assess(
            &n(9311),
            &n(9301),
            Ok(PRIMARY_OK),
            Err("connection refused"),
        );
        assert_eq!(c.error.unwrap(), "does not answer: connection refused");
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("x"), None);
    }

    #[test]
    fn after_a_split_the_other_clones_of_the_primary_stay_usable() {
        // the promoted clone is active now; its sibling still streams from the primary, which
        // is still an active worker: the next scale-out may split that primary again
        let mut promoted = clone(9311, 9301, 0);
        promoted.state = "active".into();
        let sibling = clone(9312, 9301, 0);
        let mut workers = workers();
        workers.push(n(9311));
        match choose(
            &[promoted, sibling],
            &R,
            &workers,
            &WorkerLoads::default(),
            1,
            true,
        ) {
            ScaleOutPath::Split { clone, primary, .. } => {
                assert_eq!((clone, primary), (n(9312), n(9301)))
            }
            other => panic!("{other:?}"),
        }
    }
}
