//! citus_autoscale: a Citus cluster that scales itself, from inside the coordinator.
//!
//! Pure logic (parsers, rates, policy engine, operation state machine) lives in the pgrx-free
//! `autoscale_core` crate (core/); this crate is the PostgreSQL side, in layers that each import
//! only from the layers below them (docs/architecture.md, "Layers"):
//!
//! - [`infra`]: settings, errors, the Citus boundary (every Citus SQL string), subtransactions,
//!   privileges, the clock;
//! - [`store`]: one module per table of schema `autoscale`, owning that table's SQL and row types;
//! - [`services`]: the sampler (custom metrics included), decide (the policy engine's inputs),
//!   execute (the operation steps), provision (requests and webhooks);
//! - [`orchestration`]: the autopilot (decide and act) and the tick;
//! - [`entry`]: the SQL functions (`api/`, split by topic), the background worker, metrics.

use pgrx::prelude::*;

mod entry;
mod infra;
mod orchestration;
mod services;
mod store;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
#[cfg(any(test, feature = "pg_test"))]
mod tests_prediction;
#[cfg(any(test, feature = "pg_test"))]
mod tests_schedules;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    infra::settings::init();
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        entry::worker::register();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // pg_cron where it is installed for this PostgreSQL (scripts/test.sh says when it is not:
        // no registry here carries pg_cron for PostgreSQL 18; the pg_cron test then skips)
        // dblink first: it loads the libpq of its own PostgreSQL (its rpath), which citus_autoscale's
        // libpq then resolves to. A PostgreSQL 18 built beside Debian's 15 has Debian's libpq5 of 15
        // as the system one, which lacks what 18's dblink calls (on a real 18 system libpq5 is 18's).
        let preload = if std::env::var("CITUS_AUTOSCALE_TEST_PG_CRON").as_deref() == Ok("off") {
            "shared_preload_libraries = 'dblink,citus_autoscale,pg_stat_statements'"
        } else {
            "shared_preload_libraries = 'dblink,citus_autoscale,pg_cron,pg_stat_statements'"
        };
        vec![
            preload,
            "autoscale.database_name = 'pgrx_tests'",
            "autoscale.sample_interval = '1s'",
            "cron.database_name = 'pgrx_tests'",
        ]
    }
}
