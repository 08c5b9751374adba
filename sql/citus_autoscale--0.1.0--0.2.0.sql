-- citus_autoscale 0.1.0 -> 0.2.0. Applied by ALTER EXTENSION citus_autoscale UPDATE.
-- Every schema change of 0.2.0 is here, in the order it was made; an upgraded install must have exactly the
-- objects of a fresh 0.2.0 install (pg_test/scenarios/00_upgrade.sh compares the catalogs).
-- Released scripts are never edited: 0.2.0's changes after its release go into a 0.2.0--<next> script.
\echo Use "ALTER EXTENSION citus_autoscale UPDATE" to load this file. \quit

-- === single node (issue 11) ===
-- A node that holds shards (or should) is a data node, the coordinator included; the policies read
-- the load of the data nodes, min_workers may be 0, explain() and status name the data nodes.
ALTER TABLE autoscale.node_samples ADD COLUMN data_node boolean;
COMMENT ON COLUMN autoscale.node_samples.data_node IS
  'The node holds shards of distributed tables or should (shouldhaveshards), the coordinator included: the policies '
  'read the load of these nodes. Reference and citus local tables do not count. NULL without Citus.';

CREATE OR REPLACE VIEW autoscale.latest_node_load AS
SELECT DISTINCT ON (nodename, nodeport)
       sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable, error,
       cpu_busy_pct, load1, mem_used_pct, disk_used_pct, connections, active_connections,
       commits_per_sec, database_size, shard_count, shard_bytes, data_node
  FROM autoscale.node_samples
 WHERE sampled_at > pg_catalog.now() - interval '1 day'
 ORDER BY nodename, nodeport, sampled_at DESC;
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
       (SELECT count(*) FROM autoscale.standby_nodes WHERE state IN ('available', 'returned')) AS standby_available,
       (SELECT pg_catalog.jsonb_object_agg(state, n)
          FROM (SELECT state, count(*) AS n FROM autoscale.standby_nodes GROUP BY state) s) AS standby_pool,
       GREATEST(interval '0',
                (SELECT max(finished_at) FROM autoscale.operations WHERE kind = 'scale_out' AND status = 'succeeded')
                + (SELECT max(cooldown_out) FROM autoscale.policy_config) - pg_catalog.now()) AS scale_out_cooldown_left,
       GREATEST(interval '0',
                (SELECT max(finished_at) FROM autoscale.operations
                  WHERE kind IN ('scale_out', 'scale_in') AND status = 'succeeded')
                + (SELECT max(cooldown_in) FROM autoscale.policy_config) - pg_catalog.now()) AS scale_in_cooldown_left,
       (SELECT max(started_at) FROM autoscale.operations) AS last_operation_at,
       ARRAY(SELECT s.nodename || ':' || s.nodeport || CASE WHEN s.is_coordinator THEN ' (coordinator)' ELSE '' END
               FROM autoscale.node_samples s
              WHERE s.sample_id = w.sample_id AND s.data_node
              ORDER BY s.is_coordinator DESC, s.nodename, s.nodeport) AS data_nodes
  FROM autoscale.control c
  LEFT JOIN LATERAL (SELECT * FROM autoscale.worker_count ORDER BY sampled_at DESC LIMIT 1) w ON true
  LEFT JOIN autoscale.operations o ON o.status = 'running';
COMMENT ON VIEW autoscale.status IS
  'One row: mode, active and unreachable workers at the last sample, the running operation and its step, the last '
  'decision of the policy engine and its reasons, a pause, the standby pool by state, the cooldowns left, and the '
  'data nodes of the last sample (nodes that hold or should hold shards; the coordinator marked as such).';

-- explain() gains the column data_nodes
DROP FUNCTION autoscale.explain();
CREATE  FUNCTION autoscale."explain"() RETURNS TABLE (
	"policy" TEXT,  /* String */
	"metric" TEXT,  /* String */
	"aggregate" TEXT,  /* String */
	"current_value" double precision,  /* Option < f64 > */
	"rule" TEXT,  /* String */
	"held_for" interval,  /* Interval */
	"cooldown_left" interval,  /* Interval */
	"workers" INT,  /* i32 */
	"desired_workers" INT,  /* i32 */
	"decision" TEXT,  /* String */
	"reasons" TEXT[],  /* Vec < String > */
	"data_nodes" TEXT[]  /* Vec < String > */
)
STRICT STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'explain_wrapper';
REVOKE ALL ON FUNCTION autoscale.explain() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.explain() TO pg_monitor;
COMMENT ON FUNCTION autoscale.explain() IS
  'Per policy, from the recorded samples and without acting: current value, rule, how long the condition has held, '
  'cooldown left, current and desired workers, the decision (out, in, hold) with its reasons, and data_nodes: the '
  'nodes whose load the value is read from (host:port, the coordinator marked (coordinator)).';
COMMENT ON FUNCTION autoscale.set_policy(text, text, text, double precision, double precision, double precision,
                                         double precision, interval, interval, interval, interval, integer, integer,
                                         integer, text) IS
  'Creates or replaces a scaling policy. Threshold: scale out when the metric (cpu, memory, disk, connections, '
  'active_connections, commits_per_sec, load1, custom) aggregated by avg or max over the data nodes (nodes that hold '
  'or should hold shards, the coordinator included when it does) stays above scale_out_above for scale_out_for, scale '
  'in when below scale_in_below for scale_in_for. Target tracking (target => x): desired data nodes = ceil(data nodes '
  '* value / target), within tolerance no change. cooldown applies after a scale-out, scale_in_cooldown (default '
  'cooldown) after a scale-in; min_workers..max_workers bound the size (min_workers 0: the coordinator alone, a single '
  'node, refused unless it can take every shard and has the disk for them); step '
  'workers join in one scale-out (one rebalance) or leave in one scale-in (one drain job). '
  'metric => ''custom'' takes custom_sql, a query returning one number (superuser only; run each sample under a 2 s '
  'statement timeout with search_path pg_catalog: qualify table names). Returns the stored policy.';
COMMENT ON FUNCTION autoscale.scale_out(text, integer, text, integer) IS
  'Adds workers now: the given host and port, else up to nodes (1..64) available nodes of the standby pool, else a '
  'provision request (outbox row, NOTIFY autoscale_provision, webhook) answered by one node; then one rebalance onto '
  'them. With autoscale.coordinator_shards = ''shed'' a coordinator that holds shards gets shouldhaveshards = false '
  'before that rebalance, which moves its shards to the workers. Same guards as the policies.';
COMMENT ON FUNCTION autoscale.scale_in(text, integer, text) IS
  'Removes a worker: shouldhaveshards = false, a drain_only rebalance job, citus_cleanup_orphaned_resources, a check '
  'that no placement is left, citus_remove_node, back to the pool as returned with a deprovision request. On any '
  'failure shouldhaveshards is set back. Refuses the coordinator and going below min_workers. Removing the last '
  'worker (back to a single node) is refused unless the coordinator can take every shard: shouldhaveshards = true '
  '(or autoscale.coordinator_shards = ''shed'', which sets it first) and free disk for the workers'' shard bytes '
  'plus 20%.';
