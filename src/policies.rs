//! Policies in SQL: storing them (validated by the pure engine), building each policy's metric
//! series from history, sampling custom metrics, and asking the engine for a decision.
//! The engine itself (autoscale_core::policy) decides; this module only feeds it.

use std::collections::HashMap;

use autoscale_core::forecast::{self, LeadTime};
use autoscale_core::policy::datanodes::{self, NodeRole};
use autoscale_core::policy::predict::{self, Outlook, PolicyForecast};
use autoscale_core::policy::{
    self, Aggregate, Decision, EvalInput, Metric, Point, Policy, PolicyKind, PolicySeries,
    SingleNode,
};
use pgrx::prelude::*;
use pgrx::spi::SpiResult;
use pgrx::JsonB;

use crate::errors::AutoscaleError;
use crate::{citus, operations, settings, subxact};

/// A stored policy: the engine's view plus the custom query, if any.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub policy: Policy,
    pub custom_sql: Option<String>,
}

/// Largest time a custom metric query may run, per sample.
const CUSTOM_TIMEOUT_MS: i32 = 2_000;

fn interval_secs(column: &str) -> String {
    format!("extract(epoch FROM {column})::float8")
}

/// All policies, by name.
pub fn load() -> SpiResult<Vec<StoredPolicy>> {
    let sql = format!(
        "SELECT name, metric, aggregate, kind, scale_out_above, scale_in_below, target, tolerance,
                {}, {}, {}, {}, min_workers, max_workers, step, custom_sql, predictive
           FROM autoscale.policy_config ORDER BY name",
        interval_secs("scale_out_for"),
        interval_secs("scale_in_for"),
        interval_secs("cooldown_out"),
        interval_secs("cooldown_in"),
    );
    Spi::connect(|c| {
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
        Ok(out)
    })
}

/// Arguments of `autoscale.set_policy()`, durations in seconds.
pub struct PolicyArgs {
    pub name: String,
    pub metric: String,
    pub aggregate: String,
    pub scale_out_above: Option<f64>,
    pub scale_in_below: Option<f64>,
    pub target: Option<f64>,
    pub tolerance: f64,
    pub scale_out_for: f64,
    pub scale_in_for: f64,
    pub cooldown: f64,
    pub scale_in_cooldown: Option<f64>,
    pub min_workers: i32,
    pub max_workers: i32,
    pub step: i32,
    pub custom_sql: Option<String>,
    pub predictive: bool,
}

fn count_arg(argument: &'static str, v: i32, allowed: &str) -> Result<u32, AutoscaleError> {
    u32::try_from(v).map_err(|_| AutoscaleError::invalid(argument, v, allowed))
}

/// Turns SQL arguments into a validated policy. Every failure names the argument, the value and
/// what is allowed.
pub fn build(a: &PolicyArgs) -> Result<StoredPolicy, AutoscaleError> {
    let metric = Metric::parse(&a.metric).map_err(|e| AutoscaleError::Invalid(e.to_string()))?;
    let aggregate =
        Aggregate::parse(&a.aggregate).map_err(|e| AutoscaleError::Invalid(e.to_string()))?;
    let kind = match (a.target, a.scale_out_above, a.scale_in_below) {
        (Some(target), None, None) => PolicyKind::Target {
            target,
            tolerance: a.tolerance,
        },
        (Some(_), _, _) => {
            return Err(AutoscaleError::invalid(
                "target",
                a.target.unwrap_or_default(),
                "either target (target tracking) or scale_out_above and scale_in_below (thresholds), not both",
            ))
        }
        (None, out, inn) => {
            let (out, inn) = match (out, inn, metric.is_percent()) {
                (Some(o), Some(i), _) => (o, i),
                (o, i, true) => (o.unwrap_or(80.0), i.unwrap_or(25.0)),
                (None, _, false) => {
                    return Err(AutoscaleError::invalid(
                        "scale_out_above",
                        "NULL",
                        format!("a number: metric {} has no default thresholds (give scale_out_above and scale_in_below, or target)", metric.as_str()),
                    ))
                }
                (Some(_), None, false) => {
                    return Err(AutoscaleError::invalid(
                        "scale_in_below",
                        "NULL",
                        format!("a number: metric {} has no default thresholds", metric.as_str()),
                    ))
                }
            };
            PolicyKind::Threshold {
                scale_out_above: out,
                scale_in_below: inn,
            }
        }
    };
    let p = Policy {
        name: a.name.clone(),
        metric,
        aggregate,
        kind,
        scale_out_for: a.scale_out_for,
        scale_in_for: a.scale_in_for,
        cooldown_out: a.cooldown,
        cooldown_in: a.scale_in_cooldown.unwrap_or(a.cooldown),
        min_workers: count_arg(
            "min_workers",
            a.min_workers,
            "an integer between 0 and 1000 (0: the coordinator alone, a single node)",
        )?,
        max_workers: count_arg(
            "max_workers",
            a.max_workers,
            "an integer between 1 and 1000",
        )?,
        step: count_arg("step", a.step, "an integer between 1 and 100")?,
        predictive: a.predictive,
    };
    p.validate()
        .map_err(|e| AutoscaleError::Invalid(e.to_string()))?;
    match (&metric, &a.custom_sql) {
        (Metric::Custom, None) => {
            return Err(AutoscaleError::invalid(
                "custom_sql",
                "NULL",
                "a query returning one row with one number, required for metric custom",
            ))
        }
        (Metric::Custom, Some(sql)) if sql.trim().is_empty() => {
            return Err(AutoscaleError::invalid(
                "custom_sql",
                "''",
                "a query returning one row with one number",
            ))
        }
        (m, Some(_)) if *m != Metric::Custom => {
            return Err(AutoscaleError::invalid(
                "custom_sql",
                "a query",
                format!(
                    "NULL for metric {}; custom_sql belongs to metric custom",
                    m.as_str()
                ),
            ))
        }
        _ => {}
    }
    Ok(StoredPolicy {
        policy: p,
        custom_sql: a.custom_sql.clone(),
    })
}

/// Runs a custom metric query: one row, one numeric column, not NULL.
pub fn run_custom(sql: &str) -> Result<f64, String> {
    Spi::connect(|c| {
        let t = c.select(sql, Some(2), &[]).map_err(|e| e.to_string())?;
        let cols = t.columns().map_err(|e| e.to_string())?;
        if cols != 1 {
            return Err(format!(
                "custom_sql returned {cols} columns; it must return exactly one number"
            ));
        }
        let rows = t.len();
        if rows != 1 {
            return Err(format!(
                "custom_sql returned {}; it must return exactly one row",
                if rows == 0 {
                    "no rows".to_string()
                } else {
                    "several rows".to_string()
                }
            ));
        }
        let oid = t.column_type_oid(1).map_err(|e| e.to_string())?.value();
        let row = t.first();
        let v: Option<f64> = match oid {
            pg_sys::INT2OID => row
                .get_one::<i16>()
                .map_err(|e| e.to_string())?
                .map(f64::from),
            pg_sys::INT4OID => row
                .get_one::<i32>()
                .map_err(|e| e.to_string())?
                .map(f64::from),
            pg_sys::INT8OID => row
                .get_one::<i64>()
                .map_err(|e| e.to_string())?
                .map(|v| v as f64),
            pg_sys::FLOAT4OID => row
                .get_one::<f32>()
                .map_err(|e| e.to_string())?
                .map(f64::from),
            pg_sys::FLOAT8OID => row.get_one::<f64>().map_err(|e| e.to_string())?,
            pg_sys::NUMERICOID => row
                .get_one::<AnyNumeric>()
                .map_err(|e| e.to_string())?
                .map(|n| f64::try_from(n).unwrap_or(f64::NAN)),
            _ => {
                let name = Spi::get_one_with_args::<String>(
                    "SELECT pg_catalog.format_type($1, NULL)",
                    &[oid.into()],
                )
                .ok()
                .flatten()
                .unwrap_or_else(|| format!("type {oid:?}"));
                return Err(format!("custom_sql returned {name}; it must return a number (integer, numeric, real or double precision)"));
            }
        };
        match v {
            Some(v) if v.is_finite() => Ok(v),
            Some(v) => Err(format!("custom_sql returned {v}")),
            None => Err("custom_sql returned NULL".to_string()),
        }
    })
}

/// Whether `sql` is exactly one SELECT statement (no INTO): parsed only, nothing runs.
fn one_select(sql: &str) -> Result<(), String> {
    let c =
        std::ffi::CString::new(sql).map_err(|_| "custom_sql contains a NUL byte".to_string())?;
    let verdict = subxact::catch_and_roll_back(|| unsafe {
        let list = pg_sys::raw_parser(c.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        let n = if list.is_null() { 0 } else { (*list).length };
        if n != 1 {
            return Err(format!(
                "custom_sql holds {n} statements; it must be exactly one SELECT"
            ));
        }
        let raw = (*(*list).elements).ptr_value as *mut pg_sys::RawStmt;
        let stmt = (*raw).stmt;
        if !pgrx::is_a(stmt, pg_sys::NodeTag::T_SelectStmt) {
            return Err("custom_sql must be a SELECT".to_string());
        }
        if !(*(stmt as *mut pg_sys::SelectStmt)).intoClause.is_null() {
            return Err("custom_sql must be a SELECT without INTO".to_string());
        }
        Ok(())
    })?;
    verdict
}

/// Runs a custom query: exactly one SELECT, as `autoscale.custom_sql_role` (never a superuser),
/// read-only, search_path pg_catalog, pg_temp, as a security-restricted operation, under a
/// statement timeout, in a subtransaction that is rolled back. A failure is a value.
pub fn run_custom_guarded(sql: &str) -> Result<f64, String> {
    let role = crate::privilege::custom_sql_role()?;
    one_select(sql)?;
    let sql = sql.to_string();
    subxact::catch_and_roll_back(move || {
        crate::privilege::as_custom_sql_role(role, || {
            subxact::with_statement_timeout(CUSTOM_TIMEOUT_MS, || run_custom(&sql))
        })
    })
    .and_then(|r| r)
}

/// Refuses a policy that the settings would keep from ever acting: a window longer than the
/// history kept (autoscale.history_retention).
pub fn check_against_settings(p: &Policy) -> Result<(), AutoscaleError> {
    let retention = settings::history_retention().map(|d| d.as_secs_f64());
    let interval = settings::sample_interval().as_secs_f64();
    for (argument, w) in [
        ("scale_out_for", p.scale_out_for),
        ("scale_in_for", p.scale_in_for),
    ] {
        if let Some(r) = retention {
            if r < w + interval {
                return Err(AutoscaleError::invalid(
                    argument,
                    format!("'{}'", autoscale_core::duration::format_secs(w)),
                    format!(
                        "a window shorter than autoscale.history_retention ({}) minus one sample_interval; \
                         raise autoscale.history_retention first",
                        autoscale_core::duration::format_secs(r)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Settings that together keep scaling from working, given the stored policies (for a warning
/// event at the next tick after a reload).
pub fn setting_conflicts() -> SpiResult<Vec<String>> {
    let policies = load()?;
    let longest = policies
        .iter()
        .map(|p| {
            (
                p.policy.name.as_str(),
                p.policy.scale_out_for.max(p.policy.scale_in_for),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    Ok(autoscale_core::safety::setting_conflicts(
        settings::history_retention().map(|d| d.as_secs_f64()),
        longest,
        settings::sample_interval().as_secs_f64(),
        crate::history::rate_lookback_secs(),
    ))
}

/// Stores (creates or replaces) a policy.
pub fn store(p: &StoredPolicy) -> SpiResult<()> {
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
    Spi::run_with_args(
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
    )
}

/// Evaluates every custom policy's query and records the values for this sample.
pub fn sample_custom_metrics(sample_id: i64, sampled_at: &str) -> SpiResult<usize> {
    let policies = load()?;
    let mut n = 0;
    for p in policies
        .iter()
        .filter(|p| p.policy.metric == Metric::Custom)
    {
        let Some(sql) = &p.custom_sql else { continue };
        let (value, error) = match run_custom_guarded(sql) {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        if let Some(e) = &error {
            crate::history::record_event(
                "custom_metric_failed",
                &format!("custom metric of policy {} failed: {e}", p.policy.name),
                Some(serde_json::json!({"policy": p.policy.name, "error": e})),
            )?;
        }
        Spi::run_with_args(
            "INSERT INTO autoscale.metric_samples (sample_id, sampled_at, policy, value, error)
             VALUES ($1, $2::timestamptz, $3, $4, $5)",
            &[
                sample_id.into(),
                sampled_at.into(),
                p.policy.name.clone().into(),
                value.into(),
                error.into(),
            ],
        )?;
        n += 1;
    }
    Ok(n)
}

/// Each metric as an expression over node_samples `s`, by metric; a fixed list, never user input.
fn column(metric: Metric) -> Option<&'static str> {
    Some(match metric {
        Metric::Cpu => "s.cpu_busy_pct",
        Metric::Memory => "s.mem_used_pct",
        Metric::Disk => "s.disk_used_pct",
        Metric::Connections => "s.connections",
        Metric::ActiveConnections => "s.active_connections",
        Metric::CommitsPerSec => "s.commits_per_sec",
        Metric::Load1 => "s.load1",
        Metric::Tps => "s.tps",
        Metric::ConnectionSaturation => "s.connection_saturation",
        Metric::ReplicationLag => "s.replication_lag",
        Metric::MeanStatementMs => "s.mean_statement_ms",
        Metric::CacheMissRatio => "(100 - s.cache_hit_ratio)",
        Metric::Custom => return None,
    })
}

/// One sample's aggregates over its data nodes (autoscale_core::policy::datanodes decides whose
/// load counts: the data nodes, the coordinator included when it holds shards).
///
/// Without Citus the node itself does all the work: the engine sees it as a cluster of one worker,
/// so a policy decides on its load ("would scale out from 1 to 2 workers") instead of on
/// min_workers alone. A Citus coordinator without workers stays at 0 workers.
struct SampleAgg {
    id: i64,
    at: f64,
    workers: u32,
    unreachable: u32,
    data_nodes: u32,
    values: HashMap<(Metric, Aggregate), Option<f64>>,
}

/// Custom metric values by (sample_id, policy name).
type CustomValues = HashMap<(i64, String), Option<f64>>;

/// The metrics read from node_samples, in the column order of [`history_window`]'s query.
fn sampled_metrics() -> Vec<Metric> {
    Metric::ALL
        .iter()
        .copied()
        .filter(|m| column(*m).is_some())
        .collect()
}

/// Aggregates one sample's node rows.
fn aggregate_sample(
    id: i64,
    at: f64,
    workers: u32,
    unreachable: u32,
    nodes: &[(NodeRole, Vec<Option<f64>>)],
    metrics: &[Metric],
) -> SampleAgg {
    let roles: Vec<NodeRole> = nodes.iter().map(|(r, _)| *r).collect();
    let mut values = HashMap::new();
    for (k, m) in metrics.iter().enumerate() {
        let column: Vec<Option<f64>> = nodes.iter().map(|(_, v)| v[k]).collect();
        for agg in [Aggregate::Avg, Aggregate::Max] {
            values.insert((*m, agg), datanodes::aggregate_sample(&roles, &column, agg));
        }
    }
    SampleAgg {
        id,
        at,
        workers,
        unreachable,
        data_nodes: datanodes::data_node_count(&roles),
        values,
    }
}

fn history_window(window_secs: f64) -> SpiResult<(Vec<SampleAgg>, CustomValues)> {
    let metrics = sampled_metrics();
    let mut select = String::new();
    for m in &metrics {
        let c = column(*m).unwrap();
        select.push_str(&format!(", ({c})::float8"));
    }
    // one row per node per sample (a sample without node rows still gives one row, all NULL)
    let sql = format!(
        "SELECT w.sample_id, extract(epoch FROM w.sampled_at)::float8, w.worker_count, w.unreachable_workers,
                s.is_coordinator, s.data_node, s.reachable{select}
           FROM autoscale.worker_count w
           LEFT JOIN autoscale.node_samples s
                  ON s.sample_id = w.sample_id
                 AND s.sampled_at >= pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $1)
          WHERE w.sampled_at >= pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $1)
          ORDER BY w.sampled_at, w.sample_id"
    );
    let standalone = citus::role() == citus::Role::NoCitus;
    Spi::connect(|c| {
        let mut samples = Vec::new();
        let mut current: Option<(i64, f64, u32, u32)> = None;
        let mut nodes: Vec<(NodeRole, Vec<Option<f64>>)> = Vec::new();
        for r in c.select(sql.as_str(), None, &[window_secs.into()])? {
            let head = (
                r.get::<i64>(1)?.unwrap_or_default(),
                r.get::<f64>(2)?.unwrap_or_default(),
                (r.get::<i32>(3)?.unwrap_or(0).max(0) as u32).max(u32::from(standalone)),
                r.get::<i32>(4)?.unwrap_or(0).max(0) as u32,
            );
            if current.is_some_and(|c| c.0 != head.0) {
                let (id, at, w, u) = current.take().unwrap();
                samples.push(aggregate_sample(id, at, w, u, &nodes, &metrics));
                nodes.clear();
            }
            current = Some(head);
            if let Some(is_coordinator) = r.get::<bool>(5)? {
                let role = NodeRole {
                    is_coordinator,
                    data_node: r.get::<bool>(6)?,
                    reachable: r.get::<bool>(7)?.unwrap_or(false),
                };
                let mut v = Vec::with_capacity(metrics.len());
                for k in 0..metrics.len() {
                    v.push(r.get::<f64>(8 + k)?);
                }
                nodes.push((role, v));
            }
        }
        if let Some((id, at, w, u)) = current {
            samples.push(aggregate_sample(id, at, w, u, &nodes, &metrics));
        }
        let mut custom = HashMap::new();
        for r in c.select(
            "SELECT sample_id, policy, value FROM autoscale.metric_samples
              WHERE sampled_at >= pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $1)",
            None,
            &[window_secs.into()],
        )? {
            custom.insert(
                (
                    r.get::<i64>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                ),
                r.get::<f64>(3)?,
            );
        }
        Ok((samples, custom))
    })
}

/// What a scale-in to zero workers depends on, now: the coordinator's Citus metadata and
/// `autoscale.coordinator_shards`, its free disk and the workers' shard bytes at the latest sample.
pub fn single_node() -> SpiResult<SingleNode> {
    let coordinator = if citus::role() == citus::Role::Coordinator {
        citus::coordinator_node()?
    } else {
        None
    };
    let shed = settings::coordinator_shards() == settings::CoordinatorShards::Shed;
    let (takes, by_hand) = match &coordinator {
        None => (false, false),
        Some(c) if c.shouldhaveshards => (true, false),
        // autoscale shed them and gives them back before the drain
        Some(_) if shed => (true, false),
        Some(_) => (false, true),
    };
    let (free, bytes) = Spi::get_two::<f64, f64>(
        "SELECT max(disk_free_bytes) FILTER (WHERE is_coordinator)::float8,
                CASE WHEN bool_and(shard_bytes IS NOT NULL AND reachable) FILTER (WHERE NOT is_coordinator)
                     IS NOT FALSE
                     THEN coalesce(sum(shard_bytes) FILTER (WHERE NOT is_coordinator), 0)::float8 END
           FROM autoscale.node_samples
          WHERE sample_id = (SELECT max(sample_id) FROM autoscale.worker_count)",
    )?;
    Ok(SingleNode {
        coordinator_takes_shards: takes,
        shed_by_hand: by_hand,
        coordinator_free_bytes: free,
        worker_shard_bytes: bytes,
    })
}

/// The nodes whose load the policies read at the latest sample, as `host:port`, the coordinator
/// marked `(coordinator)`.
pub fn data_nodes_now() -> SpiResult<Vec<String>> {
    Spi::connect(|c| {
        let mut roles = Vec::new();
        let mut names = Vec::new();
        for r in c.select(
            "SELECT nodename, nodeport, is_coordinator, data_node, reachable FROM autoscale.node_samples
              WHERE sample_id = (SELECT max(sample_id) FROM autoscale.worker_count)
              ORDER BY is_coordinator DESC, nodename, nodeport",
            None,
            &[],
        )? {
            let is_coordinator = r.get::<bool>(3)?.unwrap_or(false);
            names.push(format!(
                "{}:{}{}",
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<i32>(2)?.unwrap_or_default(),
                if is_coordinator { " (coordinator)" } else { "" }
            ));
            roles.push(NodeRole {
                is_coordinator,
                data_node: r.get::<bool>(4)?,
                reachable: r.get::<bool>(5)?.unwrap_or(false),
            });
        }
        Ok(datanodes::counted(&roles)
            .into_iter()
            .zip(names)
            .filter(|(c, _)| *c)
            .map(|(_, n)| n)
            .collect())
    })
}

/// Recent samples a forecast is fitted from: its trend and error windows, and a few minutes more.
fn forecast_span() -> f64 {
    let c = forecast_config();
    c.trend_window + c.error_window + 5.0 * c.bucket
}

/// The forecast's configuration at this sample interval.
fn forecast_config() -> forecast::Config {
    forecast::Config::for_sample_interval(settings::sample_interval().as_secs_f64())
}

/// The engine's input from the policies, history and operations, at `now`, and the samples read
/// for it (a longer span when a policy is predictive: its forecast is fitted on them).
fn gather(policies: &[StoredPolicy]) -> SpiResult<(EvalInput, Vec<SampleAgg>, CustomValues)> {
    let interval = settings::sample_interval().as_secs_f64();
    let window = policies
        .iter()
        .map(|p| p.policy.scale_out_for.max(p.policy.scale_in_for))
        .fold(0.0, f64::max)
        + 3.0 * interval;
    let fetch = if policies.iter().any(|p| p.policy.predictive) {
        window.max(forecast_span())
    } else {
        window
    };
    let (samples, custom) = history_window(fetch)?;
    let now =
        Spi::get_one::<f64>("SELECT extract(epoch FROM pg_catalog.clock_timestamp())::float8")?
            .unwrap_or_default();
    let workers = samples.last().map(|s| s.workers).unwrap_or(0);
    let series = policies
        .iter()
        .map(|p| PolicySeries {
            policy: p.policy.clone(),
            points: samples
                .iter()
                .filter(|s| fetch == window || s.at >= now - window)
                .map(|s| Point {
                    at: s.at,
                    value: value_of(&p.policy, s, &custom),
                    workers: s.workers,
                    unreachable: s.unreachable,
                    data_nodes: s.data_nodes,
                })
                .collect(),
        })
        .collect();
    let ops = operations::history()?;
    let paused_until = Spi::get_one::<f64>(
        "SELECT extract(epoch FROM paused_until)::float8 FROM autoscale.control",
    )?;
    Ok((
        EvalInput {
            now,
            sample_interval: interval,
            workers,
            operation_running: ops.running,
            last_scale_out_finished: ops.last_scale_out_finished,
            last_scale_in_finished: ops.last_scale_in_finished,
            paused_until,
            series,
            single_node: single_node()?,
        },
        samples,
        custom,
    ))
}

/// A lead time before any scale-out was recorded: 5 minutes.
pub const DEFAULT_LEAD_SECS: f64 = 300.0;

/// How long a scale-out takes here: autoscale.forecast_lead_time, else the p90 of the recent
/// successful scale-outs (start to the end of their rebalance), else [`DEFAULT_LEAD_SECS`].
pub fn lead_time() -> SpiResult<LeadTime> {
    let durations = Spi::connect(|c| {
        let mut v = Vec::new();
        for r in c.select(
            "SELECT extract(epoch FROM finished_at - started_at)::float8 FROM (
                SELECT finished_at, started_at FROM autoscale.operations
                 WHERE kind = 'scale_out' AND status = 'succeeded' AND finished_at IS NOT NULL
                 ORDER BY finished_at DESC LIMIT $1) o
              ORDER BY finished_at",
            None,
            &[(forecast::LEAD_SAMPLES as i64).into()],
        )? {
            if let Some(d) = r.get::<f64>(1)? {
                v.push(d);
            }
        }
        Ok::<_, pgrx::spi::SpiError>(v)
    })?;
    Ok(forecast::lead_time(
        &durations,
        settings::forecast_lead_time(),
        DEFAULT_LEAD_SECS,
    ))
}

/// Each predictive policy's forecast (in the order of `policies`; `None` for the others): fitted
/// on the recent samples' load and the hourly rollups before them.
fn forecasts(
    policies: &[StoredPolicy],
    samples: &[SampleAgg],
    custom: &CustomValues,
    now: f64,
) -> SpiResult<Vec<Option<PolicyForecast>>> {
    if !policies.iter().any(|p| p.policy.predictive) {
        return Ok(vec![None; policies.len()]);
    }
    let lead = lead_time()?;
    let cfg = forecast_config();
    let mut out = Vec::with_capacity(policies.len());
    for p in policies {
        if !p.policy.predictive {
            out.push(None);
            continue;
        }
        let recent: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|s| {
                let pt = Point {
                    at: s.at,
                    value: value_of(&p.policy, s, custom),
                    workers: s.workers,
                    unreachable: s.unreachable,
                    data_nodes: s.data_nodes,
                };
                predict::load_of(p.policy.metric, &pt).map(|l| (s.at, l))
            })
            .collect();
        let hourly = crate::rollups::hourly_load(&p.policy, cfg.weekly_after + 7.0 * 86_400.0)?;
        out.push(Some(PolicyForecast {
            model: forecast::fit(&recent, &hourly, now, &cfg),
            lead,
        }));
    }
    Ok(out)
}

/// A policy's metric at a recorded sample: the aggregate over workers, or its custom value.
fn value_of(p: &Policy, s: &SampleAgg, custom: &CustomValues) -> Option<f64> {
    match p.metric {
        Metric::Custom => custom.get(&(s.id, p.name.clone())).copied().flatten(),
        m => s.values.get(&(m, p.aggregate)).copied().flatten(),
    }
}

/// What the stored policies (all, or the one named) would have done over the last `since_secs`
/// of recorded history, each operation taking `operation_secs`. Changes nothing.
pub fn backtest(
    since_secs: f64,
    name: Option<&str>,
    operation_secs: f64,
) -> Result<Vec<policy::backtest::BacktestAction>, AutoscaleError> {
    let spi = |e: pgrx::spi::SpiError| AutoscaleError::NotInPrerequisiteState(e.to_string());
    let policies: Vec<Policy> = load()
        .map_err(spi)?
        .into_iter()
        .map(|p| p.policy)
        .filter(|p| name.is_none_or(|n| p.name == n))
        .collect();
    match (name, policies.is_empty()) {
        (Some(n), true) => {
            return Err(AutoscaleError::NotFound(format!(
                "policy \"{n}\" does not exist"
            )))
        }
        (None, true) => {
            return Err(AutoscaleError::NotInPrerequisiteState(
                "there is no policy to backtest; create one with autoscale.set_policy()".into(),
            ))
        }
        _ => {}
    }
    let (samples, custom) = history_window(since_secs).map_err(spi)?;
    let recorded: Vec<_> = samples
        .iter()
        .map(|s| policy::backtest::Recorded {
            at: s.at,
            workers: s.workers,
            unreachable: s.unreachable,
            data_nodes: s.data_nodes,
            values: policies.iter().map(|p| value_of(p, s, &custom)).collect(),
        })
        .collect();
    Ok(policy::backtest::backtest(
        &policies,
        &recorded,
        settings::sample_interval().as_secs_f64(),
        operation_secs,
        &single_node().map_err(spi)?,
    ))
}

/// The engine's decision now, from recorded history only (predictive policies with their forecast).
pub fn decide() -> SpiResult<(Decision, EvalInput)> {
    let (d, input, _) = decide_with_outlooks()?;
    Ok((d, input))
}

/// The decision, and what the forecast says for each predictive policy (in the engine's order).
pub fn decide_with_outlooks() -> SpiResult<(Decision, EvalInput, Vec<Option<Outlook>>)> {
    let policies = load()?;
    let (input, samples, custom) = gather(&policies)?;
    let fcs = forecasts(&policies, &samples, &custom, input.now)?;
    let (d, outlooks) = predict::evaluate_predictive(&input, &fcs);
    Ok((d, input, outlooks))
}

/// Records the decision in autoscale.control, and as an event when it differs from the last one
/// (direction or desired size), so a steady state does not flood the event log.
pub fn record_decision(d: &Decision, observe_only: bool) -> SpiResult<bool> {
    let key = serde_json::json!({"direction": d.direction.as_str(), "desired_workers": d.desired_workers});
    let changed = Spi::get_one_with_args::<bool>(
        "SELECT last_decision IS NULL OR NOT last_decision @> $1 FROM autoscale.control",
        &[JsonB(key.clone()).into()],
    )?
    .unwrap_or(true);
    let mut stored = key;
    stored["reasons"] = d.reasons.clone().into();
    Spi::run_with_args(
        "UPDATE autoscale.control SET last_decision = $1, decided_at = pg_catalog.now()",
        &[JsonB(stored).into()],
    )?;
    if changed && d.direction != policy::Direction::Hold {
        let verb = match d.direction {
            policy::Direction::Out => "scale out",
            _ => "scale in",
        };
        let message = format!(
            "{}{verb} from {} to {} workers: {}",
            if observe_only { "would " } else { "" },
            d.from_workers,
            d.desired_workers,
            d.reasons.join("; ")
        );
        crate::history::record_event("decision", &message, serde_json::to_value(d).ok())?;
    }
    Ok(changed)
}
