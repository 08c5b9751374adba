//! The shard-group load store: `autoscale.shard_group_load` (one row per shard group, updated in
//! place at every sample), `autoscale.shard_group_load_history` (the top N groups per node per
//! sample), `autoscale.tenant_load` (Citus's tracked tenants), the load-skew assessment of the
//! trigger and the hot-tenant assessment. Statements that span other tables: the load series and
//! data nodes read `node_samples` and `worker_count`, and the assessments are kept in
//! `control.load_skew` and `control.hot_tenant`. The
//! rules (rates, smoothing, cost, skew) are in `autoscale_core::load`; this module reads and writes.

use std::collections::HashMap;

use autoscale_core::load::{
    self, GroupCounters, GroupKey, GroupRates, GroupReading, GroupState, Imbalance, LoadPoint,
    LoadSkew, PlannedMove, TenantStats,
};
use autoscale_core::operations::NodeAddr;
use pgrx::prelude::*;
use pgrx::spi::SpiResult;
use pgrx::JsonB;
use serde::Serialize;

use crate::infra::spi::{self, node_at, select_rows};
use crate::infra::{citus, settings, subxact};

/// One row of autoscale.shard_group_load (field names are the column names).
#[derive(Debug, Serialize)]
struct Row {
    colocationid: i32,
    shardminvalue: String,
    nodename: String,
    nodeport: i32,
    node_time: f64,
    scans: i64,
    rows_read: i64,
    rows_written: i64,
    scans_per_sec: Option<f64>,
    rows_read_per_sec: Option<f64>,
    rows_written_per_sec: Option<f64>,
    load_per_sec: Option<f64>,
    sample_id: i64,
}

impl Row {
    fn of(g: &GroupState, sample_id: i64) -> Row {
        Row {
            colocationid: g.key.colocationid,
            shardminvalue: g.key.shardminvalue.clone(),
            nodename: g.node.host.clone(),
            nodeport: g.node.port,
            node_time: g.node_time,
            scans: g.counters.scans,
            rows_read: g.counters.rows_read,
            rows_written: g.counters.rows_written,
            scans_per_sec: g.rates.map(|r| r.scans_per_sec),
            rows_read_per_sec: g.rates.map(|r| r.rows_read_per_sec),
            rows_written_per_sec: g.rates.map(|r| r.rows_written_per_sec),
            load_per_sec: g.load(),
            sample_id,
        }
    }
}

/// Every shard group's latest state.
pub fn groups() -> SpiResult<Vec<GroupState>> {
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT colocationid, shardminvalue, nodename, nodeport, node_time, scans, rows_read, rows_written,
                    scans_per_sec, rows_read_per_sec, rows_written_per_sec
               FROM autoscale.shard_group_load",
            None,
            &[],
        )? {
            let sps: Option<f64> = r.get(9)?;
            let rates = sps.map(|s| -> SpiResult<GroupRates> {
                Ok(GroupRates {
                    scans_per_sec: s,
                    rows_read_per_sec: r.get(10)?.unwrap_or(0.0),
                    rows_written_per_sec: r.get(11)?.unwrap_or(0.0),
                })
            });
            out.push(GroupState {
                key: GroupKey::new(
                    r.get::<i32>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                ),
                node: NodeAddr::new(
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<i32>(4)?.unwrap_or_default(),
                ),
                node_time: r.get(5)?.unwrap_or(0.0),
                counters: GroupCounters {
                    scans: r.get(6)?.unwrap_or(0),
                    rows_read: r.get(7)?.unwrap_or(0),
                    rows_written: r.get(8)?.unwrap_or(0),
                },
                rates: rates.transpose()?,
            });
        }
        Ok(out)
    })
}

/// One node's answer: where, its clock, and its shard groups.
pub struct NodeGroups {
    pub node: NodeAddr,
    pub at: f64,
    pub groups: Vec<GroupReading>,
}

/// Folds one sample's shard-group readings into the store and returns each reporting node's
/// load (operations/s). Groups that a reporting node no longer has and no other node reported
/// are deleted (dropped tables; a moved group is reported by its new node under the same key).
/// A group that is idle and stays so keeps its row as it is (no write).
pub fn record(
    sample_id: i64,
    sampled_at: &str,
    readings: &[NodeGroups],
) -> SpiResult<HashMap<NodeAddr, f64>> {
    if readings.is_empty() {
        return Ok(HashMap::new());
    }
    let mut previous = previous_groups(sample_id)?;
    let window = settings::load_window();
    let max_gap = (settings::sample_interval().as_secs_f64() * 10.0).max(60.0);
    let mut states = Vec::new();
    for n in readings {
        for r in &n.groups {
            states.push(load::update(
                previous.get(&r.key),
                &n.node,
                n.at,
                r,
                window,
                max_gap,
            ));
        }
    }
    // idle groups that stay idle are not rewritten (see load::needs_write)
    let written: Vec<&GroupState> = states
        .iter()
        .filter(|g| load::needs_write(previous.get(&g.key), g))
        .collect();
    let rows: Vec<Row> = written.iter().map(|g| Row::of(g, sample_id)).collect();
    // the groups a reporting node had and no node reported: found here, so that the DELETE runs
    // only when there are some (it compared every group with every reported one: 5 ms a sample
    // at 10,000 groups)
    let seen: std::collections::HashSet<&GroupKey> = states.iter().map(|g| &g.key).collect();
    let reporting: std::collections::HashSet<&NodeAddr> =
        readings.iter().map(|n| &n.node).collect();
    let gone: Vec<GroupKey> = previous
        .values()
        .filter(|g| reporting.contains(&g.node) && !seen.contains(&g.key))
        .map(|g| g.key.clone())
        .collect();
    let top: Vec<serde_json::Value> = load::top_per_node(&states, settings::load_history_top_n())
        .into_iter()
        .map(|g| {
            serde_json::json!({
                "sampled_at": sampled_at, "sample_id": sample_id,
                "nodename": g.node.host, "nodeport": g.node.port,
                "colocationid": g.key.colocationid, "shardminvalue": g.key.shardminvalue,
                "load_per_sec": g.load().unwrap_or(0.0),
            })
        })
        .collect();
    Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO autoscale.shard_group_load AS l
                  (colocationid, shardminvalue, nodename, nodeport, node_time, scans, rows_read, rows_written,
                   scans_per_sec, rows_read_per_sec, rows_written_per_sec, load_per_sec, sample_id, updated_at)
             SELECT DISTINCT ON (colocationid, shardminvalue)
                    colocationid, shardminvalue, nodename, nodeport, node_time, scans, rows_read, rows_written,
                    scans_per_sec, rows_read_per_sec, rows_written_per_sec, load_per_sec, sample_id, pg_catalog.now()
               FROM pg_catalog.jsonb_populate_recordset(NULL::autoscale.shard_group_load, $1)
              -- a replicated shard group (citus.shard_replication_factor > 1) is reported by every node
              -- holding a copy: one row per group, the same node's each time (the lowest address), or the
              -- upsert fails (cannot affect row a second time) and with it every tick
              ORDER BY colocationid, shardminvalue, nodename, nodeport
             ON CONFLICT (colocationid, shardminvalue) DO UPDATE SET
                  nodename = excluded.nodename, nodeport = excluded.nodeport, node_time = excluded.node_time,
                  scans = excluded.scans, rows_read = excluded.rows_read, rows_written = excluded.rows_written,
                  scans_per_sec = excluded.scans_per_sec, rows_read_per_sec = excluded.rows_read_per_sec,
                  rows_written_per_sec = excluded.rows_written_per_sec, load_per_sec = excluded.load_per_sec,
                  sample_id = excluded.sample_id, updated_at = excluded.updated_at",
            None,
            &[JsonB(serde_json::to_value(&rows).expect("rows serialize")).into()],
        )?;
        if !gone.is_empty() {
            let (colocations, mins): (Vec<i32>, Vec<String>) = gone
                .iter()
                .map(|k| (k.colocationid, k.shardminvalue.clone()))
                .unzip();
            c.update(
                "DELETE FROM autoscale.shard_group_load
                  WHERE (colocationid, shardminvalue) IN (SELECT * FROM unnest($1::int[], $2::text[]))",
                None,
                &[colocations.into(), mins.into()],
            )?;
        }
        if !top.is_empty() {
            c.update(
                "INSERT INTO autoscale.shard_group_load_history
                      (sampled_at, sample_id, nodename, nodeport, colocationid, shardminvalue, load_per_sec)
                 SELECT sampled_at, sample_id, nodename, nodeport, colocationid, shardminvalue, load_per_sec
                   FROM pg_catalog.jsonb_populate_recordset(NULL::autoscale.shard_group_load_history, $1)",
                None,
                &[JsonB(serde_json::Value::Array(top)).into()],
            )?;
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })?;
    // this process's copy of the table as it now is (see previous_groups); a group reported by
    // more than one node (replicated) is written as the lowest address's row: not mirrored, read
    // again next time
    if seen.len() == states.len() {
        for k in &gone {
            previous.remove(k);
        }
        for g in written {
            previous.insert(g.key.clone(), g.clone());
        }
        WRITTEN.with(|w| *w.borrow_mut() = Some((sample_id, previous)));
    }
    let nodes: Vec<NodeAddr> = readings.iter().map(|n| n.node.clone()).collect();
    Ok(load::node_loads(&states, &nodes).into_iter().collect())
}

thread_local! {
    /// autoscale.shard_group_load as this process last wrote it, and the sample that wrote it.
    static WRITTEN: std::cell::RefCell<Option<(i64, HashMap<GroupKey, GroupState>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Every shard group's state before sample `sample_id`: this process's copy when the sample just
/// before was its own and committed (the latest worker_count row is that sample: no other
/// sampler wrote since, and its writes were not rolled back), which is what the background
/// sampler finds at every sample; else read from the table (10,000 rows: about 10 ms).
fn previous_groups(sample_id: i64) -> SpiResult<HashMap<GroupKey, GroupState>> {
    if let Some((id, kept)) = WRITTEN.with(|w| w.borrow_mut().take()) {
        if id == sample_id - 1
            && Spi::get_one::<i64>(
                "SELECT sample_id FROM autoscale.worker_count ORDER BY sampled_at DESC LIMIT 1",
            )? == Some(id)
        {
            return Ok(kept);
        }
    }
    Ok(groups()?.into_iter().map(|g| (g.key.clone(), g)).collect())
}

/// Replaces the tracked tenants of each node that reported them (`citus_stat_tenants_local`,
/// last complete period) in `autoscale.tenant_load`; a node that stopped tracking loses its rows.
pub fn record_tenants(sample_id: i64, readings: &[(NodeAddr, TenantStats)]) -> SpiResult<()> {
    let rows: Vec<serde_json::Value> = readings
        .iter()
        .flat_map(|(n, ts)| {
            ts.rates().into_iter().map(move |(t, q, cpu)| {
                serde_json::json!({
                    "colocationid": t.colocationid, "tenant": t.tenant,
                    "nodename": n.host, "nodeport": n.port,
                    "queries_per_sec": q, "cpu_seconds_per_sec": cpu, "sample_id": sample_id,
                })
            })
        })
        .collect();
    Spi::connect_mut(|c| {
        // every node that answered this sample: a node that stopped tracking loses its rows
        c.update(
            "DELETE FROM autoscale.tenant_load WHERE sample_id <> $1",
            None,
            &[sample_id.into()],
        )?;
        if !rows.is_empty() {
            c.update(
                "INSERT INTO autoscale.tenant_load AS l
                      (colocationid, tenant, nodename, nodeport, queries_per_sec, cpu_seconds_per_sec, sample_id, updated_at)
                 SELECT colocationid, tenant, nodename, nodeport, queries_per_sec, cpu_seconds_per_sec, sample_id, pg_catalog.now()
                   FROM pg_catalog.jsonb_populate_recordset(NULL::autoscale.tenant_load, $1)
                 ON CONFLICT (colocationid, tenant, nodename, nodeport) DO UPDATE SET
                      queries_per_sec = excluded.queries_per_sec, cpu_seconds_per_sec = excluded.cpu_seconds_per_sec,
                      sample_id = excluded.sample_id, updated_at = excluded.updated_at",
                None,
                &[JsonB(serde_json::Value::Array(rows)).into()],
            )?;
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })
}

/// The `autoscale_by_load` cost of one shard (its group's): see `autoscale_core::load::shard_cost`.
pub fn shard_cost(shardid: i64) -> SpiResult<f64> {
    // the mean group load, and the mean load of the nodes holding measured groups
    let (mean, node_mean) = Spi::get_two::<f64, f64>(
        "SELECT avg(load_per_sec)::float8,
                (coalesce(sum(load_per_sec), 0) / greatest(count(DISTINCT (nodename, nodeport)), 1))::float8
           FROM autoscale.shard_group_load WHERE load_per_sec IS NOT NULL",
    )?;
    let group_load = match citus::shard_group_of(shardid)? {
        Some((colocationid, min)) => Spi::get_one_with_args::<f64>(
            "SELECT load_per_sec FROM autoscale.shard_group_load WHERE colocationid = $1 AND shardminvalue = $2",
            &[colocationid.into(), min.into()],
        )?,
        None => None,
    };
    Ok(load::shard_cost(group_load, mean, node_mean.unwrap_or(0.0)))
}

/// The data nodes' loads at each sample of the last `secs` seconds (plus two sample intervals,
/// so the series reaches back past the window's start).
pub fn load_series(secs: f64) -> SpiResult<Vec<LoadPoint>> {
    let back = secs + 2.0 * settings::sample_interval().as_secs_f64();
    Spi::connect(|c| {
        let mut points: Vec<(i64, LoadPoint)> = Vec::new();
        for r in c.select(
            "SELECT sample_id, extract(epoch FROM sampled_at)::float8, nodename, nodeport,
                    reachable AND shard_load IS NOT NULL, shard_load
               FROM autoscale.node_samples
              WHERE data_node AND sampled_at > pg_catalog.now() - pg_catalog.make_interval(secs => $1)
              ORDER BY sample_id, nodename, nodeport",
            None,
            &[back.into()],
        )? {
            let id: i64 = r.get(1)?.unwrap_or_default();
            if points.last().is_none_or(|(last, _)| *last != id) {
                points.push((
                    id,
                    LoadPoint {
                        at: r.get(2)?.unwrap_or(0.0),
                        loads: Vec::new(),
                        complete: true,
                    },
                ));
            }
            let p = &mut points.last_mut().expect("pushed").1;
            let node = NodeAddr::new(
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<i32>(4)?.unwrap_or_default(),
            );
            if r.get::<bool>(5)?.unwrap_or(false) {
                p.loads.push((node, r.get(6)?.unwrap_or(0.0)));
            } else {
                p.complete = false;
                p.loads.push((node, 0.0));
            }
        }
        Ok(points.into_iter().map(|(_, p)| p).collect())
    })
}

/// The data nodes of the latest sample.
fn latest_data_nodes() -> SpiResult<Vec<NodeAddr>> {
    Ok(latest_loads()?.into_iter().map(|(n, _)| n).collect())
}

/// The load-skew assessment for the trigger: `(Some(skew), ..)` when the load has been skewed for
/// `load_skew_for` and the plan by load fixes it; else `(None, ..)`. The text says why, for
/// status and explain(); None keeps the last one (a sustained skew whose plan may not be computed
/// again yet: `may_plan` false). The flag says whether the plan was computed.
pub fn assess(now: f64, may_plan: bool) -> SpiResult<(Option<LoadSkew>, Option<String>, bool)> {
    let ratio = settings::load_skew_ratio();
    if ratio <= 0.0 {
        return Ok((
            None,
            Some("load skew trigger off (autoscale.load_skew_ratio = 0)".into()),
            false,
        ));
    }
    let strategy = settings::effective_rebalance_strategy();
    if strategy != citus::LOAD_STRATEGY {
        return Ok((
            None,
            Some(format!(
                "load skew trigger off: autoscale.rebalance_strategy is {strategy}, not {}",
                citus::LOAD_STRATEGY
            )),
            false,
        ));
    }
    let series = load_series(settings::load_skew_for())?;
    let imbalance: Imbalance =
        match load::sustained_skew(&series, now, ratio, settings::load_skew_for()) {
            Ok(i) => i,
            Err(why) => return Ok((None, Some(why), false)),
        };
    if !may_plan {
        return Ok((None, None, false));
    }
    let moves: Vec<PlannedMove> =
        match subxact::catch(|| citus::planned_group_moves(citus::LOAD_STRATEGY)) {
            Ok(Ok(m)) => m
                .into_iter()
                .map(|(colocationid, min, host, port)| PlannedMove {
                    key: GroupKey::new(colocationid, min),
                    target: NodeAddr::new(host, port),
                })
                .collect(),
            Ok(Err(e)) => return Ok((None, Some(format!("the plan by load failed: {e}")), true)),
            Err(e) => return Ok((None, Some(format!("the plan by load failed: {e}")), true)),
        };
    let nodes = latest_data_nodes()?;
    Ok(
        match load::load_rebalance(&imbalance, &groups()?, &nodes, &moves) {
            Ok(s) => {
                let r = s.reason();
                (Some(s), Some(r), true)
            }
            Err(why) => (None, Some(why), true),
        },
    )
}

/// Records the latest assessment for `autoscale.status` and `explain()`, only when it changed (no
/// new `control` tuple every tick); `load_skew_at` is when the current assessment was first made.
pub fn save_assessment(text: &str) -> SpiResult<()> {
    Spi::run_with_args(
        "UPDATE autoscale.control SET load_skew = $1, load_skew_at = pg_catalog.now()
          WHERE load_skew IS DISTINCT FROM $1",
        &[text.into()],
    )
}

/// The tracked tenants of every node at the latest sample: (colocation id, tenant, node,
/// queries/s).
pub fn tenants() -> SpiResult<Vec<(i32, String, NodeAddr, f64)>> {
    select_rows(
        "SELECT colocationid, tenant, nodename, nodeport, queries_per_sec FROM autoscale.tenant_load
          ORDER BY nodename, nodeport, colocationid, tenant",
        &[],
        |r| {
            Ok((
                r.get::<i32>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                node_at(r, 3)?,
                r.get::<f64>(5)?.unwrap_or(0.0),
            ))
        },
    )
}

/// Each data node's measured load at the latest sample (0 when it did not answer).
pub fn latest_loads() -> SpiResult<Vec<(NodeAddr, f64)>> {
    select_rows(
        "SELECT nodename, nodeport, coalesce(shard_load, 0)::float8 FROM autoscale.node_samples
          WHERE sample_id = (SELECT max(sample_id) FROM autoscale.worker_count) AND data_node
          ORDER BY nodename, nodeport",
        &[],
        |r| Ok((node_at(r, 1)?, r.get::<f64>(3)?.unwrap_or(0.0))),
    )
}

/// Records the latest hot-tenant assessment for `autoscale.status` and `explain()`. Writes only
/// when the text changed (no new tuple of the one-row control table every tick), so
/// `hot_tenant_at` is when the current assessment was first made.
pub fn save_hot_tenant(text: &str) -> SpiResult<()> {
    Spi::run_with_args(
        "UPDATE autoscale.control SET hot_tenant = $1, hot_tenant_at = pg_catalog.now() \
         WHERE hot_tenant IS DISTINCT FROM $1",
        &[text.into()],
    )
}

/// The latest hot-tenant assessment.
pub fn last_hot_tenant() -> SpiResult<Option<String>> {
    Spi::get_one::<String>("SELECT hot_tenant FROM autoscale.control")
}

/// The latest assessment of the load-skew trigger.
pub fn last_assessment() -> SpiResult<Option<String>> {
    Spi::get_one::<String>("SELECT load_skew FROM autoscale.control")
}

/// Whether the data nodes carried a measurable load at the latest sample (mean at least
/// `autoscale_core::load::MIN_MEAN_LOAD` operations/s).
pub fn busy() -> SpiResult<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT coalesce(avg(coalesce(shard_load, 0)) >= $1, false) FROM autoscale.node_samples
          WHERE sample_id = (SELECT max(sample_id) FROM autoscale.worker_count) AND data_node",
        &[load::MIN_MEAN_LOAD.into()],
    )?
    .unwrap_or(false))
}

/// The busiest data node's load over the mean at the latest sample.
pub fn latest_ratio() -> SpiResult<Option<f64>> {
    Spi::get_one::<f64>(
        "SELECT max(shard_load) / NULLIF(avg(shard_load), 0) FROM autoscale.node_samples
          WHERE sample_id = (SELECT max(sample_id) FROM autoscale.worker_count) AND data_node",
    )
}

/// Each node's shard load now: the sum of the smoothed load (operations/s) of the shard groups it
/// holds, over the groups with a measured load (which worker's warm clone a scale-out splits).
pub fn node_shard_load() -> SpiResult<HashMap<NodeAddr, f64>> {
    let rows = spi::select_rows(
        "SELECT nodename, nodeport, sum(load_per_sec)::float8 FROM autoscale.shard_group_load
          WHERE load_per_sec IS NOT NULL GROUP BY nodename, nodeport",
        &[],
        |r| Ok((spi::node_at(r, 1)?, r.get::<f64>(3)?)),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect())
}

/// Each data node's share of the measured load at sample `sample_id`: (host:port, share 0..1).
pub fn node_load_shares(sample_id: i64) -> SpiResult<Vec<(String, Option<f64>)>> {
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT nodename || ':' || nodeport, shard_load / NULLIF(sum(shard_load) OVER (), 0)
               FROM autoscale.node_samples
              WHERE sample_id = $1 AND data_node AND shard_load IS NOT NULL
              ORDER BY nodename, nodeport",
            None,
            &[sample_id.into()],
        )? {
            out.push((r.get::<String>(1)?.unwrap_or_default(), r.get::<f64>(2)?));
        }
        Ok(out)
    })
}

/// A busy shard group as `metrics()` exports it.
pub struct HotGroup {
    pub colocationid: String,
    pub shardminvalue: String,
    /// host:port
    pub node: String,
    pub load_per_sec: Option<f64>,
}

/// The `limit` busiest shard groups.
pub fn hottest_groups(limit: i64) -> SpiResult<Vec<HotGroup>> {
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT colocationid::text, shardminvalue, nodename || ':' || nodeport, load_per_sec
               FROM autoscale.shard_group_load WHERE load_per_sec IS NOT NULL
              ORDER BY load_per_sec DESC, colocationid, shardminvalue LIMIT $1",
            None,
            &[limit.into()],
        )? {
            out.push(HotGroup {
                colocationid: r.get::<String>(1)?.unwrap_or_default(),
                shardminvalue: r.get::<String>(2)?.unwrap_or_default(),
                node: r.get::<String>(3)?.unwrap_or_default(),
                load_per_sec: r.get::<f64>(4)?,
            });
        }
        Ok(out)
    })
}
