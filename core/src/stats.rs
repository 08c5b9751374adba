//! The raw reading of one node, as `autoscale.node_stats()` returns it (one json value).
//! The node fills it in; the coordinator parses it back from `run_command_on_workers`' text result.
//! Counters are cumulative; rates are computed on the coordinator (see [`crate::rates`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    /// citus_autoscale version on the node.
    pub version: String,
    /// The node's wall clock when it read the counters, seconds since the epoch.
    pub at: f64,
    pub cpu: CpuReading,
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
    pub memory: Memory,
    pub disk: Disk,
    pub connections: Connections,
    pub xact: Xact,
    /// pg_database_size() of the database the function ran in.
    pub database_size: i64,
    /// Total size of the shard placements stored on this node (bytes); `None` without Citus metadata.
    pub shard_bytes: Option<i64>,
    pub is_coordinator: bool,
    /// Shared-buffer hits and reads summed over all databases (cumulative); absent from nodes
    /// running an older version.
    #[serde(default)]
    pub blocks: Option<Blocks>,
    /// The node's max_connections.
    #[serde(default)]
    pub max_connections: Option<i64>,
    /// Bytes the furthest-behind streaming standby has yet to replay (flushed, else written, when it does not
    /// replay, as pg_receivewal); `None` when the node has no streaming standby.
    #[serde(default)]
    pub replication_lag_bytes: Option<i64>,
    /// pg_stat_statements totals; `None` when it is not installed or not loaded.
    #[serde(default)]
    pub statements: Option<Statements>,
    /// Cumulative counters of the shard groups placed on this node (colocated shards summed);
    /// absent without Citus metadata and from nodes older than 0.2.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_groups: Option<Vec<crate::load::GroupReading>>,
    /// How old `database_size` and `shard_bytes` are, in seconds: a session that answers every
    /// sample measures them again only every `autoscale.size_refresh_interval`. Absent from nodes
    /// older than 0.3.0 (their sizes are measured at every call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes_age_secs: Option<f64>,
    /// The tenants Citus tracks here, when `citus.stat_tenants_track = 'all'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<crate::load::TenantStats>,
}

/// Cumulative shared-buffer counters (pg_stat_database blks_hit, blks_read).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blocks {
    pub hit: i64,
    pub read: i64,
}

/// Cumulative statement counters of pg_stat_statements (all its entries).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Statements {
    pub calls: i64,
    pub total_exec_ms: f64,
}

/// Cumulative CPU counters. `busy_seconds / capacity_seconds` over an interval is the busy fraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuReading {
    /// `proc_stat` (whole machine) or `cgroup` (the server's cgroup v2 with a CPU limit).
    pub source: String,
    /// CPU seconds spent busy, summed over all CPUs.
    pub busy_seconds: f64,
    /// CPU seconds available: busy + idle for `proc_stat`, wall time x limit for `cgroup`.
    pub capacity_seconds: f64,
    /// CPUs (or the cgroup limit in cores).
    pub cores: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    /// The data directory that statvfs() was asked about.
    pub path: String,
    pub total_bytes: u64,
    pub free_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connections {
    /// Client backends.
    pub total: i64,
    /// Client backends in state `active`.
    pub active: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Xact {
    /// Sum of pg_stat_database.xact_commit over all databases.
    pub commit: i64,
    /// Sum of pg_stat_database.xact_rollback over all databases.
    pub rollback: i64,
}

impl NodeStats {
    pub fn parse(text: &str) -> Result<NodeStats, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Used fraction of memory in percent.
    pub fn memory_used_pct(&self) -> Option<f64> {
        used_pct(self.memory.total_bytes, self.memory.available_bytes)
    }

    /// Used fraction of the data directory's file system in percent.
    pub fn disk_used_pct(&self) -> Option<f64> {
        used_pct(self.disk.total_bytes, self.disk.free_bytes)
    }

    /// Client connections over max_connections, in percent.
    pub fn connection_saturation(&self) -> Option<f64> {
        self.max_connections
            .filter(|m| *m > 0)
            .map(|m| 100.0 * self.connections.total as f64 / m as f64)
    }
}

fn used_pct(total: u64, free: u64) -> Option<f64> {
    (total > 0).then(|| 100.0 * (total.saturating_sub(free)) as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> NodeStats {
        NodeStats {
            version: "0.1.0".into(),
            at: 1_700_000_000.5,
            cpu: CpuReading {
                source: "proc_stat".into(),
                busy_seconds: 100.0,
                capacity_seconds: 400.0,
                cores: 4.0,
            },
            load: [0.5, 0.4, 0.3],
            memory: Memory {
                total_bytes: 1000,
                available_bytes: 250,
            },
            disk: Disk {
                path: "/var/lib/postgresql/15/main".into(),
                total_bytes: 200,
                free_bytes: 50,
            },
            connections: Connections {
                total: 7,
                active: 2,
            },
            xact: Xact {
                commit: 1234,
                rollback: 5,
            },
            database_size: 8_000_000,
            shard_bytes: Some(4096),
            is_coordinator: false,
            blocks: Some(Blocks { hit: 990, read: 10 }),
            max_connections: Some(100),
            replication_lag_bytes: None,
            statements: None,
            shard_groups: Some(vec![crate::load::GroupReading {
                key: crate::load::GroupKey::new(3, "-2147483648"),
                counters: Default::default(),
            }]),
            sizes_age_secs: Some(12.5),
            tenants: None,
        }
    }

    #[test]
    fn roundtrip_and_fractions() {
        let s = sample();
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(NodeStats::parse(&text).unwrap(), s);
        assert_eq!(s.memory_used_pct(), Some(75.0));
        assert_eq!(s.disk_used_pct(), Some(75.0));
        let mut z = s.clone();
        z.memory.total_bytes = 0;
        assert_eq!(z.memory_used_pct(), None);
        assert_eq!(s.connection_saturation(), Some(7.0));
        z.max_connections = None;
        assert_eq!(z.connection_saturation(), None);
    }

    #[test]
    fn readings_of_older_nodes_lack_the_new_fields() {
        let mut v = serde_json::to_value(sample()).unwrap();
        for k in [
            "blocks",
            "max_connections",
            "replication_lag_bytes",
            "statements",
            "sizes_age_secs",
        ] {
            v.as_object_mut().unwrap().remove(k);
        }
        let s = NodeStats::parse(&v.to_string()).unwrap();
        assert_eq!(
            (s.blocks, s.max_connections, s.statements),
            (None, None, None)
        );
        assert_eq!(s.replication_lag_bytes, None);
        // a 0.2.0 node measures its sizes at every call and does not say how old they are
        assert_eq!(s.sizes_age_secs, None);
    }

    #[test]
    fn reads_a_node_without_shard_groups() {
        // a 0.1.0 node's answer has no shard_groups
        let mut s = sample();
        s.shard_groups = None;
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("shard_groups"));
        assert_eq!(NodeStats::parse(&text).unwrap(), s);
    }

    #[test]
    fn rejects_garbage() {
        assert!(
            NodeStats::parse("ERROR:  function autoscale.node_stats() does not exist").is_err()
        );
        assert!(NodeStats::parse("{\"version\":\"0.1.0\"}").is_err());
    }
}
