#!/usr/bin/env bash
# Load-aware scale-out: the 6 equally hot tenants all on worker 1 of 2 (shard counts 8/8), under
# pgbench; a policy on commits/s (max over workers) scales out to 3 workers with a standby, and the
# scale-out's rebalance uses autoscale_by_load (the default strategy), so the new worker takes a fair
# share of the LOAD (at least 2 of the 6 hot shard groups, and at least 0.85 x the mean commits/s),
# not just of the shards. 0 failed transactions, every row kept. The load-skew trigger is off here
# (load_skew_ratio 0) so that the policy's scale-out is what spreads the load. Last, with Citus's
# tenant tracking on, autoscale.hot_tenants lists the tracked tenants, the six hot ones first.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "load-aware scale-out: the new worker takes its share of the load"
make_cluster 2 1
standby=$(node_port 3)

make_hot_tenants
before=$(row_counts 0 | sed 's/t_log=[0-9]* //')
echo "hot tenants: $HOT (shards $HOT_SHARDS); layout: $(shard_spread 0)"
assert_eq "$(q 0 "SELECT count(*) FROM citus_shards WHERE shardid IN ($HOT_SHARDS) AND nodeport = $(node_port 1)")" 6 \
  "the six hot shard groups are on worker 1"

set_gucs 0 autoscale.mode act autoscale.load_window 5s autoscale.load_skew_ratio 0 \
  autoscale.shard_transfer_mode block_writes autoscale.max_operations_per_hour 0 autoscale.rebalance_interval -1
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby offered to the pool"
q 0 "SELECT autoscale.set_policy('load', metric => 'commits_per_sec', aggregate => 'max',
       scale_out_above => 200, scale_in_below => 1, scale_out_for => '8 s', scale_in_for => '1 h',
       cooldown => '1 h', min_workers => 2, max_workers => 3)" >/dev/null

t0=$(q 0 "SELECT extract(epoch FROM clock_timestamp())")
pgbench_loop_start hot -c 6 -j 2 -R 300 "${HOT_SCRIPTS[@]}"
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_out')" 60 || { dump_state 0; false; } ||
  fail "no scale_out within 60 s of load (explain: $(q 0 "SELECT current_value, decision, reasons FROM autoscale.explain()"))"
op=$(q 0 "SELECT id FROM autoscale.operations WHERE kind = 'scale_out'")
echo "scale_out started $(q 0 "SELECT round((extract(epoch FROM started_at) - $t0)::numeric, 1) FROM autoscale.operations WHERE id = $op") s after the load began: $(q 0 "SELECT reason FROM autoscale.operations WHERE id = $op")"
echo "per-worker commits/s before: $(worker_commits 5) (max/mean $(worker_commits_ratio 5))"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 120 || { dump_state 0; false; } ||
  fail "scale_out did not finish within 120 s"
assert_eq "$(q 0 "SELECT status || ' ' || nodename || ':' || nodeport FROM autoscale.operations WHERE id = $op")" \
  "succeeded 127.0.0.1:$standby" "scale_out succeeded with the standby"
echo "layout: $(shard_spread 0); hot groups per worker: $(q 0 "SELECT string_agg(nodeport || ':' || c, ' ' ORDER BY nodeport) FROM (SELECT nodeport, count(*) c FROM citus_shards WHERE shardid IN ($HOT_SHARDS) GROUP BY nodeport) x")"
new_hot=$(q 0 "SELECT count(*) FROM citus_shards WHERE shardid IN ($HOT_SHARDS) AND nodeport = $standby")
assert_true "$(q 0 "SELECT $new_hot >= 2")" "the new worker took at least 2 of the 6 hot shard groups ($new_hot)"

sleep 15
echo "per-worker commits/s after: $(worker_commits 10) (max/mean $(worker_commits_ratio 10))"
share=$(q 0 "SELECT round((max(c) FILTER (WHERE nodeport = $standby) / avg(c))::numeric, 2) FROM (
               SELECT nodeport, avg(commits_per_sec) c FROM autoscale.node_samples
                WHERE NOT is_coordinator AND reachable AND sampled_at > now() - interval '10 s' GROUP BY nodeport) x")
assert_true "$(q 0 "SELECT $share >= 0.85")" "the new worker carries a fair share of the commits/s ($share x the mean)"
# tenant tracking on (every node, a 2 s period): hot_tenants lists Citus's tracked tenants instead of
# the shard groups, and the busiest six are the hot tenants
for i in 0 1 2 3; do set_gucs "$i" citus.stat_tenants_track all citus.stat_tenants_period 2; done
wait_for 0 "SELECT count(*) >= 6 FROM autoscale.hot_tenants WHERE source = 'citus_stat_tenants'" 30 ||
  fail "no tracked tenants in hot_tenants: $(q 0 "SELECT count(*) FROM autoscale.tenant_load")"
assert_eq "$(q 0 "SELECT string_agg(tenant, ' ' ORDER BY tenant::int) FROM (
                    SELECT tenant FROM autoscale.hot_tenants ORDER BY load_per_sec DESC LIMIT 6) x")" "$HOT" \
  "the six busiest tracked tenants are the hot ones"
echo "tracked tenants: $(q 0 "SELECT string_agg(tenant || '@' || nodeport || ' ' || round(load_per_sec::numeric) || ' q/s ' || round(100 * node_share::numeric) || '%', '; ') FROM autoscale.hot_tenants")"
t_end=$(q 0 "SELECT extract(epoch FROM clock_timestamp())")
pgbench_loop_stop hot
stats=$(pgbench_stats hot "$t0" "$t_end")
echo "pgbench over the whole run: $stats"
assert_eq "$(echo "$stats" | awk '{print $6}')" 0 "0 failed transactions"
assert_eq "$(row_counts 0 | sed 's/t_log=[0-9]* //')" "$before" "every row of t kept"
assert_eq "$(q 0 "SELECT count(*) FROM t_log")" "$(q 0 "SELECT sum(v) FROM t")" "every logged write kept (t_log rows = updates)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"
