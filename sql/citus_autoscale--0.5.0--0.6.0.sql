-- citus_autoscale 0.5.0 -> 0.6.0. Applied by ALTER EXTENSION citus_autoscale UPDATE.
-- Every schema change of 0.6.0 is here, in the order it was made; an upgraded install must have exactly the
-- objects of a fresh 0.6.0 install (pg_test/scenarios/00_upgrade.sh compares the catalogs).
\echo Use "ALTER EXTENSION citus_autoscale UPDATE" to load this file. \quit

-- === the library first ===
-- A preloaded library stays loaded until PostgreSQL restarts: new files installed over a running server leave
-- the old library in memory. library_version() answers from the library actually loaded, so the update stops
-- here, before it changes anything, while the old one is still in memory.
DO $library$
BEGIN
  IF pg_catalog.string_to_array(autoscale.library_version(), '.')::int[] < '{0,6,0}'::int[] THEN
    RAISE EXCEPTION 'citus_autoscale: the library loaded in this server is older than 0.6.0, the version this update installs'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'PostgreSQL loaded citus_autoscale ' || autoscale.library_version() || ' at its start '
                     '(shared_preload_libraries) and keeps that library until it restarts; the new files are installed '
                     'but not loaded. Nothing was changed.',
            HINT = 'restart PostgreSQL on this node so that it loads the new library, then run the update again';
  END IF;
END $library$;

-- === metrics() exports each predictive policy's forecast (0.6.0) ===
COMMENT ON FUNCTION autoscale.metrics() IS
  'The autoscaler''s state as Prometheus text (exposition format 0.0.4), for sql_exporter, postgres_exporter custom '
  'queries or any scraper: autoscale_mode, autoscale_workers, autoscale_last_sample_age_seconds, per node '
  '(labels node, role) up, cpu, load1, memory, disk, connections, commits/s, database and shard bytes, shards from the '
  'latest sample; per policy its value and desired workers; per predictive policy with a forecast '
  '(autoscale_policy_forecast, autoscale_policy_forecast_error_ratio, autoscale_policy_forecast_crosses_in_seconds, '
  'autoscale_policy_forecast_cycle_seconds: the period of the cycle it uses, 0 for none); the bounds of each '
  'schedule that applies now '
  '(autoscale_schedule_min_workers, autoscale_schedule_max_workers, label schedule); running operations and their progress, operations by '
  'kind and status, the standby pool by state, pending provision requests, paused, dead workers (replaceable or '
  'not). Reads only.';
