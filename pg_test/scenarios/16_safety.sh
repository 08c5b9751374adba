#!/usr/bin/env bash
# Issue 10 on a real cluster: the pool lifecycle (a returned node with a pending deprovision request
# is never claimed; a cancelled scale-out releases its
# node and expires its provision request), the clear error of a second operation, the restore of
# shouldhaveshards (always runs, even in observe mode, and puts back the previous value), the
# failure backoff for policy operations, a bounded reason, and a rebalance strategy Citus does not
# know reported as an event.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "safety: pool lifecycle, cancel, clear errors, restore, backoff"
make_cluster 2 2
require_failpoints
w2=$(node_port 2); s1=$(node_port 3); s2=$(node_port 4)
q 0 "CREATE TABLE m (id bigint PRIMARY KEY, v text);
     SELECT create_distributed_table('m', 'id', shard_count := 8);
     INSERT INTO m SELECT g, md5(g::text) FROM generate_series(1, 4000) g" >/dev/null
before=$(row_counts 0)
set_gucs 0 autoscale.mode act autoscale.max_operations_per_hour 0 autoscale.rebalance_strategy by_shard_count \
  autoscale.provision_timeout 600
finish() {  # finish OP: wait until OP is not running, print its status
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $1" 90 || { dump_state 0; false; } ||
    fail "operation $1 did not finish"
  q 0 "SELECT 'operation ' || id || ' ' || status || coalesce(': ' || error, '') FROM autoscale.operations WHERE id = $1" >&2
  q 0 "SELECT status FROM autoscale.operations WHERE id = $1"
}

# --- defect 3: after a scale-in, the returned node (deprovision request pending) is not claimed again
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $s1) ->> 'state'")" available "standby offered"
op=$(q 0 "SELECT autoscale.scale_out(reason => 'first') ->> 'id'")
assert_eq "$(finish "$op")" succeeded "scale_out took the standby"
op=$(q 0 "SELECT autoscale.scale_in('127.0.0.1', $s1, 'and back') ->> 'id'")
assert_eq "$(finish "$op")" succeeded "scale_in succeeded"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $s1")" returned "the node is returned"
assert_eq "$(q 0 "SELECT status FROM autoscale.provision_requests WHERE kind = 'deprovision'")" pending "its deprovision request is pending"
assert_eq "$(q 0 "SELECT standby_available FROM autoscale.status")" 0 "status: no standby available"
op=$(q 0 "SELECT autoscale.scale_out(reason => 'again') ->> 'id'")
wait_for 0 "SELECT step = 'wait_for_node' OR status <> 'running' FROM autoscale.operations WHERE id = $op" 30 || fail "no progress"
assert_eq "$(q 0 "SELECT status || ' ' || step || ' ' || coalesce(nodeport::text, '-') FROM autoscale.operations WHERE id = $op")" \
  "running wait_for_node -" "the next scale_out asks the provisioner instead of taking the returned node"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $s1")" 0 "the returned node was not added back"

# --- defect 12: a second operation started while the first one commits gets a clear error
q 0 "SELECT autoscale.cancel_operation('next test')" >/dev/null
as_pg psql -X -q -At -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d postgres \
  -c "BEGIN; SELECT autoscale.scale_out(reason => 'holder'); SELECT pg_sleep(3); COMMIT;" >/dev/null 2>&1 &
holder=$!
sleep 1
out=$(sql_error 0 "SELECT autoscale.scale_out(reason => 'racer')")
wait "$holder"
assert_contains "$out" "55000" "the racing call fails with 55000, not 23505"
assert_contains "$out" "an operation is already running (id" "and says an operation is running"
assert_contains "$out" ", scale_out, " "naming its kind"

# --- defect 6: cancelling a scale-out that waits for a node expires its provision request
op=$(q 0 "SELECT id FROM autoscale.operations WHERE status = 'running'")
wait_for 0 "SELECT step = 'wait_for_node' FROM autoscale.operations WHERE id = $op" 30 || fail "operation $op not waiting for a node"
rid=$(q 0 "SELECT request_id FROM (SELECT (op ->> 'request_id')::bigint AS request_id FROM autoscale.operations WHERE id = $op) x")
q 0 "SELECT autoscale.cancel_operation('not needed')" >/dev/null
assert_eq "$(q 0 "SELECT status FROM autoscale.provision_requests WHERE id = $rid")" expired "its provision request expired"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.provision_requests WHERE kind = 'provision' AND status = 'pending'")" 0 \
  "no provision request is left pending"

# --- defect 6: cancelling at add_node puts the claimed node back to available
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $s2) ->> 'state'")" available "second standby offered"
# hold the operation at add_node: a maintenance window that is closed (set for the worker)
set_gucs 0 autoscale.maintenance_window "$(date -u -d '+3 hours' +%H:00)-$(date -u -d '+4 hours' +%H:00)"
op=$(as_pg psql -X -q -At -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "SET autoscale.maintenance_window = ''" -c "SELECT autoscale.scale_out(reason => 'held') ->> 'id'")
assert_eq "$(q 0 "SELECT step FROM autoscale.operations WHERE id = $op")" add_node "held at add_node by the window"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $s2")" joining "its node is joining"
q 0 "SELECT autoscale.cancel_operation('changed my mind')" >/dev/null
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $s2")" available "cancel released the node"
q 0 "ALTER SYSTEM RESET autoscale.maintenance_window" >/dev/null
q 0 "SELECT pg_reload_conf()" >/dev/null

# --- defect 7: a huge reason is refused before anything happens
assert_sqlstate 22023 0 "SELECT autoscale.scale_in('127.0.0.1', $w2, repeat('x', 8000))"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $w2 AND shouldhaveshards")" 1 "the node is untouched"

# --- defect 5: a cancelled scale-in is restored in observe mode, to the value the node had
set_gucs 0 autoscale.mode observe
restore_case() {  # restore_case BEFORE: shouldhaveshards of w2 before the scale-in
  local op
  q 0 "SELECT citus_set_node_property('127.0.0.1', $w2, 'shouldhaveshards', $1)" >/dev/null
  # the background worker would run the restore at once: hold it there, so the step can be seen
  set_gucs 0 autoscale.test_hold_at_steps restore
  op=$(as_pg psql -X -q -At -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "SET autoscale.mode = 'act'" \
    -c "BEGIN" -c "SELECT autoscale.scale_in('127.0.0.1', $w2, 'restore test') ->> 'id'" \
    -c "SELECT autoscale.cancel_operation('restore test') IS NOT NULL" -c "COMMIT" | sed -n 1p)
  assert_eq "$(q 0 "SELECT step FROM autoscale.operations WHERE id = $op")" restore "cancelled scale_in $op goes to restore"
  set_gucs 0 autoscale.test_hold_at_steps ""
  assert_eq "$(finish "$op")" cancelled "the restore ran although autoscale.mode is observe"
  assert_eq "$(q 0 "SELECT shouldhaveshards FROM pg_dist_node WHERE nodeport = $w2")" "${1:0:1}" \
    "shouldhaveshards is back to what it was ($1)"
}
restore_case false
restore_case true
assert_eq "$(row_counts 0)" "$before" "row counts unchanged"

# --- defect 4: after a failed operation, the policies start nothing for failure_backoff
set_gucs 0 autoscale.mode act autoscale.rebalance_strategy no_such_strategy autoscale.failure_backoff 600
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.events WHERE kind = 'settings_warning' AND message LIKE '%no_such_strategy%')" 20 ||
  fail "no settings_warning for an unknown rebalance strategy"
echo "ok: an unknown rebalance strategy is reported: $(q 0 "SELECT message FROM autoscale.events WHERE kind = 'settings_warning' LIMIT 1")"
op=$(q 0 "SELECT autoscale.rebalance_now('will fail') ->> 'id'")
assert_eq "$(finish "$op")" failed "the rebalance with an unknown strategy failed"
set_gucs 0 autoscale.rebalance_strategy by_shard_count
q 0 "CREATE TABLE public.knob (v float8); INSERT INTO public.knob VALUES (100); GRANT SELECT ON public.knob TO autoscale_metrics" >/dev/null
last=$(q 0 "SELECT max(id) FROM autoscale.operations")
q 0 "SELECT autoscale.set_policy('knob', metric => 'custom', custom_sql => 'SELECT v FROM public.knob',
       scale_out_above => 50, scale_in_below => -1, scale_out_for => '1 s', cooldown => '1 s', min_workers => 1, max_workers => 5)" >/dev/null
wait_for 0 "SELECT last_decision = 'out' FROM autoscale.status" 20 || fail "the policy does not want a scale-out"
sleep 4
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE id > $last")" 0 "no operation started within failure_backoff"
set_gucs 0 autoscale.failure_backoff 0
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE id > $last AND kind = 'scale_out' AND requested_by = 'policy')" 20 ||
  fail "the policy's scale_out did not start once the backoff was over"
echo "ok: the policy's scale_out started once failure_backoff was 0"

# (last: the policy goes, and its scale_out above is cancelled first)
q 0 "SELECT autoscale.drop_policy('knob')" >/dev/null
q 0 "SELECT autoscale.cancel_operation('next test')" >/dev/null 2>&1 || true
set_gucs 0 autoscale.failure_backoff 0
# (A node that is down when citus_add_node runs is not covered here: Citus fails the tick's commit on
# it ("failure on connection marked as essential"), so the tick rolls back and the step is tried again
# at every tick, visibly (an error event each time), instead of failing; the `failed` pool state is
# covered by the pg_test scale_out_endings_leave_the_pool_and_outbox_consistent.)
