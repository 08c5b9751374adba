//! The policy engine: policies + recent samples + action history -> a decision with its reasons.
//!
//! Pure and deterministic: no clock, no I/O. The caller passes `now`, the recent history of every
//! policy's metric (one aggregated value per sample) and what it knows about running and finished
//! operations; [`evaluate`] answers with a [`Decision`] that explains itself per policy.
//!
//! Rules (docs/architecture.md, "Where each decision is made"):
//! - threshold policies act when the condition held for the whole `scale_out_for` /
//!   `scale_in_for` window; target-tracking policies size the cluster to
//!   `ceil(workers * value / target)`, scaling out to the lowest recommendation over the last
//!   `scale_out_for` seconds (0 = the latest value alone) and scaling in only to the highest
//!   recommendation over the `scale_in_for` window (Kubernetes HPA's stabilization windows);
//! - several policies: the largest desired size wins; scale-in only when every policy agrees;
//! - missing data, unreachable nodes, gaps and short history never lead to scale-in;
//! - cooldowns are counted from when the previous operation finished; a scale-in also waits
//!   `cooldown_in` after a scale-out.

pub mod backtest;
pub mod datanodes;
mod eval;
pub mod predict;
#[cfg(test)]
mod proptests;
pub mod scheduled;
pub mod simulate;
#[cfg(test)]
mod single_node_tests;
#[cfg(test)]
mod tests;
pub mod units;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use eval::{evaluate, evaluate_policy};

/// Default `scale_out_for`: 2 minutes.
pub const DEFAULT_SCALE_OUT_FOR: f64 = 120.0;
/// Default `scale_in_for` (also the target-tracking stabilization window): 15 minutes.
pub const DEFAULT_SCALE_IN_FOR: f64 = 900.0;
/// Default cooldown after a scale-out: 10 minutes.
pub const DEFAULT_COOLDOWN_OUT: f64 = 600.0;
/// Default cooldown after a scale-in: 10 minutes.
pub const DEFAULT_COOLDOWN_IN: f64 = 600.0;
/// Default lower bound of active workers (0 is allowed: the coordinator alone, a single node).
pub const DEFAULT_MIN_WORKERS: u32 = 2;
/// Default upper bound of active workers.
pub const DEFAULT_MAX_WORKERS: u32 = 16;
/// Default workers added or removed per operation.
pub const DEFAULT_STEP: u32 = 1;
/// Default target-tracking tolerance (a fraction of the target).
pub const DEFAULT_TOLERANCE: f64 = 0.10;
/// Largest accepted `max_workers`.
pub const MAX_WORKERS_LIMIT: u32 = 1000;
/// Largest accepted `step`.
pub const MAX_STEP: u32 = 100;
/// Longest accepted policy name.
pub const MAX_NAME_LEN: usize = 63;

/// What a policy watches, aggregated across the data nodes: the nodes that hold shards or should
/// (`shouldhaveshards`), the coordinator included when it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// CPU busy, percent 0..100.
    Cpu,
    /// Memory used, percent 0..100.
    Memory,
    /// Disk used (data directory), percent 0..100.
    Disk,
    /// Connections, total.
    Connections,
    /// Connections, active.
    ActiveConnections,
    /// Commits per second.
    CommitsPerSec,
    /// 1-minute load average.
    Load1,
    /// A SQL expression returning one number.
    Custom,
    /// Transactions per second: commits plus rollbacks.
    Tps,
    /// Client connections over max_connections, percent.
    ConnectionSaturation,
    /// Bytes the furthest-behind streaming standby of a node has yet to replay.
    ReplicationLag,
    /// Mean statement time over the last interval, ms (pg_stat_statements; missing without it).
    MeanStatementMs,
    /// Buffer reads that missed shared buffers over the last interval, percent: 100 minus the
    /// cache hit ratio, so that a policy scales out when it rises.
    CacheMissRatio,
}

/// Does this metric fall when the same load spreads over more workers? (The backtest rescales
/// such a metric by recorded / simulated workers; the forecast predicts it as a cluster total.)
pub fn spreads_over_workers(m: Metric) -> bool {
    matches!(
        m,
        Metric::Cpu
            | Metric::Load1
            | Metric::CommitsPerSec
            | Metric::Connections
            | Metric::ActiveConnections
            | Metric::Tps
            | Metric::ConnectionSaturation
    )
}

impl Metric {
    /// Every metric, in documentation order.
    pub const ALL: [Metric; 13] = [
        Metric::Cpu,
        Metric::Memory,
        Metric::Disk,
        Metric::Connections,
        Metric::ActiveConnections,
        Metric::CommitsPerSec,
        Metric::Load1,
        Metric::Custom,
        Metric::Tps,
        Metric::ConnectionSaturation,
        Metric::ReplicationLag,
        Metric::MeanStatementMs,
        Metric::CacheMissRatio,
    ];

    /// Parses a metric name (ASCII case-insensitive, surrounding blanks ignored).
    pub fn parse(s: &str) -> Result<Metric, PolicyError> {
        let t = s.trim();
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| PolicyError::Metric(s.to_string()))
    }

    /// The SQL-facing name.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
            Metric::Disk => "disk",
            Metric::Connections => "connections",
            Metric::ActiveConnections => "active_connections",
            Metric::CommitsPerSec => "commits_per_sec",
            Metric::Load1 => "load1",
            Metric::Custom => "custom",
            Metric::Tps => "tps",
            Metric::ConnectionSaturation => "connection_saturation",
            Metric::ReplicationLag => "replication_lag",
            Metric::MeanStatementMs => "mean_statement_ms",
            Metric::CacheMissRatio => "cache_miss_ratio",
        }
    }

    /// True for metrics measured in percent (0..100): cpu, memory, disk.
    pub fn is_percent(self) -> bool {
        matches!(self, Metric::Cpu | Metric::Memory | Metric::Disk)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::parse(s)
    }
}

/// How per-worker values are combined into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Mean over active workers.
    #[default]
    Avg,
    /// Maximum over active workers.
    Max,
}

impl Aggregate {
    /// Parses `avg` or `max` (ASCII case-insensitive, surrounding blanks ignored).
    pub fn parse(s: &str) -> Result<Aggregate, PolicyError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "avg" => Ok(Aggregate::Avg),
            "max" => Ok(Aggregate::Max),
            _ => Err(PolicyError::Aggregate(s.to_string())),
        }
    }

    /// The SQL-facing name.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Avg => "avg",
            Aggregate::Max => "max",
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Aggregate {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Aggregate::parse(s)
    }
}

/// Combines per-worker readings into the policy's value. Non-finite readings are ignored;
/// `None` when nothing is left.
pub fn aggregate(values: &[f64], agg: Aggregate) -> Option<f64> {
    let mut n = 0usize;
    let mut sum = 0.0;
    let mut max = f64::NEG_INFINITY;
    for &v in values.iter().filter(|v| v.is_finite()) {
        n += 1;
        sum += v;
        max = max.max(v);
    }
    if n == 0 {
        return None;
    }
    Some(match agg {
        Aggregate::Avg => sum / n as f64,
        Aggregate::Max => max,
    })
}

/// Threshold or target tracking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PolicyKind {
    /// Scale out when above `scale_out_above` for `scale_out_for`, in when below
    /// `scale_in_below` for `scale_in_for`.
    Threshold {
        scale_out_above: f64,
        scale_in_below: f64,
    },
    /// Keep the value near `target`: desired = ceil(workers * value / target), no change while
    /// |value / target - 1| <= tolerance.
    Target {
        target: f64,
        /// A fraction of the target (0.10 = 10%).
        #[serde(default = "default_tolerance")]
        tolerance: f64,
    },
}

fn default_tolerance() -> f64 {
    DEFAULT_TOLERANCE
}
fn default_scale_out_for() -> f64 {
    DEFAULT_SCALE_OUT_FOR
}
fn default_scale_in_for() -> f64 {
    DEFAULT_SCALE_IN_FOR
}
fn default_cooldown_out() -> f64 {
    DEFAULT_COOLDOWN_OUT
}
fn default_cooldown_in() -> f64 {
    DEFAULT_COOLDOWN_IN
}
fn default_min_workers() -> u32 {
    DEFAULT_MIN_WORKERS
}
fn default_max_workers() -> u32 {
    DEFAULT_MAX_WORKERS
}
fn default_step() -> u32 {
    DEFAULT_STEP
}

/// One policy. Durations are in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub metric: Metric,
    #[serde(default)]
    pub aggregate: Aggregate,
    pub kind: PolicyKind,
    /// How long the scale-out condition must hold (threshold policies); for target tracking, the
    /// scale-up stabilization window (the lowest recommendation over it is used; 0 = latest).
    #[serde(default = "default_scale_out_for")]
    pub scale_out_for: f64,
    /// How long the scale-in condition must hold; for target tracking, the stabilization window.
    #[serde(default = "default_scale_in_for")]
    pub scale_in_for: f64,
    /// No scale-out within this long after a scale-out finished.
    #[serde(default = "default_cooldown_out")]
    pub cooldown_out: f64,
    /// No scale-in within this long after any scale operation finished.
    #[serde(default = "default_cooldown_in")]
    pub cooldown_in: f64,
    #[serde(default = "default_min_workers")]
    pub min_workers: u32,
    #[serde(default = "default_max_workers")]
    pub max_workers: u32,
    /// Workers added or removed per operation.
    #[serde(default = "default_step")]
    pub step: u32,
    /// Also scale out when the forecast crosses the scale-out threshold (or the target's band)
    /// within the lead time, and hold a scale-in back when a rise is forecast (see [`predict`]).
    #[serde(default)]
    pub predictive: bool,
}

impl Policy {
    /// A threshold policy with the defaults (avg, 2 min / 15 min, cooldowns 10 min, 2..16, step 1).
    pub fn threshold(
        name: &str,
        metric: Metric,
        scale_out_above: f64,
        scale_in_below: f64,
    ) -> Policy {
        Policy::with_kind(
            name,
            metric,
            PolicyKind::Threshold {
                scale_out_above,
                scale_in_below,
            },
        )
    }

    /// A target-tracking policy with the defaults (tolerance 10%, stabilization 15 min, ...).
    pub fn target(name: &str, metric: Metric, target: f64) -> Policy {
        Policy::with_kind(
            name,
            metric,
            PolicyKind::Target {
                target,
                tolerance: DEFAULT_TOLERANCE,
            },
        )
    }

    fn with_kind(name: &str, metric: Metric, kind: PolicyKind) -> Policy {
        Policy {
            name: name.to_string(),
            metric,
            aggregate: Aggregate::Avg,
            kind,
            scale_out_for: DEFAULT_SCALE_OUT_FOR,
            scale_in_for: DEFAULT_SCALE_IN_FOR,
            cooldown_out: DEFAULT_COOLDOWN_OUT,
            cooldown_in: DEFAULT_COOLDOWN_IN,
            min_workers: DEFAULT_MIN_WORKERS,
            max_workers: DEFAULT_MAX_WORKERS,
            step: DEFAULT_STEP,
            predictive: false,
        }
    }

    /// "> 80 / < 25" or "target 60 ±10%".
    pub fn threshold_or_target(&self) -> String {
        match self.kind {
            PolicyKind::Threshold {
                scale_out_above,
                scale_in_below,
            } => format!("> {} / < {}", num(scale_out_above), num(scale_in_below)),
            PolicyKind::Target { target, tolerance } => {
                format!("target {} ±{}%", num(target), num(tolerance * 100.0))
            }
        }
    }

    /// Checks every argument; the first bad one is returned.
    pub fn validate(&self) -> Result<(), PolicyError> {
        validate_name(&self.name)?;
        match self.kind {
            PolicyKind::Threshold {
                scale_out_above,
                scale_in_below,
            } => {
                finite("scale_out_above", scale_out_above)?;
                finite("scale_in_below", scale_in_below)?;
                if self.metric.is_percent() {
                    percent("scale_out_above", scale_out_above, self.metric)?;
                    percent("scale_in_below", scale_in_below, self.metric)?;
                }
                if scale_in_below >= scale_out_above {
                    return Err(PolicyError::ThresholdOrder {
                        scale_in_below,
                        scale_out_above,
                    });
                }
            }
            PolicyKind::Target { target, tolerance } => {
                finite("target", target)?;
                if target <= 0.0 {
                    return Err(PolicyError::Target(target));
                }
                if self.metric.is_percent() {
                    percent("target", target, self.metric)?;
                }
                finite("tolerance", tolerance)?;
                if !(0.0..=1.0).contains(&tolerance) {
                    return Err(PolicyError::Tolerance(tolerance));
                }
            }
        }
        for (argument, value) in [
            ("scale_out_for", self.scale_out_for),
            ("scale_in_for", self.scale_in_for),
            ("cooldown_out", self.cooldown_out),
            ("cooldown_in", self.cooldown_in),
        ] {
            finite(argument, value)?;
            if value < 0.0 {
                return Err(PolicyError::NegativeDuration { argument, value });
            }
        }
        if !(1..=MAX_WORKERS_LIMIT).contains(&self.max_workers) {
            return Err(PolicyError::MaxWorkers(self.max_workers));
        }
        if self.min_workers > self.max_workers {
            return Err(PolicyError::WorkerBounds {
                min_workers: self.min_workers,
                max_workers: self.max_workers,
            });
        }
        if !(1..=MAX_STEP).contains(&self.step) {
            return Err(PolicyError::Step(self.step));
        }
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<(), PolicyError> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::Name(name.to_string()))
    }
}

fn finite(argument: &'static str, value: f64) -> Result<(), PolicyError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(PolicyError::NotFinite { argument, value })
    }
}

fn percent(argument: &'static str, value: f64, metric: Metric) -> Result<(), PolicyError> {
    if (0.0..=100.0).contains(&value) {
        Ok(())
    } else {
        Err(PolicyError::PercentRange {
            argument,
            value,
            metric: metric.as_str(),
        })
    }
}

/// A bad policy argument. The message names the argument, the bad value and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("name ({0:?}) must be 1 to 63 characters of a-z, 0-9 and _, starting with a letter")]
    Name(String),
    #[error(
        "metric ({0:?}) must be one of cpu, memory, disk, connections, active_connections, \
         commits_per_sec, load1, custom, tps, connection_saturation, replication_lag, \
         mean_statement_ms, cache_miss_ratio"
    )]
    Metric(String),
    #[error("aggregate ({0:?}) must be avg or max")]
    Aggregate(String),
    #[error("{argument} ({value}) must be a finite number")]
    NotFinite { argument: &'static str, value: f64 },
    #[error("{argument} ({value}) must be between 0 and 100 for the percent metric {metric}")]
    PercentRange {
        argument: &'static str,
        value: f64,
        metric: &'static str,
    },
    #[error(
        "scale_in_below ({scale_in_below}) must be less than scale_out_above ({scale_out_above})"
    )]
    ThresholdOrder {
        scale_in_below: f64,
        scale_out_above: f64,
    },
    #[error("target ({0}) must be > 0")]
    Target(f64),
    #[error("tolerance ({0}) must be between 0 and 1")]
    Tolerance(f64),
    #[error("{argument} ({value}) must be >= 0 seconds")]
    NegativeDuration { argument: &'static str, value: f64 },
    #[error("max_workers ({0}) must be between 1 and 1000")]
    MaxWorkers(u32),
    #[error("min_workers ({min_workers}) must not exceed max_workers ({max_workers})")]
    WorkerBounds { min_workers: u32, max_workers: u32 },
    #[error("step ({0}) must be between 1 and 100")]
    Step(u32),
}

impl PolicyError {
    /// The argument that failed, as the SQL API names it.
    pub fn argument(&self) -> &'static str {
        match self {
            PolicyError::Name(_) => "name",
            PolicyError::Metric(_) => "metric",
            PolicyError::Aggregate(_) => "aggregate",
            PolicyError::NotFinite { argument, .. }
            | PolicyError::PercentRange { argument, .. }
            | PolicyError::NegativeDuration { argument, .. } => argument,
            PolicyError::ThresholdOrder { .. } => "scale_in_below",
            PolicyError::Target(_) => "target",
            PolicyError::Tolerance(_) => "tolerance",
            PolicyError::WorkerBounds { .. } => "min_workers",
            PolicyError::MaxWorkers(_) => "max_workers",
            PolicyError::Step(_) => "step",
        }
    }
}

/// One sample of a policy's metric, aggregated across the data nodes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Point {
    /// Epoch seconds.
    pub at: f64,
    /// `None` when missing (custom metric failed, no data).
    pub value: Option<f64>,
    /// Active workers at that sample.
    pub workers: u32,
    /// Unreachable workers at that sample.
    #[serde(default)]
    pub unreachable: u32,
    /// Data nodes whose load the value aggregates (the coordinator counts when it holds shards);
    /// 0 = not known, read as `workers`.
    #[serde(default)]
    pub data_nodes: u32,
}

impl Point {
    /// Data nodes at this sample and how many of them are not workers (the coordinator: 0 or 1).
    /// Unknown (0) reads as the workers alone; a sample without workers has at least the
    /// coordinator.
    pub fn data_nodes_and_coordinator(&self) -> (u32, u32) {
        let dn = if self.data_nodes > 0 {
            self.data_nodes
        } else {
            self.workers.max(1)
        };
        (dn, dn.saturating_sub(self.workers))
    }
}

/// Free disk above the bytes to move that a scale-in to a single node requires: the coordinator
/// must have room for the workers' shards and this much more (a shard move writes the copy before
/// the old one is dropped, and WAL on top).
pub const SINGLE_NODE_DISK_HEADROOM: f64 = 1.2;

/// What a scale-in to zero workers (the coordinator alone, a single node) depends on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct SingleNode {
    /// The coordinator is in the Citus metadata with `shouldhaveshards = true`, or autoscale sets
    /// it first (`autoscale.coordinator_shards = 'shed'`).
    #[serde(default)]
    pub coordinator_takes_shards: bool,
    /// The coordinator shed its shards (`shouldhaveshards = false`) by hand: a scale-in to it is
    /// refused until someone sets it back.
    #[serde(default)]
    pub shed_by_hand: bool,
    /// Free bytes of the coordinator's data directory at the latest sample.
    #[serde(default)]
    pub coordinator_free_bytes: Option<f64>,
    /// Bytes of the distributed shards on the workers: what a scale-in to zero moves.
    #[serde(default)]
    pub worker_shard_bytes: Option<f64>,
}

/// Whether the workers' shards may drain back onto the coordinator alone; `Err` says why not.
/// Never below the coordinator: a scale-in to zero workers keeps it, and it must be able to hold
/// the data.
pub fn single_node_room(s: &SingleNode) -> Result<(), String> {
    if !s.coordinator_takes_shards {
        return Err(if s.shed_by_hand {
            concat!(
                "the coordinator's shouldhaveshards is false; a single node holds every shard, so set it ",
                "first with citus_set_node_property(<coordinator host>, <port>, 'shouldhaveshards', true), ",
                "or let autoscale do it with autoscale.coordinator_shards = 'shed'"
            )
            .to_string()
        } else {
            concat!(
                "the coordinator is not in the Citus metadata (citus_set_coordinator_host) with ",
                "shouldhaveshards = true, so no node would be left to hold the shards"
            )
            .to_string()
        });
    }
    let (Some(free), Some(bytes)) = (s.coordinator_free_bytes, s.worker_shard_bytes) else {
        return Err(
            "the coordinator's free disk or the workers' shard bytes are not known yet".to_string(),
        );
    };
    let need = bytes * SINGLE_NODE_DISK_HEADROOM;
    if free < need {
        return Err(format!(
            "the coordinator has {} free, but the workers' shards take {} ({} with {}% headroom)",
            format_bytes(free),
            format_bytes(bytes),
            format_bytes(need),
            num((SINGLE_NODE_DISK_HEADROOM - 1.0) * 100.0)
        ));
    }
    Ok(())
}

/// Bytes for people: `512 B`, `3.4 MB`, `1.2 GB` (powers of 1024, as pg_size_pretty).
pub fn format_bytes(b: f64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = b;
    let mut u = 0;
    while v.abs() >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A policy and its recent history, ordered by time ascending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySeries {
    pub policy: Policy,
    pub points: Vec<Point>,
}

/// Everything the engine looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalInput {
    /// Epoch seconds.
    pub now: f64,
    /// Seconds between samples.
    pub sample_interval: f64,
    /// Active workers now.
    pub workers: u32,
    pub operation_running: bool,
    pub last_scale_out_finished: Option<f64>,
    pub last_scale_in_finished: Option<f64>,
    pub paused_until: Option<f64>,
    pub series: Vec<PolicySeries>,
    /// What a scale-in to zero workers depends on (the default refuses it).
    #[serde(default)]
    pub single_node: SingleNode,
}

/// Which way to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Out,
    In,
    Hold,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
            Direction::Hold => "hold",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one policy says, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyEval {
    pub name: String,
    pub metric: Metric,
    pub aggregate: Aggregate,
    /// The latest value, if any.
    pub current: Option<f64>,
    /// "> 80 / < 25" or "target 60 ±10%".
    pub threshold_or_target: String,
    /// How long the current condition (above the out threshold or below the in threshold) has
    /// held continuously, seconds; 0 when neither.
    pub held_for: f64,
    /// Cooldown left for the direction the metric points to (max of both when it points nowhere).
    pub cooldown_left: f64,
    pub desired_workers: u32,
    pub direction: Direction,
    pub reasons: Vec<String>,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub direction: Direction,
    pub desired_workers: u32,
    pub from_workers: u32,
    /// Workers to add or remove: |desired_workers - from_workers|.
    pub step: u32,
    pub reasons: Vec<String>,
    pub policies: Vec<PolicyEval>,
}

pub use crate::duration::format_secs as format_duration;

/// A threshold-like number: integers without decimals, otherwise up to 2 decimals.
pub(crate) fn num(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.is_finite() {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x}")
    }
}

/// Epoch seconds as "2024-05-01 12:00:00 UTC".
pub(crate) fn format_epoch(secs: f64) -> String {
    if !secs.is_finite() {
        return format!("{secs}");
    }
    let t = secs.floor() as i64;
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}
