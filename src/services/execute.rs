//! Executing operations: the thin executor that performs each step of the pure state machine
//! (autoscale_core::operations) against Citus and the stores.
//! One step per call; the step's Citus call and the new state commit together, so a crash at any
//! point resumes at the recorded step. Failures of a Citus call are caught in a subtransaction
//! and handed to the state machine as an outcome.

use autoscale_core::operations::{
    self as machine, guards, names, Action, GuardInput, GuardVerdict, JobState, Kind, Limits,
    MaintenanceWindow, NodeAddr, Operation, Outcome, Status,
};
use pgrx::prelude::*;

use autoscale_core::policy;

use crate::infra::errors::{AutoscaleError, Result};
use crate::infra::{activity, citus, clock, settings, subxact};
use crate::services::{dead, decide, provision};
use crate::store::operations::{self as store, running};
use crate::store::{events, pool, provision as outbox, samples};

fn limits() -> Limits {
    Limits {
        provision_timeout: settings::provision_timeout(),
        job_timeout: settings::job_timeout(),
        max_attempts: 3,
    }
}

/// The guards' view of this node and cluster now.
pub fn guard_input() -> Result<GuardInput> {
    let role = citus::role();
    let citus_installed = role != citus::Role::NoCitus;
    let (blocked, human) = if role == citus::Role::Coordinator {
        let ours = store::job_ids()?;
        let human = citus::unfinished_jobs()?
            .into_iter()
            .find(|j| !ours.contains(j));
        (citus::cluster_changes_blocked()?, human)
    } else {
        (false, None)
    };
    Ok(GuardInput {
        mode: settings::mode().as_str().to_string(),
        is_coordinator: role == citus::Role::Coordinator,
        in_recovery: unsafe { pg_sys::RecoveryInProgress() },
        citus_installed,
        cluster_changes_blocked: blocked,
        human_job_running: human,
        window: None,
        now_utc: clock::now()?,
        ops_last_hour: store::history()?.started_last_hour,
        max_ops_per_hour: settings::max_operations_per_hour(),
    })
}

/// Runs the guards. An invalid maintenance window blocks (the safe reading of a typo).
pub fn check_guards(starting: bool) -> Result<GuardVerdict> {
    let mut g = guard_input()?;
    if g.citus_installed {
        // a PostgreSQL / Citus pair this release does not support: sample and decide, never act
        let pair = crate::infra::versions::current().assess();
        if !pair.may_act() {
            return Ok(GuardVerdict::Blocked(pair.note));
        }
    }
    if let Some(w) = settings::maintenance_window() {
        match MaintenanceWindow::parse(&w) {
            Ok(w) => g.window = Some(w),
            Err(e) => {
                return Ok(GuardVerdict::Blocked(format!(
                    "autoscale.maintenance_window is invalid: {e}"
                )))
            }
        }
    }
    if !starting {
        // the rate limit is about starting operations, not finishing them
        g.max_ops_per_hour = 0;
    }
    Ok(guards::check(&g))
}

/// A caught Citus call's result as an outcome: its value through `f`, or its error.
fn to_outcome<T, E: std::fmt::Display>(
    r: std::result::Result<std::result::Result<T, E>, String>,
    f: impl FnOnce(T) -> Outcome,
) -> Outcome {
    match r {
        Ok(Ok(v)) => f(v),
        Ok(Err(e)) => Outcome::Error(e.to_string()),
        Err(e) => Outcome::Error(e),
    }
}

/// Performs one action against Citus and the extension's tables. Errors become outcomes.
fn perform(op: &Operation, action: &Action) -> Outcome {
    match action.clone() {
        Action::StartRebalance { drain_only } => {
            // autoscale.rebalance_strategy, else autoscale_by_load (registered at first use)
            let strategy = settings::effective_rebalance_strategy();
            let mode = settings::shard_transfer_mode().as_str();
            let parallel = settings::parallel_transfer();
            to_outcome(
                subxact::catch(|| {
                    if strategy == citus::LOAD_STRATEGY {
                        citus::ensure_load_strategy()?;
                    }
                    citus::rebalance_start(Some(&strategy), drain_only, mode, parallel)
                }),
                Outcome::JobStarted,
            )
        }
        Action::PollJob { job_id } => {
            to_outcome(subxact::catch(|| citus::job_status(job_id)), |s| match s {
                None => Outcome::Error(format!("Citus job {job_id} not found")),
                Some((state, done, total)) => match JobState::parse(&state) {
                    Ok(state) => Outcome::Job { state, done, total },
                    Err(e) => Outcome::Error(e.to_string()),
                },
            })
        }
        Action::PickStandby => to_outcome(subxact::catch(pool::claim), |n| match n {
            Some((h, p)) => Outcome::Picked(NodeAddr::new(h, p)),
            None => Outcome::PoolEmpty,
        }),
        Action::AddNode { node } => to_outcome(
            subxact::catch(|| {
                // already a member (a resumed step whose add committed): nothing to add
                if citus::node_in_cluster(&node.host, node.port)?.is_none() {
                    citus::add_node(&node.host, node.port)?;
                }
                pool::set_state(&node.host, node.port, "active")
            }),
            |_| Outcome::Ok,
        ),
        Action::RequestNode => to_outcome(
            subxact::catch(|| {
                let mut payload = serde_json::json!({
                    "operation_id": op.id,
                    "reason": autoscale_core::safety::truncate(&op.reason, autoscale_core::safety::MAX_REASON_BYTES),
                    "nodes": op.want,
                    "max_nodeid": citus::max_nodeid()?,
                    "workers": citus::active_workers()?.len(),
                    "hint": "add a worker with citus_add_node() on the coordinator, or offer one with autoscale.add_standby_node(host, port)",
                });
                // a resize: the node of this size replaces that worker
                if let Some(old) = &op.replaces {
                    payload["replaces"] = old.to_string().into();
                    payload["size"] = op.size.clone().unwrap_or_else(|| serde_json::json!({}));
                    payload["hint"] =
                        "answer with a node of this size (autoscale.answer_provision_request)"
                            .into();
                }
                provision::request("provision", Some(op.id), payload)
            }),
            Outcome::Requested,
        ),
        Action::CheckForNode {
            request_id,
            answered_only,
        } => to_outcome(
            subxact::catch(|| {
                let request = request_id
                    .map(outbox::waiting)
                    .transpose()?
                    .unwrap_or_default();
                let found = if answered_only {
                    answered_node(&request)?
                } else {
                    any_node(request_id)?
                };
                // the provisioner gave the request up: the step fails with its reason instead of
                // waiting for provision_timeout
                match (&found, request.given_up) {
                    (None, Some(why)) => Err(AutoscaleError::Failed(format!(
                        "the provisioner gave provision request {} up: {why}",
                        request_id.unwrap_or_default()
                    ))),
                    _ => Ok(found),
                }
            }),
            |found| match found {
                Some((h, p, in_cluster)) => Outcome::Appeared {
                    node: NodeAddr::new(h, p),
                    in_cluster,
                },
                None => Outcome::NotYet,
            },
        ),
        Action::SetShouldHaveShards { nodes, value } => to_outcome(
            subxact::catch(|| {
                // draining: remember which nodes had shards, so a restore puts back only those
                let mut had_shards = Vec::new();
                if !value {
                    for node in &nodes {
                        if citus::should_have_shards(&node.host, node.port)?.unwrap_or(true) {
                            had_shards.push(node.clone());
                        }
                    }
                }
                for node in &nodes {
                    citus::set_should_have_shards(&node.host, node.port, value)?;
                    if !value {
                        pool::set_state(&node.host, node.port, "draining")?;
                    } else if pool::state_of(&node.host, node.port)?.as_deref() == Some("draining")
                    {
                        pool::set_state(&node.host, node.port, "active")?;
                    }
                }
                Ok::<_, AutoscaleError>(had_shards)
            }),
            |had_shards| {
                if value {
                    Outcome::Ok
                } else {
                    Outcome::Marked { had_shards }
                }
            },
        ),
        Action::SetCoordinatorShards { node, value } => to_outcome(
            subxact::catch(|| citus::set_should_have_shards(&node.host, node.port, value)),
            |_| Outcome::Ok,
        ),
        Action::CleanupOrphaned { nodes } => {
            let timeout = settings::node_timeout().as_millis() as u64;
            to_outcome(
                subxact::catch(move || citus::cleanup_orphaned(&nodes, timeout)),
                |r| match r {
                    Ok(()) => Outcome::Ok,
                    Err(e) => Outcome::Error(e),
                },
            )
        }
        Action::CountPlacements { nodes } => to_outcome(
            subxact::catch(|| citus::placements_on(&nodes)),
            Outcome::Placements,
        ),
        Action::RemoveNode { nodes } => to_outcome(
            subxact::catch(|| {
                // the state machine only gets here after VerifyEmpty counted zero; check again in
                // this very transaction: a node that holds placements is never removed
                let n = citus::placements_on(&nodes)?;
                if n > 0 {
                    return Err(AutoscaleError::NotInPrerequisiteState(format!(
                        "{} hold {n} placements; not removed",
                        names(&nodes)
                    )));
                }
                for node in &nodes {
                    if citus::node_in_cluster(&node.host, node.port)?.is_some() {
                        citus::remove_node(&node.host, node.port)?;
                    }
                }
                Ok::<_, AutoscaleError>(())
            }),
            |_| Outcome::Ok,
        ),
        Action::ReturnToPool { nodes } => to_outcome(
            subxact::catch(|| {
                for node in &nodes {
                    pool::set_state(&node.host, node.port, "returned")?;
                    let payload = serde_json::json!({
                        "operation_id": op.id,
                        "node": {"host": node.host, "port": node.port},
                        "reason": autoscale_core::safety::truncate(&op.reason, autoscale_core::safety::MAX_REASON_BYTES),
                        "hint": "the node left the cluster and is back in the pool; it may be stopped or reused",
                    });
                    provision::request("deprovision", Some(op.id), payload)?;
                }
                Ok::<_, AutoscaleError>(())
            }),
            |_| Outcome::Ok,
        ),
        Action::DisableNode { node } => to_outcome(
            subxact::catch(|| {
                // checked again in this transaction: a node holding a sole copy is never disabled
                let plan = dead::plan_for(&node, None)?;
                if !plan.replaceable() {
                    pgrx::error!("not disabled: {}", plan.summary(&node));
                }
                if let Some((_, _, true)) = citus::node_in_cluster(&node.host, node.port)? {
                    citus::disable_node(&node.host, node.port)?;
                }
                dead::claim(&node, op.id)
            }),
            |_| Outcome::Ok,
        ),
        Action::CopyPlacements { dead: d, target } => {
            // block_writes whatever autoscale.shard_transfer_mode says: the copy runs inside the
            // tick's transaction (one shard group per tick, committed with the step), and a
            // logical-replication copy waits there for the transaction it runs in (measured: the
            // step times out); block_writes only holds writes to the shard group being copied
            let mode = citus::IN_TRANSACTION_TRANSFER_MODE;
            to_outcome(
                subxact::catch(|| -> Result<(Option<String>, i64)> {
                    let plan = dead::plan_for(&d, target.as_ref())?;
                    if !plan.replaceable() {
                        pgrx::error!("copies stopped: {}", plan.summary(&d));
                    }
                    if let Some(copy) = plan.copies.first() {
                        citus::copy_shard_placement(copy.shardid, &copy.from, &copy.to, mode)?;
                        return Ok((Some(copy.to_string()), plan.copies.len() as i64 - 1));
                    }
                    if let Some(&shard) = plan.unplaceable.first() {
                        pgrx::error!(
                            "no healthy node can take the missing copy of shard {shard} ({} shard \
                             group{} short of copies): add a node to the pool or the cluster",
                            plan.unplaceable.len(),
                            if plan.unplaceable.len() == 1 { "" } else { "s" }
                        );
                    }
                    if !plan.reference_missing.is_empty() {
                        citus::replicate_reference_tables(mode)?;
                        return Ok((
                            Some(format!(
                                "reference tables to {}",
                                names(&plan.reference_missing)
                            )),
                            0,
                        ));
                    }
                    Ok((None, 0))
                }),
                |(shard, left)| Outcome::Copied { shard, left },
            )
        }
        Action::RemoveDeadNode { node } => to_outcome(
            subxact::catch(|| {
                // checked again in this very transaction: every placement on the dead node has
                // its copies back on healthy nodes
                let plan = dead::plan_for(&node, op.node.as_ref())?;
                if !plan.complete() {
                    pgrx::error!(
                        "not removed: {} ({} copies still to make)",
                        plan.summary(&node),
                        plan.copies.len() + plan.unplaceable.len()
                    );
                }
                if citus::node_in_cluster(&node.host, node.port)?.is_some() {
                    citus::remove_node(&node.host, node.port)?;
                }
                if pool::state_of(&node.host, node.port)?.is_some() {
                    pool::set_state(&node.host, node.port, "failed")?;
                }
                dead::forget(&node)
            }),
            |_| Outcome::Ok,
        ),
        Action::AddClone { clone, primary } => {
            let timeout = settings::node_timeout().as_millis() as u64;
            let max_lag = settings::clone_max_lag_bytes();
            let r = subxact::catch(move || -> Result<std::result::Result<(), String>> {
                if let Some((_, active, is_clone, _)) =
                    citus::clone_node_info(&clone.host, clone.port)?
                {
                    // a resumed step whose registration committed
                    if is_clone && !active {
                        return Ok(Ok(()));
                    }
                    return Ok(Err(format!(
                        "clone {clone} is already in the cluster as a {} node",
                        if active { "active" } else { "inactive" }
                    )));
                }
                if !citus::has_snapshot_split()? {
                    return Ok(Err(
                        "this Citus has no snapshot split (citus_promote_clone_and_rebalance, Citus 13.2+)"
                            .to_string(),
                    ));
                }
                let pairs = [(clone.clone(), primary.clone())];
                let check = crate::services::clones::check_clones(&pairs, timeout)?.remove(0);
                pool::record_check(&clone, &check)?;
                if let Some(e) = check.error {
                    return Ok(Err(format!("clone {clone}: {e}")));
                }
                if let Some(lag) = check.lag_bytes.filter(|l| *l > max_lag) {
                    return Ok(Err(format!(
                        "clone {clone} lags {} behind {primary} (autoscale.clone_max_lag is {})",
                        autoscale_core::clones::bytes(lag),
                        autoscale_core::clones::bytes(max_lag)
                    )));
                }
                citus::add_clone_node(&clone, &primary)?;
                Ok(Ok(()))
            });
            to_outcome(r, |r| match r {
                Ok(()) => Outcome::Ok,
                Err(why) => Outcome::CloneUnusable(why),
            })
        }
        Action::CheckSplit { clone, primary } => {
            // the strategy in force, as for the rebalances
            let strategy = settings::effective_rebalance_strategy();
            to_outcome(
                subxact::catch(move || {
                    if strategy == citus::LOAD_STRATEGY {
                        citus::ensure_load_strategy()?;
                    }
                    citus::split_plan(&primary, &clone, Some(&strategy))
                }),
                |(to_clone, total)| Outcome::SplitPlan { to_clone, total },
            )
        }
        Action::PromoteClone { clone, primary } => {
            let strategy = settings::effective_rebalance_strategy();
            let catchup = settings::clone_catchup_timeout();
            let timeout = settings::node_timeout().as_millis() as u64;
            let r = subxact::catch(move || -> Result<std::result::Result<(), String>> {
                let Some((nodeid, active, is_clone, _)) =
                    citus::clone_node_info(&clone.host, clone.port)?
                else {
                    return Ok(Err(format!(
                        "clone {clone} is not registered in pg_dist_node"
                    )));
                };
                // resumed after a promotion that committed: nothing to do
                if active && !is_clone {
                    return Ok(Ok(()));
                }
                // a promotion whose transaction did not commit (a crash) leaves the clone
                // promoted but not in the cluster: it has diverged from its primary
                let (ok, recovery) = citus::run_on_node(
                    &clone.host,
                    clone.port,
                    "SELECT pg_catalog.pg_is_in_recovery()",
                    timeout,
                )?;
                if ok && recovery == "f" {
                    return Ok(Err(format!(
                        "clone {clone} was promoted by a split that did not commit (it is out of recovery \
                         and no longer follows {primary}); it cannot be used"
                    )));
                }
                if strategy == citus::LOAD_STRATEGY {
                    citus::ensure_load_strategy()?;
                }
                citus::promote_clone(nodeid, Some(&strategy), catchup)?;
                Ok(Ok(()))
            });
            match r {
                Ok(Ok(Ok(()))) => Outcome::Ok,
                Ok(Ok(Err(why))) => Outcome::CloneUnusable(why),
                Ok(Err(e)) => Outcome::Error(e.to_string()),
                Err(e) if e.contains(citus::CATCHUP_TIMEOUT_MESSAGE) => Outcome::CloneUnusable(e),
                Err(e) => Outcome::Error(e),
            }
        }
        Action::VerifySplit { clone, primary } => to_outcome(
            subxact::catch(move || -> Result<std::result::Result<(i64, i64), String>> {
                match citus::clone_node_info(&clone.host, clone.port)? {
                    Some((_, true, false, true)) => {}
                    other => {
                        return Ok(Err(format!(
                        "clone {clone} is not an active primary worker after the split ({other:?})"
                    )))
                    }
                }
                pool::set_state(&clone.host, clone.port, "active")?;
                // keep the pool warm: ask the provisioner for a clone of each half
                for worker in [&primary, &clone] {
                    request_clone(op.id, worker)?;
                }
                Ok(Ok((
                    citus::placements_in_group_of(&clone)?,
                    citus::placements_in_group_of(&primary)?,
                )))
            }),
            |r| match r {
                Ok((clone, primary)) => Outcome::Split { clone, primary },
                Err(e) => Outcome::Error(e),
            },
        ),
        Action::DropClone { clone } => {
            let timeout = settings::node_timeout().as_millis() as u64;
            to_outcome(
                subxact::catch(move || drop_clone(op.id, &clone, timeout)),
                |_| Outcome::Ok,
            )
        }
        Action::IsolateTenant { table, tenant } => to_outcome(
            subxact::catch(move || -> Result<Outcome> {
                // a resumed step whose isolation committed: the tenant has its own shard already
                let (shard, isolated, node) = tenant_shard(&table, &tenant)?;
                if isolated {
                    return Ok(tenant_outcome(shard, node, true, false));
                }
                split_needs_every_worker()?;
                citus::isolate_tenant(&table, &tenant, citus::IN_TRANSACTION_TRANSFER_MODE)?;
                let (shard, isolated, node) = tenant_shard(&table, &tenant)?;
                Ok(tenant_outcome(shard, node, isolated, true))
            }),
            |o| o,
        ),
        Action::MoveTenant {
            table,
            tenant,
            target,
        } => to_outcome(
            subxact::catch(move || -> Result<Outcome> {
                // a resumed step whose move committed: the shard is on the target already
                let (shard, isolated, node) = tenant_shard(&table, &tenant)?;
                if node == target {
                    return Ok(tenant_outcome(shard, node, isolated, false));
                }
                citus::move_shard_placement(
                    shard,
                    &node,
                    &target,
                    citus::IN_TRANSACTION_TRANSFER_MODE,
                )?;
                let (shard, isolated, node) = tenant_shard(&table, &tenant)?;
                Ok(tenant_outcome(shard, node, isolated, true))
            }),
            |o| o,
        ),
        Action::VerifyTenant { table, tenant, .. } => to_outcome(
            subxact::catch(move || -> Result<Outcome> {
                let (shard, isolated, node) = tenant_shard(&table, &tenant)?;
                Ok(tenant_outcome(shard, node, isolated, false))
            }),
            |o| o,
        ),
        Action::Nothing => Outcome::Ok,
    }
}

/// The split of an isolate step writes to the tenant's worker and syncs the new shards' metadata
/// to every worker, each in the tick's transaction. When one of them is down or cut off, Citus
/// keeps its failed connection in the transaction after the step's subtransaction is rolled back,
/// and the tick's commit fails: the step's attempt is rolled back with it, so the step would be
/// tried at every tick without end (an operation that blocks every other one, replace_dead
/// included, for as long as the node is away). Each worker is asked first, on connections of
/// their own (as a sample does, within `autoscale.node_timeout`); one that does not answer makes
/// the step fail like any error, so its attempts count. (docs/faults.md, finding 10)
fn split_needs_every_worker() -> Result<()> {
    let workers = citus::active_workers()?;
    let calls: Vec<(NodeAddr, &str)> = workers.iter().map(|w| (w.clone(), "SELECT 1")).collect();
    let answers = citus::run_on_nodes(&calls, settings::node_timeout().as_millis() as u64)?;
    let away: Vec<String> = workers
        .iter()
        .zip(&answers)
        .filter_map(|(w, a)| a.as_ref().err().map(|e| format!("{w} ({})", e.trim())))
        .collect();
    if away.is_empty() {
        return Ok(());
    }
    Err(AutoscaleError::NotInPrerequisiteState(format!(
        "isolate_tenant_to_new_shard needs every worker, and {} did not answer",
        away.join(", ")
    )))
}

/// The shard holding a tenant, whether it is its own, and where it is; an error when the table
/// has none (dropped, or no longer distributed).
fn tenant_shard(table: &str, tenant: &str) -> Result<(i64, bool, NodeAddr)> {
    citus::tenant_shard(table, tenant)?.ok_or_else(|| {
        AutoscaleError::NotInPrerequisiteState(format!(
            "no shard of {table} holds tenant {tenant} (is {table} still hash-distributed?)"
        ))
    })
}

fn tenant_outcome(shard: i64, node: NodeAddr, isolated: bool, changed: bool) -> Outcome {
    Outcome::Tenant {
        shard,
        node,
        isolated,
        changed,
    }
}

/// A `provision_clone` request (outbox, NOTIFY, webhook) for a warm clone of `worker`, with the
/// primary in its json; once per operation and worker (a resumed step asks again for nothing).
/// Fulfilled when a clone of that worker is offered with add_standby_clone().
pub fn request_clone(op_id: i64, worker: &NodeAddr) -> Result<()> {
    let asked = outbox::clone_requested(op_id, worker)?;
    if asked {
        return Ok(());
    }
    let payload = serde_json::json!({
        "operation_id": op_id,
        "primary": {"host": worker.host, "port": worker.port},
        "reason": format!("a split-out used a warm clone; the pool has none of {worker} now"),
        "hint": "make a streaming replica of the primary (pg_basebackup -R) and offer it with \
                 autoscale.add_standby_clone(host, port, primary_host, primary_port)",
    });
    provision::request("provision_clone", Some(op_id), payload).map(|_| ())
}

/// A split-out gave up its clone: unregister it from Citus when it is an inactive clone there,
/// and put it back in the pool: available when it still follows its primary (a lagging clone may
/// catch up), failed (with a `standby_failed` event) when it was promoted or does not answer.
pub fn drop_clone(op_id: i64, clone: &NodeAddr, timeout_ms: u64) -> Result<()> {
    if let Some((_, active, is_clone, _)) = citus::clone_node_info(&clone.host, clone.port)? {
        if is_clone && !active {
            citus::remove_clone_node(clone)?;
        } else if active {
            // promoted and in the cluster: a worker now, nothing to give back
            return pool::set_state(&clone.host, clone.port, "active");
        }
    }
    let (ok, recovery) = citus::run_on_node(
        &clone.host,
        clone.port,
        "SELECT pg_catalog.pg_is_in_recovery()",
        timeout_ms,
    )?;
    if ok && recovery == "t" {
        pool::set_state(&clone.host, clone.port, "available")
    } else {
        pool::set_state(&clone.host, clone.port, "failed")?;
        events::record(
            "standby_failed",
            &format!(
                "warm clone {clone} is no longer a replica ({}); it is not offered again until it is \
                 rebuilt and added again with autoscale.add_standby_clone()",
                if ok { "out of recovery" } else { "does not answer" }
            ),
            Some(serde_json::json!({"operation_id": op_id, "node": clone.to_string()})),
        )
    }
}

/// Which path the next scale-out of `nodes` workers takes (split from a ready warm clone, or the
/// ordinary logical one), and why. The busiest worker is the one with the highest measured shard
/// load (the sum of its shard groups' load in `autoscale.shard_group_load`), else the highest CPU
/// busy % at its latest sample.
pub fn scale_out_path(nodes: u32) -> Result<autoscale_core::clones::ScaleOutPath> {
    use autoscale_core::clones::{self, Readiness, ScaleOutPath};
    if citus::role() != citus::Role::Coordinator {
        return Ok(ScaleOutPath::Logical {
            why: "not a Citus coordinator".into(),
        });
    }
    let clones = pool::clones()?;
    if !clones.is_empty() && !citus::has_snapshot_split()? {
        return Ok(ScaleOutPath::Logical {
            why: "this Citus has no snapshot split (Citus 13.2+)".into(),
        });
    }
    let workers = citus::active_workers()?;
    let loads = clones::WorkerLoads {
        shard_load: crate::store::load::node_shard_load()?,
        cpu: samples::latest_cpu()?,
    };
    let readiness = Readiness {
        max_lag_bytes: settings::clone_max_lag_bytes(),
        max_check_age: (settings::sample_interval().as_secs_f64() * 3.0).max(30.0),
    };
    Ok(clones::choose(
        &clones,
        &readiness,
        &workers,
        &loads,
        nodes,
        settings::split_out(),
    ))
}

/// What an operation that just ended (failed, cancelled, succeeded) leaves behind in the pool and
/// the outbox. A scale-out that did not succeed: its claimed node that never joined is `failed`
/// when citus_add_node itself failed (it is not picked again and again), else back to `available`;
/// its pending provision requests expire.
pub fn settle_ended(op: &Operation) -> Result<()> {
    if op.kind == Kind::ReplaceDead && op.status != Status::Succeeded {
        // the dead node stays (disabled when it got that far); a later review may try again
        if let Some(d) = &op.dead {
            dead::release(d)?;
        }
    }
    if !matches!(op.kind, Kind::ScaleOut | Kind::SplitOut | Kind::ReplaceDead)
        || op.status == Status::Succeeded
    {
        return Ok(());
    }
    // a split-out that ended before its clone was dropped: unregister it and give it back
    if let (Kind::SplitOut, Some(clone), None) = (op.kind, &op.clone, &op.fallback) {
        if pool::state_of(&clone.host, clone.port)?.as_deref() == Some("joining") {
            drop_clone(op.id, clone, settings::node_timeout().as_millis() as u64)?;
        }
    }
    outbox::expire_for_operation(op.id)?;
    if let Some(n) = &op.node {
        if pool::state_of(&n.host, n.port)?.as_deref() == Some("joining") {
            let join_failed = op.status == Status::Failed && op.step == machine::Step::AddNode;
            pool::set_state(
                &n.host,
                n.port,
                if join_failed { "failed" } else { "available" },
            )?;
            if join_failed {
                events::record(
                    "standby_failed",
                    &format!(
                        "standby node {n} failed to join and is no longer offered; offer it again with \
                         autoscale.add_standby_node('{}', {}) once it is fixed",
                        n.host, n.port
                    ),
                    Some(serde_json::json!({"operation_id": op.id, "node": n.to_string()})),
                )?;
            }
        }
    }
    Ok(())
}

/// Makes a transition durable: settles what an ended operation leaves behind, saves the new state
/// and records the transition's events, each with `detail` of the new state. Returns the new state.
fn persist(
    t: machine::Transition,
    detail: impl Fn(&Operation) -> serde_json::Value,
) -> Result<Operation> {
    if t.op.status != Status::Running {
        settle_ended(&t.op)?;
    }
    store::save(&t.op)?;
    for note in &t.events {
        events::record(&note.kind, &note.message, Some(detail(&t.op)))?;
    }
    Ok(t.op)
}

/// What one call of [`step`] did.
pub enum Stepped {
    /// The step ran; the operation's new state.
    Advanced(Box<Operation>),
    /// The step did not run, and why (the guards, a test build's failpoint).
    Held(String),
}

/// Advances `op` by one step: performs its action (when the guards allow it), persists the new
/// state and records its events.
pub fn step(op: &Operation) -> Result<Stepped> {
    // a step, or a step once its progress counter (copies, job tasks) reached n: `step@n`
    let at_progress = format!("{}@{}", op.step, op.progress_done);
    if settings::test_hold_at(op.step.as_str()) || settings::test_hold_at(&at_progress) {
        return Ok(Stepped::Held(format!(
            "held at step {} (progress {}) by autoscale.test_hold_at_steps (a test build's failpoint)",
            op.step, op.progress_done
        )));
    }
    let action = machine::action(op);
    // reads, and the restore step that undoes a scale-in's drain, run whatever the guards say
    if machine::needs_guards(op) {
        if let GuardVerdict::Blocked(why) | GuardVerdict::Observe(why) = check_guards(false)? {
            return Ok(Stepped::Held(why));
        }
    }
    // a node that hangs (or a partition that drops packets) must not hold the worker, and with it
    // the sampling of the healthy nodes, for longer than step_timeout: the step then fails with
    // a statement timeout and is retried like any failed step
    // and a node that accepts no connection fails the step after node_timeout, as in the sample
    // (the worker samples in a transaction of its own, so the sample's setting is gone here);
    // no connection outlives the step's transaction, so a node that hangs between two steps is
    // met by a fresh connection, which times out, never by a cached one (see bound_connections)
    if citus::role() == citus::Role::Coordinator {
        citus::bound_connections(settings::node_timeout().as_millis() as u64)?;
    }
    let mut timeout = settings::step_timeout().as_millis().min(i32::MAX as u128) as i32;
    let mut doing = format!("{} {}: step {}", op.kind.as_str(), op.id, op.step.as_str());
    if let Action::PromoteClone { .. } = action {
        // the promotion waits up to clone_catchup_timeout for the clone, then splits
        timeout = timeout.max((settings::clone_catchup_timeout() + 60).saturating_mul(1000));
        doing.push_str(" (citus_promote_clone_and_rebalance)");
    }
    // pg_stat_activity shows the worker's step while it runs (a long promotion, a slow node)
    activity::report(&doing);
    let outcome = subxact::with_statement_timeout(timeout, || perform(op, &action));
    let t = machine::advance(op, outcome, clock::now()?, &limits());
    let op = persist(t, |op| {
        serde_json::json!({"operation_id": op.id, "kind": op.kind.as_str(), "step": op.step.as_str(),
                           "job_id": op.job_id, "node": op.node.as_ref().map(|n| n.to_string())})
    })?;
    Ok(Stepped::Advanced(Box::new(op)))
}

/// Starts an operation: creates its row and performs its first step now (in this transaction).
/// `nodes`: none for a rebalance; for a scale-out the node to add, if given; for a scale-in the
/// nodes to drain and remove together; for a split-out the clone and its primary. `count` is how
/// many workers a scale-out adds.
pub fn start(
    kind: Kind,
    nodes: Vec<NodeAddr>,
    count: u32,
    reason: &str,
    requested_by: &str,
) -> Result<Operation> {
    let (id, now) = reserve()?;
    let coordinator = citus::coordinator_node()?;
    let leaves_single_node = kind == Kind::ScaleIn && {
        let active = citus::active_workers()?;
        !active.is_empty() && active.iter().all(|a| nodes.contains(a))
    };
    if leaves_single_node {
        // never below the coordinator: it must be able to take every shard
        if let Err(why) = policy::single_node_room(&decide::single_node()?) {
            return Err(AutoscaleError::NotInPrerequisiteState(format!(
                "no scale-in to a single node: {why}"
            )));
        }
    }
    let op = match kind {
        Kind::ScaleOut => machine::new_scale_out(id, nodes.into_iter().next(), count, reason, now),
        Kind::SplitOut => match (nodes.first(), nodes.get(1)) {
            (Some(clone), Some(primary)) => {
                pool::set_state(&clone.host, clone.port, "joining")?;
                machine::new_split_out(id, clone.clone(), primary.clone(), reason, now)
            }
            _ => machine::new_operation(id, kind, None, reason, now),
        },
        Kind::ScaleIn => machine::new_scale_in(id, nodes, reason, now),
        Kind::Rebalance => machine::new_operation(id, kind, None, reason, now),
        Kind::ReplaceDead => {
            machine::new_operation(id, kind, nodes.into_iter().next(), reason, now)
        }
        // its tenant is not a node: start_isolate_tenant
        Kind::IsolateTenant => machine::new_operation(id, kind, None, reason, now),
        // its size: start_resize
        Kind::Resize => machine::new_operation(id, kind, nodes.into_iter().next(), reason, now),
    }
    .map_err(|e| AutoscaleError::NotInPrerequisiteState(e.to_string()))?;
    // the coordinator's own shards (autoscale.coordinator_shards)
    let shed = settings::coordinator_shards() == settings::CoordinatorShards::Shed;
    let op = match (&coordinator, kind) {
        (Some(c), Kind::ScaleOut | Kind::SplitOut) if shed && c.shouldhaveshards => {
            machine::with_coordinator_shards(
                op,
                NodeAddr::new(c.nodename.clone(), c.nodeport),
                false,
            )
        }
        (Some(c), Kind::ScaleIn) if leaves_single_node && !c.shouldhaveshards => {
            machine::with_coordinator_shards(
                op,
                NodeAddr::new(c.nodename.clone(), c.nodeport),
                true,
            )
        }
        _ => op,
    };
    launch(op, requested_by)
}

/// A node appeared for a scale-out: (host, port, already in the cluster). The first available pool
/// node (the request, if any, is then fulfilled), else a worker added to pg_dist_node after the
/// request was written.
fn any_node(request_id: Option<i64>) -> Result<Option<(String, i32, bool)>> {
    if let Some((h, p)) = pool::claim()? {
        if let Some(id) = request_id {
            outbox::set_status(id, "fulfilled")?;
        }
        return Ok(Some((h, p, false)));
    }
    if let Some(id) = request_id {
        if let Some((h, p)) = citus::workers_added_after(outbox::nodeid_at_request(id)?)?
            .into_iter()
            .next()
        {
            outbox::set_status(id, "fulfilled")?;
            pool::set_state(&h, p, "active")?;
            return Ok(Some((h, p, true)));
        }
    }
    Ok(None)
}

/// The node a resize's request was answered with, once it is in the pool (claimed) or in the
/// cluster; never another node (only that one has the size).
fn answered_node(request: &outbox::Waiting) -> Result<Option<(String, i32, bool)>> {
    let Some((h, p)) = request.answered.clone() else {
        return Ok(None);
    };
    if citus::node_in_cluster(&h, p)?.is_some() {
        pool::set_state(&h, p, "active")?;
        return Ok(Some((h, p, true)));
    }
    Ok(pool::claim_node(&h, p)?.then_some((h, p, false)))
}

/// Starts a resize: `node` is replaced by a node of `size` (settings by name) that the
/// provisioner makes; its first step (the provision request) is performed now.
pub fn start_resize(
    node: NodeAddr,
    size: serde_json::Value,
    reason: &str,
    requested_by: &str,
) -> Result<Operation> {
    let (id, now) = reserve()?;
    let mut op = machine::new_operation(id, Kind::Resize, Some(node), reason, now)
        .map_err(|e| AutoscaleError::NotInPrerequisiteState(e.to_string()))?;
    op.size = Some(size);
    launch(op, requested_by)
}

/// Starts an isolate_tenant: `tenant` of `table` gets a shard of its own, moved to `target`.
/// `step_now`: perform its first step (the split) in this transaction; false (the tick's own
/// start): the next tick performs it, in a transaction that did nothing else with Citus first
/// (this one planned a rebalance: the blocking split is kept apart from that).
pub fn start_isolate_tenant(
    table: &str,
    tenant: &str,
    target: NodeAddr,
    reason: &str,
    requested_by: &str,
    step_now: bool,
) -> Result<Operation> {
    let (id, now) = reserve()?;
    let op = machine::new_isolate_tenant(id, table, tenant, target, reason, now)
        .map_err(|e| AutoscaleError::NotInPrerequisiteState(e.to_string()))?;
    if step_now {
        launch(op, requested_by)
    } else {
        record_start(&op, requested_by)?;
        Ok(op)
    }
}

/// The id and start time of a new operation, once no other one runs.
fn reserve() -> Result<(i64, f64)> {
    // Serialize starts: a second caller waits here until the first one's transaction ends, then
    // sees its committed operation (READ COMMITTED: the next statement has a fresh snapshot) and
    // gets the error below instead of a unique violation on operations_one_running.
    Spi::run_with_args(
        "SELECT pg_catalog.pg_advisory_xact_lock($1)",
        &[START_LOCK_KEY.into()],
    )?;
    if let Some(op) = running()? {
        return Err(already_running(&op));
    }
    Ok((store::next_id()?, clock::now()?))
}

/// Records a new operation (row, `operation_started` event) and performs its first step now.
fn launch(op: Operation, requested_by: &str) -> Result<Operation> {
    record_start(&op, requested_by)?;
    Ok(match step(&op)? {
        Stepped::Advanced(next) => *next,
        Stepped::Held(_) => op,
    })
}

/// Records a new operation: its row and the `operation_started` event.
fn record_start(op: &Operation, requested_by: &str) -> Result<()> {
    let (id, kind, reason) = (op.id, op.kind, op.reason.as_str());
    store::insert(op, requested_by)?;
    if let (Kind::ReplaceDead, Some(d)) = (kind, &op.dead) {
        dead::claim(d, id)?;
    }
    events::record(
        "operation_started",
        &format!("{} started ({requested_by}): {reason}", kind.as_str()),
        Some(serde_json::json!({"operation_id": id, "kind": kind.as_str(), "reason": reason})),
    )
}

/// Starts a scale-out of `count` workers by the path [`scale_out_path`] chooses: a split-out of
/// the ready clone of the busiest worker, else the ordinary scale-out. The path and why are
/// recorded as a `scale_out_path` event.
pub fn start_scale_out(
    count: u32,
    reason: &str,
    requested_by: &str,
) -> Result<Operation, AutoscaleError> {
    use autoscale_core::clones::ScaleOutPath;
    let path = scale_out_path(count)?;
    events::record(
        "scale_out_path",
        &format!("scale-out by {}", path.text()),
        serde_json::to_value(&path).ok(),
    )?;
    match path {
        ScaleOutPath::Split {
            clone,
            primary,
            why,
        } => start(
            Kind::SplitOut,
            vec![clone, primary],
            1,
            &format!("{reason}; split: {why}"),
            requested_by,
        ),
        ScaleOutPath::Logical { .. } => start(Kind::ScaleOut, vec![], count, reason, requested_by),
    }
}

/// Key of the transaction-level advisory lock that serializes operation starts ("autoscst").
pub const START_LOCK_KEY: i64 = 0x6175_746f_7363_7374;

/// The error of a start while another operation runs.
pub fn already_running(op: &Operation) -> AutoscaleError {
    AutoscaleError::NotInPrerequisiteState(format!(
        "an operation is already running (id {}, {}, {}): {}; only one operation runs at a time",
        op.id,
        op.kind,
        op.step,
        machine::describe(op)
    ))
}

/// Refuses manual calls the guards would not allow, with the guards' reason.
pub fn require_act() -> Result<()> {
    match check_guards(true)? {
        GuardVerdict::Act => Ok(()),
        GuardVerdict::Observe(_) => Err(AutoscaleError::NotInPrerequisiteState(
            "autoscale.mode is observe; set autoscale.mode = 'act' to let autoscale change the cluster".into(),
        )),
        GuardVerdict::Blocked(why) => Err(AutoscaleError::NotInPrerequisiteState(format!("not now: {why}"))),
    }
}

/// Cancels a running operation: the state machine decides where it ends (a drained scale-in is
/// restored first), and a Citus job it follows is cancelled too.
pub fn cancel(op: &Operation, reason: &str) -> Result<()> {
    let t = machine::cancel(op, reason, clock::now()?)
        .map_err(|e| AutoscaleError::NotInPrerequisiteState(e.to_string()))?;
    if let (Some(job), Some(JobState::Scheduled | JobState::Running) | None) =
        (op.job_id, op.job_state)
    {
        // best effort: the job may have finished meanwhile
        let _ = subxact::catch(move || citus::cancel_job(job));
    }
    persist(t, |op| serde_json::json!({"operation_id": op.id}))?;
    Ok(())
}
