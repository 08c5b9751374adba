//! Warm clones in the pool: checking them against their primaries (one parallel round trip) and
//! recording the result; the judgement is core's (autoscale_core::clones).

use autoscale_core::clones::{self, Check};
use autoscale_core::operations::NodeAddr;

use crate::infra::citus;
use crate::infra::errors::Result;
use crate::store::pool::{self, clones as pool_clones, record_check};
use crate::store::provision;

/// Puts the warm clone `clone` of `primary`, checked (`check`), in the pool. It is the
/// provisioner's answer to the pending provision_clone requests for that primary: they are
/// fulfilled.
pub fn add_to_pool(clone: &NodeAddr, primary: &NodeAddr, check: &Check) -> Result<()> {
    pool::add_clone(clone, primary, check)?;
    provision::fulfil_clone_requests(primary)
}

/// Checks `pairs` of (clone, primary) in one parallel round trip (each primary's
/// pg_stat_replication and WAL position, each clone's WAL receiver and replay position).
pub fn check_clones(pairs: &[(NodeAddr, NodeAddr)], timeout_ms: u64) -> Result<Vec<Check>> {
    let mut calls: Vec<(NodeAddr, &str)> = Vec::new();
    for (clone, primary) in pairs {
        calls.push((primary.clone(), citus::CLONE_PRIMARY_COMMAND));
        calls.push((clone.clone(), citus::CLONE_SELF_COMMAND));
    }
    let answers = citus::run_on_nodes(&calls, timeout_ms)?;
    Ok(pairs
        .iter()
        .enumerate()
        .map(|(i, (clone, primary))| {
            let at = |k: usize| match answers.get(k) {
                Some(Ok(s)) => Ok(s.as_str()),
                Some(Err(e)) => Err(e.as_str()),
                None => Err("no answer"),
            };
            clones::assess(clone, primary, at(2 * i), at(2 * i + 1))
        })
        .collect())
}

/// Checks every available or joining clone of the pool and records the result (each sample).
pub fn sample_clones(timeout_ms: u64) -> Result<usize> {
    let pairs: Vec<(NodeAddr, NodeAddr)> = pool_clones()?
        .into_iter()
        .filter(|c| matches!(c.state.as_str(), "available" | "joining"))
        .map(|c| (c.node, c.primary))
        .collect();
    let checks = check_clones(&pairs, timeout_ms)?;
    for ((clone, _), check) in pairs.iter().zip(&checks) {
        record_check(clone, check)?;
    }
    Ok(pairs.len())
}
