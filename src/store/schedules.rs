//! autoscale.schedules: the stored schedules (worker bounds by the clock). Owns the table's SQL;
//! the schedules are validated (autoscale_core::schedule::Schedule::compile) before they get here.

use autoscale_core::schedule::Schedule;
use pgrx::prelude::*;

use crate::infra::errors::Result;

/// All schedules, by name.
pub fn load() -> Result<Vec<Schedule>> {
    Ok(Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(
            "SELECT name, cron, min_workers, max_workers, time_zone,
                    extract(epoch FROM duration)::float8
               FROM autoscale.schedules ORDER BY name",
            None,
            &[],
        )? {
            out.push(Schedule {
                name: r.get(1)?.unwrap_or_default(),
                cron: r.get(2)?.unwrap_or_default(),
                min_workers: r.get::<i32>(3)?.map(|v| v.max(0) as u32),
                max_workers: r.get::<i32>(4)?.map(|v| v.max(0) as u32),
                time_zone: r.get(5)?.unwrap_or_default(),
                duration: r.get(6)?.unwrap_or(0.0),
            });
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })?)
}

/// Stores (creates or replaces) a schedule.
pub fn store(s: &Schedule) -> Result<()> {
    Ok(Spi::run_with_args(
        "INSERT INTO autoscale.schedules AS s (name, cron, min_workers, max_workers, time_zone, duration)
         VALUES ($1, $2, $3, $4, $5, pg_catalog.make_interval(secs => $6))
         ON CONFLICT (name) DO UPDATE SET
               cron = excluded.cron, min_workers = excluded.min_workers,
               max_workers = excluded.max_workers, time_zone = excluded.time_zone,
               duration = excluded.duration, updated_at = pg_catalog.now()",
        &[
            s.name.clone().into(),
            s.cron.clone().into(),
            s.min_workers.map(|v| v as i32).into(),
            s.max_workers.map(|v| v as i32).into(),
            s.time_zone.clone().into(),
            s.duration.into(),
        ],
    )?)
}

/// Drops the schedule `name`; whether it existed.
pub fn drop(name: &str) -> Result<bool> {
    Ok(Spi::get_one_with_args::<i64>(
        "WITH d AS (DELETE FROM autoscale.schedules WHERE name = $1 RETURNING 1) SELECT count(*) FROM d",
        &[name.into()],
    )?
    .unwrap_or(0)
        > 0)
}
