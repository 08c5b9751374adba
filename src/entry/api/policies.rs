//! Policies and pausing: set_policy(), drop_policy(), pause(), resume().

use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::JsonB;

use super::{duration_arg, interval_secs, req, MAX_INTERVAL_SECS};
use crate::infra::errors::{AutoscaleError, OrReport, Result};
use crate::infra::privilege;
use crate::services::decide;
use crate::services::sampler::custom;
use crate::store::{control, events, policies};

/// Whether the real calling user may configure custom SQL. set_policy() is not SECURITY
/// DEFINER, so GetUserId() is the user the call really runs as: inside an expression index that
/// ANALYZE evaluates it is the table's owner, inside someone's SECURITY DEFINER function that
/// function's owner. A security-restricted operation is never a place to configure SQL.
fn require_superuser(what: &str) -> Result<(), AutoscaleError> {
    let (user, restricted) =
        unsafe { (pg_sys::GetUserId(), pg_sys::InSecurityRestrictedOperation()) };
    if restricted {
        return Err(AutoscaleError::Privilege(format!(
            "{what} cannot be configured inside a security-restricted operation (an index \
             expression, ANALYZE, a materialized view refresh)"
        )));
    }
    if unsafe { pg_sys::superuser_arg(user) } {
        Ok(())
    } else {
        Err(AutoscaleError::Privilege(format!(
            "{what} requires superuser"
        )))
    }
}

/// Creates or replaces a policy. Give either `target` (target tracking) or thresholds.
/// Not SECURITY DEFINER: the caller's EXECUTE grant admits it, custom SQL is checked against the
/// real calling user, and only the validated row is written with the extension owner's rights.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn set_policy(
    name: Option<&str>,
    metric: default!(Option<&str>, "'cpu'"),
    aggregate: default!(Option<&str>, "'avg'"),
    scale_out_above: default!(Option<f64>, "NULL"),
    scale_in_below: default!(Option<f64>, "NULL"),
    target: default!(Option<f64>, "NULL"),
    tolerance: default!(Option<f64>, "0.1"),
    scale_out_for: default!(Option<Interval>, "'2 min'"),
    scale_in_for: default!(Option<Interval>, "'15 min'"),
    cooldown: default!(Option<Interval>, "'10 min'"),
    scale_in_cooldown: default!(Option<Interval>, "NULL"),
    min_workers: default!(Option<i32>, "2"),
    max_workers: default!(Option<i32>, "16"),
    step: default!(Option<i32>, "1"),
    custom_sql: default!(Option<&str>, "NULL"),
    predictive: default!(Option<bool>, false),
) -> JsonB {
    let name = req(
        "name",
        name,
        "a policy name: lower-case letters, digits and _",
    );
    let metric = req(
        "metric",
        metric,
        "cpu, memory, disk, connections, active_connections, commits_per_sec, load1, custom, tps, \
         connection_saturation, replication_lag, mean_statement_ms or cache_miss_ratio",
    );
    let aggregate = req("aggregate", aggregate, "avg or max");
    let tolerance = req("tolerance", tolerance, "a fraction between 0 and 1");
    let scale_out_for = req("scale_out_for", scale_out_for, "an interval >= 0");
    let scale_in_for = req("scale_in_for", scale_in_for, "an interval >= 0");
    let cooldown = req("cooldown", cooldown, "an interval >= 0");
    let min_workers = req("min_workers", min_workers, "an integer between 1 and 1000");
    let max_workers = req("max_workers", max_workers, "an integer between 1 and 1000");
    let step = req("step", step, "an integer between 1 and 100");
    let predictive = req("predictive", predictive, "true or false");
    let args = (|| {
        Ok::<_, AutoscaleError>(decide::PolicyArgs {
            name: name.to_string(),
            metric: metric.to_string(),
            aggregate: aggregate.to_string(),
            scale_out_above,
            scale_in_below,
            target,
            tolerance,
            scale_out_for: duration_arg("scale_out_for", scale_out_for)?,
            scale_in_for: duration_arg("scale_in_for", scale_in_for)?,
            cooldown: duration_arg("cooldown", cooldown)?,
            scale_in_cooldown: scale_in_cooldown
                .map(|i| duration_arg("scale_in_cooldown", i))
                .transpose()?,
            min_workers,
            max_workers,
            step,
            custom_sql: custom_sql.map(str::to_string),
            predictive,
        })
    })()
    .or_report();
    let p = decide::build(&args).or_report();
    if let Some(sql) = &p.custom_sql {
        require_superuser("a custom metric (custom_sql)").or_report();
        if let Err(e) = custom::run_custom_guarded(sql) {
            AutoscaleError::invalid(
                "custom_sql",
                format!("'{}'", autoscale_core::safety::truncate(sql, 200)),
                format!("exactly one read-only SELECT returning one row with one number, that autoscale.custom_sql_role may run ({e})"),
            )
            .report();
        }
    }
    decide::check_against_settings(&p.policy).or_report();
    privilege::as_extension_owner(|| {
        policies::store(&p).or_report();
        events::record(
            "policy_set",
            &format!(
                "policy {} set: {} {}",
                p.policy.name,
                p.policy.metric.as_str(),
                p.policy.threshold_or_target()
            ),
            serde_json::to_value(&p.policy).ok(),
        )
        .or_report();
    });
    JsonB(serde_json::to_value(&p.policy).expect("policy serializes"))
}

/// Drops a policy; an unknown name is an error.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn drop_policy(name: Option<&str>) -> bool {
    let name = req("name", name, "the name of a policy");
    if !policies::drop(name).or_report() {
        AutoscaleError::NotFound(format!("policy \"{name}\" does not exist")).report();
    }
    events::record("policy_dropped", &format!("policy {name} dropped"), None).or_report();
    true
}

/// Pauses scaling decisions for `duration` (running operations still finish).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn pause(duration: default!(Option<Interval>, "'1 hour'")) -> TimestampWithTimeZone {
    let secs = interval_secs(req("duration", duration, "an interval > 0"));
    if secs <= 0.0 || secs > MAX_INTERVAL_SECS {
        AutoscaleError::invalid(
            "duration",
            format!("'{secs} seconds'"),
            "an interval > 0 and at most 10 years",
        )
        .report();
    }
    let until = control::pause(secs)
        .or_report()
        .expect("control row exists");
    events::record(
        "paused",
        &format!(
            "scaling paused for {}",
            autoscale_core::duration::format_secs(secs)
        ),
        None,
    )
    .or_report();
    until
}

/// Ends a pause.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn resume() -> bool {
    let was = control::resume().or_report();
    events::record("resumed", "scaling resumed", None).or_report();
    was
}
