//! Deciding: validating policies (with the pure engine), building each policy's metric series from
//! the sample history, and asking the engine for a decision. The engine itself
//! (autoscale_core::policy) decides; this module only feeds it and records what it said.

use std::collections::HashMap;

use crate::infra::errors::{AutoscaleError, Result};
use crate::infra::{citus, clock, settings};
use crate::store::policies::{self, StoredPolicy};
use crate::store::samples::{self, CustomValues, WindowSample};
use crate::store::{control, events, operations, pool, schedules};
use autoscale_core::forecast::{self, LeadTime};
use autoscale_core::operations::candidates::{self, Candidate};
use autoscale_core::operations::NodeAddr;
use autoscale_core::policy::datanodes::{self, NodeRole};
use autoscale_core::policy::predict::{self, Outlook, PolicyForecast};
use autoscale_core::policy::{
    self, Aggregate, Decision, EvalInput, Metric, Point, Policy, PolicyKind, PolicySeries,
    SingleNode,
};
use autoscale_core::policy::{scheduled, simulate};
use autoscale_core::schedule::{self, CompiledSchedule, Effect, Schedule};

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

fn count_arg(argument: &'static str, v: i32, allowed: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| AutoscaleError::invalid(argument, v, allowed))
}

/// Turns SQL arguments into a validated policy. Every failure names the argument, the value and
/// what is allowed.
pub fn build(a: &PolicyArgs) -> Result<StoredPolicy> {
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

/// Refuses a policy that the settings would keep from ever acting: a window longer than the
/// history kept (autoscale.history_retention).
pub fn check_against_settings(p: &Policy) -> Result<()> {
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
pub fn setting_conflicts() -> Result<Vec<String>> {
    let policies = policies::load()?;
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
        samples::rate_lookback_secs(),
    ))
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

fn history_window(window_secs: f64) -> Result<(Vec<SampleAgg>, CustomValues)> {
    let metrics = sampled_metrics();
    let columns: Vec<&str> = metrics.iter().filter_map(|m| column(*m)).collect();
    let standalone = citus::role() == citus::Role::NoCitus;
    let (recorded, custom) = samples::window(window_secs, &columns, u32::from(standalone))?;
    let aggregated = recorded
        .iter()
        .map(|s: &WindowSample| {
            aggregate_sample(s.id, s.at, s.workers, s.unreachable, &s.nodes, &metrics)
        })
        .collect();
    Ok((aggregated, custom))
}

/// What a scale-in to zero workers depends on, now: the coordinator's Citus metadata and
/// `autoscale.coordinator_shards`, its free disk and the workers' shard bytes at the latest sample.
pub fn single_node() -> Result<SingleNode> {
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
    let (free, bytes) = samples::latest_coordinator_free_and_worker_bytes()?;
    Ok(SingleNode {
        coordinator_takes_shards: takes,
        shed_by_hand: by_hand,
        coordinator_free_bytes: free,
        worker_shard_bytes: bytes,
    })
}

/// The nodes whose load the policies read at the latest sample, as `host:port`, the coordinator
/// marked `(coordinator)`.
pub fn data_nodes_now() -> Result<Vec<String>> {
    let nodes = samples::latest_nodes()?;
    let roles: Vec<NodeRole> = nodes.iter().map(|n| n.2).collect();
    Ok(datanodes::counted(&roles)
        .into_iter()
        .zip(&nodes)
        .filter(|(c, _)| *c)
        .map(|(_, (host, port, role))| {
            format!(
                "{host}:{port}{}",
                if role.is_coordinator {
                    " (coordinator)"
                } else {
                    ""
                }
            )
        })
        .collect())
}

/// Recent samples a forecast is fitted from: its trend and error windows, and a few minutes more.
fn forecast_span() -> f64 {
    let c = forecast_config();
    c.trend_window + c.error_window + 5.0 * c.bucket
}

/// The forecast's configuration at this sample interval.
fn forecast_config() -> forecast::Config {
    forecast_config_at(settings::sample_interval().as_secs_f64())
}

/// The forecast's configuration at a sample interval, with the cycle search of
/// `autoscale.forecast_cycle_window` and `autoscale.forecast_cycle_min`.
fn forecast_config_at(interval: f64) -> forecast::Config {
    forecast::Config {
        cycle_window: settings::forecast_cycle_window(),
        cycle_min: settings::forecast_cycle_min(),
        ..forecast::Config::for_sample_interval(interval)
    }
}

/// The engine's input from the policies, history and operations, at `now`, and the samples read
/// for it (a longer span when a policy is predictive: its forecast is fitted on them).
fn gather(policies: &[StoredPolicy]) -> Result<(EvalInput, Vec<SampleAgg>, CustomValues)> {
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
    let now = clock::now()?;
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
    let paused_until = control::paused_until()?;
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
pub fn lead_time() -> Result<LeadTime> {
    let durations = operations::recent_scale_out_secs(forecast::LEAD_SAMPLES as i64)?;
    Ok(forecast::lead_time(
        &durations,
        settings::forecast_lead_time(),
        DEFAULT_LEAD_SECS,
    ))
}

thread_local! {
    /// Per predictive policy (name, metric, aggregate): the last cycle search of its forecast in
    /// this backend (the sampler's, or a session calling explain()), reused until an hour of new
    /// history has come or the history before its judged tail changed.
    static CYCLE_SEARCHES: std::cell::RefCell<
        std::collections::HashMap<String, Option<forecast::CycleSearch>>,
    > = std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Each predictive policy's forecast (in the order of `policies`; `None` for the others): fitted
/// on the recent samples' load and the hourly rollups before them.
fn forecasts(
    policies: &[StoredPolicy],
    samples: &[SampleAgg],
    custom: &CustomValues,
    now: f64,
) -> Result<Vec<Option<PolicyForecast>>> {
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
        let mut recent: Vec<(f64, f64)> = samples
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
        if cfg.cycle_window > 0.0 {
            // the cycle is searched on the 1-minute rollups before the recent samples
            let first = recent.first().map_or(now, |r| r.0);
            let mut older = crate::services::capacity::minute_load(&p.policy, cfg.cycle_window)?;
            older.retain(|(t, _)| *t + 60.0 <= first);
            older.append(&mut recent);
            recent = older;
        }
        let hourly =
            crate::services::capacity::hourly_load(&p.policy, cfg.weekly_after + 7.0 * 86_400.0)?;
        // the cycle search (the costly part) is kept in this backend for an hour of new history
        let key = format!(
            "{}/{}/{}",
            p.policy.name, p.policy.metric, p.policy.aggregate
        );
        let model = CYCLE_SEARCHES.with_borrow_mut(|searches| {
            let search = searches.entry(key).or_default();
            forecast::fit_with(&recent, &hourly, now, &cfg, search)
        });
        out.push(Some(PolicyForecast { model, lead }));
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
) -> Result<Vec<policy::backtest::BacktestAction>> {
    let policies: Vec<Policy> = policies::load()?
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
    let (samples, custom) = history_window(since_secs)?;
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
    Ok(policy::backtest::backtest_scheduled(
        &policies,
        &schedules()?,
        &recorded,
        settings::sample_interval().as_secs_f64(),
        operation_secs,
        &single_node()?,
        &forecast_config(),
    ))
}

/// A series the user brings (`at` ascending epoch seconds, `values` the per-worker metric measured
/// with `start_workers` workers) replayed through each stored policy (or the one named) with the
/// stored schedules, each operation taking `operation_secs` (policy::simulate: the value moves as
/// demand / workers after each simulated resize). `start_workers` `None`: each policy's
/// min_workers (at least 1). Per policy: its name and the figures. Changes nothing.
pub fn backtest_series(
    at: &[f64],
    values: &[f64],
    name: Option<&str>,
    operation_secs: f64,
    start_workers: Option<u32>,
    thresholds: &[f64],
) -> Result<Vec<(String, simulate::Summary)>> {
    let policies: Vec<Policy> = policies::load()?
        .into_iter()
        .map(|p| p.policy)
        .filter(|p| name.is_none_or(|n| p.name == n))
        .collect();
    match (name, policies.is_empty()) {
        (Some(n), true) => {
            return Err(AutoscaleError::invalid(
                "policy",
                format!("'{n}'"),
                "the name of a policy (autoscale.policies), or NULL for each policy",
            ))
        }
        (None, true) => {
            return Err(AutoscaleError::NotInPrerequisiteState(
                "there is no policy to replay the series through; create one with autoscale.set_policy()"
                    .into(),
            ))
        }
        _ => {}
    }
    let compiled = schedules()?;
    let interval = simulate::typical_interval(at);
    Ok(policies
        .iter()
        .map(|p| {
            let start = start_workers.unwrap_or(p.min_workers.max(1));
            // the demand that gave these per-worker values at `start` workers
            let demand: Vec<f64> = values
                .iter()
                .map(|v| simulate::demand(p, *v, start))
                .collect();
            let sim = simulate::simulate(
                at,
                &demand,
                p,
                &compiled,
                &simulate::SimConfig {
                    operation_secs,
                    start_workers: start,
                    eval_every: 0.0,
                    extra_history: 3.0 * interval,
                    forecast: forecast_config_at(interval),
                },
            );
            (p.name.clone(), sim.summary(thresholds))
        })
        .collect())
}

/// The load-skew trigger replayed over the last `since_secs` of recorded per-node load
/// (`node_samples.shard_load`): when it would have fired (at most once per
/// `autoscale.rebalance_interval`), the data nodes then, and why. Its plan by load is not
/// replayed: each row is when the trigger would have asked Citus for one.
pub fn backtest_load_skew(since_secs: f64) -> Result<Vec<(f64, u32, String)>> {
    if citus::role() != citus::Role::Coordinator
        || settings::effective_rebalance_strategy() != citus::LOAD_STRATEGY
    {
        return Ok(Vec::new());
    }
    let series = crate::store::load::load_series(since_secs)?;
    let for_secs = settings::load_skew_for();
    Ok(autoscale_core::load::replay_skew(
        &series,
        settings::load_skew_ratio(),
        for_secs,
        settings::rebalance_interval(),
    )
    .into_iter()
    .filter_map(|(at, i, held)| {
        let nodes = series.iter().find(|p| p.at == at)?.loads.len() as u32;
        Some((
            at,
            nodes,
            format!(
                "load skew: {} carried {:.1}x the mean for {} (autoscale.load_skew_ratio {}, \
                 load_skew_for {}); a rebalance by load if its plan lowers the busiest load by 10% \
                 (the plan is not replayed)",
                i.node,
                i.ratio,
                autoscale_core::duration::format_secs(held),
                settings::load_skew_ratio(),
                autoscale_core::duration::format_secs(for_secs)
            ),
        ))
    })
    .collect())
}

/// The engine's decision now, from recorded history only (predictive policies with their
/// forecast), within the bounds of the schedules that apply now.
pub fn decide() -> Result<(Decision, EvalInput)> {
    let (d, input, _, _) = decide_with_outlooks()?;
    Ok((d, input))
}

/// The decision, the engine's input, what the forecast says for each predictive policy (in the
/// engine's order), and the schedules' effect at now (`None` without schedules).
pub type Decided = (Decision, EvalInput, Vec<Option<Outlook>>, Option<Effect>);

/// The decision now with what it was made from ([`Decided`]).
pub fn decide_with_outlooks() -> Result<Decided> {
    let policies = policies::load()?;
    let (input, samples, custom) = gather(&policies)?;
    let fcs = forecasts(&policies, &samples, &custom, input.now)?;
    let (mut d, outlooks) = predict::evaluate_predictive(&input, &fcs);
    let engine: Vec<Policy> = policies.into_iter().map(|p| p.policy).collect();
    let effect = scheduled::apply_schedules(&schedules()?, &engine, &mut d, &input);
    Ok((d, input, outlooks, effect))
}

/// A schedule from the arguments of `autoscale.set_schedule()`, validated by the engine
/// (`Schedule::compile`): every failure names the argument, the value and what is allowed.
pub fn build_schedule(
    name: &str,
    cron: &str,
    min_workers: Option<i32>,
    max_workers: Option<i32>,
    time_zone: &str,
    duration_secs: f64,
) -> Result<Schedule> {
    let bound = |argument: &'static str, v: Option<i32>, low: u32| {
        v.map(|v| {
            u32::try_from(v).map_err(|_| {
                AutoscaleError::invalid(
                    argument,
                    v,
                    format!(
                        "an integer between {low} and {} or NULL",
                        schedule::MAX_WORKERS_LIMIT
                    ),
                )
            })
        })
        .transpose()
    };
    let s = Schedule {
        name: name.to_string(),
        cron: cron.to_string(),
        min_workers: bound("min_workers", min_workers, 0)?,
        max_workers: bound("max_workers", max_workers, 1)?,
        time_zone: time_zone.to_string(),
        duration: duration_secs,
    };
    s.compile()
        .map_err(|e| AutoscaleError::Invalid(e.to_string()))?;
    Ok(s)
}

/// The fewest workers allowed now, and why: the schedules' min_workers when one applies (their
/// effect on the policies' bounds), else the highest min_workers of the policies (1 without any).
pub fn min_workers_now() -> Result<(u32, String)> {
    let policies: Vec<Policy> = policies::load()?.into_iter().map(|p| p.policy).collect();
    let bounds = scheduled::policy_bounds(&policies);
    let floor = if policies.is_empty() {
        1
    } else {
        bounds.min_workers
    };
    let compiled = schedules()?;
    let effect = schedule::effective_bounds(bounds, &compiled, clock::now()?);
    Ok(match effect.min_from.map(|i| &effect.active[i]) {
        Some(a) if effect.bounds.min_workers > floor => (
            effect.bounds.min_workers,
            format!(
                "min_workers {} of schedule '{}' until {}",
                effect.bounds.min_workers, a.name, a.until
            ),
        ),
        _ => (floor, format!("min_workers {floor}")),
    })
}

/// The stored schedules, compiled.
pub fn schedules() -> Result<Vec<CompiledSchedule>> {
    schedule::compile_all(&schedules::load()?).map_err(AutoscaleError::Failed)
}

/// Records the decision in autoscale.control, and as an event when it differs from the last one
/// (direction or desired size), so a steady state does not flood the event log.
pub fn record_decision(d: &Decision, observe_only: bool) -> Result<bool> {
    let key = serde_json::json!({"direction": d.direction.as_str(), "desired_workers": d.desired_workers});
    let changed = control::decision_differs(&key)?;
    let mut stored = key;
    stored["reasons"] = d.reasons.clone().into();
    control::set_decision(stored, changed)?;
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
        events::record("decision", &message, serde_json::to_value(d).ok())?;
    }
    Ok(changed)
}

/// Up to `count` workers a scale-in lets go, best first, each with why it was chosen
/// (autoscale_core::operations::candidates ranks them).
pub fn scale_in_candidates(count: u32) -> Result<Vec<(NodeAddr, String)>> {
    let joined = pool::active_joined_at()?;
    let bytes = samples::latest_shard_bytes()?;
    let all = citus::worker_placements()?
        .into_iter()
        .map(|(node, nodeid, placements)| {
            let key = (node.host.clone(), node.port);
            Candidate {
                ours: joined.contains_key(&key),
                joined_at: joined.get(&key).copied().flatten(),
                bytes: bytes.get(&key).copied().flatten(),
                node,
                nodeid,
                placements,
            }
        })
        .collect();
    Ok(candidates::rank(all, count as usize)
        .into_iter()
        .map(|c| {
            let why = candidates::why(&c);
            (c.node, why)
        })
        .collect())
}
