//! autoscale.policy_config: the stored policies. Owns the table's SQL; the policies are validated
//! before they get here (services::decide::build).

use autoscale_core::policy::{self, Aggregate, Metric, Policy, PolicyKind};
use pgrx::prelude::*;

use crate::infra::errors::Result;

/// A stored policy: the engine's view plus the custom query, if any.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub policy: Policy,
    pub custom_sql: Option<String>,
}

fn interval_secs(column: &str) -> String {
    format!("extract(epoch FROM {column})::float8")
}

/// All policies, by name.
pub fn load() -> Result<Vec<StoredPolicy>> {
    let sql = format!(
        "SELECT name, metric, aggregate, kind, scale_out_above, scale_in_below, target, tolerance,
                {}, {}, {}, {}, min_workers, max_workers, step, custom_sql, predictive
           FROM autoscale.policy_config ORDER BY name",
        interval_secs("scale_out_for"),
        interval_secs("scale_in_for"),
        interval_secs("cooldown_out"),
        interval_secs("cooldown_in"),
    );
    Ok(Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(sql.as_str(), None, &[])? {
            let name: String = r.get(1)?.unwrap_or_default();
            let metric =
                Metric::parse(&r.get::<String>(2)?.unwrap_or_default()).unwrap_or(Metric::Cpu);
            let aggregate = Aggregate::parse(&r.get::<String>(3)?.unwrap_or_default())
                .unwrap_or(Aggregate::Avg);
            let kind = if r.get::<String>(4)?.as_deref() == Some("target") {
                PolicyKind::Target {
                    target: r.get(7)?.unwrap_or(1.0),
                    tolerance: r.get(8)?.unwrap_or(policy::DEFAULT_TOLERANCE),
                }
            } else {
                PolicyKind::Threshold {
                    scale_out_above: r.get(5)?.unwrap_or(f64::INFINITY),
                    scale_in_below: r.get(6)?.unwrap_or(f64::NEG_INFINITY),
                }
            };
            out.push(StoredPolicy {
                policy: Policy {
                    name,
                    metric,
                    aggregate,
                    kind,
                    scale_out_for: r.get(9)?.unwrap_or(0.0),
                    scale_in_for: r.get(10)?.unwrap_or(0.0),
                    cooldown_out: r.get(11)?.unwrap_or(0.0),
                    cooldown_in: r.get(12)?.unwrap_or(0.0),
                    min_workers: r.get::<i32>(13)?.unwrap_or(0).max(0) as u32,
                    max_workers: r.get::<i32>(14)?.unwrap_or(0).max(0) as u32,
                    step: r.get::<i32>(15)?.unwrap_or(1).max(0) as u32,
                    predictive: r.get::<bool>(17)?.unwrap_or(false),
                },
                custom_sql: r.get(16)?,
            });
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })?)
}

/// Stores (creates or replaces) a policy.
pub fn store(p: &StoredPolicy) -> Result<()> {
    let (out, inn, target, tol, kind) = match p.policy.kind {
        PolicyKind::Threshold {
            scale_out_above,
            scale_in_below,
        } => (
            Some(scale_out_above),
            Some(scale_in_below),
            None,
            None,
            "threshold",
        ),
        PolicyKind::Target { target, tolerance } => {
            (None, None, Some(target), Some(tolerance), "target")
        }
    };
    let q = &p.policy;
    Ok(Spi::run_with_args(
        "INSERT INTO autoscale.policy_config AS p
              (name, metric, aggregate, kind, scale_out_above, scale_in_below, target, tolerance,
               scale_out_for, scale_in_for, cooldown_out, cooldown_in, min_workers, max_workers, step, custom_sql,
               predictive)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, pg_catalog.make_interval(secs => $9), pg_catalog.make_interval(secs => $10),
                 pg_catalog.make_interval(secs => $11), pg_catalog.make_interval(secs => $12), $13, $14, $15, $16, $17)
         ON CONFLICT (name) DO UPDATE SET
               metric = excluded.metric, aggregate = excluded.aggregate, kind = excluded.kind,
               scale_out_above = excluded.scale_out_above, scale_in_below = excluded.scale_in_below,
               target = excluded.target, tolerance = excluded.tolerance,
               scale_out_for = excluded.scale_out_for, scale_in_for = excluded.scale_in_for,
               cooldown_out = excluded.cooldown_out, cooldown_in = excluded.cooldown_in,
               min_workers = excluded.min_workers, max_workers = excluded.max_workers, step = excluded.step,
               custom_sql = excluded.custom_sql, predictive = excluded.predictive,
               updated_at = pg_catalog.now()",
        &[
            q.name.clone().into(),
            q.metric.as_str().into(),
            q.aggregate.as_str().into(),
            kind.into(),
            out.into(),
            inn.into(),
            target.into(),
            tol.into(),
            q.scale_out_for.into(),
            q.scale_in_for.into(),
            q.cooldown_out.into(),
            q.cooldown_in.into(),
            (q.min_workers as i32).into(),
            (q.max_workers as i32).into(),
            (q.step as i32).into(),
            p.custom_sql.clone().into(),
            q.predictive.into(),
        ],
    )?)
}

/// Drops the policy `name`; whether it existed.
pub fn drop(name: &str) -> Result<bool> {
    Ok(Spi::get_one_with_args::<i64>(
        "WITH d AS (DELETE FROM autoscale.policy_config WHERE name = $1 RETURNING 1) SELECT count(*) FROM d",
        &[name.into()],
    )?
    .unwrap_or(0)
        > 0)
}
