//! Hot tenants: which one to isolate now (`autoscale_core::operations::isolate::choose`, fed with
//! the data workers' measured load and the tenants Citus tracks), and the checks and target of a
//! manual `autoscale.isolate_tenant()`. The operation itself is the isolate_tenant kind of the
//! state machine, started and stepped by `services::execute`.

use autoscale_core::load::sustained_skew;
use autoscale_core::operations::isolate::{self, HotTenant, TenantLoad};
use autoscale_core::operations::NodeAddr;

use crate::infra::errors::{AutoscaleError, Result};
use crate::infra::{citus, settings, subxact};
use crate::store::load;

/// The hot tenant to isolate now with its table, or None; and the sentence that says why, for
/// `autoscale.status.hot_tenant` and `explain()`.
pub struct Assessment {
    pub hot: Option<(HotTenant, String)>,
    pub text: String,
}

/// Assesses the tracked tenants against the load-skew window at `now`.
pub fn assess(now: f64) -> Result<Assessment> {
    let none = |text: String| Ok(Assessment { hot: None, text });
    let ratio = settings::load_skew_ratio();
    if ratio <= 0.0 {
        return none(
            "no hot tenant to isolate: it needs the load-skew window (autoscale.load_skew_ratio = 0)"
                .into(),
        );
    }
    // the tenants are looked up in Citus only while the load is skewed
    let series = load::load_series(settings::load_skew_for())?;
    if let Err(why) = sustained_skew(&series, now, ratio, settings::load_skew_for()) {
        return none(format!("no hot tenant to isolate: {why}"));
    }
    let tracked = load::tenants()?;
    let keys: Vec<(i32, String)> = tracked.iter().map(|t| (t.0, t.1.clone())).collect();
    let flags = if keys.is_empty() {
        Vec::new()
    } else {
        match subxact::catch(|| citus::tenants_isolated(&keys)) {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return none(format!("no hot tenant to isolate: {e}")),
            Err(e) => return none(format!("no hot tenant to isolate: {e}")),
        }
    };
    let tenants: Vec<TenantLoad> = tracked
        .iter()
        .zip(&flags)
        .map(
            |((colocationid, tenant, node, load), (_, isolated))| TenantLoad {
                colocationid: *colocationid,
                tenant: tenant.clone(),
                node: node.clone(),
                load: *load,
                isolated: *isolated,
            },
        )
        .collect();
    match isolate::choose(
        &series,
        now,
        ratio,
        settings::load_skew_for(),
        &tenants,
        settings::hot_tenant_share(),
    ) {
        Err(why) => none(why),
        Ok(hot) => {
            let table = tracked
                .iter()
                .zip(&flags)
                .find(|(t, _)| t.0 == hot.colocationid && t.1 == hot.tenant)
                .and_then(|(_, (table, _))| table.clone());
            let text = hot.reason();
            match table {
                Some(table) => Ok(Assessment {
                    hot: Some((hot, table)),
                    text,
                }),
                None => none(format!(
                    "{text}; but colocation group {} has no hash-distributed table",
                    hot.colocationid
                )),
            }
        }
    }
}

/// A manual isolation's table (`shown` as the caller named it), checked: (its name as `regclass` prints it, the tenant's shard
/// node, whether it is isolated already). Errors name the argument, its value and what is
/// allowed.
pub fn check(
    table: pgrx::pg_sys::Oid,
    shown: &str,
    tenant: &str,
) -> Result<(String, NodeAddr, bool)> {
    let Some((name, column, ty)) = citus::hash_distributed(table)? else {
        return Err(AutoscaleError::invalid(
            "table_name",
            format!("'{shown}'"),
            "a hash-distributed Citus table (create_distributed_table)",
        ));
    };
    let found = subxact::catch(|| citus::tenant_shard(&name, tenant));
    match found {
        Ok(Ok(Some((_, isolated, node)))) => Ok((name, node, isolated)),
        Ok(Ok(None)) => Err(AutoscaleError::invalid(
            "tenant_value",
            format!("'{tenant}'"),
            format!("a value of {name}.{column} ({ty}) whose shard has a placement"),
        )),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(AutoscaleError::invalid(
            "tenant_value",
            format!("'{tenant}'"),
            format!("a value of {name}.{column} ({ty}): {e}"),
        )),
    }
}

/// Where a manual isolation moves the tenant when no target is named: the least-loaded active
/// worker at the latest sample other than the tenant's (its own worker when it is the only one).
pub fn default_target(from: &NodeAddr) -> Result<NodeAddr> {
    let loads = load::latest_loads()?;
    let workers: Vec<(NodeAddr, f64)> = citus::active_workers()?
        .into_iter()
        .map(|w| {
            let l = loads.iter().find(|(n, _)| *n == w).map_or(0.0, |(_, l)| *l);
            (w, l)
        })
        .collect();
    Ok(isolate::least_loaded(&workers, Some(from)).unwrap_or_else(|| from.clone()))
}
