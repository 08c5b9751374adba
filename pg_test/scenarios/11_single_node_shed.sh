#!/usr/bin/env bash
# autoscale.coordinator_shards = 'shed' from a single node and back (issue 11). scale_out(nodes => 2)
# adds both standbys, sets the coordinator's shouldhaveshards = false, and ONE rebalance moves every
# shard to the workers. Back: scaling in the last worker is refused while the coordinator's
# shouldhaveshards is false and the setting is 'keep' (a human's choice stays); with 'shed' the
# scale-in gives the coordinator its shouldhaveshards back first, then drains onto it. Row counts,
# the reference table and the citus local table are intact throughout.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "coordinator_shards = shed: a single node sheds its shards to 2 workers and takes them back"
make_cluster 0 2
c=$(node_port 0); s1=$(node_port 1); s2=$(node_port 2)
q 0 "SELECT citus_set_node_property('127.0.0.1', $c, 'shouldhaveshards', true)" >/dev/null
for sql in "CREATE TABLE m (id bigint PRIMARY KEY, v text)" \
           "SELECT create_distributed_table('m', 'id', shard_count := 8)" \
           "INSERT INTO m SELECT g, md5(g::text) FROM generate_series(1, 20000) g" \
           "CREATE TABLE r (id int PRIMARY KEY)" \
           "SELECT create_reference_table('r')" \
           "INSERT INTO r SELECT generate_series(1, 10)" \
           "CREATE TABLE l (k text PRIMARY KEY)" \
           "INSERT INTO l VALUES ('local')" \
           "SELECT citus_add_local_table_to_metadata('l')"; do
  q 0 "$sql" >/dev/null
done
before=$(row_counts 0)
M_ON="SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid) WHERE s.logicalrelid = 'm'::regclass AND p.groupid"
set_gucs 0 autoscale.mode act autoscale.coordinator_shards shed autoscale.max_operations_per_hour 0 \
  autoscale.rebalance_interval -1 autoscale.shard_transfer_mode block_writes
for p in "$s1" "$s2"; do q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $p)" >/dev/null; done
# a policy that holds (its knob stays between the thresholds) and lets the cluster be a single node
q 0 "CREATE TABLE public.knob (v float8); INSERT INTO public.knob VALUES (50);
     GRANT SELECT ON public.knob TO autoscale_metrics" >/dev/null
q 0 "SELECT autoscale.set_policy('hold', metric => 'custom', custom_sql => 'SELECT v FROM public.knob',
       scale_out_above => 90, scale_in_below => 10, min_workers => 0, max_workers => 2)" >/dev/null
last_op_done() {
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations ORDER BY id DESC LIMIT 1" "${1:-120}" || { dump_state 0; false; } ||
    fail "the last operation did not finish"
}
events_of() { q 0 "SELECT message FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $1 ORDER BY id"; }

# --- out: both standbys, the coordinator sheds, one rebalance
op=$(q 0 "SELECT autoscale.scale_out(nodes => 2, reason => 'grow') ->> 'id'")
last_op_done
events_of "$op"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "scale_out succeeded"
assert_contains "$(events_of "$op")" "add_node -> coordinator_shards" "the coordinator step comes after the joins"
assert_contains "$(events_of "$op")" "coordinator_shards -> start_rebalance: shouldhaveshards = false on coordinator 127.0.0.1:$c" \
  "then the coordinator sheds"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op
                   AND message LIKE '%start_rebalance -> wait_rebalance%'")" 1 "one rebalance job"
assert_eq "$(q 0 "SELECT shouldhaveshards FROM pg_dist_node WHERE groupid = 0")" f "coordinator: shouldhaveshards = false"
assert_eq "$(q 0 "$M_ON = 0")" 0 "the coordinator holds no shard of m"
for p in "$s1" "$s2"; do
  assert_true "$(q 0 "SELECT count(*) >= 3 FROM citus_shards WHERE table_name = 'm'::regclass AND nodeport = $p")" "m on worker $p"
done
assert_eq "$(row_counts 0)" "$before" "row counts unchanged after the scale-out"
wait_for 0 "SELECT data_nodes = ARRAY['127.0.0.1:$s1', '127.0.0.1:$s2'] FROM autoscale.status" 20 ||
  fail "status: the data nodes are not the two workers: $(q 0 "SELECT data_nodes FROM autoscale.status")"
echo "ok: the coordinator is no data node any more: $(q 0 "SELECT data_nodes FROM autoscale.status")"

# --- in: one worker leaves (a worker stays, the coordinator is not involved)
q 0 "SELECT autoscale.scale_in('127.0.0.1', $s2)" >/dev/null
last_op_done
assert_eq "$(q 0 "SELECT status FROM autoscale.operations ORDER BY id DESC LIMIT 1")" succeeded "scale_in of $s2 succeeded"
assert_eq "$(q 0 "SELECT shouldhaveshards FROM pg_dist_node WHERE groupid = 0")" f "the coordinator still sheds"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged"

# --- the last worker: refused under 'keep' (shouldhaveshards false is someone's choice), named reason
set_gucs 0 autoscale.coordinator_shards keep
assert_sqlstate 55000 0 "SELECT autoscale.scale_in('127.0.0.1', $s1)"
assert_contains "$(sql_error 0 "SELECT autoscale.scale_in('127.0.0.1', $s1)")" \
  "no scale-in to a single node: the coordinator's shouldhaveshards is false" "the refusal says why"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $s1")" 1 "the worker is still there"

# --- under 'shed': the coordinator takes its shards back, then the last worker goes
set_gucs 0 autoscale.coordinator_shards shed
op=$(q 0 "SELECT autoscale.scale_in('127.0.0.1', $s1) ->> 'id'")
last_op_done
events_of "$op"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "scale_in of the last worker succeeded"
assert_contains "$(events_of "$op")" "coordinator_shards -> mark_draining: shouldhaveshards = true on coordinator 127.0.0.1:$c" \
  "its first step gave the coordinator its shouldhaveshards back"
assert_eq "$(q 0 "SELECT string_agg(nodeport::text || ':' || shouldhaveshards, ',') FROM pg_dist_node")" "$c:true" \
  "a single node again, holding shards"
assert_eq "$(q 0 "$M_ON = 0")" 8 "the coordinator holds all 8 shards of m"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged on the single node"
assert_eq "$(q 0 "SELECT k FROM l")" local "citus local table intact"
assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "no placement on a removed node"
assert_eq "$(q 0 "SELECT string_agg(state, ',') FROM autoscale.standby_nodes")" "returned,returned" "both standbys back in the pool"
