-- citus_autoscale 0.4.0 -> 0.5.0. Applied by ALTER EXTENSION citus_autoscale UPDATE.
-- Every schema change of 0.5.0 is here, in the order it was made; an upgraded install must have exactly the
-- objects of a fresh 0.5.0 install (pg_test/scenarios/00_upgrade.sh compares the catalogs).
\echo Use "ALTER EXTENSION citus_autoscale UPDATE" to load this file. \quit

-- === the library first ===
-- A preloaded library stays loaded until PostgreSQL restarts: new files installed over a running server leave
-- the old library in memory. library_version() (0.3.0 on) answers from the library actually loaded, so the
-- update stops here, before it changes anything, while the old one is still in memory.
DO $library$
BEGIN
  IF pg_catalog.string_to_array(autoscale.library_version(), '.')::int[] < '{0,5,0}'::int[] THEN
    RAISE EXCEPTION 'citus_autoscale: the library loaded in this server is older than 0.5.0, the version this update installs'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'PostgreSQL loaded citus_autoscale ' || autoscale.library_version() || ' at its start '
                     '(shared_preload_libraries) and keeps that library until it restarts; the new files are installed '
                     'but not loaded. Nothing was changed.',
            HINT = 'restart PostgreSQL on this node so that it loads the new library, then run the update again';
  END IF;
END $library$;

-- === the compact node history ===
-- node_samples was a table of one row per node per sample (325 bytes a row with its indexes). It becomes a view
-- over autoscale.node_history (one row per sample, every node's reading in one bytea), autoscale.history_nodes
-- (the nodes the readings name) and autoscale.node_latest (each node's latest reading and the counters the next
-- rates come from). The views that read node_samples are made again over the new view; the old rows are
-- converted, sample by sample, and the old table dropped.
DROP VIEW autoscale.status;
DROP VIEW autoscale.latest_node_load;
DROP VIEW autoscale.history_storage;
ALTER TABLE autoscale.node_samples RENAME TO node_samples_0_4;

CREATE TABLE autoscale.history_nodes (
    node_key       int         GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nodename       text        NOT NULL,
    nodeport       int         NOT NULL,
    nodeid         int,
    is_coordinator boolean     NOT NULL,
    first_seen     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE NULLS NOT DISTINCT (nodename, nodeport, nodeid, is_coordinator)
);
COMMENT ON TABLE autoscale.history_nodes IS
  'The nodes the compact history names: a key per host, port, Citus node id and role, in the readings of '
  'autoscale.node_history. A row is never changed; a node re-added under a new node id gets a new key.';

CREATE TABLE autoscale.node_history (
    sample_id  bigint      NOT NULL PRIMARY KEY,
    sampled_at timestamptz NOT NULL,
    nodes      bytea       NOT NULL
) WITH (toast_tuple_target = 128);
CREATE INDEX node_history_sampled_at_idx ON autoscale.node_history (sampled_at);
COMMENT ON TABLE autoscale.node_history IS
  'The raw node history, one row per sample: every node''s reading in nodes (a compact encoding, about 50 bytes a '
  'node: percentages and rates to 0.01, byte counts exact). Read it through the view autoscale.node_samples. Pruned '
  'past autoscale.history_retention.';

CREATE TABLE autoscale.node_latest (
    nodename             text        NOT NULL,
    nodeport             int         NOT NULL,
    last_sample_id       bigint      NOT NULL,
    last_seen_at         timestamptz NOT NULL,
    last_reachable_at    timestamptz,
    first_failed_at      timestamptz,
    shard_bytes          bigint,
    node_time            double precision,
    cpu_busy_seconds     double precision,
    cpu_capacity_seconds double precision,
    xact_commit          bigint,
    xact_rollback        bigint,
    blks_hit             bigint,
    blks_read            bigint,
    stmt_calls           bigint,
    stmt_total_ms        double precision,
    PRIMARY KEY (nodename, nodeport)
);
COMMENT ON TABLE autoscale.node_latest IS
  'Each sampled node''s latest reading: its latest sample, when it last answered and the first sample it failed since '
  '(NULL while it answers), and from its latest answer the shard bytes and the cumulative counters (node clock, CPU '
  'seconds, commits, rollbacks, blocks, statements) the next sample''s rates are computed from. A row goes when the '
  'node was not seen within autoscale.history_retention.';

CREATE  FUNCTION autoscale."history_readings"(
	"nodes" bytea /* &[u8] */
) RETURNS TABLE (
	"node_key" INT,  /* i32 */
	"reachable" bool,  /* bool */
	"data_node" bool,  /* core::option::Option<bool> */
	"error" TEXT,  /* core::option::Option<alloc::string::String> */
	"cpu_busy_pct" real,  /* core::option::Option<f32> */
	"load1" real,  /* core::option::Option<f32> */
	"load5" real,  /* core::option::Option<f32> */
	"load15" real,  /* core::option::Option<f32> */
	"mem_used_pct" real,  /* core::option::Option<f32> */
	"disk_used_pct" real,  /* core::option::Option<f32> */
	"disk_free_bytes" bigint,  /* core::option::Option<i64> */
	"connections" INT,  /* core::option::Option<i32> */
	"active_connections" INT,  /* core::option::Option<i32> */
	"commits_per_sec" real,  /* core::option::Option<f32> */
	"rollbacks_per_sec" real,  /* core::option::Option<f32> */
	"database_size" bigint,  /* core::option::Option<i64> */
	"shard_count" INT,  /* core::option::Option<i32> */
	"shard_bytes" bigint,  /* core::option::Option<i64> */
	"cpu_cores" real,  /* core::option::Option<f32> */
	"shard_load" double precision,  /* core::option::Option<f64> */
	"cache_hit_ratio" real,  /* core::option::Option<f32> */
	"replication_lag" bigint,  /* core::option::Option<i64> */
	"tps" real,  /* core::option::Option<f32> */
	"connection_saturation" real,  /* core::option::Option<f32> */
	"mean_statement_ms" real  /* core::option::Option<f32> */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'history_readings_wrapper';

CREATE  FUNCTION autoscale."record_node_samples"(
	"rows" jsonb, /* pgrx::datum::json::JsonB */
	"latest" bool DEFAULT true /* bool */
) RETURNS INT /* i32 */
VOLATILE STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'record_node_samples_wrapper';

CREATE  FUNCTION autoscale."forget_node_samples"(
	"rows" jsonb /* pgrx::datum::json::JsonB */
) RETURNS INT /* i32 */
VOLATILE STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'forget_node_samples_wrapper';

CREATE VIEW autoscale.node_samples AS
SELECT h.sample_id, h.sampled_at, n.nodeid, n.nodename, n.nodeport, n.is_coordinator, r.reachable, r.error,
       r.cpu_busy_pct, r.load1, r.load5, r.load15, r.mem_used_pct, r.disk_used_pct, r.disk_free_bytes, r.connections,
       r.active_connections, r.commits_per_sec, r.rollbacks_per_sec, r.database_size, r.shard_count, r.shard_bytes,
       r.cpu_cores, r.data_node, r.shard_load, r.cache_hit_ratio, r.replication_lag, r.tps, r.connection_saturation,
       r.mean_statement_ms
  FROM autoscale.node_history h
 CROSS JOIN LATERAL autoscale.history_readings(h.nodes) r
  JOIN autoscale.history_nodes n ON n.node_key = r.node_key;
COMMENT ON VIEW autoscale.node_samples IS
  'One row per node per sample, read from the compact history (autoscale.node_history): load (CPU busy %, load '
  'averages, memory and disk used %, connections, commits/s), shard count and bytes. reachable = false marks a node '
  'that did not answer within autoscale.node_timeout. Filter on sampled_at or sample_id: the other columns are decoded '
  'from each sample. Percentages and rates are kept to 0.01, the mean statement time to 1 us. INSERT, UPDATE and '
  'DELETE change the history a row at a time. Pruned past autoscale.history_retention.';
COMMENT ON COLUMN autoscale.node_samples.cpu_busy_pct IS
  'CPU busy percent since the previous sample of this node (NULL on the first sample or after a long gap); '
  'from /proc/stat, or from cgroup v2 cpu.stat relative to cpu.max when the server runs under a CPU limit.';
COMMENT ON COLUMN autoscale.node_samples.shard_count IS 'Shard placements on the node, from pg_dist_placement.';
COMMENT ON COLUMN autoscale.node_samples.shard_bytes IS 'Bytes of the shard placements on the node, measured on the node.';
COMMENT ON COLUMN autoscale.node_samples.data_node IS
  'The node holds shards of distributed tables or should (shouldhaveshards), the coordinator included: the policies '
  'read the load of these nodes. Reference and citus local tables do not count. NULL without Citus.';
COMMENT ON COLUMN autoscale.node_samples.shard_load IS
  'Sum of the smoothed load of the shard groups on the node (operations/s, see autoscale.shard_group_load); NULL '
  'without Citus or for a node that did not report its shard groups.';
COMMENT ON COLUMN autoscale.node_samples.cache_hit_ratio IS
  'Shared-buffer hits over hits plus reads since the previous sample of this node, percent (NULL when nothing was read).';
COMMENT ON COLUMN autoscale.node_samples.replication_lag IS
  'Bytes of WAL the furthest-behind streaming standby of this node has yet to replay (the flushed, else written, position for standbys that do '
  'not replay); NULL when the node has no streaming standby.';
COMMENT ON COLUMN autoscale.node_samples.tps IS 'Transactions per second since the previous sample: commits plus rollbacks.';
COMMENT ON COLUMN autoscale.node_samples.connection_saturation IS 'Client connections over max_connections, percent.';
COMMENT ON COLUMN autoscale.node_samples.mean_statement_ms IS
  'Mean execution time of the statements run since the previous sample, from pg_stat_statements (all its entries); NULL '
  'when pg_stat_statements is not installed in the database or not loaded, or no statement ran.';

CREATE FUNCTION autoscale.node_samples_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM autoscale.forget_node_samples(pg_catalog.to_jsonb(OLD));
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM autoscale.record_node_samples(pg_catalog.to_jsonb(NEW));
    RETURN NEW;
  END IF;
  RETURN OLD;
END
$body$;
COMMENT ON FUNCTION autoscale.node_samples_write() IS
  'INSTEAD OF INSERT, UPDATE and DELETE trigger of autoscale.node_samples: writes rows into the compact history '
  '(autoscale.record_node_samples()) and removes them (autoscale.forget_node_samples()), a row at a time.';
CREATE TRIGGER node_samples_write INSTEAD OF INSERT OR UPDATE OR DELETE ON autoscale.node_samples
  FOR EACH ROW EXECUTE FUNCTION autoscale.node_samples_write();

CREATE VIEW autoscale.latest_node_load AS
SELECT s.sampled_at, s.nodeid, s.nodename, s.nodeport, s.is_coordinator, s.reachable, s.error,
       s.cpu_busy_pct, s.load1, s.mem_used_pct, s.disk_used_pct, s.connections, s.active_connections,
       s.commits_per_sec, s.database_size, s.shard_count, s.shard_bytes, s.data_node,
       s.tps, s.cache_hit_ratio, s.connection_saturation, s.replication_lag, s.mean_statement_ms
  FROM autoscale.node_latest l
  JOIN autoscale.node_samples s
    ON s.sample_id = l.last_sample_id AND s.nodename = l.nodename AND s.nodeport = l.nodeport
 WHERE l.last_seen_at > pg_catalog.now() - interval '1 day'
 ORDER BY s.nodename, s.nodeport;
COMMENT ON VIEW autoscale.latest_node_load IS 'The latest sample of every node seen in the last day.';

CREATE VIEW autoscale.status AS
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
COMMENT ON VIEW autoscale.status IS
  'One row: mode, active and unreachable workers at the last sample, the running operation and its step, the last '
  'decision of the policy engine and its reasons, a pause, the standby pool by state, the cooldowns left, the '
  'data nodes of the last sample (nodes that hold or should hold shards; the coordinator marked as such), '
  'load_skew: the load-skew trigger''s latest assessment, the warm clones of the pool (primary, streaming, replay '
  'lag, last check), the path a scale-out of one node takes (split from a ready clone, or logical) and why '
  '(explain() gives it for each policy''s decision), the dead workers (autoscale.dead_nodes: replaceable, or holding '
  'sole copies and waiting for the operator), and hot_tenant: the latest hot-tenant assessment (the tenant worth '
  'isolating and where it would go, or why none is).';

CREATE VIEW autoscale.history_storage AS
SELECT level, retention, rows, bytes, nodes, days,
       (bytes / NULLIF(nodes * days, 0))::bigint AS bytes_per_node_per_day
  FROM (SELECT 'raw' AS level, pg_catalog.current_setting('autoscale.history_retention', true) AS retention,
               (SELECT count(*) FROM autoscale.node_history) AS rows,
               pg_catalog.pg_total_relation_size('autoscale.node_history')
                 + pg_catalog.pg_total_relation_size('autoscale.history_nodes')
                 + pg_catalog.pg_total_relation_size('autoscale.node_latest') AS bytes,
               (SELECT count(*) FROM autoscale.node_latest) AS nodes,
               (SELECT extract(epoch FROM max(sampled_at) - min(sampled_at) + interval '5 seconds') / 86400
                  FROM autoscale.node_history)::float8 AS days
        UNION ALL
        SELECT '1 minute', pg_catalog.current_setting('autoscale.rollup_minute_retention', true),
               (SELECT count(*) FROM autoscale.node_samples_1min),
               pg_catalog.pg_total_relation_size('autoscale.node_samples_1min'),
               (SELECT count(DISTINCT (nodename, nodeport)) FROM autoscale.node_samples_1min),
               (SELECT extract(epoch FROM max(bucket) - min(bucket) + interval '1 minute') / 86400
                  FROM autoscale.node_samples_1min)::float8
        UNION ALL
        SELECT '1 hour', pg_catalog.current_setting('autoscale.rollup_hour_retention', true),
               (SELECT count(*) FROM autoscale.node_samples_1hour),
               pg_catalog.pg_total_relation_size('autoscale.node_samples_1hour'),
               (SELECT count(DISTINCT (nodename, nodeport)) FROM autoscale.node_samples_1hour),
               (SELECT extract(epoch FROM max(bucket) - min(bucket) + interval '1 hour') / 86400
                  FROM autoscale.node_samples_1hour)::float8) s;
COMMENT ON VIEW autoscale.history_storage IS
  'Storage of each history level: raw samples (autoscale.node_history, one row per sample holding every node, with '
  'autoscale.history_nodes and autoscale.node_latest), 1-minute and 1-hour rollups: its retention, rows, bytes on disk '
  '(with indexes), nodes (the cluster row counts as one), days covered, and bytes per node per day.';


DO $convert$
DECLARE r record;
BEGIN
  FOR r IN SELECT o.sample_id, pg_catalog.jsonb_agg(pg_catalog.to_jsonb(o)) AS nodes
             FROM autoscale.node_samples_0_4 o
            GROUP BY o.sample_id
            ORDER BY o.sample_id
  LOOP
    PERFORM autoscale.record_node_samples(r.nodes, latest => false);
  END LOOP;
END $convert$;
-- each node's latest reading, from the old table's latest row of every node (and its latest answer)
INSERT INTO autoscale.node_latest
       (nodename, nodeport, last_sample_id, last_seen_at, last_reachable_at, first_failed_at, shard_bytes, node_time,
        cpu_busy_seconds, cpu_capacity_seconds, xact_commit, xact_rollback, blks_hit, blks_read, stmt_calls,
        stmt_total_ms)
SELECT l.nodename, l.nodeport, l.sample_id, l.sampled_at, a.sampled_at,
       CASE WHEN NOT l.reachable THEN
         (SELECT min(f.sampled_at) FROM autoscale.node_samples_0_4 f
           WHERE f.nodename = l.nodename AND f.nodeport = l.nodeport AND NOT f.reachable
             AND f.sampled_at > coalesce(a.sampled_at, '-infinity'))
       END,
       a.shard_bytes, a.node_time, a.cpu_busy_seconds, a.cpu_capacity_seconds, a.xact_commit, a.xact_rollback,
       a.blks_hit, a.blks_read, a.stmt_calls, a.stmt_total_ms
  FROM (SELECT DISTINCT ON (nodename, nodeport) * FROM autoscale.node_samples_0_4
         ORDER BY nodename, nodeport, sampled_at DESC) l
  LEFT JOIN LATERAL (SELECT * FROM autoscale.node_samples_0_4 s
                      WHERE s.nodename = l.nodename AND s.nodeport = l.nodeport AND s.reachable
                      ORDER BY s.sampled_at DESC LIMIT 1) a ON true;
DROP TABLE autoscale.node_samples_0_4;

REVOKE ALL ON FUNCTION autoscale.history_readings(bytea), autoscale.record_node_samples(jsonb, boolean),
  autoscale.forget_node_samples(jsonb), autoscale.node_samples_write() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.history_readings(bytea) TO pg_monitor;
REVOKE ALL ON SEQUENCE autoscale.history_nodes_node_key_seq FROM PUBLIC;
GRANT SELECT ON autoscale.node_history, autoscale.history_nodes, autoscale.node_latest, autoscale.node_samples,
  autoscale.latest_node_load, autoscale.status, autoscale.history_storage TO pg_monitor;

-- === the compact node history (0.5.0) ===
COMMENT ON FUNCTION autoscale.history_readings(bytea) IS
  'The node readings of one sample of autoscale.node_history (its nodes column), one row per node with the columns of '
  'autoscale.node_samples; node_key names the node in autoscale.history_nodes. The view autoscale.node_samples reads '
  'the history with it. A value that is not a node history is an error.';
COMMENT ON FUNCTION autoscale.record_node_samples(jsonb, boolean) IS
  'Writes node rows into the compact history: a json array of autoscale.node_samples rows, or one row (sample_id, '
  'sampled_at, nodename, nodeport, is_coordinator and reachable required; other columns optional). A row for a sample '
  'already recorded is added to it (or replaces the reading of the same node); each node''s latest reading in '
  'autoscale.node_latest follows the newest row (latest => false leaves it alone). Returns how many rows were written. Used by the INSERT and UPDATE '
  'triggers of autoscale.node_samples and by the 0.5.0 update; superusers only.';
COMMENT ON FUNCTION autoscale.forget_node_samples(jsonb) IS
  'Removes node rows from the compact history: a json array of autoscale.node_samples rows, or one row (sample_id, '
  'nodename, nodeport, nodeid and is_coordinator name the reading). A sample left without readings is deleted, and so '
  'is a node''s latest reading in autoscale.node_latest when it was the one removed. Returns how many rows were '
  'given. Used by the DELETE and UPDATE triggers of autoscale.node_samples; superusers only.';
