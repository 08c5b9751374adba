#!/usr/bin/env bash
# Several nodes per operation: scale_out(nodes => 2) takes two standbys from the pool, adds both
# and runs ONE rebalance onto them; a policy with step => 2 does the same by itself, and later lets
# both go in ONE scale-in (one drain job). Bad values of nodes are refused and name the argument.
# Row counts are unchanged throughout.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "several nodes per operation: scale out (manual and by a policy's step), scale in by step"
make_cluster 1 2
s1=$(node_port 2); s2=$(node_port 3)

q 0 "CREATE TABLE m (id bigint PRIMARY KEY, v text);
     SELECT create_distributed_table('m', 'id', shard_count := 12);
     CREATE TABLE r (id int PRIMARY KEY);
     SELECT create_reference_table('r');
     INSERT INTO m SELECT g, md5(g::text) FROM generate_series(1, 6000) g;
     INSERT INTO r SELECT generate_series(1, 10)" >/dev/null
before=$(row_counts 0)
set_gucs 0 autoscale.mode act autoscale.max_operations_per_hour 0 autoscale.rebalance_strategy by_shard_count \
  autoscale.shard_transfer_mode block_writes
for p in "$s1" "$s2"; do
  assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $p) ->> 'state'")" available "standby $p in the pool"
done

# --- bad input
for n in 0 65 -3; do
  assert_sqlstate 22023 0 "SELECT autoscale.scale_out(nodes => $n)"
  assert_contains "$(sql_error 0 "SELECT autoscale.scale_out(nodes => $n)")" "invalid value for nodes: $n" "nodes => $n names the argument"
done
assert_sqlstate 22023 0 "SELECT autoscale.scale_out('127.0.0.1', $s1, nodes => 2)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "bad input started no operation"

# rebalance jobs of one operation: 'start_rebalance -> wait_rebalance' step events
rebalances_of() {
  q 0 "SELECT count(*) FROM autoscale.events
        WHERE (detail ->> 'operation_id')::bigint = $1 AND message LIKE '%start_rebalance -> wait_rebalance%'"
}
# ops_done KIND N: wait until N operations of KIND exist and none is running
ops_done() {
  wait_for 0 "SELECT count(*) FILTER (WHERE kind = '$1') >= $2 AND count(*) FILTER (WHERE status = 'running') = 0
                FROM autoscale.operations" "${3:-60}" || { dump_state 0; false; } || fail "$1 #$2 did not finish"
}

# --- manual: two nodes, one rebalance
op=$(q 0 "SELECT autoscale.scale_out(nodes => 2, reason => 'two at once') ->> 'id'")
ops_done scale_out 1
q 0 "SELECT at::time, message FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op ORDER BY id"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "scale_out(nodes => 2) succeeded"
assert_eq "$(q 0 "SELECT jsonb_array_length(op -> 'added') FROM autoscale.operations WHERE id = $op")" 2 "it added 2 nodes"
assert_eq "$(rebalances_of "$op")" 1 "with one rebalance job"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive AND shouldhaveshards")" 3 "3 active workers"
for p in "$s1" "$s2"; do
  assert_true "$(q 0 "SELECT count(*) >= 3 FROM citus_shards WHERE nodeport = $p AND table_name = 'm'::regclass")" \
    "m rebalanced onto $p ($(shard_spread 0))"
done
assert_eq "$(row_counts 0)" "$before" "row counts unchanged"

# --- back to one worker, by hand
for p in "$s2" "$s1"; do
  q 0 "SELECT autoscale.scale_in('127.0.0.1', $p)" >/dev/null
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations ORDER BY id DESC LIMIT 1" 60 || { dump_state 0; false; } ||
    fail "scale_in of $p did not finish"
  assert_eq "$(q 0 "SELECT status FROM autoscale.operations ORDER BY id DESC LIMIT 1")" succeeded "scale_in of $p succeeded"
done
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.standby_nodes WHERE state = 'returned'")" 2 "both nodes back in the pool"

# --- a policy with step => 2: one operation brings both back (max_workers stops it there)
q 0 "CREATE TABLE public.knob (v float8); INSERT INTO public.knob VALUES (100); GRANT SELECT ON public.knob TO autoscale_metrics" >/dev/null
# returned nodes are not claimable while their deprovision requests are pending: the provisioner offers them again
for p in "$s1" "$s2"; do q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $p)" >/dev/null; done
q 0 "SELECT autoscale.set_policy('step2', metric => 'custom', custom_sql => 'SELECT v FROM public.knob',
       scale_out_above => 50, scale_in_below => -1, scale_out_for => '2 s', cooldown => '1 s',
       min_workers => 1, max_workers => 3, step => 2)" >/dev/null
ops_done scale_out 2 60
op=$(q 0 "SELECT max(id) FROM autoscale.operations WHERE kind = 'scale_out'")
echo "policy: $(q 0 "SELECT reason FROM autoscale.operations WHERE id = $op")"
assert_eq "$(q 0 "SELECT requested_by || ' ' || status FROM autoscale.operations WHERE id = $op")" "policy succeeded" \
  "the policy's scale_out succeeded"
assert_eq "$(q 0 "SELECT (op ->> 'want') || '/' || jsonb_array_length(op -> 'added') FROM autoscale.operations WHERE id = $op")" \
  2/2 "it wanted and added step = 2 nodes"
assert_eq "$(rebalances_of "$op")" 1 "with one rebalance job"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive")" 3 "3 workers (max_workers), from 1"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'scale_out'")" 2 "no further scale_out"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged after the policy's scale-out"

# --- the same policy lets both go at once when the load is gone: one drain job, both back in the pool
q 0 "UPDATE public.knob SET v = 0" >/dev/null
q 0 "SELECT autoscale.set_policy('step2', metric => 'custom', custom_sql => 'SELECT v FROM public.knob',
       scale_out_above => 50, scale_in_below => 10, scale_out_for => '2 s', scale_in_for => '2 s', cooldown => '1 h',
       scale_in_cooldown => '1 s', min_workers => 1, max_workers => 3, step => 2)" >/dev/null
ops_done scale_in 3 90
op=$(q 0 "SELECT max(id) FROM autoscale.operations WHERE kind = 'scale_in'")
q 0 "SELECT at::time, message FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op ORDER BY id"
assert_eq "$(q 0 "SELECT requested_by || ' ' || status FROM autoscale.operations WHERE id = $op")" "policy succeeded" \
  "the policy's scale_in succeeded"
assert_eq "$(q 0 "SELECT 1 + jsonb_array_length(op -> 'also') FROM autoscale.operations WHERE id = $op")" 2 \
  "it removed step = 2 nodes"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op
                    AND message LIKE '%start_drain -> wait_drain%'")" 1 "with one drain job"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0")" 1 "1 worker left (min_workers)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.standby_nodes WHERE state = 'returned'")" 2 "both back in the pool"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.provision_requests WHERE kind = 'deprovision' AND operation_id = $op")" 2 \
  "a deprovision request for each"
assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no placement on a removed node"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged at the end"
