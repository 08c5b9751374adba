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

-- === safety (issue 10) ===
-- The pool lifecycle gains 'failed' (a node whose citus_add_node failed); 'returned' is no longer claimable.
ALTER TABLE autoscale.standby_nodes DROP CONSTRAINT standby_nodes_state_check;
ALTER TABLE autoscale.standby_nodes ADD CONSTRAINT standby_nodes_state_check
  CHECK (state IN ('available', 'joining', 'active', 'draining', 'returned', 'failed'));
COMMENT ON TABLE autoscale.standby_nodes IS
  'The standby pool: nodes autoscale may add to the cluster. available: ready to join (the only state a scale-out '
  'claims); joining: being added; active: a worker that autoscale added (scale-in takes the one holding the least '
  'data first); draining: leaving; returned: left the cluster after a scale-in and a deprovision request was sent, '
  'so not claimable until offered again with autoscale.add_standby_node(); failed: citus_add_node failed on it, not '
  'claimable until offered again. Change with autoscale.add_standby_node() and autoscale.remove_standby_node(). '
  'Kept by pg_dump.';

-- Each request has a key a provisioner can de-duplicate on; webhooks are delivered outside the tick.
ALTER TABLE autoscale.provision_requests
  ADD COLUMN request_key uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid();
COMMENT ON TABLE autoscale.provision_requests IS
  'Outbox of requests to an external provisioner: provision (a node is needed) and deprovision (a node left the '
  'cluster and may be reclaimed). Each is also sent as NOTIFY autoscale_provision and, when autoscale.webhook_url is '
  'set, POSTed as json by the background worker outside any tick''s transaction (webhook_* columns track delivery; '
  'webhook_error holds the kind of error or the HTTP status, never the URL). request_key (also in the payload and the '
  'Idempotency-Key header) lets a provisioner de-duplicate. A provisioner answers by adding a node to the cluster or '
  'to the pool. A provision request expires when its operation ends without a node.';
COMMENT ON COLUMN autoscale.provision_requests.request_key IS
  'A unique key of the request, sent in its json and as the Idempotency-Key header of every webhook attempt.';
-- 0.1.0 stored the HTTP client's error text, which contains the URL (and any token in it)
UPDATE autoscale.provision_requests SET webhook_error = 'webhook error (text removed by the 0.2.0 upgrade)'
 WHERE webhook_error IS NOT NULL;
UPDATE autoscale.events SET message = pg_catalog.regexp_replace(message, ': .*$', ': (error text removed by the 0.2.0 upgrade)')
 WHERE kind = 'webhook_failed';


-- One NULL rule: a NULL for a required argument is an error (22004) that names it, so no function is
-- STRICT any more; node_stats() pins its search_path; set_policy() is no longer SECURITY DEFINER (it checks
-- custom SQL against the real calling user). Privileges and comments of replaced functions are kept by
-- CREATE OR REPLACE; the comments that changed are set again below.
CREATE OR REPLACE FUNCTION autoscale."add_standby_node"(
	"host" TEXT, /* Option < & str > */
	"port" INT /* Option < i32 > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'add_standby_node_wrapper';

CREATE OR REPLACE FUNCTION autoscale."backtest"(
	"since" interval DEFAULT '1 day', /* Option < Interval > */
	"policy" TEXT DEFAULT NULL, /* Option < & str > */
	"operation_time" interval DEFAULT '1 min' /* Option < Interval > */
) RETURNS TABLE (
	"at" timestamp with time zone,  /* TimestampWithTimeZone */
	"decision" TEXT,  /* String */
	"from_workers" INT,  /* i32 */
	"to_workers" INT,  /* i32 */
	"reasons" TEXT[]  /* Vec < String > */
)
STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'backtest_wrapper';

CREATE OR REPLACE FUNCTION autoscale."cancel_operation"(
	"reason" TEXT DEFAULT 'cancelled by user' /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cancel_operation_wrapper';

CREATE OR REPLACE FUNCTION autoscale."drop_policy"(
	"name" TEXT /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'drop_policy_wrapper';

CREATE OR REPLACE FUNCTION autoscale."node_stats"() RETURNS jsonb /* JsonB */
STRICT VOLATILE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'node_stats_wrapper';

CREATE OR REPLACE FUNCTION autoscale."pause"(
	"duration" interval DEFAULT '1 hour' /* Option < Interval > */
) RETURNS timestamp with time zone /* TimestampWithTimeZone */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pause_wrapper';

CREATE OR REPLACE FUNCTION autoscale."rebalance_now"(
	"reason" TEXT DEFAULT 'manual' /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'rebalance_now_wrapper';

CREATE OR REPLACE FUNCTION autoscale."remove_standby_node"(
	"host" TEXT, /* Option < & str > */
	"port" INT /* Option < i32 > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'remove_standby_node_wrapper';

CREATE OR REPLACE FUNCTION autoscale."scale_in"(
	"host" TEXT, /* Option < & str > */
	"port" INT, /* Option < i32 > */
	"reason" TEXT DEFAULT 'manual' /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scale_in_wrapper';

CREATE OR REPLACE FUNCTION autoscale."scale_out"(
	"host" TEXT DEFAULT NULL, /* Option < & str > */
	"port" INT DEFAULT NULL, /* Option < i32 > */
	"reason" TEXT DEFAULT 'manual', /* Option < & str > */
	"nodes" INT DEFAULT 1 /* Option < i32 > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scale_out_wrapper';

CREATE OR REPLACE FUNCTION autoscale."set_policy"(
	"name" TEXT, /* Option < & str > */
	"metric" TEXT DEFAULT 'cpu', /* Option < & str > */
	"aggregate" TEXT DEFAULT 'avg', /* Option < & str > */
	"scale_out_above" double precision DEFAULT NULL, /* Option < f64 > */
	"scale_in_below" double precision DEFAULT NULL, /* Option < f64 > */
	"target" double precision DEFAULT NULL, /* Option < f64 > */
	"tolerance" double precision DEFAULT 0.1, /* Option < f64 > */
	"scale_out_for" interval DEFAULT '2 min', /* Option < Interval > */
	"scale_in_for" interval DEFAULT '15 min', /* Option < Interval > */
	"cooldown" interval DEFAULT '10 min', /* Option < Interval > */
	"scale_in_cooldown" interval DEFAULT NULL, /* Option < Interval > */
	"min_workers" INT DEFAULT 2, /* Option < i32 > */
	"max_workers" INT DEFAULT 16, /* Option < i32 > */
	"step" INT DEFAULT 1, /* Option < i32 > */
	"custom_sql" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_policy_wrapper';

-- Comments of the functions whose text changed in 0.2.0, as finalize.sql sets them.
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
  'metric => ''custom'' takes custom_sql, exactly one read-only SELECT returning one number (only a superuser calling '
  'directly, never from an index expression or another role''s SECURITY DEFINER function; each sample runs it as '
  'autoscale.custom_sql_role, a role without superuser, read-only, search_path pg_catalog, pg_temp, as a '
  'security-restricted operation, under a 2 s statement timeout: qualify table names). A window longer than '
  'autoscale.history_retention is refused. A NULL argument is an error (22004) naming it, except the thresholds, '
  'target, scale_in_cooldown and custom_sql, where NULL means not given. Not SECURITY DEFINER. Returns the stored policy.';
COMMENT ON FUNCTION autoscale.scale_in(text, integer, text) IS
  'Removes a worker: shouldhaveshards = false, a drain_only rebalance job, citus_cleanup_orphaned_resources, a check '
  'that no placement is left, citus_remove_node, back to the pool as returned with a deprovision request (not '
  'claimable until offered again). On any failure or cancel shouldhaveshards is put back to what it was, whatever '
  'the guards say. Refuses the coordinator and going below min_workers; reason is at most 500 bytes. Removing the '
  'last worker (back to a single node) is refused unless the coordinator can take every shard: shouldhaveshards = '
  'true (or autoscale.coordinator_shards = ''shed'', which sets it first) and free disk for the workers'' shard bytes '
  'plus 20%.';
COMMENT ON FUNCTION autoscale.scale_out(text, integer, text, integer) IS
  'Adds workers now: the given host and port, else up to nodes (1..64) available nodes of the standby pool, else a '
  'provision request (outbox row, NOTIFY autoscale_provision, webhook) answered by one node; then one rebalance onto '
  'them. With autoscale.coordinator_shards = ''shed'' a coordinator that holds shards gets shouldhaveshards = false '
  'before that rebalance, which moves its shards to the workers. Same guards as the policies.';
COMMENT ON FUNCTION autoscale.add_standby_node(text, integer) IS
  'Offers a node to the standby pool, or offers again a node that is returned or failed (its pending deprovision '
  'requests are then fulfilled). Refused when it is in the cluster or available/joining/active/draining in the pool, '
  'does not answer within autoscale.node_timeout, or lacks the citus and citus_autoscale extension files.';
COMMENT ON FUNCTION autoscale.cancel_operation(text) IS
  'Cancels the running operation and the Citus job it follows; a scale-in that has drained is restored '
  '(shouldhaveshards put back to what it was) first; a scale-out puts its claimed pool node back to available and '
  'expires its provision request.';
COMMENT ON FUNCTION autoscale.node_stats() IS
  'This node''s raw load as one json value: cumulative CPU counters (/proc/stat, or cgroup v2 cpu.stat under a CPU '
  'limit), load averages, memory total/available, data-directory disk total/free, client connections total/active, '
  'cumulative commits and rollbacks, database size, shard bytes and whether this node is the Citus coordinator. Runs '
  'with search_path pg_catalog, pg_temp.';

-- === load-aware placement (issue 12) ===
-- Per-shard-group load measured in the same sample, kept in place (one row per shard group) with history for the
-- top N groups per node; the node's sum in node_samples.shard_load; the rebalance strategy autoscale_by_load
-- (registered lazily on the coordinator) costs a shard group its load; the load-skew trigger's latest assessment
-- in control.load_skew and status.load_skew; the hot_tenants view.
ALTER TABLE autoscale.node_samples ADD COLUMN shard_load double precision;
COMMENT ON COLUMN autoscale.node_samples.shard_load IS
  'Sum of the smoothed load of the shard groups on the node (operations/s, see autoscale.shard_group_load); NULL '
  'without Citus or for a node that did not report its shard groups.';
ALTER TABLE autoscale.control ADD COLUMN load_skew text;
ALTER TABLE autoscale.control ADD COLUMN load_skew_at timestamptz;

CREATE TABLE autoscale.shard_group_load (
    colocationid         int              NOT NULL,
    shardminvalue        text             NOT NULL,
    nodename             text             NOT NULL,
    nodeport             int              NOT NULL,
    node_time            double precision NOT NULL,
    scans                bigint           NOT NULL,
    rows_read            bigint           NOT NULL,
    rows_written         bigint           NOT NULL,
    scans_per_sec        double precision,
    rows_read_per_sec    double precision,
    rows_written_per_sec double precision,
    load_per_sec         double precision,
    sample_id            bigint           NOT NULL,
    updated_at           timestamptz      NOT NULL,
    PRIMARY KEY (colocationid, shardminvalue)
);
COMMENT ON TABLE autoscale.shard_group_load IS
  'One row per shard group (colocated shards summed), updated in place at every sample: the node holding it, the '
  'cumulative counters of its shard relations on that node (pg_stat_user_tables: seq_scan + idx_scan, seq_tup_read + '
  'idx_tup_fetch, n_tup_ins + n_tup_upd + n_tup_del) and their rates smoothed over autoscale.load_window. load_per_sec '
  '= scans/s + rows written/s + rows read/s x 0.01; NULL until two readings on the same node. A group that moves keeps '
  'its smoothed load. The autoscale_by_load rebalance strategy charges each shard group this load plus a small base.';
COMMENT ON COLUMN autoscale.shard_group_load.shardminvalue IS
  'The min value of the shard group''s hash range (pg_dist_shard.shardminvalue); with colocationid it names the group.';

CREATE TABLE autoscale.shard_group_load_history (
    sampled_at    timestamptz      NOT NULL,
    sample_id     bigint           NOT NULL,
    nodename      text             NOT NULL,
    nodeport      int              NOT NULL,
    colocationid  int              NOT NULL,
    shardminvalue text             NOT NULL,
    load_per_sec  double precision NOT NULL
);
CREATE INDEX shard_group_load_history_sampled_at_idx ON autoscale.shard_group_load_history (sampled_at);
COMMENT ON TABLE autoscale.shard_group_load_history IS
  'The smoothed load of the autoscale.load_history_top_n busiest shard groups of each node at each sample (not of '
  'every group: storage does not grow with the number of shards). Pruned past autoscale.history_retention.';

CREATE TABLE autoscale.tenant_load (
    colocationid        int              NOT NULL,
    tenant              text             NOT NULL,
    nodename            text             NOT NULL,
    nodeport            int              NOT NULL,
    queries_per_sec     double precision NOT NULL,
    cpu_seconds_per_sec double precision NOT NULL,
    sample_id           bigint           NOT NULL,
    updated_at          timestamptz      NOT NULL,
    PRIMARY KEY (colocationid, tenant, nodename, nodeport)
);
COMMENT ON TABLE autoscale.tenant_load IS
  'The tenants Citus tracks on each node (citus_stat_tenants_local, when citus.stat_tenants_track = ''all''): '
  'queries/s and CPU seconds/s over the last complete citus.stat_tenants_period, replaced at every sample (at most '
  'citus.stat_tenants_limit rows per node). Empty while tracking is off.';

CREATE VIEW autoscale.hot_tenants AS
WITH tenants AS (
  SELECT 'citus_stat_tenants'::text AS source, t.colocationid, t.tenant, NULL::text AS shardminvalue,
         t.nodename, t.nodeport, t.queries_per_sec AS load_per_sec, t.cpu_seconds_per_sec, t.updated_at
    FROM autoscale.tenant_load t),
groups AS (
  SELECT 'shard_group'::text AS source, l.colocationid, NULL::text AS tenant, l.shardminvalue,
         l.nodename, l.nodeport, l.load_per_sec, NULL::double precision AS cpu_seconds_per_sec, l.updated_at
    FROM autoscale.shard_group_load l
   WHERE l.load_per_sec IS NOT NULL AND NOT EXISTS (SELECT 1 FROM autoscale.tenant_load)),
u AS (SELECT * FROM tenants UNION ALL SELECT * FROM groups)
SELECT u.source, u.colocationid, u.tenant, u.shardminvalue, u.nodename, u.nodeport, u.load_per_sec,
       u.load_per_sec / NULLIF(sum(u.load_per_sec) OVER (PARTITION BY u.nodename, u.nodeport), 0) AS node_share,
       u.load_per_sec / NULLIF(sum(u.load_per_sec) OVER (), 0) AS cluster_share,
       u.cpu_seconds_per_sec, u.updated_at
  FROM u
 ORDER BY u.load_per_sec DESC;
COMMENT ON VIEW autoscale.hot_tenants IS
  'Tenants by load, busiest first, with their share of their node''s load and of the cluster''s. With '
  'citus.stat_tenants_track = ''all'' the tenants Citus tracks (source citus_stat_tenants: load_per_sec is queries/s '
  'and cpu_seconds_per_sec CPU over the last period, from autoscale.tenant_load); otherwise each shard group, a '
  'tenant''s data with its colocated shards (source shard_group: load_per_sec is the measured operations/s of '
  'autoscale.shard_group_load).';

REVOKE ALL ON autoscale.shard_group_load, autoscale.shard_group_load_history, autoscale.tenant_load, autoscale.hot_tenants FROM PUBLIC;
GRANT SELECT ON autoscale.shard_group_load, autoscale.shard_group_load_history, autoscale.tenant_load, autoscale.hot_tenants TO pg_monitor;

CREATE  FUNCTION autoscale."shard_load_cost"(
	"shardid" bigint /* Option < i64 > */
) RETURNS real /* f32 */
STABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'shard_load_cost_wrapper';
REVOKE ALL ON FUNCTION autoscale.shard_load_cost(bigint) FROM PUBLIC;
COMMENT ON FUNCTION autoscale.shard_load_cost(bigint) IS
  'The shard cost function of the rebalance strategy autoscale_by_load (registered with citus_add_rebalance_strategy '
  'on the coordinator at the first tick): the measured load of the shard''s group (autoscale.shard_group_load, '
  'operations/s) plus a base of a tenth of the mean group load, so cold groups still spread; 1 for every shard while '
  'no load was measured (the strategy then balances shard groups by count). Citus calls it while planning.';

-- === warm clones and the snapshot split (issue 13) ===
-- Warm clones in the pool (streaming replicas of a worker, checked each sample), the split_out operation (Citus
-- 13.2's citus_promote_clone_and_rebalance), scale_out_path() and explain()'s scale_out_path, status's clones and
-- scale_out_path.
ALTER TABLE autoscale.standby_nodes
  ADD COLUMN primary_name     text,
  ADD COLUMN primary_port     int CHECK (primary_port BETWEEN 1 AND 65535),
  ADD COLUMN clone_streaming  boolean,
  ADD COLUMN clone_lag_bytes  bigint,
  ADD COLUMN clone_checked_at timestamptz,
  ADD COLUMN clone_error      text;
COMMENT ON COLUMN autoscale.standby_nodes.primary_name IS
  'A warm clone (autoscale.add_standby_clone): the host of the worker it streams from. NULL for an ordinary standby.';
COMMENT ON COLUMN autoscale.standby_nodes.primary_port IS 'A warm clone: the port of the worker it streams from.';
COMMENT ON COLUMN autoscale.standby_nodes.clone_streaming IS
  'A warm clone at its last check: in recovery, its WAL receiver streaming from the primary, and the primary has an '
  'asynchronous streaming WAL sender for it (pg_stat_replication).';
COMMENT ON COLUMN autoscale.standby_nodes.clone_lag_bytes IS
  'A warm clone at its last check: the primary''s current WAL position minus the clone''s replay position, in bytes. '
  'Above autoscale.clone_max_lag the clone is not used.';
COMMENT ON COLUMN autoscale.standby_nodes.clone_checked_at IS 'A warm clone: when it was last checked (each sample).';
COMMENT ON COLUMN autoscale.standby_nodes.clone_error IS 'A warm clone: what its last check found wrong, NULL when fine.';
COMMENT ON TABLE autoscale.standby_nodes IS
  'The standby pool: nodes autoscale may add to the cluster. available: ready to join (the only state a scale-out '
  'claims); joining: being added; active: a worker that autoscale added (scale-in takes the one holding the least '
  'data first); draining: leaving; returned: left the cluster after a scale-in and a deprovision request was sent, '
  'so not claimable until offered again with autoscale.add_standby_node(); failed: citus_add_node failed on it, not '
  'claimable until offered again. Rows with primary_name are warm clones (streaming replicas of a worker, added with '
  'autoscale.add_standby_clone()): never claimed as empty nodes, they join by a split-out (Citus 13.2 snapshot '
  'split); their replay lag is checked each sample. Change with autoscale.add_standby_node(), '
  'autoscale.add_standby_clone() and autoscale.remove_standby_node(). Kept by pg_dump.';
COMMENT ON TABLE autoscale.operations IS
  'One row per operation (rebalance, scale_out, scale_in, split_out: a scale-out by snapshot split of a warm clone, '
  'falling back to the scale_out steps): op is the persisted state machine (step, Citus job id, node, attempts, '
  'progress); the other columns are derived from it. Advanced one step per tick, so a restart resumes where it '
  'stopped. At most one is running.';

CREATE  FUNCTION autoscale."add_standby_clone"(
	"host" TEXT, /* Option < & str > */
	"port" INT, /* Option < i32 > */
	"primary_host" TEXT, /* Option < & str > */
	"primary_port" INT /* Option < i32 > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'add_standby_clone_wrapper';
REVOKE ALL ON FUNCTION autoscale.add_standby_clone(text, integer, text, integer) FROM PUBLIC;

CREATE  FUNCTION autoscale."scale_out_path"(
	"nodes" INT DEFAULT 1 /* Option < i32 > */
) RETURNS TEXT /* String */
STABLE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scale_out_path_wrapper';
REVOKE ALL ON FUNCTION autoscale.scale_out_path(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.scale_out_path(integer) TO pg_monitor;

COMMENT ON FUNCTION autoscale.add_standby_clone(text, integer, text, integer) IS
  'Offers a warm clone to the standby pool: host:port is a streaming replica (for example made with pg_basebackup -R) '
  'of the active worker primary_host:primary_port. Checked now and at each sample: in recovery, its WAL receiver '
  'streams from that primary, the primary has an asynchronous streaming WAL sender for it (pg_stat_replication); the '
  'replay lag is recorded. A scale-out of one node prefers a ready clone (streaming, lag within '
  'autoscale.clone_max_lag) of the busiest worker (by measured shard load, else CPU): citus_add_clone_node, get_snapshot_based_node_split_plan, '
  'citus_promote_clone_and_rebalance (autoscale.rebalance_strategy, autoscale.clone_catchup_timeout), and falls back '
  'to the ordinary scale-out when the clone cannot be used. Refused when the node is in the cluster or in the pool '
  '(other than returned or failed), or does not stream from that primary.';
COMMENT ON FUNCTION autoscale.scale_out_path(integer) IS
  'The path the next scale-out of nodes workers takes and why: ''split: ...'' (a ready warm clone of the busiest '
  'worker by measured shard load, else by CPU; Citus 13.2 snapshot split) or ''logical: ...'' (an empty node and a logical rebalance) with the reason no '
  'clone is used (none in the pool, lagging, not streaming, autoscale.split_out off, more than one node wanted).';
COMMENT ON FUNCTION autoscale.scale_out(text, integer, text, integer) IS
  'Adds workers now: the given host and port; else, for one node, a ready warm clone of the busiest worker by '
  'snapshot split (a split_out operation, falling back to what follows when the clone cannot be used); else up to '
  'nodes (1..64) available nodes of the standby pool, else a provision request (outbox row, NOTIFY '
  'autoscale_provision, webhook) answered by one node; then one rebalance onto them (citus_rebalance_start with '
  'autoscale.parallel_transfer_colocated_shards and autoscale.parallel_transfer_reference_tables). With '
  'autoscale.coordinator_shards = ''shed'' a coordinator that holds shards gets shouldhaveshards = false before that '
  'rebalance, which moves its shards to the workers. Same guards as the policies.';

-- the provisioner may be asked for a warm clone of a worker
ALTER TABLE autoscale.provision_requests DROP CONSTRAINT provision_requests_kind_check;
ALTER TABLE autoscale.provision_requests ADD CONSTRAINT provision_requests_kind_check
  CHECK (kind IN ('provision', 'deprovision', 'provision_clone'));
COMMENT ON TABLE autoscale.provision_requests IS
  'Outbox of requests to an external provisioner: provision (a node is needed), deprovision (a node left the '
  'cluster and may be reclaimed) and provision_clone (a warm clone of the worker in payload -> primary is wanted: '
  'sent for both halves after a split-out used a clone; fulfilled when autoscale.add_standby_clone() offers one). '
  'Each is also sent as NOTIFY autoscale_provision and, when autoscale.webhook_url is '
  'set, POSTed as json by the background worker outside any tick''s transaction (webhook_* columns track delivery; '
  'webhook_error holds the kind of error or the HTTP status, never the URL). request_key (also in the payload and the '
  'Idempotency-Key header) lets a provisioner de-duplicate. A provisioner answers by adding a node to the cluster or '
  'to the pool. A provision request expires when its operation ends without a node.';

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
       commits_per_sec, database_size, shard_count, shard_bytes, data_node,
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
    data_nodes  real,
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
  'data nodes, as the policies read them (the coordinator counts when it holds shards), workers = average active '
  'workers, data_nodes = average data nodes. Filled by the tick, a bounded '
  'number of complete buckets at a time; pruned past autoscale.rollup_minute_retention (default 30 days).';

-- the same columns, primary key and defaults as the 1-minute level
CREATE TABLE autoscale.node_samples_1hour (LIKE autoscale.node_samples_1min INCLUDING ALL);
COMMENT ON TABLE autoscale.node_samples_1hour IS
  '1-hour rollups of autoscale.node_samples: per node and 1-hour bucket (UTC) the avg, max and p95 of every metric '
  'over its reachable samples; nodename ''cluster'', nodeport 0 is the cluster: per sample the average over the reachable '
  'data nodes, as the policies read them (the coordinator counts when it holds shards), workers = average active '
  'workers, data_nodes = average data nodes. Filled by the tick, a bounded '
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
-- EXECUTE on the old ones keep it on the new ones (kept across the DROP in a transaction-local setting, given
-- back at the end of this script, after explain() is created).
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
	"name" TEXT, /* Option < & str > */
	"metric" TEXT DEFAULT 'cpu', /* Option < & str > */
	"aggregate" TEXT DEFAULT 'avg', /* Option < & str > */
	"scale_out_above" double precision DEFAULT NULL, /* Option < f64 > */
	"scale_in_below" double precision DEFAULT NULL, /* Option < f64 > */
	"target" double precision DEFAULT NULL, /* Option < f64 > */
	"tolerance" double precision DEFAULT 0.1, /* Option < f64 > */
	"scale_out_for" interval DEFAULT '2 min', /* Option < Interval > */
	"scale_in_for" interval DEFAULT '15 min', /* Option < Interval > */
	"cooldown" interval DEFAULT '10 min', /* Option < Interval > */
	"scale_in_cooldown" interval DEFAULT NULL, /* Option < Interval > */
	"min_workers" INT DEFAULT 2, /* Option < i32 > */
	"max_workers" INT DEFAULT 16, /* Option < i32 > */
	"step" INT DEFAULT 1, /* Option < i32 > */
	"custom_sql" TEXT DEFAULT NULL, /* Option < & str > */
	"predictive" bool DEFAULT false /* Option < bool > */
) RETURNS jsonb /* JsonB */
VOLATILE
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
  'active_connections, commits_per_sec, load1, custom, tps, connection_saturation, replication_lag, '
  'mean_statement_ms, cache_miss_ratio) aggregated by avg or max over the data nodes (nodes that hold '
  'or should hold shards, the coordinator included when it does) stays above scale_out_above for scale_out_for, scale '
  'in when below scale_in_below for scale_in_for. Target tracking (target => x): desired data nodes = ceil(data nodes '
  '* value / target), within tolerance no change. cooldown applies after a scale-out, scale_in_cooldown (default '
  'cooldown) after a scale-in; min_workers..max_workers bound the size (min_workers 0: the coordinator alone, a single '
  'node, refused unless it can take every shard and has the disk for them); step '
  'workers join in one scale-out (one rebalance) or leave in one scale-in (one drain job). '
  'metric => ''custom'' takes custom_sql, exactly one read-only SELECT returning one number (only a superuser calling '
  'directly, never from an index expression or another role''s SECURITY DEFINER function; each sample runs it as '
  'autoscale.custom_sql_role, a role without superuser, read-only, search_path pg_catalog, pg_temp, as a '
  'security-restricted operation, under a 2 s statement timeout: qualify table names). A window longer than '
  'autoscale.history_retention is refused. A NULL argument is an error (22004) naming it, except the thresholds, '
  'target, scale_in_cooldown and custom_sql, where NULL means not given. predictive => true also scales out when the '
  'forecast (time-of-day / hour-of-week profile x recent trend, used while its own error is small) crosses '
  'scale_out_above or the target''s band within the lead time (how long a scale-out takes here: '
  'autoscale.forecast_lead_time, else learned), and holds a scale-in back when a rise is forecast; a forecast never '
  'scales in. Not SECURITY DEFINER. Returns the stored policy.';

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
  'disk 85), when the trend crosses it on today''s data nodes and when even max_workers pass it, and the action '
  'required in plain words. With less than 7 days of hourly rollups it says so instead of forecasting.';
-- === end prediction (issue 15) ===

-- A node that never comes back: workers unreachable for longer than autoscale.dead_node_after are declared
-- dead (autoscale.dead_nodes); the operation kind replace_dead replaces the ones whose placements all have a
-- healthy copy elsewhere. status and explain() show them.
CREATE TABLE autoscale.dead_nodes (
    nodename          text        NOT NULL,
    nodeport          int         NOT NULL,
    unreachable_since timestamptz NOT NULL,
    declared_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    replaceable       boolean     NOT NULL,
    sole_copies       int         NOT NULL DEFAULT 0,
    message           text        NOT NULL,
    operation_id      bigint,
    PRIMARY KEY (nodename, nodeport)
);
COMMENT ON TABLE autoscale.dead_nodes IS
  'Workers declared dead: every sample failed for autoscale.dead_node_after (since unreachable_since). replaceable: '
  'every placement on it has a healthy copy elsewhere, so a replace_dead operation (operation_id) disables it, adds '
  'a standby, copies the shards back to their replication factor and removes it; otherwise sole_copies shards have '
  'no other copy, nothing is disabled or removed and the operator decides. A row goes when the node answers again '
  'or leaves the cluster (event dead_node_back).';
GRANT SELECT ON autoscale.dead_nodes TO pg_monitor;

COMMENT ON FUNCTION autoscale.metrics() IS
  'The autoscaler''s state as Prometheus text (exposition format 0.0.4), for sql_exporter, postgres_exporter custom '
  'queries or any scraper: autoscale_mode, autoscale_workers, autoscale_last_sample_age_seconds, per node '
  '(labels node, role) up, cpu, load1, memory, disk, connections, commits/s, database and shard bytes, shards from the '
  'latest sample; per policy its value and desired workers; running operations and their progress, operations by '
  'kind and status, the standby pool by state, pending provision requests, paused, dead workers (replaceable or '
  'not). Reads only.';
COMMENT ON TABLE autoscale.operations IS
  'One row per operation (rebalance, scale_out, scale_in, split_out: a scale-out by snapshot split of a warm clone, '
  'falling back to the scale_out steps; replace_dead: a dead worker disabled, replaced and removed, the dead node in '
  'op->dead, the replacement in node): op is the persisted state machine (step, Citus job id, node, attempts, '
  'progress); the other columns are derived from it. Advanced one step per tick, so a restart resumes where it '
  'stopped. At most one is running.';

-- Hot-tenant isolation (issue 12): the isolate_tenant operation kind (in operations.op), autoscale.isolate_tenant(),
-- control.hot_tenant (the latest hot-tenant assessment, in status.hot_tenant below).
ALTER TABLE autoscale.control ADD COLUMN hot_tenant text;
ALTER TABLE autoscale.control ADD COLUMN hot_tenant_at timestamptz;
CREATE FUNCTION autoscale."isolate_tenant"(
	"table_name" regclass, /* Option < PgRelation > */
	"tenant_value" TEXT, /* Option < & str > */
	"target_host" TEXT DEFAULT NULL, /* Option < & str > */
	"target_port" INT DEFAULT NULL, /* Option < i32 > */
	"reason" TEXT DEFAULT 'manual' /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'isolate_tenant_wrapper';
REVOKE ALL ON FUNCTION autoscale.isolate_tenant(regclass, text, text, integer, text) FROM PUBLIC;
COMMENT ON FUNCTION autoscale.isolate_tenant(regclass, text, text, integer, text) IS
  'Isolates a tenant now: tenant_value of table_name (a hash-distributed table) gets a shard of its own with '
  'isolate_tenant_to_new_shard(table, tenant, ''CASCADE'') (its colocated tables too), which then moves to '
  'target_host:target_port (an active worker) or, by default, to the least-loaded other worker at the latest sample, '
  'with citus_move_shard_placement (block_writes: only the writes to that tenant wait). An isolate_tenant operation '
  '(steps isolate, move_tenant, verify_tenant) with the guards, events and crash resume of the others; a resumed step '
  'that finds its work done does not do it again. Refused when the tenant already has its own shard on the target. '
  'Returns the operation. The automatic action is off by default: autoscale.isolate_hot_tenants, hot_tenant_share.';
COMMENT ON TABLE autoscale.operations IS
  'One row per operation (rebalance, scale_out, scale_in, split_out: a scale-out by snapshot split of a warm clone, '
  'falling back to the scale_out steps; replace_dead: a dead worker disabled, replaced and removed, the dead node in '
  'op->dead, the replacement in node; isolate_tenant: a hot tenant given a shard of its own and moved, the tenant '
  'in op->tenant, the target worker in node): op is the persisted state machine (step, Citus job id, node, attempts, '
  'progress); the other columns are derived from it. Advanced one step per tick, so a restart resumes where it '
  'stopped. At most one is running.';

-- === autoscale.status ===
-- Defined once, here, with every column 0.2.0 adds (appended after 0.1.0's, so CREATE OR REPLACE keeps the view,
-- its privileges and what depends on it): standby_available counts only available nodes (returned ones are no
-- longer claimable), data_nodes, load_skew, clones, scale_out_path, dead_nodes and hot_tenant. Later blocks that change the
-- view change this definition.
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
COMMENT ON VIEW autoscale.status IS
  'One row: mode, active and unreachable workers at the last sample, the running operation and its step, the last '
  'decision of the policy engine and its reasons, a pause, the standby pool by state, the cooldowns left, the '
  'data nodes of the last sample (nodes that hold or should hold shards; the coordinator marked as such), '
  'load_skew: the load-skew trigger''s latest assessment, the warm clones of the pool (primary, streaming, replay '
  'lag, last check), the path a scale-out of one node takes (split from a ready clone, or logical) and why '
  '(explain() gives it for each policy''s decision), the dead workers (autoscale.dead_nodes: replaceable, or holding '
  'sole copies and waiting for the operator), and hot_tenant: the latest hot-tenant assessment (the tenant worth '
  'isolating and where it would go, or why none is).';

-- === autoscale.explain() ===
-- Defined once, here, with every column 0.2.0 adds (a new result type: dropped and created again): data_nodes,
-- scale_out_path, forecast, horizon, model_error, forecast_note and dead_nodes. Later blocks that change it change
-- this definition.
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
	"data_nodes" TEXT[],  /* Vec < String > */
	"scale_out_path" TEXT,  /* String */
	"forecast" double precision,  /* Option < f64 > */
	"horizon" interval,  /* Option < Interval > */
	"model_error" double precision,  /* Option < f64 > */
	"forecast_note" TEXT,  /* Option < String > */
	"dead_nodes" TEXT[]  /* Vec < String > */
)
STRICT STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'explain_wrapper';
REVOKE ALL ON FUNCTION autoscale.explain() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.explain() TO pg_monitor;
COMMENT ON FUNCTION autoscale.explain() IS
  'Per policy, from the recorded samples and without acting: current value, rule, how long the condition has held, '
  'cooldown left, current and desired workers, the decision (out, in, hold) with its reasons, data_nodes: the '
  'nodes whose load the value is read from (host:port, the coordinator marked (coordinator)), and scale_out_path: '
  'the path a scale-out takes (split from a ready warm clone, or logical) and why. For predictive policies also the '
  'forecast value at now + horizon, the horizon (how long a scale-out takes here), the model''s mean one-step error, '
  'and a note such as "forecast to cross 80 in 7m; a scale-out takes 6m here". dead_nodes: the workers declared '
  'dead (autoscale.dead_nodes), each host:port: what it holds and what happens to it.';

-- The roles an administrator granted EXECUTE on set_policy() and explain() before the upgrade keep it (kept above,
-- before the DROP of set_policy()).
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
