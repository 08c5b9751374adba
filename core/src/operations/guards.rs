//! Guards checked before any action (automatic or manual), in a fixed order: the first that
//! blocks gives the reason (docs/architecture.md, "Where each decision is made").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{MaintenanceWindow, OpError};
use crate::duration::format_secs;

/// `autoscale.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The worker idles.
    Off,
    /// Sample, record, decide, but only record what would be done.
    Observe,
    /// Act.
    Act,
}

impl Mode {
    /// Parses `off`, `observe` or `act` (ASCII case-insensitive, surrounding blanks ignored).
    pub fn parse(s: &str) -> Result<Mode, OpError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Mode::Off),
            "observe" => Ok(Mode::Observe),
            "act" => Ok(Mode::Act),
            _ => Err(OpError::Mode(s.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Observe => "observe",
            Mode::Act => "act",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = OpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::parse(s)
    }
}

/// What the guards look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardInput {
    /// `autoscale.mode`: off, observe or act (anything else blocks).
    pub mode: String,
    /// This node is the Citus coordinator.
    pub is_coordinator: bool,
    /// This server is in recovery (a hot standby).
    pub in_recovery: bool,
    /// citus is installed in this database.
    pub citus_installed: bool,
    /// `citus_cluster_changes_block_status()` says changes are blocked.
    pub cluster_changes_blocked: bool,
    /// A Citus rebalance job not started by autoscale.
    pub human_job_running: Option<i64>,
    /// The maintenance window, if one is set.
    pub window: Option<MaintenanceWindow>,
    /// Epoch seconds.
    pub now_utc: f64,
    /// Operations started in the last hour.
    pub ops_last_hour: u32,
    /// At most this many operations per hour; 0 = no limit.
    pub max_ops_per_hour: u32,
}

/// The guards' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum GuardVerdict {
    /// Go ahead.
    Act,
    /// Everything allows acting but the mode is observe: record what would be done (the text
    /// says so; the caller adds the action).
    Observe(String),
    /// Do not act, for this reason.
    Blocked(String),
}

impl GuardVerdict {
    pub fn is_act(&self) -> bool {
        matches!(self, GuardVerdict::Act)
    }

    /// The reason of `observe` or `blocked`; None for `act`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            GuardVerdict::Act => None,
            GuardVerdict::Observe(r) | GuardVerdict::Blocked(r) => Some(r),
        }
    }
}

/// Checks, in order: citus installed, coordinator, not in recovery; mode not off; no rebalance
/// job of someone else; cluster changes not blocked; inside the maintenance window; rate limit;
/// then observe mode; else act.
pub fn check(g: &GuardInput) -> GuardVerdict {
    use GuardVerdict::Blocked;
    if !g.citus_installed {
        return Blocked("citus is not installed in this database".to_string());
    }
    if !g.is_coordinator {
        return Blocked("this node is not the Citus coordinator".to_string());
    }
    if g.in_recovery {
        return Blocked("this server is in recovery (a hot standby)".to_string());
    }
    let mode = match Mode::parse(&g.mode) {
        Ok(m) => m,
        Err(e) => return Blocked(format!("autoscale.{e}")),
    };
    if mode == Mode::Off {
        return Blocked("autoscale.mode is off".to_string());
    }
    if let Some(job) = g.human_job_running {
        return Blocked(format!(
            "Citus rebalance job {job}, not started by autoscale, is running; waiting for it \
             to end"
        ));
    }
    if g.cluster_changes_blocked {
        return Blocked(
            "cluster changes are blocked (citus_cluster_changes_block_status())".to_string(),
        );
    }
    if let Some(w) = &g.window {
        if !w.contains(g.now_utc) {
            let opens = match w.opens_in(g.now_utc) {
                Some(secs) => format!(" (opens in {})", format_secs(secs)),
                None => String::new(),
            };
            return Blocked(format!("outside the maintenance window {w}{opens}"));
        }
    }
    if g.max_ops_per_hour > 0 && g.ops_last_hour >= g.max_ops_per_hour {
        return Blocked(format!(
            "rate limit: {} operation{} in the last hour, at most {} allowed",
            g.ops_last_hour,
            if g.ops_last_hour == 1 { "" } else { "s" },
            g.max_ops_per_hour
        ));
    }
    if mode == Mode::Observe {
        return GuardVerdict::Observe(
            "autoscale.mode is observe: recorded what would be done, not done".to_string(),
        );
    }
    GuardVerdict::Act
}
