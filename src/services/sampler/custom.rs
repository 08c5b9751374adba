//! Custom metrics: a policy's own SQL, run at each sample. The query runs as
//! `autoscale.custom_sql_role` (never a superuser), read-only, under a statement timeout, in a
//! subtransaction that is always rolled back; its value (or its error) is recorded with the sample.

use autoscale_core::policy::Metric;
use pgrx::prelude::*;

use crate::infra::errors::Result;
use crate::infra::{privilege, subxact};
use crate::store::{events, policies, samples};

/// Largest time a custom metric query may run, per sample.
const CUSTOM_TIMEOUT_MS: i32 = 2_000;

/// Runs a custom metric query: one row, one numeric column, not NULL.
pub fn run_custom(sql: &str) -> std::result::Result<f64, String> {
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
fn one_select(sql: &str) -> std::result::Result<(), String> {
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
pub fn run_custom_guarded(sql: &str) -> std::result::Result<f64, String> {
    let role = privilege::custom_sql_role()?;
    one_select(sql)?;
    let sql = sql.to_string();
    subxact::catch_and_roll_back(move || {
        privilege::as_custom_sql_role(role, || {
            subxact::with_statement_timeout(CUSTOM_TIMEOUT_MS, || run_custom(&sql))
        })
    })
    .and_then(|r| r)
}

/// Evaluates every custom policy's query and records the values for this sample.
pub fn sample(sample_id: i64, sampled_at: &str) -> Result<usize> {
    let policies = policies::load()?;
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
            events::record(
                "custom_metric_failed",
                &format!("custom metric of policy {} failed: {e}", p.policy.name),
                Some(serde_json::json!({"policy": p.policy.name, "error": e})),
            )?;
        }
        samples::insert_metric_sample(sample_id, sampled_at, &p.policy.name, value, error)?;
        n += 1;
    }
    Ok(n)
}
