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

-- === the provisioner's claims (issue 23): claim, answer and fail a request, with leases ===
ALTER TABLE autoscale.provision_requests
  DROP CONSTRAINT provision_requests_status_check,
  ADD CONSTRAINT provision_requests_status_check
    CHECK (status IN ('pending', 'fulfilled', 'expired', 'sent', 'failed')),
  ADD COLUMN claimed_by text,
  ADD COLUMN claimed_at timestamptz,
  ADD COLUMN lease_until timestamptz,
  ADD COLUMN attempts int NOT NULL DEFAULT 0,
  ADD COLUMN last_error text,
  ADD COLUMN answer jsonb;
COMMENT ON TABLE autoscale.provision_requests IS
  'Outbox of requests to an external provisioner: provision (a node is needed), deprovision (a node left the '
  'cluster and may be reclaimed) and provision_clone (a warm clone of the worker in payload -> primary is wanted: '
  'sent for both halves after a split-out used a clone; fulfilled when autoscale.add_standby_clone() offers one). '
  'Each is also sent as NOTIFY autoscale_provision and, when autoscale.webhook_url is '
  'set, POSTed as json by the background worker outside any tick''s transaction (webhook_* columns track delivery; '
  'webhook_error holds the kind of error or the HTTP status, never the URL). request_key (also in the payload and the '
  'Idempotency-Key header) lets a provisioner de-duplicate. A provisioner answers by adding a node to the cluster or '
  'to the pool, or claims provision and deprovision requests with a lease and answers or fails them '
  '(autoscale.claim_provision_request, answer_provision_request, fail_provision_request; the columns claimed_by to answer). A '
  'provision request expires when its operation ends without a node.';
COMMENT ON COLUMN autoscale.provision_requests.status IS
  'pending: not answered yet; fulfilled: answered (a node joined, or the deprovisioned node is gone); expired: its '
  'operation ended without a node; sent: delivered, nothing to answer; failed: a provisioner gave it up '
  '(autoscale.fail_provision_request(id, error, false)), last_error says why.';
COMMENT ON COLUMN autoscale.provision_requests.claimed_by IS
  'The provisioner that claimed the request last (autoscale.claim_provision_request), NULL when never claimed or '
  'released for a retry.';
COMMENT ON COLUMN autoscale.provision_requests.claimed_at IS 'When the request was claimed last.';
COMMENT ON COLUMN autoscale.provision_requests.lease_until IS
  'Until when the claim holds: another provisioner may claim the request after it (its claimer died); after a '
  'failed attempt that is retried, when the request is claimable again. NULL when answered or never claimed.';
COMMENT ON COLUMN autoscale.provision_requests.attempts IS 'How many times the request was claimed.';
COMMENT ON COLUMN autoscale.provision_requests.last_error IS
  'What the last failed attempt reported (autoscale.fail_provision_request), its last 2000 bytes; NULL once answered.';
COMMENT ON COLUMN autoscale.provision_requests.answer IS
  'The node that answered the request ({"host": .., "port": ..}, autoscale.answer_provision_request); answering '
  'again with the same node does nothing.';

CREATE FUNCTION autoscale."claim_provision_request"(
	"claimer" TEXT, /* Option < & str > */
	"lease" interval DEFAULT '2 minutes' /* Option < Interval > */
) RETURNS TABLE (
	"id" bigint,  /* i64 */
	"kind" TEXT,  /* String */
	"request_key" TEXT,  /* String */
	"payload" jsonb,  /* JsonB */
	"attempts" INT,  /* i32 */
	"lease_until" timestamp with time zone  /* TimestampWithTimeZone */
)
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'claim_provision_request_wrapper';
CREATE FUNCTION autoscale."answer_provision_request"(
	"id" bigint, /* Option < i64 > */
	"host" TEXT, /* Option < & str > */
	"port" INT /* Option < i32 > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'answer_provision_request_wrapper';
CREATE FUNCTION autoscale."fail_provision_request"(
	"id" bigint, /* Option < i64 > */
	"error" TEXT, /* Option < & str > */
	"retry" bool /* Option < bool > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fail_provision_request_wrapper';
REVOKE ALL ON FUNCTION autoscale.claim_provision_request(text, interval),
  autoscale.answer_provision_request(bigint, text, integer),
  autoscale.fail_provision_request(bigint, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION autoscale.claim_provision_request(text, interval) IS
  'For a provisioner: claims the oldest pending provision or deprovision request (provision_clone requests are not '
  'handed out) that is not validly claimed by another provisioner: never claimed, its lease expired (its claimer '
  'died: the request is taken over), released for a retry whose backoff is over, or claimed by this same claimer '
  '(a restarted provisioner resumes its own work at once). The claim counts an attempt and holds until lease_until '
  '(lease: 1 second to 1 day, default 2 minutes). No row when there is nothing to do. Superuser or an explicitly '
  'granted role.';
COMMENT ON FUNCTION autoscale.answer_provision_request(bigint, text, integer) IS
  'For a provisioner: answers request id with node host:port. A pending (or already expired) provision request: '
  'the node joins the standby pool with the checks of autoscale.add_standby_node() (it answers and has the '
  'extension files), where a waiting scale-out takes it. A pending deprovision request: host:port must be its node, '
  'which leaves the standby pool. The request becomes fulfilled and records the answer; answering again with the '
  'same node does nothing, with another node is refused. Superuser or an explicitly granted role.';
COMMENT ON FUNCTION autoscale.fail_provision_request(bigint, text, boolean) IS
  'For a provisioner: records that an attempt at pending request id failed with error (its last 2000 bytes kept in '
  'last_error). retry true: the claim is released and the request is claimable again after 5 s, 10 s, 20 s, ... '
  '(at most 5 min) by attempt; false: the request becomes failed. Superuser or an explicitly granted role.';

-- === schedules (issue 21): worker bounds by the clock ===
CREATE TABLE autoscale.schedules (
    name        text        PRIMARY KEY,
    cron        text        NOT NULL,
    min_workers int,
    max_workers int,
    time_zone   text        NOT NULL DEFAULT 'UTC',
    duration    interval    NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK (min_workers IS NOT NULL OR max_workers IS NOT NULL)
);
SELECT pg_catalog.pg_extension_config_dump('autoscale.schedules', '');
COMMENT ON TABLE autoscale.schedules IS
  'Schedules: from every start its cron expression (minute hour day-of-month month day-of-week) matches on the wall '
  'clock of time_zone, for duration, the cluster is kept within min_workers..max_workers (a NULL bound stays the '
  'policies''); the highest bounds of the schedules that apply win. Change them only with autoscale.set_schedule() and '
  'autoscale.drop_schedule(), which validate every argument. Kept by pg_dump.';

REVOKE ALL ON autoscale.schedules FROM PUBLIC;
GRANT SELECT ON autoscale.schedules TO pg_monitor;
CREATE FUNCTION autoscale."set_schedule"(
	"name" TEXT, /* Option < & str > */
	"cron" TEXT, /* Option < & str > */
	"min_workers" INT DEFAULT NULL, /* Option < i32 > */
	"max_workers" INT DEFAULT NULL, /* Option < i32 > */
	"time_zone" TEXT DEFAULT 'UTC', /* Option < & str > */
	"duration" interval DEFAULT '1 hour' /* Option < Interval > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_schedule_wrapper';
CREATE FUNCTION autoscale."drop_schedule"(
	"name" TEXT /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'drop_schedule_wrapper';
REVOKE ALL ON FUNCTION autoscale.set_schedule(text, text, integer, integer, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION autoscale.drop_schedule(text) FROM PUBLIC;
COMMENT ON FUNCTION autoscale.set_schedule(text, text, integer, integer, text, interval) IS
  'Creates or replaces a schedule (by name): every minute the cron expression (minute hour day-of-month month '
  'day-of-week; *, numbers, ranges a-b, steps */n, lists, month and day names) matches on the wall clock of time_zone '
  '(an IANA name, default UTC) starts a window of duration (1 minute to 7 days, default 1 hour). While a window is '
  'open the decision keeps the cluster within min_workers..max_workers (at least one given; NULL keeps the '
  'policies'' bound): a min_workers above the workers scales out, a max_workers below them scales in. When several '
  'schedules apply the highest min_workers and the highest max_workers win. A start in the hour the clocks skip '
  'happens when they resume; a wall-clock time that happens twice starts once. A bad argument is an error naming it, '
  'its value and what is allowed. SECURITY DEFINER. Returns the stored schedule.';
COMMENT ON FUNCTION autoscale.drop_schedule(text) IS 'Drops a schedule by name; an unknown name is an error.';

-- the decision, explain(), backtest() and metrics() apply the schedules
COMMENT ON FUNCTION autoscale.explain() IS
  'Per policy, from the recorded samples and without acting: current value, rule, how long the condition has held, '
  'cooldown left, current and desired workers, the decision (out, in, hold) with its reasons, data_nodes: the '
  'nodes whose load the value is read from (host:port, the coordinator marked (coordinator)), and scale_out_path: '
  'the path a scale-out takes (split from a ready warm clone, or logical) and why. For predictive policies also the '
  'forecast value at now + horizon, the horizon (how long a scale-out takes here), the model''s mean one-step error, '
  'and a note such as "forecast to cross 80 in 7m; a scale-out takes 6m here". dead_nodes: the workers declared '
  'dead (autoscale.dead_nodes), each host:port: what it holds and what happens to it. Rows that are not policies: '
  'load_skew and hot_tenant while they apply, schedule while a schedule applies (the bounds in force, the cluster''s '
  'desired workers and decision within them, and which schedule raised or lowered what until when), and versions when this PostgreSQL / Citus pair is not a tested one '
  '(autoscale.version_support()).';
COMMENT ON FUNCTION autoscale.backtest(interval, text, interval) IS
  'What the policies (all, or the one named) would have done over the recorded history of the last since (default '
  '1 day): one row per scale action (time, out/in, from and to workers, reasons). The engine decides at every '
  'recorded sample with a simulated worker count; each operation takes operation_time (default 1 min) and cooldowns '
  'count from its end. cpu, load1, commits_per_sec, connections and active_connections are rescaled by recorded / '
  'simulated workers; memory, disk and custom metrics replay as recorded. The schedules (autoscale.schedules) clamp each '
  'decision to the bounds in force at its sample. Acts on nothing, records nothing.';
COMMENT ON FUNCTION autoscale.metrics() IS
  'The autoscaler''s state as Prometheus text (exposition format 0.0.4), for sql_exporter, postgres_exporter custom '
  'queries or any scraper: autoscale_mode, autoscale_workers, autoscale_last_sample_age_seconds, per node '
  '(labels node, role) up, cpu, load1, memory, disk, connections, commits/s, database and shard bytes, shards from the '
  'latest sample; per policy its value and desired workers; the bounds of each schedule that applies now '
  '(autoscale_schedule_min_workers, autoscale_schedule_max_workers, label schedule); running operations and their progress, operations by '
  'kind and status, the standby pool by state, pending provision requests, paused, dead workers (replaceable or '
  'not). Reads only.';

-- a scale-in by hand respects a schedule's min_workers
COMMENT ON FUNCTION autoscale.scale_in(text, integer, text) IS
  'Removes a worker: shouldhaveshards = false, a drain_only rebalance job, citus_cleanup_orphaned_resources, a check '
  'that no placement is left, citus_remove_node, back to the pool as returned with a deprovision request (not '
  'claimable until offered again). On any failure or cancel shouldhaveshards is put back to what it was, whatever '
  'the guards say. Refuses the coordinator and going below min_workers (the policies'', or a schedule''s in force); '
  'reason is at most 500 bytes. Removing the '
  'last worker (back to a single node) is refused unless the coordinator can take every shard: shouldhaveshards = '
  'true (or autoscale.coordinator_shards = ''shed'', which sets it first) and free disk for the workers'' shard bytes '
  'plus 20%.';

-- === backtest_series (issue 21): a series the user brings, replayed through the policies ===
CREATE FUNCTION autoscale."backtest_series"(
	"ts" timestamp with time zone[], /* :: std :: option :: Option < Vec < Option < TimestampWithTimeZone > > > */
	"value" double precision[], /* :: std :: option :: Option < Vec < Option < f64 > > > */
	"policy" TEXT DEFAULT NULL, /* Option < & str > */
	"operation_time" interval DEFAULT '3 minutes', /* Option < Interval > */
	"start_workers" INT DEFAULT NULL, /* Option < i32 > */
	"thresholds" double precision[] DEFAULT '{70,80,90}' /* :: std :: option :: Option < Vec < Option < f64 > > > */
) RETURNS TABLE (
	"policy" TEXT,  /* String */
	"minutes" double precision,  /* f64 */
	"minutes_above" jsonb,  /* JsonB */
	"worker_minutes" double precision,  /* f64 */
	"scale_outs" INT,  /* i32 */
	"scale_ins" INT,  /* i32 */
	"reversals" INT,  /* i32 */
	"start_workers" INT,  /* i32 */
	"end_workers" INT,  /* i32 */
	"peak_workers" INT  /* i32 */
)
STABLE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'backtest_series_wrapper';
REVOKE ALL ON FUNCTION autoscale.backtest_series(timestamp with time zone[], double precision[], text, interval,
  integer, double precision[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.backtest_series(timestamp with time zone[], double precision[], text, interval,
  integer, double precision[]) TO pg_monitor;
COMMENT ON FUNCTION autoscale.backtest_series(timestamp with time zone[], double precision[], text, interval, integer,
                                              double precision[]) IS
  'Replays a series the caller brings (ts ascending, value: the per-worker value of the policy''s metric, e.g. avg '
  'CPU % exported from Prometheus, measured with start_workers workers, default each policy''s min_workers) through '
  'each policy (or the one named) and the schedules: the demand value x start_workers is spread over the simulated '
  'workers (cpu, load1, commits/s, tps, connections; capped at 100 for a percentage; memory, disk and custom replay '
  'as given), the policy decides at every point, each scale-out or scale-in takes operation_time (default 3 '
  'minutes) before the workers change. Per policy: minutes replayed, minutes_above (json: minutes with the value '
  'above each of thresholds, default 70, 80, 90), worker_minutes, scale_outs, scale_ins, reversals (an action '
  'opposite to the one before within 30 minutes), start, end and peak workers. Each point counts until the next, the '
  'last for the typical spacing. Acts on nothing, records nothing.';

-- === resize: a worker replaced by a larger one ===
CREATE  FUNCTION autoscale."resize"(
	"host" TEXT, /* Option < & str > */
	"port" INT, /* Option < i32 > */
	"size" jsonb DEFAULT '{}', /* Option < JsonB > */
	"reason" TEXT DEFAULT 'manual' /* Option < & str > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'resize_wrapper';
REVOKE ALL ON FUNCTION autoscale.resize(text, integer, jsonb, text) FROM PUBLIC;
COMMENT ON TABLE autoscale.operations IS
  'One row per operation (rebalance, scale_out, scale_in, split_out: a scale-out by snapshot split of a warm clone, '
  'falling back to the scale_out steps; replace_dead: a dead worker disabled, replaced and removed, the dead node in '
  'op->dead, the replacement in node; isolate_tenant: a hot tenant given a shard of its own and moved, the tenant '
  'in op->tenant, the target worker in node; resize: a worker replaced by a larger one, the replaced worker in '
  'op->replaces, the size asked in op->size, the new worker in node): op is the persisted state machine (step, '
  'Citus job id, node, attempts, progress); the other columns are derived from it. Advanced one step per tick, so a '
  'restart resumes where it stopped. At most one is running.';
COMMENT ON FUNCTION autoscale.resize(text, integer, jsonb, text) IS
  'Replaces the worker host:port by a larger one with no restart and no downtime: a resize operation asks the '
  'provisioner for a node of size (a json object of PostgreSQL settings by name, e.g. {"shared_buffers": "2GB"}, sent '
  'as payload -> size of the provision request; only the node the request is answered with is taken, never another '
  'pool node), adds it, drains the old worker onto it (shouldhaveshards = false, a drain_only rebalance job, cleanup, '
  'a check that no placement is left), removes the old worker and hands it back with a deprovision request. A failure '
  'after the drain began puts the old worker''s shouldhaveshards back and removes nothing. Refuses the coordinator, '
  'a node not an active worker and a size that is not such an object; reason is at most 500 bytes.';
