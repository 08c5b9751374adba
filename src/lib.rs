//! citus_autoscale: a Citus cluster that scales itself, from inside the coordinator.
//!
//! Pure logic (parsers, rates, policy engine, operation state machine) lives in the pgrx-free
//! `autoscale_core` crate (core/); this crate is the PostgreSQL side.

use pgrx::prelude::*;

mod api;
mod autopilot;
mod citus;
mod errors;
mod history;
mod metrics;
mod operations;
mod policies;
mod pool;
mod privilege;
mod provision;
mod rollups;
mod sampler;
mod settings;
mod subxact;
mod tick;
mod worker;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
#[cfg(any(test, feature = "pg_test"))]
mod tests_prediction;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::init();
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        worker::register();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries = 'citus_autoscale,pg_cron,pg_stat_statements'",
            "autoscale.database_name = 'pgrx_tests'",
            "autoscale.sample_interval = '1s'",
            "cron.database_name = 'pgrx_tests'",
        ]
    }
}
