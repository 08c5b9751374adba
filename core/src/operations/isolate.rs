//! isolate_tenant: a hot tenant is given a shard of its own (Citus's
//! `isolate_tenant_to_new_shard(table, tenant, 'CASCADE')`, its colocated shards with it) and that
//! shard group is moved to the least-loaded worker (`citus_move_shard_placement`).
//!
//! Two parts, both pure:
//! - [`choose`]: which tenant, from where to where. Only a tenant that carries at least
//!   `autoscale.hot_tenant_share` of the busiest worker's load, while that worker has been above
//!   `autoscale.load_skew_ratio` x the mean for `autoscale.load_skew_for` (the load-skew trigger's
//!   own window), that does not have a shard of its own yet, and whose move lowers the busiest
//!   worker's load by at least [`MIN_IMPROVEMENT`].
//! - The kind's steps: `isolate` -> `move_tenant` -> `verify_tenant`, declared in `table.rs`
//!   (`ISOLATE_TENANT`, with their actions and how their outcome is read); here what it records and what
//!   the notes say. Each step's action asks the executor for the tenant's shard afterwards
//!   ([`Outcome::Tenant`]); the executor first looks at where the tenant is, so a step resumed
//!   after a crash does nothing twice (a tenant already on its own shard is not split again, a
//!   shard already on the target is not moved again).

use serde::{Deserialize, Serialize};

use crate::load::{sustained_skew, LoadPoint, MIN_IMPROVEMENT};

use super::table::On;
use super::{NodeAddr, Operation, Outcome, Step};

/// The tenant an isolate_tenant operation works on (`Operation::tenant`); its target worker is
/// the operation's `node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRef {
    /// A distributed table of the tenant's colocation group, as `regclass` prints it.
    pub table: String,
    /// The tenant's value of the distribution column, as text.
    pub value: String,
    /// The tenant's own shard, once isolated (its colocated shards share its range).
    #[serde(default)]
    pub shard: Option<i64>,
    /// The worker the tenant's shard was on when it was isolated.
    #[serde(default)]
    pub from: Option<NodeAddr>,
}

impl std::fmt::Display for TenantRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tenant {} of {}", self.value, self.table)
    }
}

/// One tracked tenant's load on a node (`autoscale.tenant_load`, from `citus_stat_tenants`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantLoad {
    pub colocationid: i32,
    pub tenant: String,
    pub node: NodeAddr,
    /// Queries/s over Citus's last complete period.
    pub load: f64,
    /// Whether the tenant already has a shard of its own (min value = max value).
    pub isolated: bool,
}

/// A hot tenant worth isolating, and where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotTenant {
    pub colocationid: i32,
    pub tenant: String,
    /// The busiest worker, where the tenant is.
    pub from: NodeAddr,
    /// The least-loaded other worker.
    pub to: NodeAddr,
    /// The tenant's share of its node's tracked tenant load (0..1).
    pub share: f64,
    /// The busiest worker's load over the mean now.
    pub ratio: f64,
    /// The busiest worker's load over the mean once the tenant is moved (its share of the node's
    /// measured load goes with it).
    pub predicted_ratio: f64,
}

impl HotTenant {
    /// "hot tenant: tenant 5 (colocation 3) carries 48% of 127.0.0.1:7301's load (1.8x the mean);
    /// isolating it and moving it to 127.0.0.1:7302 predicts max/mean 1.1".
    pub fn reason(&self) -> String {
        format!(
            "hot tenant: tenant {} (colocation {}) carries {:.0}% of {}'s load ({:.1}x the mean); \
             isolating it and moving it to {} predicts max/mean {:.1}",
            self.tenant,
            self.colocationid,
            self.share * 100.0,
            self.from,
            self.ratio,
            self.to,
            self.predicted_ratio
        )
    }
}

/// The least-loaded node of `loads` other than `except` (ties: the lowest address).
pub fn least_loaded(loads: &[(NodeAddr, f64)], except: Option<&NodeAddr>) -> Option<NodeAddr> {
    loads
        .iter()
        .filter(|(n, _)| Some(n) != except)
        .min_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
        .map(|(n, _)| n.clone())
}

/// The hot tenant to isolate now, or why there is none (for status and explain()).
///
/// `series`: the data workers' measured loads over the last `for_secs` (as the load-skew trigger
/// reads them); `tenants`: the tracked tenants of every node; `min_share`: the least share of
/// the busiest node's tracked tenant load a tenant must carry (`autoscale.hot_tenant_share`).
pub fn choose(
    series: &[LoadPoint],
    now: f64,
    ratio: f64,
    for_secs: f64,
    tenants: &[TenantLoad],
    min_share: f64,
) -> Result<HotTenant, String> {
    if !(min_share > 0.0 && min_share <= 1.0) {
        return Err(format!(
            "autoscale.hot_tenant_share ({min_share}) must be above 0 and at most 1"
        ));
    }
    let busy = sustained_skew(series, now, ratio, for_secs)
        .map_err(|why| format!("no hot tenant to isolate: {why}"))?;
    let on_node: Vec<&TenantLoad> = tenants.iter().filter(|t| t.node == busy.node).collect();
    let total: f64 = on_node.iter().map(|t| t.load.max(0.0)).sum();
    if total <= 0.0 {
        return Err(format!(
            "no hot tenant to isolate: no tracked tenant load on {} (citus.stat_tenants_track = 'all' \
             on the workers is needed)",
            busy.node
        ));
    }
    let mut ranked: Vec<(&TenantLoad, f64)> = on_node
        .iter()
        .map(|t| (*t, t.load.max(0.0) / total))
        .collect();
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| a.0.colocationid.cmp(&b.0.colocationid))
            .then_with(|| a.0.tenant.cmp(&b.0.tenant))
    });
    let (top, top_share) = ranked[0];
    let hot: Vec<&(&TenantLoad, f64)> = ranked.iter().filter(|(_, s)| *s >= min_share).collect();
    if hot.is_empty() {
        return Err(format!(
            "no hot tenant to isolate: the busiest tenant of {}, {}, carries {:.0}% of its load \
             (autoscale.hot_tenant_share {:.0}%)",
            busy.node,
            top.tenant,
            top_share * 100.0,
            min_share * 100.0
        ));
    }
    let Some(&&(tenant, share)) = hot.iter().find(|(t, _)| !t.isolated) else {
        return Err(format!(
            "no hot tenant to isolate: tenant {} on {} already has a shard of its own; moving it is \
             the load-skew rebalance's",
            top.tenant, busy.node
        ));
    };
    let latest = series
        .iter()
        .max_by(|a, b| a.at.total_cmp(&b.at))
        .expect("sustained_skew found a latest sample");
    let Some(to) = least_loaded(&latest.loads, Some(&busy.node)) else {
        return Err("no hot tenant to isolate: no other worker to move it to".into());
    };
    // the tenant's part of its node's measured load moves with it
    let moved = share * busy.max;
    let after: Vec<f64> = latest
        .loads
        .iter()
        .map(|(n, l)| {
            if *n == busy.node {
                l - moved
            } else if *n == to {
                l + moved
            } else {
                *l
            }
        })
        .collect();
    let predicted_max = after.iter().copied().fold(0.0, f64::max);
    let mean = after.iter().sum::<f64>() / after.len().max(1) as f64;
    let hot = HotTenant {
        colocationid: tenant.colocationid,
        tenant: tenant.tenant.clone(),
        from: busy.node.clone(),
        to,
        share,
        ratio: busy.ratio,
        predicted_ratio: if mean > 0.0 {
            predicted_max / mean
        } else {
            1.0
        },
    };
    if predicted_max > busy.max * (1.0 - MIN_IMPROVEMENT) {
        return Err(format!(
            "no hot tenant to isolate: tenant {} carries {:.0}% of {}'s load, but moving it to {} \
             predicts max/mean {:.1}: it would only move the hot spot",
            hot.tenant,
            share * 100.0,
            hot.from,
            hot.to,
            hot.predicted_ratio
        ));
    }
    Ok(hot)
}

/// Records the tenant's own shard (and, once isolated, the worker it was on) in the row.
pub(super) fn record(op: &mut Operation, on: On, outcome: &Outcome) {
    let (Some(t), Outcome::Tenant { shard, node, .. }) = (op.tenant.as_mut(), outcome) else {
        return;
    };
    match on {
        On::Isolated => {
            t.shard = Some(*shard);
            t.from = Some(node.clone());
        }
        On::OwnShardOnTarget => t.shard = Some(*shard),
        _ => {}
    }
}

/// What the step's outcome `on` says, as the step note or the failure.
pub(super) fn detail(op: &Operation, on: On, outcome: &Outcome) -> String {
    let Outcome::Tenant {
        shard,
        node,
        changed,
        ..
    } = outcome
    else {
        return String::new();
    };
    let who = op
        .tenant
        .as_ref()
        .map_or_else(|| "the tenant".to_string(), |t| t.to_string());
    let target = op
        .node
        .as_ref()
        .map_or_else(|| "the target".to_string(), |n| n.to_string());
    match on {
        On::Isolated if *changed => format!(
            "{who} isolated to shard {shard} on {node} (isolate_tenant_to_new_shard, CASCADE)"
        ),
        On::Isolated => {
            format!("{who} already has a shard of its own ({shard} on {node}); not split again")
        }
        On::StillShared if op.step == Step::Isolate => format!(
            "{who} still shares shard {shard} with other tenants after isolate_tenant_to_new_shard"
        ),
        On::OnTarget if *changed => {
            let from = op
                .tenant
                .as_ref()
                .and_then(|t| t.from.as_ref())
                .map_or_else(String::new, |f| format!(" from {f}"));
            format!("shard {shard} of {who} moved{from} to {target}")
        }
        On::OnTarget => format!("shard {shard} of {who} is already on {target}; not moved again"),
        On::Elsewhere if op.step == Step::MoveTenant => {
            format!("shard {shard} of {who} is on {node}, not on {target}, after the move")
        }
        On::OwnShardOnTarget => format!("{who} has shard {shard} of its own on {target}"),
        On::StillShared => format!(
            "{who} is in shard {shard} on {node}, shared with other tenants; expected a shard of \
             its own on {target}"
        ),
        _ => {
            format!("{who} is in shard {shard} on {node}; expected a shard of its own on {target}")
        }
    }
}

/// `isolate_tenant tenant 5 of t to 127.0.0.1:7302`.
pub(super) fn header(op: &Operation) -> String {
    let what = op
        .tenant
        .as_ref()
        .map_or_else(|| "a tenant".to_string(), |t| t.to_string());
    match &op.node {
        Some(n) => format!("{} {what} to {n}", op.kind),
        None => format!("{} {what}", op.kind),
    }
}
