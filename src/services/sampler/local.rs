//! This node's raw reading: /proc, cgroup v2, statvfs of the data directory and pg_stat_*.
//! Counters stay cumulative; the coordinator turns them into rates.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use autoscale_core::procfs;
use autoscale_core::stats::{
    Blocks, Connections, CpuReading, Disk, Memory, NodeStats, Statements, Xact,
};
use pgrx::prelude::*;

use crate::infra::spi::select_first_kept;
use crate::infra::{citus, settings, subxact};

/// The sizes this session measured last: when, the database size, and the shard placements'
/// bytes (None without Citus metadata). A session that answers every sample (the background
/// worker's own connection) reuses them for `autoscale.size_refresh_interval`.
#[derive(Clone, Copy)]
struct Sizes {
    at: Instant,
    database: i64,
    shards: Option<i64>,
}

thread_local! {
    static SIZES: Cell<Option<Sizes>> = const { Cell::new(None) };
}

/// The cached sizes when they are younger than `autoscale.size_refresh_interval`.
fn cached_sizes() -> Option<Sizes> {
    SIZES
        .with(|c| c.get())
        .filter(|s| s.at.elapsed() < settings::size_refresh_interval())
}

/// The shard placements this session listed last, and under which fingerprint of
/// pg_dist_placement and when (see [`placements`]).
struct Placements {
    fingerprint: (i64, i64, i64),
    at: Instant,
    groupid: Option<i32>,
    shards: Rc<Vec<citus::LocalShard>>,
}

thread_local! {
    static PLACEMENTS: RefCell<Option<Placements>> = const { RefCell::new(None) };
}

/// This node's group id and the shard placements stored here: the ones this session listed,
/// while pg_dist_placement's fingerprint is unchanged and they are younger than
/// `autoscale.size_refresh_interval` (an index created on a shard since is counted from the next
/// listing); else listed again. Listing costs a query over the placements that looks every
/// shard's relation up by name (about 5 ms at 400 placements); the fingerprint is one index scan.
fn placements() -> Result<(Option<i32>, Rc<Vec<citus::LocalShard>>), String> {
    let fingerprint = citus::local_placements_fingerprint()
        .map_err(|e| format!("reading pg_dist_placement: {e}"))?
        .unwrap_or_default();
    let kept = PLACEMENTS.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|p| {
                p.fingerprint == fingerprint && p.at.elapsed() < settings::size_refresh_interval()
            })
            .map(|p| (p.groupid, p.shards.clone()))
    });
    if let Some(k) = kept {
        return Ok(k);
    }
    // A table dropped (or a shard moved away) after this statement's snapshot but before the
    // shard's name is looked up fails the read (Citus's shard_name(): "object_name does not
    // reference a valid relation"): read again, with a snapshot that no longer sees it; if that
    // fails too, this sample goes without shard figures rather than failing.
    // (no subtransaction in parallel mode: there the read is made once, as it is)
    let parallel = unsafe { pg_sys::IsInParallelMode() };
    let read = || {
        if parallel {
            citus::local_shards().map_err(|e| e.to_string())
        } else {
            subxact::catch(citus::local_shards).and_then(|r| r.map_err(|e| e.to_string()))
        }
    };
    let (groupid, shards) = read().or_else(|_| read())?;
    let shards = Rc::new(shards);
    PLACEMENTS.with(|p| {
        *p.borrow_mut() = Some(Placements {
            fingerprint,
            at: Instant::now(),
            groupid,
            shards: shards.clone(),
        })
    });
    Ok((groupid, shards))
}

/// A relation's statistics counters (this session's stats snapshot), zero when it has none.
fn tab_entry(relid: pg_sys::Oid) -> [i64; 6] {
    // SAFETY: a lookup in the cumulative statistics; NULL when the relation has no entry
    let e = unsafe { pg_sys::pgstat_fetch_stat_tabentry(relid) };
    if e.is_null() {
        return [0; 6];
    }
    let e = unsafe { &*e };
    [
        e.numscans,
        e.tuples_returned,
        e.tuples_fetched,
        e.tuples_inserted,
        e.tuples_updated,
        e.tuples_deleted,
    ]
}

/// The cumulative counters of every distributed shard group stored here, colocated shards
/// summed: scans (the relation's and its indexes'), rows read (returned and fetched, and fetched
/// through its indexes) and rows written (inserted, updated, deleted), the figures of
/// pg_stat_user_tables, read from the statistics directly.
fn group_readings(shards: &[citus::LocalShard]) -> Vec<autoscale_core::load::GroupReading> {
    let mut groups: std::collections::BTreeMap<(i32, &str), [i64; 3]> = Default::default();
    for s in shards.iter().filter(|s| s.distributed) {
        let Some(min) = s.shardminvalue.as_deref() else {
            continue;
        };
        let [scans, returned, fetched, ins, upd, del] = tab_entry(s.relid);
        let (mut scans, mut read) = (scans, returned + fetched);
        for i in &s.indexes {
            let x = tab_entry(*i);
            scans += x[0];
            read += x[2];
        }
        let g = groups.entry((s.colocationid, min)).or_default();
        g[0] += scans;
        g[1] += read;
        g[2] += ins + upd + del;
    }
    groups
        .into_iter()
        .map(|((c, min), [scans, read, written])| (c, min.to_string(), scans, read, written).into())
        .collect()
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The CPU limit that applies to this process: the first cgroup v2 `cpu.max` with a quota, walking
/// up from our own cgroup. Returns (cgroup dir, cores).
fn cgroup_limit() -> Option<(String, f64)> {
    let own = procfs::parse_self_cgroup(&read("/proc/self/cgroup").ok()?)?;
    let mut path = own.trim_end_matches('/').to_string();
    loop {
        let dir = format!("/sys/fs/cgroup{path}");
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/cpu.max")) {
            if let Ok(Some(cores)) = procfs::parse_cgroup_cpu_max(&text) {
                return Some((dir, cores));
            }
        }
        match path.rfind('/') {
            Some(i) => path.truncate(i),
            None => return None,
        }
        if path.is_empty() {
            // the root cgroup has no cpu.max
            return None;
        }
    }
}

fn cpu_reading(at: f64) -> Result<CpuReading, String> {
    if let Some((dir, cores)) = cgroup_limit() {
        if let Ok(text) = read(&format!("{dir}/cpu.stat")) {
            if let Ok(usage_usec) = procfs::parse_cgroup_cpu_stat(&text) {
                return Ok(CpuReading {
                    source: "cgroup".into(),
                    busy_seconds: usage_usec as f64 / 1e6,
                    capacity_seconds: at * cores,
                    cores,
                });
            }
        }
    }
    let stat = procfs::parse_proc_stat(&read("/proc/stat")?).map_err(|e| e.to_string())?;
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    };
    Ok(CpuReading {
        source: "proc_stat".into(),
        busy_seconds: stat.busy_ticks as f64 / hz,
        capacity_seconds: stat.total_ticks as f64 / hz,
        cores: stat.cpus as f64,
    })
}

fn data_directory() -> String {
    unsafe {
        let p = pg_sys::DataDir;
        if p.is_null() {
            ".".into()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn disk(path: &str) -> Result<Disk, String> {
    let c = std::ffi::CString::new(path).map_err(|e| e.to_string())?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(format!(
            "statvfs({path}): {}",
            std::io::Error::last_os_error()
        ));
    }
    let frsize = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    } as u64;
    Ok(Disk {
        path: path.to_string(),
        total_bytes: st.f_blocks as u64 * frsize,
        // what an unprivileged writer (the server) can still use
        free_bytes: st.f_bavail as u64 * frsize,
    })
}

/// One statement, on the functions under the pg_stat_* views: planned once per session (a fresh
/// backend, as Citus's fan-out opens, spends most of it planning). `$1`: measure the database size.
const STATS_SQL: &str = "SELECT a.total, a.active, d.commits, d.rollbacks,
                        CASE WHEN $1 THEN pg_catalog.pg_database_size(pg_catalog.current_database()) END,
                        d.hit, d.read, pg_catalog.current_setting('max_connections')::bigint,
                        CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN
                          (SELECT max(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),
                                                                 coalesce(w.replay_lsn, w.flush_lsn, w.write_lsn)))::bigint
                             FROM pg_catalog.pg_stat_get_wal_senders() w WHERE w.state = 'streaming')
                        END
                   FROM (SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS total,
                                count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'active') AS active
                           FROM pg_catalog.pg_stat_get_activity(NULL)) a,
                        (SELECT coalesce(sum(pg_catalog.pg_stat_get_db_xact_commit(oid)), 0)::bigint AS commits,
                                coalesce(sum(pg_catalog.pg_stat_get_db_xact_rollback(oid)), 0)::bigint AS rollbacks,
                                coalesce(sum(pg_catalog.pg_stat_get_db_blocks_hit(oid)), 0)::bigint AS hit,
                                coalesce(sum(pg_catalog.pg_stat_get_db_blocks_fetched(oid)
                                             - pg_catalog.pg_stat_get_db_blocks_hit(oid)), 0)::bigint AS read
                           FROM pg_catalog.pg_database) d";

/// Reads this node's load. Errors name the file or query that failed.
pub fn read_node_stats() -> Result<NodeStats, String> {
    let at = now_epoch();
    let cpu = cpu_reading(at)?;
    let load = procfs::parse_loadavg(&read("/proc/loadavg")?).map_err(|e| e.to_string())?;
    let mem = procfs::parse_meminfo(&read("/proc/meminfo")?).map_err(|e| e.to_string())?;
    let disk = disk(&data_directory())?;
    // sizes stat every file: measured again only when the cached ones are too old
    let cached = cached_sizes();
    let measure = cached.is_none();
    // a long-lived session (the background worker) must not read a cached stats snapshot
    unsafe { pg_sys::pgstat_clear_snapshot() };
    let (total, active, commit, rollback, dbsize, blocks, max_connections, lag) =
        select_first_kept(STATS_SQL, measure, |row| {
            Ok((
                row.get::<i64>(1)?.unwrap_or(0),
                row.get::<i64>(2)?.unwrap_or(0),
                row.get::<i64>(3)?.unwrap_or(0),
                row.get::<i64>(4)?.unwrap_or(0),
                row.get::<i64>(5)?,
                Blocks {
                    hit: row.get::<i64>(6)?.unwrap_or(0),
                    read: row.get::<i64>(7)?.unwrap_or(0),
                },
                row.get::<i64>(8)?,
                row.get::<i64>(9)?,
            ))
        })
        .and_then(|r| r.ok_or(pgrx::spi::SpiError::NoTupleTable))
        .map_err(|e| format!("reading pg_stat_*: {e}"))?;
    // a Citus node without a local group row has not been added anywhere: it is a coordinator
    let (is_coordinator, shard_bytes, shard_groups, shards_read) = if citus::installed() {
        match placements() {
            Ok((groupid, shards)) => {
                let bytes = if measure {
                    citus::relations_bytes(shards.iter().map(|s| s.relid).collect())
                        .map_err(|e| format!("measuring the shard placements: {e}"))?
                } else {
                    None
                };
                (
                    groupid.unwrap_or(0) == 0,
                    bytes,
                    Some(group_readings(&shards)),
                    true,
                )
            }
            Err(_) => (citus::role() == citus::Role::Coordinator, None, None, false),
        }
    } else {
        (false, None, None, true)
    };
    let (database_size, shard_bytes, sizes_age) = match cached {
        Some(c) => (c.database, c.shards, c.at.elapsed().as_secs_f64()),
        None => {
            let fresh = Sizes {
                at: Instant::now(),
                database: dbsize.unwrap_or(0),
                shards: shard_bytes,
            };
            // a failed shard read is measured again next time, not kept
            if shards_read {
                SIZES.with(|c| c.set(Some(fresh)));
            }
            (fresh.database, fresh.shards, 0.0)
        }
    };
    let tenants = if citus::installed() {
        citus::local_tenants()
            .ok()
            .flatten()
            .and_then(|t| serde_json::from_str(&t).ok())
    } else {
        None
    };
    Ok(NodeStats {
        version: env!("CARGO_PKG_VERSION").to_string(),
        at,
        cpu,
        load,
        memory: Memory {
            total_bytes: mem.total_bytes,
            available_bytes: mem.available_bytes,
        },
        disk,
        connections: Connections { total, active },
        xact: Xact { commit, rollback },
        database_size,
        shard_bytes,
        sizes_age_secs: Some(sizes_age),
        is_coordinator,
        blocks: Some(blocks),
        max_connections,
        replication_lag_bytes: lag,
        statements: statements(),
        shard_groups,
        tenants,
    })
}

/// pg_stat_statements' totals when it is installed in this database and loaded; `None`
/// otherwise (never an error: a missing or unloaded module is simply no metric).
fn statements() -> Option<Statements> {
    if unsafe { pg_sys::IsInParallelMode() } {
        return None;
    }
    // the schema comes from the catalog, quoted; no user input
    let schema = Spi::get_one::<String>(
        "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
           JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
          WHERE e.extname = 'pg_stat_statements'",
    )
    .ok()
    .flatten()?;
    let sql = format!(
        "SELECT sum(calls)::bigint, sum(total_exec_time)::float8 FROM {schema}.pg_stat_statements"
    );
    match crate::infra::subxact::catch(move || Spi::get_two::<i64, f64>(&sql)) {
        Ok(Ok((Some(calls), Some(total_exec_ms)))) => Some(Statements {
            calls,
            total_exec_ms,
        }),
        _ => None,
    }
}
