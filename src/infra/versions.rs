//! The PostgreSQL / Citus pair this server runs, judged by `autoscale_core::compat`: the one
//! place the extension asks which versions it is on (the act guard, the worker's log,
//! `explain()`, `autoscale.version_support()` and the warning at `CREATE EXTENSION`).

use autoscale_core::compat::{self, Assessment, CitusVersion};
use pgrx::prelude::*;

use super::citus;

/// The pair this server runs.
#[derive(Debug, Clone)]
pub struct Pair {
    /// PostgreSQL's major version (15, 18, ...): the one this library was built for, which is the
    /// only one that loads it.
    pub postgres_major: u32,
    /// `pg_extension.extversion` of citus; None when Citus is not created in this database.
    pub citus: Option<String>,
}

impl Pair {
    pub fn citus_version(&self) -> Option<CitusVersion> {
        self.citus.as_deref().and_then(compat::parse_citus_version)
    }

    pub fn assess(&self) -> Assessment {
        match (&self.citus, self.citus_version()) {
            (Some(text), None) => Assessment {
                support: compat::Support::Unsupported,
                note: format!(
                    "Citus version '{text}' could not be read; autoscale starts no operation"
                ),
            },
            (_, v) => compat::assess(self.postgres_major, v),
        }
    }
}

/// The pair of this server and database, now: one catalog lookup, and one query when Citus is
/// there (the guards and the worker's log line ask every tick).
pub fn current() -> Pair {
    let citus = if citus::installed() {
        citus::extversion().ok().flatten()
    } else {
        None
    };
    Pair {
        postgres_major: pg_sys::PG_MAJORVERSION_NUM,
        citus,
    }
}

/// `server_version`, such as `18.6`, for what is shown to people.
pub fn server_version() -> String {
    Spi::get_one::<String>("SELECT pg_catalog.current_setting('server_version')")
        .ok()
        .flatten()
        .unwrap_or_default()
}
