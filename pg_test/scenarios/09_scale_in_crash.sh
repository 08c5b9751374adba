#!/usr/bin/env bash
# Scale-in survives crashes: the coordinator's autoscale worker is SIGKILLed at every scale-in
# step the worker runs (start_drain, wait_drain, cleanup, verify_empty, remove_node,
# return_to_pool; mark_draining runs in the scale_in() call itself), three per cycle over two
# scale-in cycles with a scale_out in between. The operation is stopped at each exact step by the
# test build's failpoint (autoscale.test_hold_at_steps), so no kill depends on timing. Each time
# the postmaster reinitializes, the operation is still at its recorded step, and once released it
# ends succeeded. At every observation no placement belongs to a node that left pg_dist_node.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "scale-in: SIGKILL at each step resumes"
make_cluster 2 1
require_failpoints
w1=$(node_port 1); standby=$(node_port 3)

q 0 "CREATE TABLE m (id bigint PRIMARY KEY, v text);
     SELECT create_distributed_table('m', 'id', shard_count := 8);
     CREATE TABLE m2 (id bigint, k int, PRIMARY KEY (id, k));
     SELECT create_distributed_table('m2', 'id', colocate_with := 'm');
     CREATE TABLE r (id int PRIMARY KEY);
     SELECT create_reference_table('r');
     INSERT INTO m SELECT g, md5(g::text) FROM generate_series(1, 8000) g;
     INSERT INTO m2 SELECT g % 8000 + 1, g FROM generate_series(1, 8000) g;
     INSERT INTO r SELECT generate_series(1, 10)" >/dev/null
before=$(row_counts 0)
set_gucs 0 autoscale.mode act autoscale.max_operations_per_hour 0 autoscale.rebalance_strategy by_shard_count \
  autoscale.sample_interval 1s
# a policy that never fires, for its worker bounds
q 0 "CREATE TABLE public.knob (v float8); INSERT INTO public.knob VALUES (50); GRANT SELECT ON public.knob TO autoscale_metrics" >/dev/null
q 0 "SELECT autoscale.set_policy('bounds', metric => 'custom', custom_sql => 'SELECT v FROM public.knob',
       scale_out_above => 1000, scale_in_below => -1, min_workers => 2, max_workers => 3)" >/dev/null
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby added"

# --- watcher: a placement on a node that is not in pg_dist_node, at any moment
violations="$CLUSTER_DIR/violations"; : >"$violations"
( while :; do
    r=$(q 0 "$ORPHAN_SQL" 2>/dev/null) && [ "$r" != 0 ] && echo "$(date +%T.%N) $r placements on removed nodes" >>"$violations"
    sleep 0.2
  done ) &
watcher=$!
trap 'kill $watcher 2>/dev/null || true; stop_all' EXIT

scale_out_standby() {
  local op
  op=$(q 0 "SELECT autoscale.scale_out(reason => 'cycle') ->> 'id'")
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 60 || { dump_state 0; false; } ||
    fail "scale_out $op did not finish"
  assert_eq "$(q 0 "SELECT status || ' ' || nodeport FROM autoscale.operations WHERE id = $op")" "succeeded $standby" \
    "scale_out $op took the pool node ($(shard_spread 0))"
}

# kill_at OP STEP NEXT_HOLDS: kill_worker_at, then no placement may belong to a removed node.
kill_at() {
  kill_worker_at "$@"
  assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no placement on a removed node after the kill at $2" >/dev/null
}

check_scaled_in() {
  local op=$1 jobs_before=$2
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 60 || { dump_state 0; false; } ||
    fail "scale_in $op did not finish"
  q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op ORDER BY id"
  assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "scale_in $op succeeded despite the kills"
  assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $standby")" 0 "node removed from pg_dist_node"
  assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $standby")" returned "node back in the pool"
  assert_eq "$(q 0 "SELECT count(*) FROM autoscale.provision_requests WHERE kind = 'deprovision' AND operation_id = $op")" 1 \
    "exactly one deprovision request"
  assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_background_job")" $((jobs_before + 1)) "exactly one drain job (no second one after a kill)"
  assert_eq "$(q 3 "SET citus.override_table_visibility = off; SELECT count(*) FROM pg_class WHERE relname ~ '^(m|m2)_[0-9]+\$'")" 0 \
    "no distributed shard table left on the removed node"
  # (citus_remove_node leaves the node's copy of a reference table in place; Citus's behaviour)
  echo "  reference table copies left on the removed node: $(q 3 "SET citus.override_table_visibility = off; SELECT count(*) FROM pg_class WHERE relname ~ '^r_[0-9]+\$'")"
  assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no placement on a removed node"
  assert_eq "$(row_counts 0)" "$before" "row counts unchanged"
}

# --- cycle 1: kill at start_drain, cleanup, remove_node
scale_out_standby
set_gucs 0 autoscale.test_hold_at_steps "start_drain,cleanup,remove_node"
assert_sqlstate 55000 0 "SELECT autoscale.remove_standby_node('127.0.0.1', $standby)"
jobs=$(q 0 "SELECT count(*) FROM pg_dist_background_job")
op=$(q 0 "SELECT autoscale.scale_in('127.0.0.1', $standby, 'cycle 1') ->> 'id'")
assert_eq "$(q 0 "SELECT step FROM autoscale.operations WHERE id = $op")" start_drain "mark_draining done in the call"
assert_eq "$(q 0 "SELECT shouldhaveshards FROM pg_dist_node WHERE nodeport = $standby")" f "shouldhaveshards = false"
assert_sqlstate 55000 0 "SELECT autoscale.scale_in('127.0.0.1', $w1)"
kill_at "$op" start_drain "cleanup,remove_node"
kill_at "$op" cleanup "remove_node"
kill_at "$op" remove_node ""
check_scaled_in "$op" "$jobs"

# --- cycle 2: kill at wait_drain, verify_empty, return_to_pool
# (a returned node is not claimable while its deprovision request is pending: the provisioner offers it again)
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "the node is offered again"
scale_out_standby
set_gucs 0 autoscale.test_hold_at_steps "wait_drain,verify_empty,return_to_pool"
jobs=$(q 0 "SELECT count(*) FROM pg_dist_background_job")
op=$(q 0 "SELECT autoscale.scale_in('127.0.0.1', $standby, 'cycle 2') ->> 'id'")
kill_at "$op" wait_drain "verify_empty,return_to_pool"
job=$(q 0 "SELECT job_id FROM autoscale.operations WHERE id = $op")
kill_at "$op" verify_empty "return_to_pool"
kill_at "$op" return_to_pool ""
check_scaled_in "$op" "$jobs"
assert_eq "$(q 0 "SELECT job_id FROM autoscale.operations WHERE id = $op")" "$job" "same drain job followed across the kills"

kill "$watcher" 2>/dev/null || true
[ -s "$violations" ] && { cat "$violations"; fail "a node left pg_dist_node while it still held placements"; }
echo "ok: at no observation did a removed node hold placements"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE status <> 'succeeded'")" 0 "every operation succeeded"
