#!/usr/bin/env bash
# The whole loop under real load: a standby in the pool, a policy on commits/s (max over workers).
# pgbench (8 clients, read-write on a distributed table) pushes the policy over its threshold ->
# scale_out takes the standby, adds it and rebalances onto it while pgbench runs, with ZERO failed
# transactions. The load stops -> the policy goes under its scale-in threshold -> scale_in drains
# the node, removes it and returns it to the pool. No row lost, no placement left on the node.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "scale out under pgbench load, scale in when it stops"
make_cluster 2 1
standby=$(node_port 3)

make_kv 8 100000
q 0 "CREATE TABLE kv_kind (k int PRIMARY KEY, name text);
     SELECT create_reference_table('kv_kind');
     INSERT INTO kv_kind VALUES (1, 'one'), (2, 'two')" >/dev/null
script=$(kv_rw_script 100000)

set_gucs 0 autoscale.mode act
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby offered to the pool"
q 0 "SELECT autoscale.set_policy('load', metric => 'commits_per_sec', aggregate => 'max',
       scale_out_above => 100, scale_in_below => 20, scale_out_for => '3 s', scale_in_for => '3 s',
       cooldown => '5 s', scale_in_cooldown => '5 s', min_workers => 2, max_workers => 3)" >/dev/null
sleep 3
assert_eq "$(q 0 "SELECT decision FROM autoscale.explain()")" hold "idle: the policy holds ($(q 0 "SELECT current_value FROM autoscale.explain()") commits/s)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "no operation while idle"
kv_before=$(q 0 "SELECT count(*) || '/' || sum(v) FROM kv")

# load: 8 clients, rate-limited so that the rebalance has CPU left on 2 cores
log="$CLUSTER_DIR/pgbench.out"
t_load=$(date +%s)
as_pg pgbench -h 127.0.0.1 -p "$(node_port 0)" -U postgres -n -c 8 -j 2 -R 500 -T 40 -P 5 -f "$script" postgres >"$log" 2>&1 &
pgb=$!
trap 'kill $pgb 2>/dev/null || true; stop_all' EXIT

wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_out')" 25 || { dump_state 0; false; } ||
  fail "no scale_out within 25 s of load (explain: $(q 0 "SELECT current_value, decision, reasons FROM autoscale.explain()"))"
echo "scale_out started $(( $(date +%s) - t_load )) s after the load began: $(q 0 "SELECT reason FROM autoscale.operations WHERE kind = 'scale_out'")"
assert_eq "$(q 0 "SELECT requested_by FROM autoscale.operations WHERE kind = 'scale_out'")" policy "started by the policy"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'scale_out'" 40 || { dump_state 0; false; } ||
  fail "scale_out did not finish within 40 s"
echo "scale_out finished $(( $(date +%s) - t_load )) s after the load began"
kill -0 "$pgb" 2>/dev/null && echo "ok: pgbench still running when the scale-out finished" || echo "note: pgbench ended before the scale-out finished"
q 0 "SELECT at::time, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = (SELECT id FROM autoscale.operations WHERE kind = 'scale_out') ORDER BY id"
assert_eq "$(q 0 "SELECT status || ' ' || nodename || ':' || nodeport FROM autoscale.operations WHERE kind = 'scale_out'")" \
  "succeeded 127.0.0.1:$standby" "scale_out succeeded with the standby"
assert_true "$(q 0 "SELECT isactive AND shouldhaveshards FROM pg_dist_node WHERE nodeport = $standby")" "the standby is an active worker"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $standby")" active "pool state active"
assert_true "$(q 0 "SELECT count(*) >= 2 FROM citus_shards WHERE nodeport = $standby AND table_name = 'kv'::regclass")" \
  "kv rebalanced onto it ($(shard_spread 0))"
assert_true "$(q 0 "SELECT job_id IS NOT NULL FROM autoscale.operations WHERE kind = 'scale_out'")" "through a Citus rebalance job"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'scale_out'")" 1 "one scale_out (max_workers 3)"

wait "$pgb" || { cat "$log"; fail "pgbench exited with status $?"; }
trap stop_all EXIT
grep -E '^(progress|number of|tps|latency)' "$log" | sed 's/^/  pgbench: /'
assert_eq "$(pgbench_failed "$log")" 0 "zero failed pgbench transactions during scale-out and rebalance"
t_stop=$(date +%s)
log_rows=$(q 0 "SELECT count(*) FROM kv_log")
assert_true "$(q 0 "SELECT $log_rows > 0")" "pgbench wrote $log_rows log rows"
assert_eq "$(q 0 "SELECT count(*) FROM kv")" "${kv_before%/*}" "kv row count unchanged after the load"
assert_eq "$(q 0 "SELECT sum(v) FROM kv")" "$log_rows" "every committed update is there (sum(v) = log rows)"

# idle again: scale in the node autoscale added
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_in')" 30 || { dump_state 0; false; } ||
  fail "no scale_in within 30 s of the load stopping (explain: $(q 0 "SELECT current_value, decision, reasons FROM autoscale.explain()"))"
echo "scale_in started $(( $(date +%s) - t_stop )) s after the load stopped: $(q 0 "SELECT nodename || ':' || nodeport || ' ' || reason FROM autoscale.operations WHERE kind = 'scale_in'")"
assert_eq "$(q 0 "SELECT nodeport FROM autoscale.operations WHERE kind = 'scale_in'")" "$standby" "scale_in picks the node autoscale added"
seen_steps=""
deadline=$(( $(date +%s) + 60 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  st=$(q 0 "SELECT status || ':' || step FROM autoscale.operations WHERE kind = 'scale_in'")
  case " $seen_steps " in *" ${st#*:} "*) ;; *) seen_steps+="${st#*:} ";; esac
  assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no placement on a removed node" >/dev/null
  [ "${st%%:*}" = running ] || break
  sleep 0.3
done
echo "scale_in steps seen: $seen_steps"
q 0 "SELECT at::time, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = (SELECT id FROM autoscale.operations WHERE kind = 'scale_in') ORDER BY id"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE kind = 'scale_in'")" succeeded "scale_in succeeded"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $standby")" 0 "the node left pg_dist_node"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $standby")" returned "the node is back in the pool (returned)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.provision_requests WHERE kind = 'deprovision' AND (payload -> 'node' ->> 'port')::int = $standby")" 1 \
  "a deprovision request for it"
assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no placement points at a removed node"
assert_eq "$(q 3 "SET citus.override_table_visibility = off; SELECT count(*) FROM pg_class WHERE relname ~ '^kv(_log)?_[0-9]+\$'")" 0 \
  "no shard table left on the node itself"
assert_eq "$(q 0 "SELECT count(*) FROM citus_shards WHERE nodeport = $standby")" 0 "no shard of the cluster on it"
assert_eq "$(q 0 "SELECT count(*) FROM kv")" "${kv_before%/*}" "kv row count unchanged after the scale-in"
assert_eq "$(q 0 "SELECT count(*) FROM kv_log")" "$log_rows" "kv_log row count unchanged after the scale-in"
assert_eq "$(q 0 "SELECT count(*) FROM kv_kind")" 2 "reference table intact"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"
# issue 10: a returned node has a pending deprovision request and is not available until offered again
assert_eq "$(q 0 "SELECT standby_available FROM autoscale.status")" 0 "status: the returned node is not available"
q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby)" >/dev/null
assert_eq "$(q 0 "SELECT standby_available FROM autoscale.status")" 1 "status: one standby available again"
