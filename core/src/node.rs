//! A node's address: the one type every part of core names nodes with (the load model, the
//! operations, the clones), in a module of its own so that none of them imports another for it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A node's address, as pg_dist_node names it. Displays as `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeAddr {
    pub host: String,
    pub port: i32,
}

/// A text that is not `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node ({0:?}) must be host:port with a port between 1 and 65535")]
pub struct NodeAddrError(pub String);

impl NodeAddr {
    pub fn new(host: impl Into<String>, port: i32) -> NodeAddr {
        NodeAddr {
            host: host.into(),
            port,
        }
    }

    /// Parses `host:port` (the last colon splits, so `::1:5432` works).
    pub fn parse(s: &str) -> Result<NodeAddr, NodeAddrError> {
        let bad = || NodeAddrError(s.to_string());
        let (host, port) = s.trim().rsplit_once(':').ok_or_else(bad)?;
        let port: i32 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || !(1..=65_535).contains(&port) {
            return Err(bad());
        }
        Ok(NodeAddr::new(host, port))
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for NodeAddr {
    type Err = NodeAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeAddr::parse(s)
    }
}
