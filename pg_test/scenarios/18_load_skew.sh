#!/usr/bin/env bash
# Load skew: 16 shard groups, 8 on each of 2 workers (so the shard counts are balanced), but the 6
# equally hot tenants (6 shard groups) all on worker 1, under pgbench. The load-skew trigger fires by
# itself (busiest worker above load_skew_ratio x the mean for load_skew_for, and the plan of the
# autoscale_by_load strategy lowers it), rebalances with autoscale_by_load, and afterwards the
# workers' commits/s max/mean is at most 1.3, with 0 failed transactions and every row kept. No
# second rebalance follows. The strategy is registered on the coordinator only and survives a restart.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "load skew: hot tenants on one worker are spread by measured load"
make_cluster 2 0

make_hot_tenants
before=$(row_counts 0)
echo "row counts before: $before"

hot=$HOT
hot_shards=${HOT_SHARDS//,/ }
echo "hot tenants: $hot (shards $hot_shards)"
assert_eq "$(echo $hot_shards | tr ' ' '\n' | sort -u | wc -l)" 6 "six hot tenants in six shard groups"
echo "layout: $(shard_spread 0)"
assert_eq "$(q 0 "SELECT count(*) FROM citus_shards WHERE shardid IN ($(echo $hot_shards | tr ' ' ',')) AND nodeport = $(node_port 1)")" 6 \
  "the six hot shard groups are on worker 1"
assert_eq "$(q 0 "SELECT count(*) FROM get_rebalance_table_shards_plan(rebalance_strategy := 'by_shard_count')")" 0 \
  "shard counts are balanced (8/8): the shard-count skew trigger has nothing to do"

set_gucs 0 autoscale.mode act autoscale.rebalance_interval 20s autoscale.load_window 5s \
  autoscale.load_skew_for 10s autoscale.load_skew_ratio 1.5 autoscale.shard_transfer_mode block_writes \
  autoscale.max_operations_per_hour 0
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_rebalance_strategy WHERE name = 'autoscale_by_load'")" 1 \
  "autoscale_by_load is registered on the coordinator"
for i in 1 2; do
  assert_eq "$(q "$i" "SELECT count(*) FROM pg_dist_rebalance_strategy WHERE name = 'autoscale_by_load'")" 0 \
    "and not on worker $i (CREATE EXTENSION is replayed there)"
done

# Citus's planner with fixed, uneven loads (as 5 s of measurement gives): the six hot groups at 237, 232, 207,
# 187, 177 and 167 operations/s, the cold ones at 2. The plan must move three hot groups; with by_disk_size's
# improvement_threshold of 0.5 it moves two (and cold ones instead). In one transaction that is rolled back.
hot_list=$(echo $hot_shards | tr ' ' ',')
planned=$(q 0 "BEGIN;
  UPDATE autoscale.shard_group_load g SET load_per_sec = coalesce(h.load, 2)
    FROM autoscale.shard_group_load g2
    LEFT JOIN (SELECT s.colocationid, ps.shardminvalue,
                      (ARRAY[237, 232, 207, 187, 177, 167])[row_number() OVER (ORDER BY ps.shardid)] AS load
                 FROM pg_dist_shard ps JOIN pg_dist_partition s USING (logicalrelid)
                WHERE ps.shardid IN ($hot_list)) h USING (colocationid, shardminvalue)
   WHERE g.colocationid = g2.colocationid AND g.shardminvalue = g2.shardminvalue;
  SELECT 'planned: ' ||
         (SELECT count(*) FROM get_rebalance_table_shards_plan(rebalance_strategy := 'autoscale_by_load') WHERE shardid IN ($hot_list)) || ' hot, ' ||
         (SELECT count(*) FROM get_rebalance_table_shards_plan(rebalance_strategy := 'autoscale_by_load', improvement_threshold := 0.5)
           WHERE shardid IN ($hot_list)) || ' hot at 0.5';
  ROLLBACK;" 2>/dev/null | sed -n 's/^planned: //p')
assert_eq "$planned" "3 hot, 2 hot at 0.5" "with loads 237/232/207/187/177/167 Citus's plan by load moves three hot groups (two with improvement_threshold 0.5)"

t0=$(q 0 "SELECT extract(epoch FROM clock_timestamp())")
pgbench_loop_start hot -c 6 -j 2 -R 300 "${HOT_SCRIPTS[@]}"
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'rebalance')" 120 || { dump_state 0; false; } ||
  fail "no load-skew rebalance within 120 s"
op=$(q 0 "SELECT max(id) FROM autoscale.operations")
reason=$(q 0 "SELECT reason FROM autoscale.operations WHERE id = $op")
echo "rebalance started $(q 0 "SELECT round((extract(epoch FROM started_at) - $t0)::numeric, 1) FROM autoscale.operations WHERE id = $op") s after the load began: $reason"
assert_true "$(q 0 "SELECT requested_by = 'trigger' AND reason LIKE 'load skew: 127.0.0.1:$(node_port 1) carries %x the mean; the plan moves % shard group%; predicted max/mean %' FROM autoscale.operations WHERE id = $op")" \
  "the load-skew trigger fired by itself and says why"
before_ratio=$(q 0 "SELECT round((max(c) / avg(c))::numeric, 2) FROM (
                      SELECT nodeport, avg(commits_per_sec) c FROM autoscale.node_samples
                       WHERE NOT is_coordinator AND sampled_at BETWEEN to_timestamp($t0 + 5) AND (SELECT started_at FROM autoscale.operations WHERE id = $op)
                       GROUP BY nodeport) x")
echo "per-worker commits/s max/mean before: $before_ratio"
echo "group loads when it started: $(q 0 "SELECT string_agg(nodeport || '/' || shardminvalue || '=' || coalesce(round(load_per_sec::numeric), -1), ' ' ORDER BY load_per_sec DESC NULLS LAST) FROM autoscale.shard_group_load")"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 120 || { dump_state 0; false; } ||
  fail "rebalance still running after 120 s"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "the rebalance by load succeeded"
t_done=$(q 0 "SELECT extract(epoch FROM finished_at) FROM autoscale.operations WHERE id = $op")
job=$(q 0 "SELECT job_id FROM autoscale.operations WHERE id = $op")
moved=$(q 0 "SELECT count(*) FROM pg_dist_background_task WHERE job_id = $job AND command LIKE '%citus_move_shard_placement%'")
echo "moved $moved shard groups in $(q 0 "SELECT round(extract(epoch FROM finished_at - started_at)::numeric, 1) FROM autoscale.operations WHERE id = $op") s; layout: $(shard_spread 0)"
echo "hot groups per worker: $(q 0 "SELECT string_agg(nodeport || ':' || c, ' ' ORDER BY nodeport) FROM (SELECT nodeport, count(*) c FROM citus_shards WHERE shardid IN ($(echo $hot_shards | tr ' ' ',')) GROUP BY nodeport) x")"

# settle, then measure the workers' commits/s over 10 s
sleep 15
after=$(worker_commits 10)
after_ratio=$(worker_commits_ratio 10)
echo "per-worker commits/s after: $after (max/mean $after_ratio)"
assert_true "$(q 0 "SELECT $after_ratio <= 1.3")" "per-worker commits/s max/mean after the rebalance <= 1.3 ($after_ratio)"
echo "status.load_skew: $(q 0 "SELECT load_skew FROM autoscale.status")"
m=$(q 0 "SELECT autoscale.metrics()")
assert_contains "$m" "autoscale_node_load_share{node=\"127.0.0.1:$(node_port 1)\"} 0." "metrics() exports each node's load share"
assert_contains "$m" "autoscale_shard_group_load{colocation_id=" "metrics() exports the busiest shard groups"
echo "metrics: $(echo "$m" | grep -E '^autoscale_node_load_share' | tr '\n' ' ')"
echo "hot_tenants: $(q 0 "SELECT string_agg(nodeport || ' ' || round(load_per_sec::numeric) || '/s ' || round(100 * node_share::numeric) || '%', '; ') FROM (SELECT * FROM autoscale.hot_tenants LIMIT 6) h")"

# the interval passes: balanced, so no second rebalance
sleep 10
t_end=$(q 0 "SELECT extract(epoch FROM clock_timestamp())")
# freeze the measured load (mode off: no more samples) to compare it across a restart below
set_gucs 0 autoscale.mode off
hot1=$(echo $hot_shards | cut -d' ' -f1)
cold1=$(q 0 "SELECT min(shardid) FROM pg_dist_shard WHERE logicalrelid = 't'::regclass AND shardid NOT IN ($(echo $hot_shards | tr ' ' ','))")
costs=$(q 0 "SELECT autoscale.shard_load_cost($hot1) || ' ' || autoscale.shard_load_cost($cold1)")
pgbench_loop_stop hot
stats=$(pgbench_stats hot "$t0" "$t_end")
echo "pgbench over the whole run: $stats"
assert_eq "$(echo "$stats" | awk '{print $6}')" 0 "0 failed transactions"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 1 "no second rebalance once the load is even ($(q 0 "SELECT string_agg(id || ' ' || reason, '; ') FROM autoscale.operations"))"
assert_true "$(q 0 "SELECT load_skew LIKE 'no load skew%' OR load_skew LIKE 'load skew not assessed%' FROM autoscale.status")" \
  "status says there is no load skew now ($(q 0 "SELECT load_skew FROM autoscale.status"))"
assert_eq "$(row_counts 0 | sed 's/t_log=[0-9]* //')" "$(echo "$before" | sed 's/t_log=[0-9]* //')" "every row of t kept"
assert_eq "$(q 0 "SELECT count(*) FROM t_log")" "$(q 0 "SELECT sum(v) FROM t")" "every logged write kept (t_log rows = updates)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"
history_rows=$(q 0 "SELECT count(*) / count(DISTINCT sample_id) FROM autoscale.shard_group_load_history")
assert_true "$(q 0 "SELECT $history_rows <= 2 * 5")" "history keeps at most top 5 groups per node per sample ($history_rows rows per sample)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.shard_group_load")" 16 "one load row per shard group (16)"

# survives a restart: the strategy row, its cost function and the measured load are still there
stop_node 0; start_node 0
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_rebalance_strategy WHERE name = 'autoscale_by_load'")" 1 "strategy kept across a restart"
assert_eq "$(q 0 "SELECT autoscale.shard_load_cost($hot1) || ' ' || autoscale.shard_load_cost($cold1)")" "$costs" \
  "a hot and a cold shard cost the same after the restart ($costs)"
assert_true "$(q 0 "SELECT autoscale.shard_load_cost($hot1) > 5 * autoscale.shard_load_cost($cold1)")" "the hot one costs far more"
assert_eq "$(q 0 "SELECT count(*) FROM get_rebalance_table_shards_plan(rebalance_strategy := 'autoscale_by_load')")" 0 \
  "the plan by load is empty: balanced"
