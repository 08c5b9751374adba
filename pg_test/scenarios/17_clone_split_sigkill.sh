#!/usr/bin/env bash
# A SIGKILL of the background worker *inside* citus_promote_clone_and_rebalance (issue 13), at the two
# places that matter, each reached without racing:
# E: during the catch-up wait, before pg_promote. The clone's replay is paused and worker 1 writes
#    WAL directly, so the catch-up cannot finish; the worker's pg_stat_activity shows the call. The
#    crash rolls the promotion back (nothing happened yet): the operation resumes at promote_clone,
#    the clone is still a replica, the promotion runs again and the split succeeds.
# F: after pg_promote, before the promotion's transaction commits. Worker 2's pg_dist_node is locked,
#    so the metadata sync that follows pg_promote waits; the clone is out of recovery while Citus
#    still has it as an inactive clone. After the crash the clone has diverged from its primary: the
#    split falls back to the ordinary scale-out (a standby of the pool, a logical rebalance), the
#    events say why, and the clone is failed in the pool.
# Both: every row kept, no shard without a placement, no orphaned placement, nothing left in
# pg_dist_cleanup or pg_prepared_xacts once the cleanup ran.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "warm clones: SIGKILL inside citus_promote_clone_and_rebalance, before and after pg_promote"
clone_cluster 20000
w1=$(node_port 1); w2=$(node_port 2); standby=$(node_port 3)
make_clone 4 1; make_clone 5 1
c1=$(node_port 4); c2=$(node_port 5)
echo "clones: $c1 and $c2 of worker $w1"
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "ordinary standby offered"
set_gucs 0 autoscale.mode act autoscale.clone_max_lag 1GB autoscale.clone_catchup_timeout 120 \
  autoscale.test_hold_at_steps promote_clone

PROMOTING_SQL="SELECT count(*) = 1 FROM pg_stat_activity
                WHERE backend_type = 'citus_autoscale' AND query LIKE '%citus_promote_clone_and_rebalance%'"
NO_PLACEMENT_SQL="SELECT count(*) FROM pg_dist_shard s
                   WHERE NOT EXISTS (SELECT 1 FROM pg_dist_placement p WHERE p.shardid = s.shardid)"
# clean_cluster: every row kept, every shard placed, nothing orphaned or left to clean up
clean_cluster() {
  assert_eq "$(row_counts 0)" "$rows_before" "row counts unchanged"
  assert_eq "$(q 0 "SELECT sum(v) FROM kv")" "$sum_before" "every committed update is there"
  assert_eq "$(q 0 "$NO_PLACEMENT_SQL")" 0 "no shard without a placement"
  assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no orphaned placement"
  assert_true "$(q 0 "SELECT bool_and(metadatasynced) FROM pg_dist_node WHERE hasmetadata AND isactive")" "metadata synced to every node"
  q 0 "CALL citus_cleanup_orphaned_resources()" >/dev/null
  assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_cleanup")" 0 "nothing left in pg_dist_cleanup"
  q 0 "SELECT recover_prepared_transactions()" >/dev/null
  local i
  for i in 0 1 2; do
    assert_eq "$(q "$i" "SELECT count(*) FROM pg_prepared_xacts")" 0 "no prepared transaction left on node $i"
  done
}
# held_at STEP: the operation $op is running at STEP (after a crash: still there)
held_at() {
  wait_for 0 "SELECT step = '$1' AND status = 'running' FROM autoscale.operations WHERE id = $op" 30 || { dump_state 0; false; } ||
    fail "operation $op not held at $1"
}
clone_sql() { as_pg psql -X -q -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }

# --- E: SIGKILL during the catch-up wait, before pg_promote
offer_clone "$c1" "$w1"
q 0 "UPDATE kv SET v = v + 1 WHERE id <= 5000" >/dev/null
rows_before=$(row_counts 0); sum_before=$(q 0 "SELECT sum(v) FROM kv")
w1_before=$(q 0 "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $w1")
op=$(q 0 "SELECT autoscale.scale_out(reason => 'sigkill in catch-up') ->> 'id'")
held_at promote_clone
assert_true "$(q 0 "SELECT nodeisclone AND NOT isactive FROM pg_dist_node WHERE nodeport = $c1")" "clone $c1 registered as an inactive clone"
# the clone cannot catch up: its replay is paused and its primary writes WAL
clone_sql "$c1" "SELECT pg_wal_replay_pause()"
q 1 "CREATE TABLE lag_maker AS SELECT g FROM generate_series(1, 50000) g" >/dev/null
set_gucs 0 autoscale.test_hold_at_steps ""
wait_for 0 "$PROMOTING_SQL" 30 || { dump_state 0; false; } || fail "the worker does not run citus_promote_clone_and_rebalance"
echo "the worker runs: $(q 0 "SELECT query FROM pg_stat_activity WHERE backend_type = 'citus_autoscale'")"
assert_eq "$(clone_sql "$c1" "SELECT pg_is_in_recovery()")" t "clone $c1 not promoted yet (catching up)"
set_gucs 0 autoscale.test_hold_at_steps promote_clone
pid=$(kill_worker 0)
echo "SIGKILLed the worker ($pid) while it waited for the catch-up"
held_at promote_clone
assert_true "$(q 0 "SELECT nodeisclone AND NOT isactive FROM pg_dist_node WHERE nodeport = $c1")" "the promotion rolled back: still an inactive clone"
assert_eq "$(clone_sql "$c1" "SELECT pg_is_in_recovery()")" t "clone $c1 is still a replica"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_cleanup")" 0 "nothing scheduled for cleanup"
clone_sql "$c1" "SELECT pg_wal_replay_resume()"
set_gucs 0 autoscale.test_hold_at_steps ""
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 90 || { dump_state 0; false; } || fail "split_out did not finish"
q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op ORDER BY id"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "the split resumed at promote_clone and succeeded"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind = 'split_fallback' AND (detail ->> 'operation_id')::int = $op")" 0 \
  "by the split itself, no fallback"
assert_true "$(q 0 "SELECT isactive AND NOT nodeisclone AND noderole = 'primary' FROM pg_dist_node WHERE nodeport = $c1")" \
  "clone $c1 is an active primary worker"
c1_after=$(q 0 "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $c1")
w1_after=$(q 0 "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $w1")
assert_true "$(q 0 "SELECT $c1_after > 0 AND $w1_after > 0 AND $w1_after < $w1_before")" \
  "worker $w1's shards split: $w1_after on it, $c1_after on the clone"
clean_cluster

# --- F: SIGKILL after pg_promote, before the promotion's transaction commits
set_gucs 0 autoscale.test_hold_at_steps promote_clone
offer_clone "$c2" "$w1"
q 0 "SELECT autoscale.sample()" >/dev/null
assert_contains "$(q 0 "SELECT autoscale.scale_out_path()")" "split: clone 127.0.0.1:$c2 of 127.0.0.1:$w1" "the sibling clone is the next split"
q 0 "UPDATE kv SET v = v + 1 WHERE id > 15000" >/dev/null
rows_before=$(row_counts 0); sum_before=$(q 0 "SELECT sum(v) FROM kv")
op=$(q 0 "SELECT autoscale.scale_out(reason => 'sigkill after pg_promote') ->> 'id'")
held_at promote_clone
# worker 2's pg_dist_node locked: the metadata sync after pg_promote waits there
as_pg psql -X -q "host=127.0.0.1 port=$w2 user=postgres dbname=postgres application_name=autoscale_test_locker" \
  -c "BEGIN; LOCK TABLE pg_catalog.pg_dist_node IN EXCLUSIVE MODE; SELECT pg_sleep(600); COMMIT" >"$CLUSTER_DIR/locker.out" 2>&1 &
locker=$!
wait_for 2 "SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE a.application_name = 'autoscale_test_locker' AND l.relation = 'pg_dist_node'::regclass AND l.mode = 'ExclusiveLock' AND l.granted" 30 ||
  fail "no lock on worker $w2's pg_dist_node: $(cat "$CLUSTER_DIR/locker.out")"
set_gucs 0 autoscale.test_hold_at_steps ""
wait_for 5 "SELECT NOT pg_is_in_recovery()" 60 || { dump_state 0; false; } || fail "clone $c2 not promoted"
wait_for 2 "SELECT count(*) > 0 FROM pg_locks WHERE relation = 'pg_dist_node'::regclass AND NOT granted" 30 ||
  fail "the promotion does not wait on worker $w2's pg_dist_node"
assert_true "$(q 0 "$PROMOTING_SQL")" "the worker is still in citus_promote_clone_and_rebalance"
assert_true "$(q 0 "SELECT nodeisclone AND NOT isactive FROM pg_dist_node WHERE nodeport = $c2")" \
  "clone $c2 promoted, but the promotion has not committed"
set_gucs 0 autoscale.test_hold_at_steps promote_clone
pid=$(kill_worker 0)
echo "SIGKILLed the worker ($pid) after pg_promote, before the commit"
q 2 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'autoscale_test_locker'" >/dev/null
wait "$locker" 2>/dev/null || true
held_at promote_clone
assert_true "$(q 0 "SELECT nodeisclone AND NOT isactive FROM pg_dist_node WHERE nodeport = $c2")" "Citus still has $c2 as an inactive clone"
assert_eq "$(clone_sql "$c2" "SELECT pg_is_in_recovery()")" f "and it is out of recovery: diverged from worker $w1"
assert_eq "$(row_counts 0)" "$rows_before" "row counts unchanged after the crash"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_cleanup")" 0 "nothing scheduled for cleanup"
assert_true "$(q 0 "SELECT count(*) = 0 FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $c2")" \
  "no placement on the diverged clone"
set_gucs 0 autoscale.test_hold_at_steps ""
split_fell_back "$op" "was promoted by a split that did not commit"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $c2")" failed "the diverged clone is failed in the pool"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $c2")" 0 "and no longer registered in Citus"
assert_contains "$(q 0 "SELECT message FROM autoscale.events WHERE kind = 'standby_failed' ORDER BY id DESC LIMIT 1")" \
  "warm clone 127.0.0.1:$c2 is no longer a replica" "a standby_failed event says so"
assert_true "$(q 0 "SELECT isactive FROM pg_dist_node WHERE nodeport = $standby")" "the ordinary standby $standby joined instead"
assert_true "$(q 0 "SELECT count(*) > 0 FROM citus_shards WHERE nodeport = $standby AND table_name = 'kv'::regclass")" "and got kv shards by rebalance"
clean_cluster
echo "scenario 17_clone_split_sigkill passed"
