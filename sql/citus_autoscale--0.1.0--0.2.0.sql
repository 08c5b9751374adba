-- citus_autoscale 0.1.0 -> 0.2.0. Applied by ALTER EXTENSION citus_autoscale UPDATE.
-- Every schema change of 0.2.0 is here, in the order it was made; an upgraded install must have exactly the
-- objects of a fresh 0.2.0 install (pg_test/scenarios/00_upgrade.sh compares the catalogs).
-- Released scripts are never edited: 0.2.0's changes after its release go into a 0.2.0--<next> script.
\echo Use "ALTER EXTENSION citus_autoscale UPDATE" to load this file. \quit

-- === prediction (issue 15) ===
-- New metrics in every sample: cache hit ratio, replication lag, tps, connection saturation, mean statement time
-- (and the counters their rates come from).
ALTER TABLE autoscale.node_samples
    ADD COLUMN cache_hit_ratio       real,
    ADD COLUMN replication_lag       bigint,
    ADD COLUMN tps                   real,
    ADD COLUMN connection_saturation real,
    ADD COLUMN mean_statement_ms     real,
    ADD COLUMN blks_hit              bigint,
    ADD COLUMN blks_read             bigint,
    ADD COLUMN stmt_calls            bigint,
    ADD COLUMN stmt_total_ms         double precision;
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
CREATE OR REPLACE VIEW autoscale.latest_node_load AS
SELECT DISTINCT ON (nodename, nodeport)
       sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable, error,
       cpu_busy_pct, load1, mem_used_pct, disk_used_pct, connections, active_connections,
       commits_per_sec, database_size, shard_count, shard_bytes,
       tps, cache_hit_ratio, connection_saturation, replication_lag, mean_statement_ms
  FROM autoscale.node_samples
 WHERE sampled_at > pg_catalog.now() - interval '1 day'
 ORDER BY nodename, nodeport, sampled_at DESC;

-- Predictive policies.
ALTER TABLE autoscale.policy_config ADD COLUMN predictive boolean NOT NULL DEFAULT false;
CREATE OR REPLACE VIEW autoscale.policies AS
SELECT name, kind, metric, aggregate,
       CASE kind WHEN 'threshold' THEN format('> %s / < %s', scale_out_above, scale_in_below)
                 ELSE format('target %s ±%s%%', target, round((tolerance * 100)::numeric, 1)) END AS rule,
       scale_out_above, scale_in_below, target, tolerance,
       scale_out_for, scale_in_for, cooldown_out, cooldown_in,
       min_workers, max_workers, step, custom_sql, created_at, updated_at, predictive
  FROM autoscale.policy_config
 ORDER BY name;
COMMENT ON VIEW autoscale.policies IS
  'The scaling policies: kind (threshold or target tracking), metric and aggregate, the rule in words, windows, '
  'cooldowns, worker bounds, step, and whether the policy is predictive (also scales out ahead of a forecast).';

-- Rollups and their storage.
CREATE TABLE autoscale.node_samples_1min (
    bucket      timestamptz NOT NULL,
    nodename    text        NOT NULL,
    nodeport    int         NOT NULL,
    samples     int         NOT NULL,
    workers     real,
    cpu_busy_pct_avg real,
    cpu_busy_pct_max real,
    cpu_busy_pct_p95 real,
    load1_avg real,
    load1_max real,
    load1_p95 real,
    mem_used_pct_avg real,
    mem_used_pct_max real,
    mem_used_pct_p95 real,
    disk_used_pct_avg real,
    disk_used_pct_max real,
    disk_used_pct_p95 real,
    connections_avg real,
    connections_max real,
    connections_p95 real,
    active_connections_avg real,
    active_connections_max real,
    active_connections_p95 real,
    commits_per_sec_avg real,
    commits_per_sec_max real,
    commits_per_sec_p95 real,
    tps_avg real,
    tps_max real,
    tps_p95 real,
    cache_hit_ratio_avg real,
    cache_hit_ratio_max real,
    cache_hit_ratio_p95 real,
    connection_saturation_avg real,
    connection_saturation_max real,
    connection_saturation_p95 real,
    replication_lag_avg double precision,
    replication_lag_max double precision,
    replication_lag_p95 double precision,
    mean_statement_ms_avg real,
    mean_statement_ms_max real,
    mean_statement_ms_p95 real,
    database_size_avg double precision,
    database_size_max double precision,
    database_size_p95 double precision,
    PRIMARY KEY (bucket, nodename, nodeport)
);
COMMENT ON TABLE autoscale.node_samples_1min IS
  '1-minute rollups of autoscale.node_samples: per node and 1-minute bucket (UTC) the avg, max and p95 of every metric '
  'over its reachable samples; nodename ''cluster'', nodeport 0 is the cluster: per sample the average over the reachable '
  'active workers (the coordinator when there are none), workers = average active workers. Filled by the tick, a bounded '
  'number of complete buckets at a time; pruned past autoscale.rollup_minute_retention (default 30 days).';

CREATE TABLE autoscale.node_samples_1hour (
    bucket      timestamptz NOT NULL,
    nodename    text        NOT NULL,
    nodeport    int         NOT NULL,
    samples     int         NOT NULL,
    workers     real,
    cpu_busy_pct_avg real,
    cpu_busy_pct_max real,
    cpu_busy_pct_p95 real,
    load1_avg real,
    load1_max real,
    load1_p95 real,
    mem_used_pct_avg real,
    mem_used_pct_max real,
    mem_used_pct_p95 real,
    disk_used_pct_avg real,
    disk_used_pct_max real,
    disk_used_pct_p95 real,
    connections_avg real,
    connections_max real,
    connections_p95 real,
    active_connections_avg real,
    active_connections_max real,
    active_connections_p95 real,
    commits_per_sec_avg real,
    commits_per_sec_max real,
    commits_per_sec_p95 real,
    tps_avg real,
    tps_max real,
    tps_p95 real,
    cache_hit_ratio_avg real,
    cache_hit_ratio_max real,
    cache_hit_ratio_p95 real,
    connection_saturation_avg real,
    connection_saturation_max real,
    connection_saturation_p95 real,
    replication_lag_avg double precision,
    replication_lag_max double precision,
    replication_lag_p95 double precision,
    mean_statement_ms_avg real,
    mean_statement_ms_max real,
    mean_statement_ms_p95 real,
    database_size_avg double precision,
    database_size_max double precision,
    database_size_p95 double precision,
    PRIMARY KEY (bucket, nodename, nodeport)
);
COMMENT ON TABLE autoscale.node_samples_1hour IS
  '1-hour rollups of autoscale.node_samples: per node and 1-hour bucket (UTC) the avg, max and p95 of every metric '
  'over its reachable samples; nodename ''cluster'', nodeport 0 is the cluster: per sample the average over the reachable '
  'active workers (the coordinator when there are none), workers = average active workers. Filled by the tick, a bounded '
  'number of complete buckets at a time; pruned past autoscale.rollup_hour_retention (default 2 years).';

CREATE VIEW autoscale.history_storage AS
SELECT level, retention, rows, bytes, nodes, days,
       (bytes / NULLIF(nodes * days, 0))::bigint AS bytes_per_node_per_day
  FROM (SELECT 'raw' AS level, pg_catalog.current_setting('autoscale.history_retention', true) AS retention,
               (SELECT count(*) FROM autoscale.node_samples) AS rows,
               pg_catalog.pg_total_relation_size('autoscale.node_samples') AS bytes,
               (SELECT count(DISTINCT (nodename, nodeport)) FROM autoscale.node_samples) AS nodes,
               (SELECT extract(epoch FROM max(sampled_at) - min(sampled_at) + interval '5 seconds') / 86400
                  FROM autoscale.node_samples)::float8 AS days
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
  'Storage of each history level: raw samples (autoscale.node_samples), 1-minute and 1-hour rollups: its retention, rows, '
  'bytes on disk (with indexes), nodes (the cluster row counts as one), days covered, and bytes per node per day.';

GRANT SELECT ON autoscale.node_samples_1min, autoscale.node_samples_1hour, autoscale.history_storage TO pg_monitor;

-- Functions whose signature or result changes are dropped and created again; the roles an administrator granted
-- EXECUTE on the old ones keep it on the new ones (kept across the DROP in a transaction-local setting).
SELECT pg_catalog.set_config('citus_autoscale_upgrade.' || f.name, coalesce((
         SELECT pg_catalog.string_agg(a.grantee::pg_catalog.regrole::text, E'\n')
           FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
          WHERE p.oid = f.sig::pg_catalog.regprocedure AND a.privilege_type = 'EXECUTE'
            AND a.grantee <> 0 AND a.grantee <> p.proowner), ''), true)
  FROM (VALUES ('set_policy', 'autoscale.set_policy(text, text, text, double precision, double precision, double precision,
                 double precision, interval, interval, interval, interval, integer, integer, integer, text)'),
               ('explain', 'autoscale.explain()')) f(name, sig);

-- set_policy() gains predictive (a new signature: the old function is dropped, calls without it work as before).
DROP FUNCTION autoscale.set_policy(text, text, text, double precision, double precision, double precision,
                                   double precision, interval, interval, interval, interval, integer, integer,
                                   integer, text);
CREATE FUNCTION autoscale."set_policy"(
	"name" TEXT, /* & str */
	"metric" TEXT DEFAULT 'cpu', /* & str */
	"aggregate" TEXT DEFAULT 'avg', /* & str */
	"scale_out_above" double precision DEFAULT NULL, /* Option < f64 > */
	"scale_in_below" double precision DEFAULT NULL, /* Option < f64 > */
	"target" double precision DEFAULT NULL, /* Option < f64 > */
	"tolerance" double precision DEFAULT 0.1, /* f64 */
	"scale_out_for" interval DEFAULT '2 min', /* Interval */
	"scale_in_for" interval DEFAULT '15 min', /* Interval */
	"cooldown" interval DEFAULT '10 min', /* Interval */
	"scale_in_cooldown" interval DEFAULT NULL, /* Option < Interval > */
	"min_workers" INT DEFAULT 2, /* i32 */
	"max_workers" INT DEFAULT 16, /* i32 */
	"step" INT DEFAULT 1, /* i32 */
	"custom_sql" TEXT DEFAULT NULL, /* Option < & str > */
	"predictive" bool DEFAULT false /* bool */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_policy_wrapper';
REVOKE ALL ON FUNCTION autoscale.set_policy(text, text, text, double precision, double precision, double precision,
                                       double precision, interval, interval, interval, interval, integer, integer,
                                       integer, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION autoscale.set_policy(text, text, text, double precision, double precision, double precision,
                                         double precision, interval, interval, interval, interval, integer, integer,
                                         integer, text, boolean) IS
  'Creates or replaces a scaling policy. Threshold: scale out when the metric (cpu, memory, disk, connections, '
  'active_connections, commits_per_sec, load1, custom and the others below) aggregated by avg or max over active workers stays above '
  'scale_out_above for scale_out_for, scale in when below scale_in_below for scale_in_for. Target tracking (target '
  '=> x): desired workers = ceil(workers * value / target), within tolerance no change. cooldown applies after a '
  'scale-out, scale_in_cooldown (default cooldown) after a scale-in; min_workers..max_workers bound the size; step '
  'workers join in one scale-out (one rebalance) or leave in one scale-in (one drain job). '
  'metric => ''custom'' takes custom_sql, a query returning one number (superuser only; run each sample under a 2 s '
  'statement timeout with search_path pg_catalog: qualify table names). predictive => true also scales out when the '
  'forecast (time-of-day / hour-of-week profile x recent trend, used while its own error is small) crosses '
  'scale_out_above or the target''s band within the lead time (how long a scale-out takes here: '
  'autoscale.forecast_lead_time, else learned), and holds a scale-in back when a rise is forecast; a forecast never '
  'scales in. Metrics also: tps, connection_saturation, replication_lag, mean_statement_ms, cache_miss_ratio. Returns '
  'the stored policy.';

-- explain() gains forecast, horizon, model_error and forecast_note (a new result type).
DROP FUNCTION autoscale.explain();
CREATE FUNCTION autoscale."explain"() RETURNS TABLE (
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
	"forecast" double precision,  /* Option < f64 > */
	"horizon" interval,  /* Option < Interval > */
	"model_error" double precision,  /* Option < f64 > */
	"forecast_note" TEXT  /* Option < String > */
)
STRICT STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'explain_wrapper';
REVOKE ALL ON FUNCTION autoscale.explain() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.explain() TO pg_monitor;
COMMENT ON FUNCTION autoscale.explain() IS
  'Per policy, from the recorded samples and without acting: current value, rule, how long the condition has held, '
  'cooldown left, current and desired workers, and the decision (out, in, hold) with its reasons. For predictive '
  'policies also the forecast value at now + horizon, the horizon (how long a scale-out takes here), the model''s '
  'mean one-step error, and a note such as "forecast to cross 80 in 7m; a scale-out takes 6m here".';

-- capacity_plan() is new.
CREATE FUNCTION autoscale."capacity_plan"() RETURNS TABLE (
	"metric" TEXT,  /* String */
	"unit" TEXT,  /* String */
	"current_value" double precision,  /* Option < f64 > */
	"in_3_months" double precision,  /* Option < f64 > */
	"in_6_months" double precision,  /* Option < f64 > */
	"in_12_months" double precision,  /* Option < f64 > */
	"per_month" double precision,  /* Option < f64 > */
	"threshold" double precision,  /* Option < f64 > */
	"crosses_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"max_workers_full_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"history" interval,  /* Interval */
	"action" TEXT  /* String */
)
STRICT STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'capacity_plan_wrapper';
REVOKE ALL ON FUNCTION autoscale.capacity_plan() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.capacity_plan() TO pg_monitor;
COMMENT ON FUNCTION autoscale.capacity_plan() IS
  'The capacity plan from the hourly rollups of the last year: per metric (cpu, memory, disk, connections, '
  'commits_per_sec, database_bytes) the current value, the linear-trend forecast at 3, 6 and 12 months, growth per '
  'month, the scale-out threshold (the lowest of the policies on that metric, else a default for cpu 80, memory 90, '
  'disk 85), when the trend crosses it on today''s workers and when even max_workers pass it, and the action required '
  'in plain words. With less than 7 days of hourly rollups it says so instead of forecasting.';
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT g, f.sig
             FROM (VALUES ('set_policy', 'autoscale.set_policy(text, text, text, double precision, double precision,
                           double precision, double precision, interval, interval, interval, interval, integer, integer,
                           integer, text, boolean)'),
                          ('explain', 'autoscale.explain()')) f(name, sig),
                  LATERAL pg_catalog.regexp_split_to_table(
                    pg_catalog.current_setting('citus_autoscale_upgrade.' || f.name, true), E'\n') g
            WHERE g <> ''
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', r.sig, r.g);
  END LOOP;
END $$;
-- === end prediction (issue 15) ===
