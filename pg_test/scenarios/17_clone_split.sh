#!/usr/bin/env bash
# Warm clones and Citus 13.2's snapshot split (issue 13). Two clones of worker 1 and one of worker 2
# are made with pg_basebackup -R on loopback and offered with autoscale.add_standby_clone().
# A: a load policy fires under pgbench; the scale-out goes by split (split_out): the clone becomes an
#    active primary, worker 1's shards are split between the two, every row is kept, 0 failed
#    transactions; the other clone of worker 1 still streams from it and is still ready.
# B: scale_out() splits that other clone, with the background worker SIGKILLed at every step of the
#    split (held there with autoscale.test_hold_at_steps): it resumes at the step and succeeds.
# C: the clone of worker 2 cannot catch up (its replay is paused, catch-up timeout 1 s): the split
#    falls back to the ordinary scale-out (a standby of the pool, a logical rebalance), the events say
#    why, the clone goes back to the pool. A stopped clone is shown as not ready, and the path says why.
# D: that clone is promoted outside the split (as a crash inside the promotion would leave it): the
#    split falls back, the clone is marked failed, the scale-out asks the provisioner.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "warm clones: scale out by snapshot split, SIGKILL at each step, fallback"
clone_cluster 100000
w1=$(node_port 1); w2=$(node_port 2); standby=$(node_port 3)

script=$(kv_rw_script 100000)

make_clone 4 1; make_clone 5 1; make_clone 6 2
c1=$(node_port 4); c2=$(node_port 5); c3=$(node_port 6)
echo "clones: $c1 and $c2 of worker $w1, $c3 of worker $w2"

# --- bad input, and a node that does not stream from the named primary
assert_sqlstate 22004 0 "SELECT autoscale.add_standby_clone(NULL, $c1, '127.0.0.1', $w1)"
assert_sqlstate 22004 0 "SELECT autoscale.add_standby_clone('127.0.0.1', $c1, '127.0.0.1', NULL)"
assert_sqlstate 22023 0 "SELECT autoscale.add_standby_clone('127.0.0.1', 0, '127.0.0.1', $w1)"
assert_sqlstate 22023 0 "SELECT autoscale.add_standby_clone('127.0.0.1', $c1, '', $w1)"
assert_sqlstate 22023 0 "SELECT autoscale.add_standby_clone('127.0.0.1', $c1, '127.0.0.1', $standby)"
assert_sqlstate 22023 0 "SELECT autoscale.add_standby_clone('127.0.0.1', $w2, '127.0.0.1', $w1)"
assert_sqlstate 55000 0 "SELECT autoscale.add_standby_clone('127.0.0.1', $c1, '127.0.0.1', $w2)"
assert_contains "$(sql_error 0 "SELECT autoscale.add_standby_clone('127.0.0.1', $c1, '127.0.0.1', $w2)")" \
  "streams from 127.0.0.1:$w1, not from 127.0.0.1:$w2" "the error says where the node streams from"
assert_sqlstate 55000 0 "SELECT autoscale.add_standby_clone('127.0.0.1', $standby, '127.0.0.1', $w1)"

offer_clone "$c1" "$w1"
assert_sqlstate 42710 0 "SELECT autoscale.add_standby_clone('127.0.0.1', $c1, '127.0.0.1', $w1)"
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "ordinary standby offered"

set_gucs 0 autoscale.mode act
# each sample checks the clones: lag recorded, streaming
q 0 "SELECT autoscale.sample()" >/dev/null
assert_true "$(q 0 "SELECT bool_and(clone_streaming AND clone_lag_bytes IS NOT NULL AND clone_checked_at > now() - interval '10 s')
                     FROM autoscale.standby_nodes WHERE primary_name IS NOT NULL")" "every clone streams, lag recorded"
assert_contains "$(q 0 "SELECT scale_out_path FROM autoscale.status")" "split: clone 127.0.0.1:" "status: the next scale-out splits"
assert_contains "$(q 0 "SELECT autoscale.scale_out_path(2)")" "logical: 2 nodes wanted" "two nodes go the logical way"
assert_eq "$(q 0 "SELECT jsonb_array_length(clones) FROM autoscale.status")" 1 "status lists the clone"

# --- A: a load policy fires under pgbench; the scale-out goes by split
# clone c2 of worker 1 and c3 of worker 2 keep streaming meanwhile, offered later
rows_before=$(row_counts 0)
w1_before=$(q 0 "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $w1")
echo "before: $(shard_spread 0); worker $w1 holds $w1_before placements"
q 0 "SELECT autoscale.set_policy('load', metric => 'commits_per_sec', aggregate => 'max',
       scale_out_above => 100, scale_in_below => 0, scale_out_for => '3 s', cooldown => '5 s', min_workers => 2, max_workers => 3)" >/dev/null
assert_contains "$(q 0 "SELECT DISTINCT scale_out_path FROM autoscale.explain()")" "split: clone 127.0.0.1:$c1" "explain() says the same"
t_load=$(date +%s)
pgbench_loop_start split -c 8 -j 2 -R 400 -f "$script"
trap 'pgbench_loop_stop split; stop_all' EXIT
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'split_out')" 40 || { dump_state 0; false; } ||
  fail "no split_out within 40 s of load (explain: $(q 0 "SELECT current_value, decision, scale_out_path FROM autoscale.explain()"))"
t_decided=$(date +%s.%N)
assert_eq "$(q 0 "SELECT requested_by || ' ' || nodeport FROM autoscale.operations WHERE kind = 'split_out'")" "policy $c1" \
  "the policy started a split_out of clone $c1"
# under pgbench the shard groups' load is measured: the choice of the clone goes by it
assert_contains "$(q 0 "SELECT message FROM autoscale.events WHERE kind = 'scale_out_path' ORDER BY id DESC LIMIT 1")" \
  "op/s" "the path's reason gives the primary's measured shard load"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'split_out'" 90 || { dump_state 0; false; } ||
  fail "split_out did not finish within 90 s"
t_done=$(date +%s.%N)
sleep 3
pgbench_loop_stop split
trap stop_all EXIT
q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int =
       (SELECT id FROM autoscale.operations WHERE kind = 'split_out') ORDER BY id"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE kind = 'split_out'")" succeeded "split_out succeeded"
echo "decision to relief: $(echo "$t_done - $t_decided" | bc) s (load began $t_load)"
assert_true "$(q 0 "SELECT isactive AND NOT nodeisclone AND noderole = 'primary' FROM pg_dist_node WHERE nodeport = $c1")" \
  "clone $c1 is an active primary worker"
assert_eq "$(as_pg psql -X -At -h 127.0.0.1 -p "$c1" -U postgres -d postgres -c "SELECT pg_is_in_recovery()")" f "clone $c1 is promoted"
c1_after=$(q 0 "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $c1")
w1_after=$(q 0 "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $w1")
echo "after: $(shard_spread 0)"
assert_true "$(q 0 "SELECT $c1_after > 0 AND $w1_after > 0")" "worker $w1's shards split: $w1_after on it, $c1_after on the clone"
assert_true "$(q 0 "SELECT count(*) > 0 FROM citus_shards WHERE nodeport = $c1 AND table_name = 'kv'::regclass")" "kv shards on the clone"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_background_job WHERE state NOT IN ('finished', 'cancelled', 'failed')")" 0 "no Citus job left"
assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no orphaned placement"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $c1")" active "pool: the clone is active"
load_stats=$(pgbench_stats split "${t_decided%.*}" "$(( ${t_done%.*} + 1 ))")
echo "pgbench during the split: $load_stats"
failed=$(echo "$load_stats" | sed -n 's/.*failed \([0-9]*\).*/\1/p')
assert_eq "$(( failed + $(cat "$CLUSTER_DIR"/pgb/split.*.out | grep -c 'pgbench exited' || true) ))" 0 "zero failed pgbench transactions"
log_rows=$(q 0 "SELECT count(*) FROM kv_log")
assert_eq "$(q 0 "SELECT count(*) FROM kv")" 100000 "kv row count unchanged"
assert_eq "$(q 0 "SELECT sum(v) FROM kv")" "$log_rows" "every committed update is there (sum(v) = $log_rows log rows)"
q 0 "SELECT autoscale.drop_policy('load')" >/dev/null
assert_eq "$(q 0 "SELECT string_agg((payload -> 'primary' ->> 'port') || ':' || status, ' ' ORDER BY payload -> 'primary' ->> 'port')
                 FROM autoscale.provision_requests WHERE kind = 'provision_clone'")" "$w1:pending $c1:pending" \
  "the provisioner is asked for a warm clone of each half"

# the other clone of worker 1, made before the split, still streams from it: a valid clone, ready
offer_clone "$c2" "$w1"
assert_eq "$(q 0 "SELECT status FROM autoscale.provision_requests WHERE kind = 'provision_clone' AND payload -> 'primary' ->> 'port' = '$w1'")" \
  fulfilled "offering a clone of worker $w1 answers the request"
q 0 "SELECT autoscale.sample()" >/dev/null
assert_true "$(q 0 "SELECT clone_streaming AND clone_error IS NULL FROM autoscale.standby_nodes WHERE nodeport = $c2")" \
  "the sibling clone $c2 still streams from worker $w1 after the split"
assert_contains "$(q 0 "SELECT autoscale.scale_out_path()")" "split: clone 127.0.0.1:$c2 of 127.0.0.1:$w1" "and is the next split"

# --- B: scale_out() splits the sibling; SIGKILL of the background worker at each step resumes there
steps="add_clone,check_split,promote_clone,verify_split"
set_gucs 0 autoscale.test_hold_at_steps "$steps"
rows_before=$(row_counts 0)
w1_before=$w1_after
op=$(q 0 "SELECT autoscale.scale_out(reason => 'sigkill test') ->> 'id'")
assert_eq "$(q 0 "SELECT kind || ' ' || step FROM autoscale.operations WHERE id = $op")" "split_out add_clone" "scale_out() starts a split_out, held at add_clone"
remaining=$steps
for s in add_clone check_split promote_clone verify_split; do
  wait_for 0 "SELECT step = '$s' AND status = 'running' FROM autoscale.operations WHERE id = $op" 30 || { dump_state 0; false; } ||
    fail "not held at $s"
  pid=$(kill_worker 0)
  echo "SIGKILLed the worker ($pid) while held at $s"
  assert_eq "$(q 0 "SELECT step || ' ' || status FROM autoscale.operations WHERE id = $op")" "$s running" "after SIGKILL at $s: still at $s"
  remaining=$(echo ",$remaining," | sed "s/,$s,/,/; s/^,//; s/,$//")
  set_gucs 0 autoscale.test_hold_at_steps "${remaining:-none}"
done
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 60 || { dump_state 0; false; } || fail "split_out after SIGKILLs did not finish"
q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op ORDER BY id"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "split_out resumed at every step and succeeded"
assert_true "$(q 0 "SELECT isactive AND NOT nodeisclone FROM pg_dist_node WHERE nodeport = $c2")" "clone $c2 is an active primary"
c2_after=$(q 0 "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $c2")
w1_after=$(q 0 "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $w1")
assert_true "$(q 0 "SELECT $c2_after > 0 AND $w1_after > 0 AND $w1_after < $w1_before")" "worker $w1 split again: $w1_after on it, $c2_after on $c2"
assert_eq "$(row_counts 0)" "$rows_before" "row counts unchanged"
assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no orphaned placement"
set_gucs 0 autoscale.test_hold_at_steps ""

# --- C: the clone of worker 2 cannot catch up: the split falls back to the ordinary scale-out
offer_clone "$c3" "$w2"
as_pg psql -X -q -At -h 127.0.0.1 -p "$c3" -U postgres -d postgres -c "SELECT pg_wal_replay_pause()"
psql_node 2 -c "CREATE TABLE lag_maker AS SELECT g FROM generate_series(1, 50000) g" >/dev/null
set_gucs 0 autoscale.clone_max_lag 1GB autoscale.clone_catchup_timeout 1
q 0 "SELECT autoscale.sample()" >/dev/null
assert_true "$(q 0 "SELECT clone_lag_bytes > 0 FROM autoscale.standby_nodes WHERE nodeport = $c3")" \
  "clone $c3 lags ($(q 0 "SELECT clone_lag_bytes FROM autoscale.standby_nodes WHERE nodeport = $c3") bytes)"
op=$(q 0 "SELECT autoscale.scale_out(reason => 'catch-up test') ->> 'id'")
split_fell_back "$op" "failed to catch up"
assert_true "$(q 0 "SELECT isactive FROM pg_dist_node WHERE nodeport = $standby")" "the ordinary standby $standby joined instead"
assert_true "$(q 0 "SELECT count(*) > 0 FROM citus_shards WHERE nodeport = $standby AND table_name = 'kv'::regclass")" "and got kv shards by rebalance"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $c3")" 0 "the clone is no longer registered in Citus"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $c3")" available "the clone is back in the pool"
assert_eq "$(row_counts 0)" "$rows_before" "row counts unchanged"

# a stopped clone is not ready, and the path says why
as_pg psql -X -q -At -h 127.0.0.1 -p "$c3" -U postgres -d postgres -c "SELECT pg_wal_replay_resume()"
stop_node 6
q 0 "SELECT autoscale.sample()" >/dev/null
assert_true "$(q 0 "SELECT NOT clone_streaming AND clone_error IS NOT NULL FROM autoscale.standby_nodes WHERE nodeport = $c3")" \
  "the stopped clone is recorded as not streaming: $(q 0 "SELECT clone_error FROM autoscale.standby_nodes WHERE nodeport = $c3" | head -c 120)"
assert_contains "$(q 0 "SELECT scale_out_path FROM autoscale.status")" "logical: no clone is ready: clone 127.0.0.1:$c3" "status: the next scale-out is logical, and why"
start_node 6
wait_for 6 "SELECT status = 'streaming' FROM pg_stat_wal_receiver" 30 || fail "clone $c3 does not stream again"
q 0 "SELECT autoscale.sample()" >/dev/null
assert_contains "$(q 0 "SELECT autoscale.scale_out_path()")" "split: clone 127.0.0.1:$c3" "streaming again, it is ready again"

# --- D: a clone promoted by a split whose transaction did not commit (what a crash inside
# citus_promote_clone_and_rebalance after its pg_promote leaves) has diverged: the split falls back and
# the clone is marked failed. Simulated by promoting the registered clone by hand while held at promote_clone.
set_gucs 0 autoscale.test_hold_at_steps promote_clone autoscale.clone_catchup_timeout 30
op=$(q 0 "SELECT autoscale.scale_out(reason => 'diverged clone test') ->> 'id'")
wait_for 0 "SELECT step = 'promote_clone' FROM autoscale.operations WHERE id = $op" 30 || { dump_state 0; false; } || fail "not held at promote_clone"
assert_true "$(q 0 "SELECT nodeisclone AND NOT isactive FROM pg_dist_node WHERE nodeport = $c3")" "clone $c3 registered as an inactive clone"
as_pg psql -X -q -At -h 127.0.0.1 -p "$c3" -U postgres -d postgres -c "SELECT pg_promote(wait := true)" >/dev/null
set_gucs 0 autoscale.test_hold_at_steps "wait_for_node"
wait_for 0 "SELECT step = 'wait_for_node' FROM autoscale.operations WHERE id = $op" 60 || { dump_state 0; false; } || fail "no fallback to a provision request"
q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op ORDER BY id"
assert_contains "$(q 0 "SELECT string_agg(message, ' | ') FROM autoscale.events WHERE kind = 'split_fallback' AND (detail ->> 'operation_id')::int = $op")" \
  "was promoted by a split that did not commit" "the split_fallback event says the clone diverged"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $c3")" failed "the diverged clone is failed in the pool"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $c3")" 0 "and no longer registered in Citus"
assert_contains "$(q 0 "SELECT message FROM autoscale.events WHERE kind = 'standby_failed' ORDER BY id DESC LIMIT 1")" \
  "warm clone 127.0.0.1:$c3 is no longer a replica" "a standby_failed event says so"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.provision_requests WHERE operation_id = $op AND kind = 'provision'")" 1 \
  "with the pool empty, the ordinary scale-out asks the provisioner"
q 0 "SELECT autoscale.cancel_operation('test over')" >/dev/null
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" cancelled "cancelled while waiting for a node"
set_gucs 0 autoscale.test_hold_at_steps ""
assert_eq "$(row_counts 0)" "$rows_before" "row counts unchanged"
assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no orphaned placement"
echo "scenario 17 passed"
