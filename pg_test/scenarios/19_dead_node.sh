#!/usr/bin/env bash
# A node that never comes back (issue 14, part 5), on a real cluster.
# 1. Replication factor 2 on 3 workers, a standby in the pool, one worker stopped for good
#    (immediate stop): after autoscale.dead_node_after it is declared dead (one dead_node event,
#    status and explain() show it), and a replace_dead operation disables it (queries succeed
#    again), takes the standby, copies every shard group back to 2 copies and removes the dead
#    node. The operation is held at each of its steps by the test build's failpoint
#    (autoscale.test_hold_at_steps) and the background worker SIGKILLed there; each time it
#    resumes at the recorded step. Every row is kept, every shard has 2 healthy copies.
#    Before that, with autoscale.dead_node_after = -1, no replacement starts for the worker
#    already declared dead, and explain() says that automatic replacement is off.
# 2. The same with replication factor 1: the dead node holds sole copies, so nothing is disabled
#    or removed, no operation starts; one dead_node alert event, and status says so.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "dead node: replaced when every placement has a copy, left to the operator when it holds a sole copy"

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# COPIES_SQL: 'min max' placements per shard of the distributed tables on active nodes
COPIES_SQL="SELECT min(c) || ' ' || max(c) FROM (
  SELECT s.shardid, count(p.placementid) FILTER (WHERE n.isactive) c
    FROM pg_dist_shard s JOIN pg_dist_partition t USING (logicalrelid)
    LEFT JOIN pg_dist_placement p USING (shardid) LEFT JOIN pg_dist_node n USING (groupid)
   WHERE t.partmethod = 'h' GROUP BY s.shardid) x"

setup() {  # setup RF: 3 workers, a standby, tables with replication factor RF, settings
  local rf=$1
  make_cluster 3 1
  require_failpoints
  q 0 "SET citus.shard_replication_factor = $rf;
       CREATE TABLE t (id bigint PRIMARY KEY, v text);
       SELECT create_distributed_table('t', 'id', shard_count := 8);
       CREATE TABLE t2 (id bigint, k int, PRIMARY KEY (id, k));
       SELECT create_distributed_table('t2', 'id', colocate_with := 't');
       CREATE TABLE r (id int PRIMARY KEY);
       SELECT create_reference_table('r');
       INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 6000) g;
       INSERT INTO t2 SELECT g % 6000 + 1, g FROM generate_series(1, 6000) g;
       INSERT INTO r SELECT generate_series(1, 10)" >/dev/null
  # a policy that never fires: explain() then has a row to show the dead nodes on
  q 0 "CREATE TABLE public.knob (v float8); INSERT INTO public.knob VALUES (50); GRANT SELECT ON public.knob TO autoscale_metrics" >/dev/null
  set_gucs 0 autoscale.mode act autoscale.max_operations_per_hour 0 autoscale.rebalance_strategy by_shard_count \
    autoscale.sample_interval 1s autoscale.node_timeout 1000 autoscale.dead_node_after 10s \
    autoscale.rebalance_interval -1 autoscale.rebalance_settle 86400
  q 0 "SELECT autoscale.set_policy('bounds', metric => 'custom', custom_sql => 'SELECT v FROM public.knob',
         scale_out_above => 1000, scale_in_below => -1, min_workers => 1, max_workers => 5)" >/dev/null
  assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $(node_port 4)) ->> 'state'")" available "standby offered"
}

# --- the setting is validated with a clear error
make_cluster 1 0
for bad in 5s 0; do
  out=$(sql_error 0 "SET autoscale.dead_node_after = '$bad'")
  assert_contains "$out" "must be -1 (never declare a worker dead) or between 10 s and 2592000 s" \
    "dead_node_after = '$bad' refused, naming what is allowed"
done
echo "  $(sql_error 0 "SET autoscale.dead_node_after = '5s'" | head -2 | tr '\n' ' ')"
assert_contains "$(sql_error 0 "SET autoscale.dead_node_after = '-2'")" \
  'outside the valid range for parameter "autoscale.dead_node_after" (-1' "dead_node_after = -2 refused"
assert_eq "$(sql_error 0 "SET autoscale.dead_node_after = '-1'")" ok "dead_node_after = -1 (never) accepted"
assert_eq "$(q 0 "SHOW autoscale.dead_node_after")" 2min "default dead_node_after"

# ============================================================ 1. replication factor 2
setup 2
dead=$(node_port 3); standby=$(node_port 4)
assert_eq "$(row_counts 0)" "r=10 t=6000 t2=6000 " "rows before"
assert_eq "$(q 0 "$COPIES_SQL")" "2 2" "every shard has 2 copies"
# (a rebalance held at its first step keeps the queue busy, so that the worker is declared dead
# while no replacement can start yet: see "dead_node_after = -1" below)
set_gucs 0 autoscale.test_hold_at_steps "start_rebalance,disable_node,pick_standby,add_node,copy_placements,remove_node"
held=$(q 0 "SELECT (autoscale.rebalance_now('keeps the queue busy')) ->> 'id'")
wait_for 0 "SELECT status = 'running' AND step = 'start_rebalance' FROM autoscale.operations WHERE id = $held" 30 ||
  { dump_state 0; fail "rebalance $held not held at start_rebalance"; }

# (the watcher: at no observation does a placement belong to a node that left pg_dist_node)
violations="$CLUSTER_DIR/violations"; : >"$violations"
( while :; do
    r=$(q 0 "$ORPHAN_SQL" 2>/dev/null) && [ "$r" != 0 ] && echo "$(date +%T.%N) $r placements on removed nodes" >>"$violations"
    sleep 0.3
  done ) &
watcher=$!
trap 'kill $watcher 2>/dev/null || true; stop_all' EXIT

stopped_at=$(date +%s.%N)
as_pg "$PGBIN/pg_ctl" -D "$(node_dir 3)" -m immediate -w stop >/dev/null
echo "stopped worker $dead for good"
assert_eq "$(sql_error 0 "INSERT INTO t SELECT g, 'while dead' FROM generate_series(300001, 300100) g" | grep -c 'connection to the remote node' || true)" 1 \
  "before it is disabled, a write to a shard on the dead node fails"
wait_for 0 "SELECT count(*) = 1 FROM autoscale.dead_nodes WHERE nodeport = $dead" 60 || { dump_state 0; false; } ||
  fail "worker $dead not declared dead"
declared_at=$(date +%s.%N)
echo "declared dead after $(secs "$stopped_at" "$declared_at") s (dead_node_after 10 s)"
assert_eq "$(q 0 "SELECT replaceable FROM autoscale.dead_nodes WHERE nodeport = $dead")" t "declared dead and replaceable"
assert_contains "$(q 0 "SELECT message FROM autoscale.events WHERE kind = 'dead_node'")" "each with a healthy copy elsewhere" \
  "the dead_node event says it can be replaced"
assert_contains "$(q 0 "SELECT dead_nodes::text FROM autoscale.status")" "\"node\": \"127.0.0.1:$dead\"" "status shows the dead node"
assert_contains "$(q 0 "SELECT array_to_string(dead_nodes, ' | ') FROM autoscale.explain() WHERE policy = 'bounds'")" \
  "127.0.0.1:$dead: worker 127.0.0.1:$dead is dead" "explain() shows the dead node"

# --- dead_node_after = -1 hands dead workers to the operator: no replacement starts, even for a
# worker declared dead before the change, and explain() says so
# (failure_backoff 0: the cancel below must not be what holds the replacement back)
set_gucs 0 autoscale.dead_node_after -1 autoscale.failure_backoff 0
q 0 "SELECT autoscale.cancel_operation('hands the dead worker to the operator')" >/dev/null
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $held" 30 || fail "rebalance $held did not end on cancel"
mark=$(q 0 "SELECT max(sample_id) FROM autoscale.worker_count")
wait_for 0 "SELECT count(*) >= 5 FROM autoscale.worker_count WHERE sample_id > $mark" 30 || fail "sampling stalled"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'replace_dead'")" 0 \
  "dead_node_after = -1: no replace_dead in 5 ticks for the worker declared dead before"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.dead_nodes WHERE nodeport = $dead")" 1 "the worker is still listed as dead"
assert_contains "$(q 0 "SELECT dead_nodes::text FROM autoscale.status")" "\"node\": \"127.0.0.1:$dead\"" \
  "status still lists it"
assert_contains "$(q 0 "SELECT array_to_string(dead_nodes, ' | ') FROM autoscale.explain() WHERE policy = 'bounds'")" \
  "automatic replacement is off" "explain() says so"
# back to 10 s: the same worker is replaced at once (what -1 held back)
set_gucs 0 autoscale.dead_node_after 10s

wait_for 0 "SELECT count(*) = 1 FROM autoscale.operations WHERE kind = 'replace_dead' AND step = 'disable_node'" 30 ||
  { dump_state 0; fail "no replace_dead operation held at disable_node"; }
op=$(q 0 "SELECT id FROM autoscale.operations WHERE kind = 'replace_dead'")
assert_eq "$(q 0 "SELECT requested_by || ' ' || (op -> 'dead' ->> 'port') FROM autoscale.operations WHERE id = $op")" "dead_node $dead" \
  "replace_dead $op started for the dead node"

kill_worker_at "$op" disable_node "pick_standby,add_node,copy_placements,remove_node"
kill_worker_at "$op" pick_standby "add_node,copy_placements,remove_node"
assert_eq "$(q 0 "SELECT isactive FROM pg_dist_node WHERE nodeport = $dead")" f "the dead node is disabled (citus_disable_node)"
# queries keep succeeding once it is disabled: reads and writes on every shard
q 0 "INSERT INTO t SELECT g, 'after disable' FROM generate_series(200001, 200100) g" >/dev/null
q 0 "INSERT INTO r VALUES (11)" >/dev/null
assert_eq "$(q 0 "SELECT count(*) FROM t WHERE id > 200000")" 100 "reads and writes on every shard succeed after the disable"
kill_worker_at "$op" add_node "copy_placements,remove_node"
assert_eq "$(q 0 "SELECT nodeport FROM autoscale.operations WHERE id = $op")" "$standby" "the standby was taken from the pool"
kill_worker_at "$op" copy_placements "copy_placements@2,remove_node"
assert_eq "$(q 0 "SELECT isactive FROM pg_dist_node WHERE nodeport = $standby")" t "the standby joined"
# between two copies: two shard groups copied (committed), the rest to do after the kill
wait_for 0 "SELECT (op ->> 'progress_done')::int = 2 FROM autoscale.operations WHERE id = $op" 60 ||
  { dump_state 0; fail "operation $op did not copy two shard groups"; }
on_standby() { q 0 "SELECT count(*) FROM pg_dist_placement WHERE groupid = (SELECT groupid FROM pg_dist_node WHERE nodeport = $standby)"; }
copied_before=$(on_standby)
kill_worker_at "$op" copy_placements "copy_placements@2,remove_node"
assert_eq "$(q 0 "SELECT (op ->> 'progress_done')::int FROM autoscale.operations WHERE id = $op")" 2 \
  "after the kill between copies, 2 copies are recorded"
assert_eq "$(on_standby)" "$copied_before" "and the copies made before the kill are kept ($copied_before placements)"
set_gucs 0 autoscale.test_hold_at_steps "remove_node"
kill_worker_at "$op" remove_node ""
assert_eq "$(q 0 "$COPIES_SQL")" "2 2" "before the dead node is removed every shard has 2 copies on active nodes"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 60 || { dump_state 0; fail "replace_dead $op did not finish"; }
done_at=$(date +%s.%N)
q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op ORDER BY id"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "replace_dead $op succeeded despite 6 kills"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $dead")" 0 "the dead node is removed"
assert_eq "$(q 0 "$COPIES_SQL")" "2 2" "every shard has 2 copies again"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
                   WHERE s.logicalrelid = 'r'::regclass AND p.groupid = (SELECT groupid FROM pg_dist_node WHERE nodeport = $standby)")" 1 \
  "the replacement holds the reference table"
assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no placement on a removed node"
assert_eq "$(row_counts 0)" "r=11 t=6100 t2=6000 " "every row kept (6000 + 100 written after the disable; r 10 + 1)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.dead_nodes")" 0 "no dead node left"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $standby")" active "the standby is an active worker"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind = 'dead_node'")" 1 "exactly one dead_node event (not one per tick)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE id <> $held")" 1 "exactly one operation besides the cancelled rebalance"
kill "$watcher" 2>/dev/null || true
[ -s "$violations" ] && { cat "$violations"; fail "a node left pg_dist_node while it still held placements"; }
echo "figures: declared dead $(secs "$stopped_at" "$declared_at") s after the stop; replaced (with 6 kills and holds) $(secs "$stopped_at" "$done_at") s after the stop"

# without holds: the time from the stop to the replacement
set_gucs 0 autoscale.test_hold_at_steps ""
trap 'stop_all' EXIT

# ============================================================ 2. replication factor 1
setup 1
dead=$(node_port 3)
before_counts=$(q 0 "SELECT count(*) FROM pg_dist_placement WHERE groupid = (SELECT groupid FROM pg_dist_node WHERE nodeport = $dead)")
as_pg "$PGBIN/pg_ctl" -D "$(node_dir 3)" -m immediate -w stop >/dev/null
echo "stopped worker $dead for good (replication factor 1)"
wait_for 0 "SELECT count(*) = 1 FROM autoscale.dead_nodes WHERE nodeport = $dead" 60 || { dump_state 0; false; } ||
  fail "worker $dead not declared dead"
assert_eq "$(q 0 "SELECT replaceable FROM autoscale.dead_nodes WHERE nodeport = $dead")" f "declared dead, not replaceable"
assert_contains "$(q 0 "SELECT message FROM autoscale.events WHERE kind = 'dead_node'")" "the only copy" \
  "the dead_node alert says it holds sole copies"
assert_contains "$(q 0 "SELECT dead_nodes -> 0 ->> 'message' FROM autoscale.status")" "it is not disabled or removed" \
  "status says the operator decides"
# several more ticks: still nothing done, still one event
q 0 "SELECT pg_sleep(5)" >/dev/null
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "no operation started"
assert_eq "$(q 0 "SELECT isactive FROM pg_dist_node WHERE nodeport = $dead")" t "the dead node is not disabled"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_placement WHERE groupid = (SELECT groupid FROM pg_dist_node WHERE nodeport = $dead)")" \
  "$before_counts" "its placements are untouched"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind = 'dead_node'")" 1 "exactly one dead_node alert"
assert_contains "$(q 0 "SELECT autoscale.metrics()")" 'autoscale_dead_nodes{replaceable="false"} 1' "metrics() shows the dead node"
assert_eq "$(q 0 "SELECT standby_available FROM autoscale.status")" 1 "the standby stays in the pool"
# the node comes back: it is no longer dead
start_node 3
wait_for 0 "SELECT count(*) = 0 FROM autoscale.dead_nodes" 30 || { dump_state 0; fail "the node that came back is still dead"; }
assert_contains "$(q 0 "SELECT message FROM autoscale.events WHERE kind = 'dead_node_back'")" "answers again" \
  "a dead_node_back event when it answers again"
assert_eq "$(q 0 "SELECT count(*) FROM t")" 6000 "every row is there once it is back"
