#!/usr/bin/env bash
# Rebalance on skew: shards piled onto one worker by hand (citus_move_shard_placement) are spread
# again by autoscale once autoscale.rebalance_interval allows it (-1: never); at most one skew
# rebalance per interval; balanced afterwards; no row lost.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "rebalance when data is skewed (rebalance_interval)"
make_cluster 3 0

q 0 "CREATE TABLE orders (id bigint PRIMARY KEY, customer int, total numeric);
     SELECT create_distributed_table('orders', 'id', shard_count := 12);
     CREATE TABLE order_lines (order_id bigint, line int, sku text, PRIMARY KEY (order_id, line));
     SELECT create_distributed_table('order_lines', 'order_id', colocate_with := 'orders');
     CREATE TABLE skus (sku text PRIMARY KEY);
     SELECT create_reference_table('skus');
     INSERT INTO orders SELECT g, g % 97, g * 1.5 FROM generate_series(1, 15000) g;
     INSERT INTO order_lines SELECT g % 15000 + 1, g, 's' || (g % 300) FROM generate_series(1, 30000) g;
     INSERT INTO skus SELECT 's' || g FROM generate_series(0, 299) g" >/dev/null
before=$(row_counts 0)
echo "row counts before: $before"

# act, but skew rebalances disabled while the skew is made by hand
set_gucs 0 autoscale.mode act autoscale.rebalance_strategy by_shard_count autoscale.rebalance_interval -1 \
  autoscale.shard_transfer_mode block_writes
sleep 1.5
hot=$(q 0 "SELECT nodeid FROM pg_dist_node WHERE nodeport = $(node_port 1)")
moves=$(q 0 "SELECT shardid || ':' || n.nodeid FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
              JOIN pg_dist_node n USING (groupid)
             WHERE s.logicalrelid = 'orders'::regclass AND n.nodeid <> $hot ORDER BY shardid")
for m in $moves; do
  q 0 "SELECT citus_move_shard_placement(${m%%:*}, ${m##*:}, $hot, transfer_mode := 'block_writes')" >/dev/null
done
echo "skewed by hand: $(shard_spread 0)"
assert_eq "$(q 0 "SELECT count(*) FROM citus_shards WHERE table_name = 'orders'::regclass AND nodeport <> $(node_port 1)")" 0 \
  "all of orders' shards on worker 1"
plan_rows=$(q 0 "SELECT count(*) FROM get_rebalance_table_shards_plan(rebalance_strategy := 'by_shard_count')")
assert_true "$(q 0 "SELECT $plan_rows > 0")" "Citus's plan has moves ($plan_rows rows)"
sleep 3
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "rebalance_interval = -1: no skew rebalance"

interval=8
t_set=$(q 0 "SELECT extract(epoch FROM clock_timestamp())")
set_gucs 0 autoscale.rebalance_interval "${interval}s"
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'rebalance')" 15 || { dump_state 0; false; } ||
  fail "no skew rebalance within 15 s of rebalance_interval = ${interval}s"
echo "skew rebalance started $(q 0 "SELECT round((extract(epoch FROM started_at) - $t_set)::numeric, 2) FROM autoscale.operations WHERE id = 1") s after the setting"
assert_true "$(q 0 "SELECT requested_by = 'trigger' AND reason LIKE 'skew: % planned shard group move%' FROM autoscale.operations WHERE id = 1")" \
  "reason: skew, with the planned moves ($(q 0 "SELECT reason FROM autoscale.operations WHERE id = 1"))"
# orders and order_lines are colocated: the plan lists each shard group twice, the reason once
assert_eq "$(q 0 "SELECT reason FROM autoscale.operations WHERE id = 1")" \
  "skew: $((plan_rows / 2)) planned shard group moves" "the reason counts shard groups, not plan rows"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = 1" 60 || { dump_state 0; false; } ||
  fail "skew rebalance still running after 60 s"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = 1")" succeeded "skew rebalance succeeded"
job=$(q 0 "SELECT job_id FROM autoscale.operations WHERE id = 1")
assert_true "$(q 0 "SELECT count(*) > 0 AND bool_and(command LIKE '%block_writes%') FROM pg_dist_background_task
                     WHERE job_id = $job AND command LIKE '%citus_move_shard_placement%'")" \
  "the job's moves use autoscale.shard_transfer_mode (block_writes)"
echo "after: $(shard_spread 0)"
assert_true "$(q 0 "$BALANCED_SQL")" "balanced again (max - min shards per worker <= 1)"
assert_eq "$(q 0 "SELECT count(*) FROM get_rebalance_table_shards_plan(rebalance_strategy := 'by_shard_count')")" 0 "nothing left to move"
assert_eq "$(row_counts 0)" "$before" "every table's row count unchanged"

# skew again right away: the next rebalance waits for the interval, counted from the last start
q 0 "SELECT citus_move_shard_placement(s.shardid, n.nodeid, $hot, transfer_mode := 'block_writes')
       FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
      WHERE s.logicalrelid = 'orders'::regclass AND n.nodeid <> $hot ORDER BY shardid LIMIT 3" >/dev/null
echo "skewed again: $(shard_spread 0)"
wait_for 0 "SELECT count(*) = 2 FROM autoscale.operations" 20 || { dump_state 0; false; } || fail "no second skew rebalance"
gap=$(q 0 "SELECT round(extract(epoch FROM (SELECT started_at FROM autoscale.operations WHERE id = 2) - (SELECT started_at FROM autoscale.operations WHERE id = 1))::numeric, 2)")
echo "second skew rebalance started ${gap} s after the first"
assert_true "$(q 0 "SELECT $gap >= $interval")" "at most one skew rebalance per rebalance_interval"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = 2" 60 || { dump_state 0; false; } ||
  fail "second skew rebalance still running after 60 s"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = 2")" succeeded "second skew rebalance succeeded"
assert_true "$(q 0 "$BALANCED_SQL")" "balanced again"
assert_eq "$(row_counts 0)" "$before" "row counts still unchanged"
# balanced: the interval passes without another operation
sleep $((interval + 2))
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 2 "no rebalance when the plan is empty"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"
