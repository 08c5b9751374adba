//! `autoscale.dead_nodes`: the workers declared dead (services/dead.rs decides), each with what it
//! holds, whether it can be replaced, and the replace_dead operation in charge of it.

use autoscale_core::operations::NodeAddr;
use pgrx::prelude::*;

use crate::infra::errors::Result;
use crate::infra::spi::{node_at, select_rows};

/// One row of autoscale.dead_nodes.
#[derive(Debug, Clone)]
pub struct DeadNode {
    pub node: NodeAddr,
    pub replaceable: bool,
    pub operation_id: Option<i64>,
}

/// Every row, oldest declaration first.
pub fn rows() -> Result<Vec<DeadNode>> {
    Ok(select_rows(
        "SELECT nodename, nodeport, replaceable, operation_id FROM autoscale.dead_nodes
              ORDER BY declared_at, nodename, nodeport",
        &[],
        |r| {
            Ok(DeadNode {
                node: node_at(r, 1)?,
                replaceable: r.get::<bool>(3)?.unwrap_or(false),
                operation_id: r.get::<i64>(4)?,
            })
        },
    )?)
}

/// Declares `node` dead (nothing when it already is).
pub fn insert(
    node: &NodeAddr,
    unreachable_since: f64,
    replaceable: bool,
    sole_copies: i32,
    message: &str,
) -> Result<()> {
    Ok(Spi::run_with_args(
        "INSERT INTO autoscale.dead_nodes (nodename, nodeport, unreachable_since, replaceable, sole_copies, message)
         VALUES ($1, $2, pg_catalog.to_timestamp($3), $4, $5, $6)
         ON CONFLICT (nodename, nodeport) DO NOTHING",
        &[
            node.host.clone().into(),
            node.port.into(),
            unreachable_since.into(),
            replaceable.into(),
            sole_copies.into(),
            message.into(),
        ],
    )?)
}

/// A new verdict for `node`.
pub fn update_verdict(
    node: &NodeAddr,
    replaceable: bool,
    sole_copies: i32,
    message: &str,
) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.dead_nodes SET replaceable = $3, sole_copies = $4, message = $5
          WHERE nodename = $1 AND nodeport = $2",
        &[
            node.host.clone().into(),
            node.port.into(),
            replaceable.into(),
            sole_copies.into(),
            message.into(),
        ],
    )?)
}

/// The replace_dead operation `id` took charge of `node` (None: none has).
pub fn set_operation(node: &NodeAddr, id: Option<i64>) -> Result<()> {
    Ok(Spi::run_with_args(
        "UPDATE autoscale.dead_nodes SET operation_id = $3 WHERE nodename = $1 AND nodeport = $2",
        &[node.host.clone().into(), node.port.into(), id.into()],
    )?)
}

/// Whether operation `id` is still running.
pub fn operation_running(id: i64) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE id = $1 AND status = 'running')",
        &[id.into()],
    )?
    .unwrap_or(false))
}

/// `node` is no longer dead (removed, or answers again).
pub fn forget(node: &NodeAddr) -> Result<()> {
    Ok(Spi::run_with_args(
        "DELETE FROM autoscale.dead_nodes WHERE nodename = $1 AND nodeport = $2",
        &[node.host.clone().into(), node.port.into()],
    )?)
}

/// `host:port: message` of every dead worker, for explain().
pub fn summaries() -> Result<Vec<String>> {
    Ok(select_rows(
        "SELECT nodename || ':' || nodeport || ': ' || message
                    || CASE WHEN operation_id IS NOT NULL THEN ' (replace_dead operation ' || operation_id || ')' ELSE '' END
               FROM autoscale.dead_nodes ORDER BY declared_at",
&[],
|r| Ok(r.get::<String>(1)?.unwrap_or_default()),
)?)
}
