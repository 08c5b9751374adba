#!/usr/bin/env bash
# Hot-tenant isolation. Two hot tenants share one shard group on worker 1 (4 shards, 2 per worker),
# with a little load spread over 40 tenants, under pgbench and with Citus's tenant tracking on. No
# rebalance helps (moving the hot group only moves the hot spot), so with the opt-in
# autoscale.isolate_hot_tenants the tick isolates the busiest tenant to a shard of its own
# (isolate_tenant_to_new_shard, CASCADE) and moves it to the least-loaded worker: an isolate_tenant
# operation. Afterwards the tenant is on its own shard on worker 2, its colocated table with it,
# the workers' commits/s are even, 0 failed transactions, every row kept.
# Then, without pgbench, manual isolate_tenant() calls are held at each step (the failpoint
# autoscale.test_hold_at_steps), the background worker is SIGKILLed there, and each resumes to
# success; a step whose work was already done (the isolation, the move: by hand while held, as a
# crash right after Citus committed would leave it) finds it done and does not do it again.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "hot tenant: isolated to its own shard on the least-loaded worker; SIGKILL at each step resumes"
make_cluster 2 0
require_failpoints
w1=$(node_port 1); w2=$(node_port 2)

q 0 "CREATE TABLE t (tenant int, id bigint, v bigint NOT NULL DEFAULT 0, PRIMARY KEY (tenant, id));
     SELECT create_distributed_table('t', 'tenant', shard_count := 4);
     CREATE TABLE t_log (tenant int, seq bigserial, PRIMARY KEY (tenant, seq));
     SELECT create_distributed_table('t_log', 'tenant', colocate_with := 't');
     INSERT INTO t SELECT tn, g FROM generate_series(1, 40) tn, generate_series(1, 200) g" >/dev/null
# the two lowest tenants of a shard on worker 1 are hot; the groups stay 2 and 2
hot_shard=$(q 0 "SELECT min(get_shard_id_for_distribution_column('t', tn)) FROM generate_series(1, 40) tn
                  WHERE get_shard_id_for_distribution_column('t', tn) IN (SELECT shardid FROM citus_shards WHERE nodeport = $w1)")
read -r A B <<<"$(q 0 "SELECT string_agg(tn::text, ' ' ORDER BY tn) FROM (SELECT tn FROM generate_series(1, 40) tn
                        WHERE get_shard_id_for_distribution_column('t', tn) = $hot_shard ORDER BY tn LIMIT 2) x")"
echo "hot tenants $A and $B share shard $hot_shard on worker 1; layout $(shard_spread 0)"
before=$(row_counts 0)
shards_before=$(q 0 "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 't'::regclass")

for i in 0 1 2; do set_gucs "$i" citus.stat_tenants_track all citus.stat_tenants_period 2; done
for h in $A $B; do tenant_script "$CLUSTER_DIR/hot_$h.sql" "$h"; done
tenant_script "$CLUSTER_DIR/cold.sql" :tn '\set tn random(1, 40)'

set_gucs 0 autoscale.mode act autoscale.rebalance_interval 20s autoscale.load_window 5s \
  autoscale.load_skew_for 10s autoscale.load_skew_ratio 1.5 autoscale.max_operations_per_hour 0 \
  autoscale.hot_tenant_share 0.3
assert_eq "$(q 0 "SHOW autoscale.isolate_hot_tenants")" off "hot-tenant isolation is off by default"

t0=$(q 0 "SELECT extract(epoch FROM clock_timestamp())")
pgbench_loop_start hot -c 6 -j 2 -R 300 -f "$CLUSTER_DIR/hot_$A.sql@2" -f "$CLUSTER_DIR/hot_$B.sql@2" -f "$CLUSTER_DIR/cold.sql@1"
# off: the tick says which tenant it would isolate, and does nothing
# (the two are equally hot: either may be the busiest at a given sample)
wait_for 0 "SELECT hot_tenant ~ '^hot tenant: tenant ($A|$B) \\(colocation [0-9]+\\) carries' AND hot_tenant LIKE '% of 127.0.0.1:$w1''s load (%x the mean); isolating it and moving it to 127.0.0.1:$w2 predicts max/mean %; not isolated: autoscale.isolate_hot_tenants is off' FROM autoscale.status" 90 ||
  { dump_state 0; fail "status never named tenant $A or $B as hot: $(q 0 "SELECT hot_tenant FROM autoscale.status")"; }
echo "status.hot_tenant: $(q 0 "SELECT hot_tenant FROM autoscale.status")"
echo "status.load_skew: $(q 0 "SELECT load_skew FROM autoscale.status")"
assert_eq "$(q 0 "SELECT decision FROM autoscale.explain() WHERE policy = 'hot_tenant'")" hold "explain() has a hot_tenant row: hold while off"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "no operation while isolate_hot_tenants is off (no rebalance either)"
before_ratio=$(worker_commits_ratio 10)
echo "per-worker commits/s before: $(worker_commits 10) (max/mean $before_ratio)"

set_gucs 0 autoscale.isolate_hot_tenants on
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'isolate_tenant')" 60 ||
  { dump_state 0; fail "no isolate_tenant within 60 s"; }
op=$(q 0 "SELECT max(id) FROM autoscale.operations")
echo "operation $op: $(q 0 "SELECT requested_by || ': ' || reason FROM autoscale.operations WHERE id = $op")"
iso=$(q 0 "SELECT op -> 'tenant' ->> 'value' FROM autoscale.operations WHERE id = $op")
if [ "$iso" = "$A" ]; then other=$B; else other=$A; fi
assert_true "$(q 0 "SELECT requested_by = 'trigger' AND '$iso' IN ('$A', '$B') AND nodeport = $w2 FROM autoscale.operations WHERE id = $op")" \
  "the tick started isolate_tenant of hot tenant $iso towards worker 2 by itself"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 120 || { dump_state 0; fail "isolate_tenant still running"; }
q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op ORDER BY id"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "isolate_tenant succeeded"
echo "took $(q 0 "SELECT round(extract(epoch FROM finished_at - started_at)::numeric, 2) FROM autoscale.operations WHERE id = $op") s"
own=$(q 0 "SELECT get_shard_id_for_distribution_column('t', $iso)")
assert_true "$(q 0 "SELECT shardminvalue = shardmaxvalue FROM pg_dist_shard WHERE shardid = $own")" "tenant $iso has a shard of its own ($own)"
assert_eq "$(q 0 "SELECT nodeport FROM citus_shards WHERE shardid = $own")" "$w2" "on worker 2, the least-loaded one"
assert_eq "$(q 0 "SELECT nodeport FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column('t_log', $iso)")" "$w2" \
  "its colocated t_log shard with it (CASCADE)"
assert_eq "$(q 0 "SELECT nodeport FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column('t', $other)")" "$w1" \
  "tenant $other stays on worker 1"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 't'::regclass")" $((shards_before + 2)) \
  "one split: the tenant's shard and the rest of its range on each side"

sleep 15
after_ratio=$(worker_commits_ratio 10)
echo "per-worker commits/s after: $(worker_commits 10) (max/mean $after_ratio)"
assert_true "$(q 0 "SELECT $after_ratio <= 1.3")" "per-worker commits/s max/mean after the isolation <= 1.3 ($before_ratio -> $after_ratio)"
echo "status.hot_tenant now: $(q 0 "SELECT hot_tenant FROM autoscale.status")"
t_end=$(q 0 "SELECT extract(epoch FROM clock_timestamp())")
pgbench_loop_stop hot
stats=$(pgbench_stats hot "$t0" "$t_end")
echo "pgbench over the whole run: $stats"
assert_eq "$(echo "$stats" | awk '{print $6}')" 0 "0 failed transactions"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 1 \
  "no second operation once the load is even ($(q 0 "SELECT string_agg(id || ' ' || kind || ' ' || reason, '; ') FROM autoscale.operations"))"
assert_eq "$(row_counts 0 | sed 's/t_log=[0-9]* //')" "$(echo "$before" | sed 's/t_log=[0-9]* //')" "every row of t kept"
assert_eq "$(q 0 "SELECT count(*) FROM t_log")" "$(q 0 "SELECT sum(v) FROM t")" "every logged write kept (t_log rows = updates)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"

# backtest() replays the load-skew trigger over the recorded per-node load (a policy pinned at 2 workers)
q 0 "SELECT autoscale.set_policy('bounds', metric => 'cpu', scale_out_above => 99, scale_in_below => 1, min_workers => 2, max_workers => 2)" >/dev/null
bt=$(q 0 "SELECT string_agg(decision || ' ' || from_workers || ': ' || array_to_string(reasons, ', '), E'\n' ORDER BY at) FROM autoscale.backtest('10 min')")
echo "backtest: $bt"
assert_contains "$bt" "rebalance 2: load skew: 127.0.0.1:$w1 carried" "backtest() shows where the load-skew trigger would have looked at the plan"

# --- manual isolate_tenant(): bad input, privileges
set_gucs 0 autoscale.isolate_hot_tenants off autoscale.rebalance_interval -1
assert_sqlstate 22004 0 "SELECT autoscale.isolate_tenant(NULL, '1')"
assert_sqlstate 22004 0 "SELECT autoscale.isolate_tenant('t', NULL)"
assert_sqlstate 22023 0 "SELECT autoscale.isolate_tenant('pg_class', '1')"
assert_sqlstate 42P01 0 "SELECT autoscale.isolate_tenant('nope', '1')"
err=$(sql_error 0 "SELECT autoscale.isolate_tenant('t', 'abc')")
assert_contains "$err" "22023: invalid value for tenant_value: 'abc'" "a tenant that is not an integer names the argument and the value"
assert_contains "$err" "Allowed: a value of public.t.tenant (integer)" "and the column and its type"
assert_sqlstate 22023 0 "SELECT autoscale.isolate_tenant('t', '3', '127.0.0.1', $(node_port 0))"
assert_sqlstate 22023 0 "SELECT autoscale.isolate_tenant('t', '3', '127.0.0.1')"
assert_sqlstate 55000 0 "SELECT autoscale.isolate_tenant('t', '$iso', '127.0.0.1', $w2)"
q 0 "CREATE ROLE plain LOGIN" >/dev/null
assert_sqlstate 42501 0 "SELECT autoscale.isolate_tenant('t', '3')" plain

finished() {
  local op=$1
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 60 || { dump_state 0; fail "operation $op did not finish"; }
  q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op ORDER BY id"
  assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "operation $op succeeded despite the kills"
}

# --- the other hot tenant: SIGKILL at isolate (and the isolation done meanwhile, as a crash after Citus committed
# would leave it), at move_tenant and at verify_tenant
set_gucs 0 autoscale.test_hold_at_steps isolate
shards=$(q 0 "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 't'::regclass")
op=$(q 0 "SELECT autoscale.isolate_tenant('t', '$other', reason => 'by hand') ->> 'id'")
assert_eq "$(q 0 "SELECT nodeport || ' ' || requested_by FROM autoscale.operations WHERE id = $op")" "$w2 manual" \
  "isolate_tenant('t', '$other') goes to the least-loaded other worker by default"
kill_worker_at "$op" isolate isolate
q 0 "SELECT isolate_tenant_to_new_shard('t', $other, 'CASCADE', shard_transfer_mode := 'block_writes')" >/dev/null
set_gucs 0 autoscale.test_hold_at_steps move_tenant
kill_worker_at "$op" move_tenant verify_tenant
assert_contains "$(q 0 "SELECT string_agg(message, ' | ') FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op")" \
  "already has a shard of its own" "the resumed isolate step found the tenant isolated and did not split again"
kill_worker_at "$op" verify_tenant ""
finished "$op"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 't'::regclass")" $((shards + 2)) "one split only (by hand), none by the resumed step"
own=$(q 0 "SELECT get_shard_id_for_distribution_column('t', $other)")
assert_eq "$(q 0 "SELECT (shardminvalue = shardmaxvalue) || ' ' || (SELECT nodeport FROM citus_shards WHERE shardid = $own) FROM pg_dist_shard WHERE shardid = $own")" "true $w2" \
  "tenant $other has its own shard on worker 2"

# --- a third tenant: SIGKILL at isolate (the step then isolates it itself), and the move done by hand
# while held at move_tenant
C=$(q 0 "SELECT min(tn) FROM generate_series(1, 40) tn WHERE get_shard_id_for_distribution_column('t', tn) IN
           (SELECT shardid FROM citus_shards WHERE nodeport = $w1 AND table_name = 't'::regclass)")
set_gucs 0 autoscale.test_hold_at_steps isolate
op=$(q 0 "SELECT autoscale.isolate_tenant('t', '$C', '127.0.0.1', $w2) ->> 'id'")
kill_worker_at "$op" isolate move_tenant
wait_for 0 "SELECT step = 'move_tenant' FROM autoscale.operations WHERE id = $op" 60 || fail "operation $op never reached move_tenant"
own=$(q 0 "SELECT get_shard_id_for_distribution_column('t', $C)")
assert_true "$(q 0 "SELECT shardminvalue = shardmaxvalue FROM pg_dist_shard WHERE shardid = $own")" "the resumed isolate step isolated tenant $C ($own)"
q 0 "SELECT citus_move_shard_placement($own, '127.0.0.1', $w1, '127.0.0.1', $w2, 'block_writes')" >/dev/null
set_gucs 0 autoscale.test_hold_at_steps ""
finished "$op"
assert_contains "$(q 0 "SELECT string_agg(message, ' | ') FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op")" \
  "is already on 127.0.0.1:$w2; not moved again" "the move step found the shard on the target and did not move it again"
assert_eq "$(q 0 "SELECT nodeport FROM citus_shards WHERE shardid = $own")" "$w2" "tenant $C on worker 2"

q 0 "CALL citus_cleanup_orphaned_resources()" >/dev/null 2>&1 || true
assert_eq "$(row_counts 0 | sed 's/t_log=[0-9]* //')" "$(echo "$before" | sed 's/t_log=[0-9]* //')" "every row of t kept after the kills"
assert_eq "$(q 0 "SELECT count(*) FROM t_log")" "$(q 0 "SELECT sum(v) FROM t")" "t_log rows = updates after the kills"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE status <> 'succeeded'")" 0 "every operation succeeded"
