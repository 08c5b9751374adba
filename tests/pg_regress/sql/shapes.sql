-- The shapes users and dashboards read: the functions with their arguments and results, the
-- columns of the views and of explain(); a policy as set_policy() returns it and explain() and
-- the policies view show it (no samples here, so values are absent).
\pset format unaligned
SELECT p.oid::regprocedure AS function, pg_catalog.pg_get_function_result(p.oid) AS returns,
       p.prosecdef AS security_definer, p.proacl IS NULL AS public_default
  FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'autoscale'::regnamespace
 ORDER BY p.proname COLLATE "C", 1::text;
SELECT c.relname AS view, a.attname AS column, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'autoscale'::regnamespace AND c.relkind = 'v'
 ORDER BY c.relname COLLATE "C", a.attnum;
SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, min_workers => 2, max_workers => 8)
       - 'created_at' - 'updated_at' AS policy;
SELECT name, kind, metric, aggregate, rule, min_workers, max_workers, step FROM autoscale.policies;
SELECT policy, metric, aggregate, current_value, rule, decision FROM autoscale.explain();
-- a predictive policy without history: no forecast, and the note says why
SELECT autoscale.set_policy('cpu', scale_out_above => 80, scale_in_below => 25, predictive => true) ->> 'predictive'
       AS predictive;
SELECT policy, decision, forecast, horizon, model_error, forecast_note FROM autoscale.explain();
-- the capacity plan without rollups says it cannot answer yet
SELECT metric, unit, current_value, in_3_months, crosses_at, history, action FROM autoscale.capacity_plan();
SELECT level, rows FROM autoscale.history_storage;
SELECT autoscale.drop_policy('cpu');
SELECT count(*) AS policies_left FROM autoscale.policies;
-- the PostgreSQL / Citus pair: without Citus the brain runs on any PostgreSQL this release builds for
SELECT citus IS NULL AS no_citus, support, may_act, library = autoscale.library_version() AS same_library,
       note LIKE 'PostgreSQL 1_ without Citus: sampling and decisions only' AS note_says_so
  FROM autoscale.version_support();
