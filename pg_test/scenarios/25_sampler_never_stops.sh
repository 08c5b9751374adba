#!/usr/bin/env bash
# A sampler that never stops (issue 22): an operation step's Citus call is in flight to a node when that
# node hangs. The step runs in the worker that decides and acts; the sampler is a process of its own, so
# the healthy nodes keep being sampled every sample_interval (+ node_timeout) while the step waits. Once the
# node answers again the operation ends, nothing lost.
# How the call is caught in flight: an event trigger on the standby sleeps in the first DDL command that
# citus_add_node sends there (the shell of a distributed table); then the standby's processes are stopped
# (SIGSTOP).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../faults.sh"
scenario "the sampler keeps sampling while an operation step waits on a hung node"
trap faults_cleanup EXIT
make_cluster 2 1
require_failpoints
standby=$(node_port 3)
q 0 "CREATE TABLE kv (k bigint PRIMARY KEY, v text); SELECT create_distributed_table('kv', 'k', shard_count := 4);
     INSERT INTO kv SELECT g, 'v' FROM generate_series(1, 2000) g" >/dev/null
before=$(row_counts 0)
q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby)" >/dev/null
set_gucs 0 autoscale.mode act autoscale.node_timeout 1s autoscale.step_timeout 5s autoscale.test_hold_at_steps add_node

assert_eq "$(q 0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'citus_autoscale sampler'")" 1 "the sampler runs as a process of its own"
op=$(q 0 "SELECT autoscale.scale_out('127.0.0.1', $standby, 'sampler test') ->> 'id'")
wait_for 0 "SELECT step = 'add_node' AND status = 'running' FROM autoscale.operations WHERE id = $op" 30 ||
  { dump_state 0; fail "operation $op is not held at add_node"; }

# on the standby, every DDL command sleeps (Citus's metadata sync sends DDL while adding the node)
q 3 "CREATE FUNCTION stall_ddl() RETURNS event_trigger LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pg_sleep(600); END \$\$;
     CREATE EVENT TRIGGER stall_ddl ON ddl_command_start EXECUTE FUNCTION stall_ddl()" >/dev/null

# release the hold: the worker runs add_node, whose DDL on the standby sleeps
set_gucs 0 autoscale.test_hold_at_steps ""
wait_for 3 "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND pid <> pg_backend_pid())" 30 ||
  { dump_state 0; fail "citus_add_node never reached the standby"; }
echo "ok: the step's Citus call waits on the standby: $(q 3 "SELECT left(query, 80) FROM pg_stat_activity WHERE wait_event = 'PgSleep' LIMIT 1")"

# the standby hangs with the call in flight
fault_hang 3
mark=$(q 0 "SELECT coalesce(max(sample_id), 0) FROM autoscale.worker_count")
t0=$(date +%s.%N)
sleep 15
n=$(q 0 "SELECT count(*) FROM autoscale.worker_count WHERE sample_id > $mark AND driver = 'worker' AND reachable_workers = 2")
span=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
echo "samples while the step waited on the hung node: $n in ${span}s; the worker: $(q 0 "SELECT coalesce(max(state || ': ' || left(query, 60)), 'none') FROM pg_stat_activity WHERE backend_type = 'citus_autoscale'")"
# sample_interval 1 s: a sample at least every 2 s (interval + node_timeout), both workers reachable
assert_true "$(q 0 "SELECT $n >= 6")" "the healthy nodes kept being sampled ($n samples in ${span}s, both workers reachable in each)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.node_samples WHERE sample_id > $mark AND NOT reachable")" 0 "no healthy node recorded unreachable"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" running "the operation is still running"
# (the step's statement timeout, 5 s, fired during the hang; whether the step could end then depends on
# how Citus cancels the remote statement: printed, not asserted)
echo "at the end of the hang: step $(q 0 "SELECT step || ', attempts ' || coalesce(op ->> 'attempts', '0') FROM autoscale.operations WHERE id = $op"); retries recorded during the hang: $(q 0 "SELECT count(*) FROM autoscale.events WHERE kind = 'operation_retry' AND (detail ->> 'operation_id')::bigint = $op")"

# the node answers again and lets go of the lock: the operation ends, nothing lost
fault_unhang 3
q 3 "DROP EVENT TRIGGER stall_ddl" >/dev/null
q 3 "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND pid <> pg_backend_pid()" >/dev/null
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 180 ||
  { dump_state 0; fail "operation $op still running 180 s after the node came back"; }
status=$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")
echo "operation $op: $status; events: $(q 0 "SELECT string_agg(kind || ': ' || left(message, 120), ' | ' ORDER BY id) FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op")"
assert_eq "$status" succeeded "the scale-out succeeded once the node answered"
assert_eq "$(row_counts 0)" "$before" "every row kept"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $standby AND isactive")" 1 "the standby is an active worker"
