#!/usr/bin/env bash
# Schedules on a real cluster: a schedule whose window is open with min_workers above the workers
# makes the tick scale out to it in one operation (its step: all the nodes it asks for, one
# rebalance); explain() has the 'schedule' row saying which schedule raised what, and a scale-in by
# hand below the schedule's minimum is refused. A schedule with
# max_workers below the workers scales in to it. Dropping the schedule gives the policies their
# bounds back. Row counts are unchanged throughout.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "schedules: a min_workers window scales out, a max_workers window scales in"
make_cluster 1 2
s1=$(node_port 2); s2=$(node_port 3)

q 0 "CREATE TABLE m (id bigint PRIMARY KEY, v text);
     SELECT create_distributed_table('m', 'id', shard_count := 12);
     INSERT INTO m SELECT g, md5(g::text) FROM generate_series(1, 6000) g" >/dev/null
before=$(row_counts 0)
set_gucs 0 autoscale.mode act autoscale.max_operations_per_hour 0 autoscale.rebalance_strategy by_shard_count \
  autoscale.shard_transfer_mode block_writes
for p in "$s1" "$s2"; do
  assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $p) ->> 'state'")" available "standby $p in the pool"
done
# a policy that does not act by itself within this scenario: an idle cluster is never above 99% cpu, and a
# scale-in would need it below 1% for an hour
q 0 "SELECT autoscale.set_policy('cpu', scale_out_above => 99, scale_in_below => 1, scale_in_for => '1 hour',
                                  min_workers => 1, max_workers => 3)" >/dev/null

ops_done() {
  wait_for 0 "SELECT count(*) FILTER (WHERE kind = '$1') >= $2 AND count(*) FILTER (WHERE status = 'running') = 0
                FROM autoscale.operations" "${3:-90}" || { dump_state 0; false; } || fail "$1 #$2 did not finish"
}

# --- bad input names the argument, the value and what is allowed
assert_sqlstate 22023 0 "SELECT autoscale.set_schedule('x', '61 * * * *', min_workers => 3)"
assert_contains "$(sql_error 0 "SELECT autoscale.set_schedule('x', '61 * * * *', min_workers => 3)")" \
  "minute 61 is outside 0-59" "a bad cron says which field and why"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.schedules")" 0 "nothing stored"

# --- a window open now (one starts every minute, each lasts 10): at least 3 workers
q 0 "SELECT autoscale.set_schedule('now', '* * * * *', min_workers => 3, duration => '10 min')" >/dev/null
ops_done scale_out 1
op=$(q 0 "SELECT max(id) FROM autoscale.operations WHERE kind = 'scale_out'")
reason=$(q 0 "SELECT reason FROM autoscale.operations WHERE id = $op")
echo "scale_out: $reason"
assert_eq "$(q 0 "SELECT requested_by || ' ' || status FROM autoscale.operations WHERE id = $op")" "policy succeeded" \
  "the tick's scale_out succeeded"
assert_contains "$reason" "1 -> 3 workers: schedule 'now'" "its reason names the schedule"
assert_eq "$(q 0 "SELECT jsonb_array_length(op -> 'added') FROM autoscale.operations WHERE id = $op")" 2 \
  "it added both nodes in one operation"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive")" 3 "3 workers"
wait_for 0 "SELECT decision = 'hold' FROM autoscale.explain() WHERE policy = 'schedule'" 30 ||
  fail "explain() does not hold at 3 workers"
assert_contains "$(q 0 "SELECT array_to_string(reasons, ' ') FROM autoscale.explain() WHERE policy = 'schedule'")" \
  "schedule 'now' (* * * * *, 10m, UTC) raises min_workers to 3" "explain() says which schedule applies"
assert_contains "$(q 0 "SELECT autoscale.metrics()")" 'autoscale_schedule_min_workers{schedule="now"} 3' \
  "metrics() exports the schedule's bound"
assert_sqlstate 55000 0 "SELECT autoscale.scale_in('127.0.0.1', $s1, 'by hand')"
assert_contains "$(sql_error 0 "SELECT autoscale.scale_in('127.0.0.1', $s1, 'by hand')")" \
  "would leave 2 workers, below min_workers 3 of schedule 'now' until" "a scale-in by hand respects the schedule's minimum"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged after the scale-out"

# --- at most 1 worker: a scale-in of both
q 0 "SELECT autoscale.drop_schedule('now')" >/dev/null
q 0 "SELECT autoscale.set_schedule('cap', '* * * * *', max_workers => 1, duration => '10 min')" >/dev/null
ops_done scale_in 1
op=$(q 0 "SELECT max(id) FROM autoscale.operations WHERE kind = 'scale_in'")
assert_eq "$(q 0 "SELECT requested_by || ' ' || status FROM autoscale.operations WHERE id = $op")" "policy succeeded" \
  "the tick's scale_in succeeded"
assert_contains "$(q 0 "SELECT reason FROM autoscale.operations WHERE id = $op")" "3 -> 1 workers: schedule 'cap'" \
  "its reason names the schedule"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0")" 1 "1 worker left"
assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no placement on a removed node"

# --- dropped: the policies' bounds again, no 'schedule' row
q 0 "SELECT autoscale.drop_schedule('cap')" >/dev/null
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.explain() WHERE policy = 'schedule'")" 0 "no schedule row once dropped"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged at the end"
