#!/usr/bin/env bash
# Rebalance benchmark (prints figures; asserts nothing):
#   (1) reaction time: from citus_add_node() returning to autoscale's rebalance being scheduled
#       (the operation row with its Citus job id; citus_rebalance_start ran in that transaction)
#       and to the job's first task running, over RUNS runs (the node is drained and removed by
#       hand between runs); p50 and max, with the settings used;
#   (2) pgbench (8 clients, read-write on a distributed table) before, during and after an
#       autoscale-driven rebalance onto a new node, for shard_transfer_mode block_writes and
#       force_logical: tps, failed transactions, latency p50/p95/max from per-transaction logs.
# Needs Citus installed; runs a local cluster on loopback ports 9900+ and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. pg_test/lib.sh
CLUSTER_DIR=/tmp/autoscale-bench BASE_PORT=9900 SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-1s}
RUNS=${RUNS:-5}
SETTLE=${SETTLE:-5s}
CLIENTS=${CLIENTS:-8}
PHASE_S=${PHASE_S:-10}
citus_installed || { citus_missing_line; exit 0; }
trap 'pgbench_loop_stop rw 2>/dev/null; stop_all' EXIT

echo "building a cluster: coordinator + 2 workers + 1 standby (ports $BASE_PORT+)"
make_cluster 2 1
new=$(node_port 3)
make_kv 16 200000
set_gucs 0 autoscale.mode act autoscale.rebalance_settle "$SETTLE" autoscale.max_operations_per_hour 0 \
  autoscale.rebalance_strategy by_shard_count autoscale.shard_transfer_mode block_writes
sleep 2

remove_new_node() {  # drain and remove the standby by hand (what autoscale.scale_in automates)
  q 0 "SELECT citus_drain_node('127.0.0.1', $new, shard_transfer_mode := 'block_writes')" >/dev/null 2>&1
  q 0 "CALL citus_cleanup_orphaned_resources()" >/dev/null 2>&1
  q 0 "SELECT citus_remove_node('127.0.0.1', $new)" >/dev/null
}
# add_and_follow: adds the standby, waits for autoscale's rebalance to finish; sets T_ADD, OP
add_and_follow() {
  local last
  last=$(q 0 "SELECT coalesce(max(id), 0) FROM autoscale.operations")
  T_ADD=$(printf "SELECT citus_add_node('127.0.0.1', %s);\nSELECT extract(epoch FROM clock_timestamp());\n" "$new" | psql_node 0 | tail -1)
  wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE id > $last AND kind = 'rebalance')" 120 ||
    { echo "no rebalance operation started"; return 1; }
  OP=$(q 0 "SELECT min(id) FROM autoscale.operations WHERE id > $last AND kind = 'rebalance'")
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $OP" 300 || { echo "rebalance did not finish"; return 1; }
}

echo
echo "(1) reaction time: node active -> autoscale's rebalance job scheduled"
echo "    sample_interval $(q 0 "SHOW autoscale.sample_interval"), rebalance_settle $(q 0 "SHOW autoscale.rebalance_settle"), $RUNS runs"
printf "    %-4s %14s %14s %12s %s\n" run "scheduled (s)" "1st task (s)" "total (s)" "moves"
sched=(); for run in $(seq "$RUNS"); do
  add_and_follow
  row=$(q 0 "SELECT round((extract(epoch FROM o.started_at) - $T_ADD)::numeric, 2),
                    round((extract(epoch FROM j.started_at) - $T_ADD)::numeric, 2),
                    round((extract(epoch FROM o.finished_at) - $T_ADD)::numeric, 2),
                    coalesce(o.op ->> 'progress_total', '?') || ' tasks, ' || o.status
               FROM autoscale.operations o LEFT JOIN pg_dist_background_job j USING (job_id) WHERE o.id = $OP")
  IFS='|' read -r s f t m <<<"$row"
  printf "    %-4s %14s %14s %12s %s\n" "$run" "$s" "$f" "$t" "$m"
  sched+=("$s")
  remove_new_node
  sleep 2   # the removal settles into the worker set before the next run
done
printf '%s\n' "${sched[@]}" | sort -n | awk '{a[NR]=$1} END {printf "    scheduled after: p50 %.2f s, max %.2f s (target: sample_interval + rebalance_settle)\n", a[int((NR-1)/2)+1], a[NR]}'

echo
echo "(2) pgbench during an autoscale-driven rebalance: $CLIENTS clients, read-write script on kv (16 shards, 200k rows)"
script=$(kv_rw_script 200000)
for mode in block_writes force_logical; do
  set_gucs 0 autoscale.shard_transfer_mode "$mode"
  pgbench_loop_start rw -c "$CLIENTS" -j 2 -f "$script"
  t0=$(date +%s.%N); sleep "$PHASE_S"
  add_and_follow
  t_sched=$(q 0 "SELECT extract(epoch FROM started_at) FROM autoscale.operations WHERE id = $OP")
  t_done=$(q 0 "SELECT extract(epoch FROM finished_at) FROM autoscale.operations WHERE id = $OP")
  sleep "$PHASE_S"; t_end=$(date +%s.%N)
  pgbench_loop_stop rw
  echo "  shard_transfer_mode $mode: rebalance $(q 0 "SELECT status || ', ' || coalesce(op ->> 'progress_total', '?') || ' tasks, ' ||
         round((extract(epoch FROM finished_at) - extract(epoch FROM started_at))::numeric, 1) || ' s'
         FROM autoscale.operations WHERE id = $OP")"
  printf "    %-26s %s\n" "before (${PHASE_S}s)" "$(pgbench_stats rw "$t0" "$T_ADD")"
  printf "    %-26s %s\n" "node added, settling" "$(pgbench_stats rw "$T_ADD" "$t_sched")"
  printf "    %-26s %s\n" "during rebalance" "$(pgbench_stats rw "$t_sched" "$t_done")"
  printf "    %-26s %s\n" "after (${PHASE_S}s)" "$(pgbench_stats rw "$t_done" "$t_end")"
  printf "    %-26s %s\n" "whole run" "$(pgbench_stats rw "$t0" "$t_end")"
  remove_new_node
  sleep 2
done
