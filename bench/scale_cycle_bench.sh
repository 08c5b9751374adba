#!/usr/bin/env bash
# Scale cycle benchmark (prints figures; asserts nothing): a policy on commits/s (max over
# workers), a standby in the pool, a light pgbench stream throughout (2 clients, 20 tps) and a
# heavy one (8 clients, unthrottled) for a while.
#   - times: heavy load start -> scale_out started -> standby active -> rebalance finished;
#     heavy load stop -> scale_in started -> node drained and removed;
#   - pgbench per phase (before, scale-out, after, scale-in) for both streams: tps, failed
#     transactions, latency p50/p95/max (per-transaction logs).
# Needs Citus installed; runs a local cluster on loopback ports 9900+ and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. pg_test/lib.sh
CLUSTER_DIR=/tmp/autoscale-bench BASE_PORT=9900 SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-1s}
CLIENTS=${CLIENTS:-8}
PHASE_S=${PHASE_S:-10}
MODE=${MODE:-auto}
citus_installed || { citus_missing_line; exit 0; }
trap 'pgbench_loop_stop heavy 2>/dev/null; pgbench_loop_stop light 2>/dev/null; stop_all' EXIT

echo "building a cluster: coordinator + 2 workers + 1 standby in the pool (ports $BASE_PORT+)"
make_cluster 2 1
standby=$(node_port 3)
make_kv 16 200000
set_gucs 0 autoscale.mode act autoscale.shard_transfer_mode "$MODE" autoscale.max_operations_per_hour 0
q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby)" >/dev/null
q 0 "SELECT autoscale.set_policy('load', metric => 'commits_per_sec', aggregate => 'max',
       scale_out_above => 100, scale_in_below => 30, scale_out_for => '5 s', scale_in_for => '10 s',
       cooldown => '10 s', scale_in_cooldown => '10 s', min_workers => 2, max_workers => 3)" >/dev/null
echo "policy: $(q 0 "SELECT name || ': ' || metric || ' ' || aggregate || ' ' || rule || ', out for ' || scale_out_for || ', in for ' || scale_in_for || ', cooldown ' || cooldown_out FROM autoscale.policies")"
echo "settings: sample_interval $(q 0 "SHOW autoscale.sample_interval"), shard_transfer_mode $MODE, rebalance strategy: Citus default"
script=$(kv_rw_script 200000)
now() { date +%s.%N; }
ev_time() {  # epoch of the first event of operation $1 whose message matches $2
  q 0 "SELECT extract(epoch FROM min(at)) FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $1 AND message LIKE '$2'"
}
wait_op() {  # wait_op KIND AFTER_ID TIMEOUT: prints the id of the first such operation
  wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = '$1' AND id > $2)" "$3" || return 1
  q 0 "SELECT min(id) FROM autoscale.operations WHERE kind = '$1' AND id > $2"
}
rel() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "-"; else printf "%.1f", b - a }'; }

sleep 3
pgbench_loop_start light -c 2 -j 1 -R 20 -f "$script"
t0=$(now); sleep "$PHASE_S"
echo
echo "heavy load on ($CLIENTS clients)"
pgbench_loop_start heavy -c "$CLIENTS" -j 2 -f "$script"
t_load=$(now)
if out=$(wait_op scale_out 0 120); then
  t_out=$(q 0 "SELECT extract(epoch FROM started_at) FROM autoscale.operations WHERE id = $out")
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $out" 300 || true
  t_active=$(ev_time "$out" '%add_node -> start_rebalance%')
  t_out_done=$(q 0 "SELECT extract(epoch FROM finished_at) FROM autoscale.operations WHERE id = $out")
  [ -n "$t_out_done" ] || t_out_done=$(now)
  echo "  load start -> scale_out started:   $(rel "$t_load" "$t_out") s  ($(q 0 "SELECT reason FROM autoscale.operations WHERE id = $out"))"
  echo "  load start -> standby active:      $(rel "$t_load" "$t_active") s"
  echo "  load start -> rebalance finished:  $(rel "$t_load" "$t_out_done") s  ($(q 0 "SELECT status || ', ' || coalesce(op ->> 'progress_total', '?') || ' tasks' FROM autoscale.operations WHERE id = $out"))"
else
  out=0; t_out=$(now); t_out_done=$t_out; echo "  no scale_out within 120 s"
fi
sleep "$PHASE_S"
pgbench_loop_stop heavy
t_stop=$(now)
echo "heavy load off"
if in=$(wait_op scale_in "$out" 120); then
  t_in=$(q 0 "SELECT extract(epoch FROM started_at) FROM autoscale.operations WHERE id = $in")
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $in" 300 || true
  t_in_done=$(q 0 "SELECT extract(epoch FROM finished_at) FROM autoscale.operations WHERE id = $in")
  [ -n "$t_in_done" ] || t_in_done=$(now)
  t_drained=$(ev_time "$in" '%wait_drain -> cleanup%')
  echo "  load stop -> scale_in started:     $(rel "$t_stop" "$t_in") s"
  echo "  load stop -> drained:              $(rel "$t_stop" "$t_drained") s"
  echo "  load stop -> scale_in finished:    $(rel "$t_stop" "$t_in_done") s  ($(q 0 "SELECT status || coalesce(': ' || error, '') FROM autoscale.operations WHERE id = $in"))"
  echo "  node $standby in pg_dist_node: $(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $standby"), pool state: $(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $standby")"
else
  t_in_done=$(now); echo "  no scale_in within 120 s"
fi
sleep 3
pgbench_loop_stop light
t_end=$(now)

echo
echo "pgbench per phase (light: 2 clients at 20 tps throughout; heavy: $CLIENTS clients unthrottled)"
phase() {
  printf "  %-34s light %s\n" "$1" "$(pgbench_stats light "$2" "$3")"
  [ "$4" = heavy ] && printf "  %-34s heavy %s\n" "" "$(pgbench_stats heavy "$2" "$3")"
  return 0
}
phase "before (${PHASE_S}s, 2 workers)" "$t0" "$t_load" light
phase "load, policy window" "$t_load" "$t_out" heavy
phase "scale-out (add + rebalance)" "$t_out" "$t_out_done" heavy
phase "after (3 workers, ${PHASE_S}s)" "$t_out_done" "$t_stop" heavy
phase "light only, until scale-in ends" "$t_stop" "$t_in_done" light
phase "whole cycle" "$t0" "$t_end" heavy
echo
echo "operations:"
q 0 "SELECT id, kind, status, requested_by, round(extract(epoch FROM finished_at - started_at)::numeric, 1) || ' s', coalesce(error, '') FROM autoscale.operations ORDER BY id" | sed 's/^/  /'
