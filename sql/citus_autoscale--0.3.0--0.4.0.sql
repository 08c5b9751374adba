-- citus_autoscale 0.3.0 -> 0.4.0. Applied by ALTER EXTENSION citus_autoscale UPDATE.
-- Every schema change of 0.4.0 is here, in the order it was made; an upgraded install must have exactly the
-- objects of a fresh 0.4.0 install (pg_test/scenarios/00_upgrade.sh compares the catalogs).
\echo Use "ALTER EXTENSION citus_autoscale UPDATE" to load this file. \quit

-- === the library first ===
-- A preloaded library stays loaded until PostgreSQL restarts: new files installed over a running server leave
-- the old library in memory. library_version() (0.3.0 on) answers from the library actually loaded, so the
-- update stops here, before it changes anything, while the old one is still in memory.
DO $library$
BEGIN
  IF pg_catalog.string_to_array(autoscale.library_version(), '.')::int[] < '{0,4,0}'::int[] THEN
    RAISE EXCEPTION 'citus_autoscale: the library loaded in this server is older than 0.4.0, the version this update installs'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'PostgreSQL loaded citus_autoscale ' || autoscale.library_version() || ' at its start '
                     '(shared_preload_libraries) and keeps that library until it restarts; the new files are installed '
                     'but not loaded. Nothing was changed.',
            HINT = 'restart PostgreSQL on this node so that it loads the new library, then run the update again';
  END IF;
END $library$;

-- === vertical scaling advice ===
CREATE  FUNCTION autoscale."resize_advice"(
	"window" interval DEFAULT '10 min' /* Option < Interval > */
) RETURNS TABLE (
	"node" TEXT,  /* String */
	"resource" TEXT,  /* String */
	"observed" double precision,  /* f64 */
	"threshold" double precision,  /* f64 */
	"factor" double precision,  /* f64 */
	"suggested_cores" INT,  /* Option < i32 > */
	"reason" TEXT  /* String */
)
STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'resize_advice_wrapper';
REVOKE ALL ON FUNCTION autoscale.resize_advice(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.resize_advice(interval) TO pg_monitor;
COMMENT ON FUNCTION autoscale.resize_advice(interval) IS
  'Vertical scaling advice from the samples of the last window (1 minute to 7 days, default 10 min): per reachable data '
  'node, a row per resource that needs a bigger machine, with the window''s median (observed), the line (threshold), '
  'by how much to grow it (factor), the vCPUs advised when the cores are known, and why. cpu: busy above 70% while the '
  'load cannot be spread further (its busiest shard group carries half of its load, or the cluster is at the highest '
  'max_workers), sized for 60%; memory: used above 85%, sized for 70%; shared_buffers: cache hit ratio below 95%, twice '
  'today''s. Sustained: at least 3 samples, 80% of them beyond the line. Advice only: nothing is resized.';
