-- Runs after pgrx created the functions: privileges and \df+ comments.

-- Nothing is executable by PUBLIC; reading is for pg_monitor; changing the cluster or the policies
-- is for superusers and for roles an administrator grants EXECUTE explicitly. The functions that
-- change things are SECURITY DEFINER with a pinned search_path, so a granted role needs no table
-- privileges of its own; set_policy() is not: it checks custom SQL against the real calling user and
-- writes the validated policy with the extension owner's rights.
-- === the node history's view and the views that read it (they need autoscale.history_readings()) ===
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

GRANT SELECT ON autoscale.node_samples, autoscale.latest_node_load, autoscale.history_storage TO pg_monitor;

DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'autoscale'::regnamespace
  LOOP
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION autoscale.node_stats(), autoscale.explain(), autoscale.backtest(interval, text, interval),
  autoscale.metrics() TO pg_monitor;
GRANT EXECUTE ON FUNCTION autoscale.scale_out_path(integer) TO pg_monitor;
GRANT EXECUTE ON FUNCTION autoscale.history_readings(bytea) TO pg_monitor;
GRANT EXECUTE ON FUNCTION autoscale.capacity_plan() TO pg_monitor;
GRANT EXECUTE ON FUNCTION autoscale.resize_advice(interval) TO pg_monitor;
GRANT EXECUTE ON FUNCTION autoscale.backtest_series(timestamp with time zone[], double precision[], text, interval,
  integer, double precision[]) TO pg_monitor;

COMMENT ON FUNCTION autoscale.node_stats() IS
  'This node''s raw load as one json value: cumulative CPU counters (/proc/stat, or cgroup v2 cpu.stat under a CPU '
  'limit), load averages, memory total/available, data-directory disk total/free, client connections total/active, '
  'cumulative commits and rollbacks, database size, shard bytes and whether this node is the Citus coordinator. Runs '
  'with search_path pg_catalog, pg_temp.';
COMMENT ON FUNCTION autoscale.sample() IS
  'Samples every active node now: the coordinator locally, all workers in one parallel run_command_on_workers '
  'fan-out; computes CPU busy % and commits/s from each node''s previous sample; writes autoscale.node_samples and '
  'autoscale.worker_count (and custom policy metrics). A node that does not answer within autoscale.node_timeout '
  'gets a row with reachable = false. Without Citus it samples this node alone.';
COMMENT ON FUNCTION autoscale.tick() IS
  'One autoscaler cycle, as the background worker runs it: sample when autoscale.sample_interval has passed, advance '
  'the running operation one step or decide (policies, rebalance trigger) and act within the guards and '
  'autoscale.mode, deliver webhooks, prune history past autoscale.history_retention. Concurrent ticks skip instead '
  'of double-sampling (advisory lock). Schedule with pg_cron: cron.schedule(''autoscale'', ''5 seconds'', '
  '''SELECT autoscale.tick()'') (pg_cron 1.5+; older pg_cron: ''* * * * *'').';
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
COMMENT ON FUNCTION autoscale.drop_policy(text) IS 'Drops a policy by name; an unknown name is an error.';
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
COMMENT ON FUNCTION autoscale.pause(interval) IS
  'Pauses scaling decisions (scale out/in) for the given interval; operations already running finish. Returns the end.';
COMMENT ON FUNCTION autoscale.resume() IS 'Ends a pause; returns whether a pause was in force.';
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
  'latest sample; per policy its value and desired workers; per predictive policy with a forecast '
  '(autoscale_policy_forecast, autoscale_policy_forecast_error_ratio, autoscale_policy_forecast_crosses_in_seconds, '
  'autoscale_policy_forecast_cycle_seconds: the period of the cycle it uses, 0 for none); the bounds of each '
  'schedule that applies now '
  '(autoscale_schedule_min_workers, autoscale_schedule_max_workers, label schedule); running operations and their progress, operations by '
  'kind and status, the standby pool by state, pending provision requests, paused, dead workers (replaceable or '
  'not). Reads only.';
COMMENT ON FUNCTION autoscale.rebalance_now(text) IS
  'Starts a rebalance now (citus_rebalance_start with autoscale.rebalance_strategy and autoscale.shard_transfer_mode) '
  'as a followed operation, through the same guards as the automatic one (mode act, no other rebalance running, '
  'maintenance window, rate limit). Returns the operation.';
COMMENT ON FUNCTION autoscale.scale_in(text, integer, text) IS
  'Removes a worker: shouldhaveshards = false, a drain_only rebalance job, citus_cleanup_orphaned_resources, a check '
  'that no placement is left, citus_remove_node, back to the pool as returned with a deprovision request (not '
  'claimable until offered again). On any failure or cancel shouldhaveshards is put back to what it was, whatever '
  'the guards say. Refuses the coordinator and going below min_workers (the policies'', or a schedule''s in force); '
  'reason is at most 500 bytes. Removing the '
  'last worker (back to a single node) is refused unless the coordinator can take every shard: shouldhaveshards = '
  'true (or autoscale.coordinator_shards = ''shed'', which sets it first) and free disk for the workers'' shard bytes '
  'plus 20%.';
COMMENT ON FUNCTION autoscale.add_standby_node(text, integer) IS
  'Offers a node to the standby pool, or offers again a node that is returned or failed (its pending deprovision '
  'requests are then fulfilled). Refused when it is in the cluster or available/joining/active/draining in the pool, '
  'does not answer within autoscale.node_timeout, or lacks the citus and citus_autoscale extension files.';
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
COMMENT ON FUNCTION autoscale.remove_standby_node(text, integer) IS
  'Takes a node out of the standby pool; refused while it is joining, active or draining.';
COMMENT ON FUNCTION autoscale.isolate_tenant(regclass, text, text, integer, text) IS
  'Isolates a tenant now: tenant_value of table_name (a hash-distributed table) gets a shard of its own with '
  'isolate_tenant_to_new_shard(table, tenant, ''CASCADE'') (its colocated tables too), which then moves to '
  'target_host:target_port (an active worker) or, by default, to the least-loaded other worker at the latest sample, '
  'with citus_move_shard_placement (block_writes: only the writes to that tenant wait). An isolate_tenant operation '
  '(steps isolate, move_tenant, verify_tenant) with the guards, events and crash resume of the others; a resumed step '
  'that finds its work done does not do it again. Refused when the tenant already has its own shard on the target. '
  'Returns the operation. The automatic action is off by default: autoscale.isolate_hot_tenants, hot_tenant_share.';
COMMENT ON FUNCTION autoscale.cancel_operation(text) IS
  'Cancels the running operation and the Citus job it follows; a scale-in that has drained is restored '
  '(shouldhaveshards put back to what it was) first; a scale-out puts its claimed pool node back to available and '
  'expires its provision request.';
COMMENT ON FUNCTION autoscale.shard_load_cost(bigint) IS
  'The shard cost function of the rebalance strategy autoscale_by_load (registered with citus_add_rebalance_strategy '
  'on the coordinator at the first tick): the measured load of the shard''s group (autoscale.shard_group_load, '
  'operations/s) plus a base of a tenth of the mean group load, so cold groups still spread; 1 for every shard while '
  'no load was measured or the data nodes are idle (mean below 1 operation/s: the strategy then balances shard '
  'groups by count). Citus calls it while planning.';

-- The status view: it reads the node history's view and the scale-out path, autoscale.scale_out_path() (both
-- created by pgrx's functions after bootstrap.sql).
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
GRANT SELECT ON autoscale.status TO pg_monitor;

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
COMMENT ON FUNCTION autoscale.capacity_plan() IS
  'The capacity plan from the hourly rollups of the last year: per metric (cpu, memory, disk, connections, '
  'commits_per_sec, database_bytes) the current value, the linear-trend forecast at 3, 6 and 12 months, growth per '
  'month, the scale-out threshold (the lowest of the policies on that metric, else a default for cpu 80, memory 90, '
  'disk 85), when the trend crosses it on today''s data nodes and when even max_workers pass it, and the action '
  'required in plain words. With less than 7 days of hourly rollups it says so instead of forecasting.';

-- === versions (0.3.0) ===
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
  'load_skew and hot_tenant while they apply, schedule while a schedule applies (the bounds in force, the cluster''s '
  'desired workers and decision within them, and which schedule raised or lowered what until when), and versions when this PostgreSQL / Citus pair is not a tested one '
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

-- === vertical scaling advice (0.4.0) ===
COMMENT ON FUNCTION autoscale.resize_advice(interval) IS
  'Vertical scaling advice from the samples of the last window (1 minute to 7 days, default 10 min): per reachable data '
  'node, a row per resource that needs a bigger machine, with the window''s median (observed), the line (threshold), '
  'by how much to grow it (factor), the vCPUs advised when the cores are known, and why. cpu: busy above 70% while the '
  'load cannot be spread further (its busiest shard group carries half of its load, or the cluster is at the highest '
  'max_workers), sized for 60%; memory: used above 85%, sized for 70%; shared_buffers: cache hit ratio below 95%, twice '
  'today''s. Sustained: at least 3 samples, 80% of them beyond the line. Advice only: nothing is resized.';

-- === resize (0.4.0) ===
COMMENT ON FUNCTION autoscale.resize(text, integer, jsonb, text) IS
  'Replaces the worker host:port by a larger one with no restart and no downtime: a resize operation asks the '
  'provisioner for a node of size (a json object of PostgreSQL settings by name, e.g. {"shared_buffers": "2GB"}, sent '
  'as payload -> size of the provision request; only the node the request is answered with is taken, never another '
  'pool node), adds it, drains the old worker onto it (shouldhaveshards = false, a drain_only rebalance job, cleanup, '
  'a check that no placement is left), removes the old worker and hands it back with a deprovision request. A failure '
  'after the drain began puts the old worker''s shouldhaveshards back and removes nothing. Refuses the coordinator, '
  'a node not an active worker and a size that is not such an object; reason is at most 500 bytes.';

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
