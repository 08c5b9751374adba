-- Runs after pgrx created the functions: privileges and \df+ comments.

REVOKE ALL ON FUNCTION autoscale.sample() FROM PUBLIC;
REVOKE ALL ON FUNCTION autoscale.tick() FROM PUBLIC;
REVOKE ALL ON FUNCTION autoscale.node_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION autoscale.node_stats() TO pg_monitor;

COMMENT ON FUNCTION autoscale.node_stats() IS
  'This node''s raw load as one json value: cumulative CPU counters (/proc/stat, or cgroup v2 cpu.stat under a CPU '
  'limit), load averages, memory total/available, data-directory disk total/free, client connections total/active, '
  'cumulative commits and rollbacks, database size, shard bytes and whether this node is the Citus coordinator.';
COMMENT ON FUNCTION autoscale.sample() IS
  'Samples every active node now: the coordinator locally, all workers in one parallel run_command_on_workers '
  'fan-out; computes CPU busy % and commits/s from each node''s previous sample; writes autoscale.node_samples and '
  'autoscale.worker_count. A node that does not answer within autoscale.node_timeout gets a row with reachable = false. '
  'Without Citus it samples this node alone. Superuser only.';
COMMENT ON FUNCTION autoscale.tick() IS
  'One autoscaler cycle, as the background worker runs it: sample when autoscale.sample_interval has passed, prune '
  'history past autoscale.history_retention. Concurrent ticks skip instead of double-sampling (advisory lock). '
  'Schedule with pg_cron: SELECT cron.schedule(''autoscale'', ''5 seconds'', ''SELECT autoscale.tick()''). Superuser only.';
