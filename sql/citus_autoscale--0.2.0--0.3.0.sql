-- citus_autoscale 0.2.0 -> 0.3.0. Applied by ALTER EXTENSION citus_autoscale UPDATE.
-- Every schema change of 0.3.0 is here, in the order it was made; an upgraded install must have exactly the
-- objects of a fresh 0.3.0 install (pg_test/scenarios/00_upgrade.sh compares the catalogs).
\echo Use "ALTER EXTENSION citus_autoscale UPDATE" to load this file. \quit

-- === the library first ===
-- A preloaded library stays loaded until PostgreSQL restarts: new files installed over a running server leave
-- the old library in memory, and every function of this script would point at a symbol it does not have. The
-- first function of 0.3.0 is created first: when its symbol is missing, the update stops here and changes nothing.
DO $library$
BEGIN
  CREATE FUNCTION autoscale."library_version"() RETURNS TEXT /* &str */
  IMMUTABLE STRICT PARALLEL SAFE
  LANGUAGE c /* Rust */
  AS 'MODULE_PATHNAME', 'library_version_wrapper';
EXCEPTION WHEN undefined_function THEN
  RAISE EXCEPTION 'citus_autoscale: the library loaded in this server is older than 0.3.0, the version this update installs'
    USING ERRCODE = 'object_not_in_prerequisite_state',
          DETAIL = 'PostgreSQL loaded citus_autoscale at its start (shared_preload_libraries) and keeps that library '
                   'until it restarts; the new files are installed but not loaded. Nothing was changed.',
          HINT = 'restart PostgreSQL on this node so that it loads the new library, then run the update again';
END $library$;
REVOKE ALL ON FUNCTION autoscale.library_version() FROM PUBLIC;

-- === versions (issue 20): the PostgreSQL / Citus pair and whether it is supported ===
CREATE FUNCTION autoscale."version_support"() RETURNS TABLE (
	"postgres" TEXT,  /* String */
	"citus" TEXT,  /* Option < String > */
	"library" TEXT,  /* String */
	"support" TEXT,  /* String */
	"may_act" bool,  /* bool */
	"note" TEXT  /* String */
)
STRICT STABLE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'version_support_wrapper';
REVOKE ALL ON FUNCTION autoscale.version_support() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.version_support(), autoscale.library_version() TO pg_monitor;
COMMENT ON FUNCTION autoscale.version_support() IS
  'The PostgreSQL / Citus pair of this server and database, the version of the citus_autoscale library loaded, and '
  'whether this release supports the pair: tested (PostgreSQL 15 with Citus 13.2, PostgreSQL 18 with Citus 14.0), '
  'built, not tested (PostgreSQL 16 and 17 with Citus 13.2 or 14.0, a newer Citus 14 minor), or not supported (then '
  'may_act is false: autoscale samples and decides but starts no operation), with the sentence that says why.';
COMMENT ON FUNCTION autoscale.library_version() IS
  'The version of the citus_autoscale library loaded in this server. After new files are installed it stays the old '
  'one until PostgreSQL restarts; ALTER EXTENSION citus_autoscale UPDATE refuses to run before that.';
COMMENT ON FUNCTION autoscale.explain() IS
  'Per policy, from the recorded samples and without acting: current value, rule, how long the condition has held, '
  'cooldown left, current and desired workers, the decision (out, in, hold) with its reasons, data_nodes: the '
  'nodes whose load the value is read from (host:port, the coordinator marked (coordinator)), and scale_out_path: '
  'the path a scale-out takes (split from a ready warm clone, or logical) and why. For predictive policies also the '
  'forecast value at now + horizon, the horizon (how long a scale-out takes here), the model''s mean one-step error, '
  'and a note such as "forecast to cross 80 in 7m; a scale-out takes 6m here". dead_nodes: the workers declared '
  'dead (autoscale.dead_nodes), each host:port: what it holds and what happens to it. Rows that are not policies: '
  'load_skew and hot_tenant while they apply, and versions when this PostgreSQL / Citus pair is not a tested one '
  '(autoscale.version_support()).';

-- Say it at CREATE EXTENSION (and at the update) when this PostgreSQL / Citus pair is not a tested one.
DO $versions$
DECLARE v record;
BEGIN
  SELECT * INTO v FROM autoscale.version_support();
  IF NOT v.may_act THEN
    RAISE WARNING 'citus_autoscale: %', v.note
      USING HINT = 'See the Supported versions table in the README; SELECT * FROM autoscale.version_support() tells the pair.';
  ELSIF v.support <> 'tested' THEN
    RAISE NOTICE 'citus_autoscale: %', v.note;
  END IF;
END $versions$;

-- === the autoscale_by_load strategy's cost while the data nodes are idle: 1 for every shard (by count) ===
COMMENT ON FUNCTION autoscale.shard_load_cost(bigint) IS
  'The shard cost function of the rebalance strategy autoscale_by_load (registered with citus_add_rebalance_strategy '
  'on the coordinator at the first tick): the measured load of the shard''s group (autoscale.shard_group_load, '
  'operations/s) plus a base of a tenth of the mean group load, so cold groups still spread; 1 for every shard while '
  'no load was measured or the data nodes are idle (mean below 1 operation/s: the strategy then balances shard '
  'groups by count). Citus calls it while planning.';

-- === the autoscale_by_load strategy's improvement_threshold: 0.5 -> 0.2 ===
-- 0.5 (by_disk_size's) stopped the plan with four of six equally hot shard groups on one of two nodes; see
-- docs/load.md. Only the value 0.2.0 registered is replaced: a value set by hand is kept. The row
-- exists on the coordinator only; elsewhere (or without Citus) this changes nothing.
DO $strategy$
BEGIN
  IF pg_catalog.to_regclass('pg_catalog.pg_dist_rebalance_strategy') IS NOT NULL THEN
    UPDATE pg_catalog.pg_dist_rebalance_strategy SET improvement_threshold = 0.2
     WHERE name = 'autoscale_by_load' AND improvement_threshold = 0.5;
  END IF;
END $strategy$;

-- === sampling at scale (issue 22): how long each sample took ===
ALTER TABLE autoscale.worker_count ADD COLUMN sample_ms real;
COMMENT ON COLUMN autoscale.worker_count.sample_ms IS
  'Milliseconds the sample took to read every node (the parallel fan-out included) and fold the shard-group '
  'load, before its rows were written; NULL for samples taken before 0.3.0.';
-- the status view reads worker_count with "SELECT *": defined again so that it sees the new column, as a
-- fresh install's does (finalize.sql's definition, unchanged)
CREATE OR REPLACE VIEW autoscale.status AS
SELECT pg_catalog.current_setting('autoscale.mode') AS mode,
       w.worker_count AS active_workers,
       w.unreachable_workers,
       w.sampled_at AS last_sample_at,
       o.id AS operation_id,
       o.kind AS operation,
       o.step AS operation_step,
       o.nodename || ':' || o.nodeport AS operation_node,
       o.job_id AS operation_job_id,
       o.reason AS operation_reason,
       c.last_decision ->> 'direction' AS last_decision,
       (c.last_decision ->> 'desired_workers')::int AS last_desired_workers,
       c.last_decision -> 'reasons' AS last_decision_reasons,
       c.decided_at,
       CASE WHEN c.paused_until > pg_catalog.now() THEN c.paused_until END AS paused_until,
       (SELECT count(*) FROM autoscale.standby_nodes WHERE state = 'available') AS standby_available,
       (SELECT pg_catalog.jsonb_object_agg(state, n)
          FROM (SELECT state, count(*) AS n FROM autoscale.standby_nodes GROUP BY state) s) AS standby_pool,
       GREATEST(interval '0',
                (SELECT max(finished_at) FROM autoscale.operations WHERE kind IN ('scale_out', 'split_out') AND status = 'succeeded')
                + (SELECT max(cooldown_out) FROM autoscale.policy_config) - pg_catalog.now()) AS scale_out_cooldown_left,
       GREATEST(interval '0',
                (SELECT max(finished_at) FROM autoscale.operations
                  WHERE kind IN ('scale_out', 'split_out', 'scale_in') AND status = 'succeeded')
                + (SELECT max(cooldown_in) FROM autoscale.policy_config) - pg_catalog.now()) AS scale_in_cooldown_left,
       (SELECT max(started_at) FROM autoscale.operations) AS last_operation_at,
       ARRAY(SELECT s.nodename || ':' || s.nodeport || CASE WHEN s.is_coordinator THEN ' (coordinator)' ELSE '' END
               FROM autoscale.node_samples s
              WHERE s.sample_id = w.sample_id AND s.data_node
              ORDER BY s.is_coordinator DESC, s.nodename, s.nodeport) AS data_nodes,
       c.load_skew,
       (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                 'node', b.nodename || ':' || b.nodeport, 'primary', b.primary_name || ':' || b.primary_port,
                 'state', b.state, 'streaming', b.clone_streaming, 'lag_bytes', b.clone_lag_bytes,
                 'checked_at', b.clone_checked_at, 'error', b.clone_error) ORDER BY b.nodename, b.nodeport)
          FROM autoscale.standby_nodes b WHERE b.primary_name IS NOT NULL) AS clones,
       autoscale.scale_out_path(1) AS scale_out_path,
       (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                 'node', d.nodename || ':' || d.nodeport, 'unreachable_since', d.unreachable_since,
                 'replaceable', d.replaceable, 'sole_copies', d.sole_copies, 'operation_id', d.operation_id,
                 'message', d.message) ORDER BY d.declared_at)
          FROM autoscale.dead_nodes d) AS dead_nodes,
       c.hot_tenant
  FROM autoscale.control c
  LEFT JOIN LATERAL (SELECT * FROM autoscale.worker_count ORDER BY sampled_at DESC LIMIT 1) w ON true
  LEFT JOIN autoscale.operations o ON o.status = 'running';
