#!/usr/bin/env bash
# Rebalance on join: in act mode, a worker added by hand (citus_add_node) is rebalanced onto
# within sample_interval + rebalance_settle; the operation succeeds; every distributed table ends
# balanced on the three workers; no row is lost; the reference table reaches the new node.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "rebalance after a node joins (act mode)"
make_cluster 2 1

q 0 "CREATE TABLE items (id bigint PRIMARY KEY, v text);
     SELECT create_distributed_table('items', 'id', shard_count := 12);
     CREATE TABLE item_events (item_id bigint, seq int, payload text, PRIMARY KEY (item_id, seq));
     SELECT create_distributed_table('item_events', 'item_id', colocate_with := 'items');
     CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric);
     SELECT create_distributed_table('accounts', 'id', shard_count := 6, colocate_with := 'none');
     CREATE TABLE regions (id int PRIMARY KEY, name text);
     SELECT create_reference_table('regions');
     INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
     INSERT INTO item_events SELECT g % 20000 + 1, g, md5(g::text) FROM generate_series(1, 30000) g;
     INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 5000) g;
     INSERT INTO regions SELECT g, 'r' || g FROM generate_series(1, 50) g" >/dev/null
before=$(row_counts 0)
echo "row counts before: $before"

settle=5
set_gucs 0 autoscale.mode act autoscale.rebalance_strategy by_shard_count
assert_eq "$(q 0 "SHOW autoscale.rebalance_settle")" "${settle}s" "rebalance_settle default"
# the worker has seen the two-worker set, nothing to do
sleep 2
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "no operation without a change"

new=$(node_port 3)
q 0 "SELECT citus_add_node('127.0.0.1', $new)" >/dev/null
t_added=$(q 0 "SELECT extract(epoch FROM clock_timestamp())")
echo "before the rebalance: $(shard_spread 0)"
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'rebalance')" 20 || { dump_state 0; false; } ||
  fail "no rebalance operation within 20 s of the node joining"
q 0 "SELECT id, requested_by, reason, step, job_id FROM autoscale.operations"
delay=$(q 0 "SELECT round((extract(epoch FROM started_at) - $t_added)::numeric, 2) FROM autoscale.operations WHERE kind = 'rebalance'")
echo "rebalance operation started ${delay} s after citus_add_node returned (sample_interval $(q 0 "SHOW autoscale.sample_interval"), settle ${settle}s)"
si=$(q 0 "SELECT extract(epoch FROM current_setting('autoscale.sample_interval')::interval)")
assert_true "$(q 0 "SELECT $delay >= $settle - 0.5 AND $delay <= $settle + $si + 3")" \
  "started after the settle time and within sample_interval + rebalance_settle + 3 s slack"
assert_true "$(q 0 "SELECT requested_by = 'trigger' AND reason LIKE 'workers added: 127.0.0.1:$new%' FROM autoscale.operations WHERE kind = 'rebalance'")" \
  "operation says why: workers added"
assert_true "$(q 0 "SELECT job_id IS NOT NULL FROM autoscale.operations WHERE kind = 'rebalance'")" "a Citus job is followed"
job=$(q 0 "SELECT job_id FROM autoscale.operations WHERE kind = 'rebalance'")
assert_true "$(q 0 "SELECT job_type = 'rebalance' FROM pg_dist_background_job WHERE job_id = $job")" "the job is a Citus rebalance job"

wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'rebalance'" 60 || { dump_state 0; false; } ||
  fail "rebalance still running after 60 s: $(q 0 "SELECT op FROM autoscale.operations")"
echo "rebalance_progress: $(q 0 "SELECT * FROM autoscale.rebalance_progress")"
assert_eq "$(q 0 "SELECT status || '/' || step FROM autoscale.operations WHERE kind = 'rebalance'")" "succeeded/done" "rebalance operation succeeded"
assert_eq "$(q 0 "SELECT state FROM pg_dist_background_job WHERE job_id = $job")" finished "Citus job finished"
assert_true "$(q 0 "SELECT percent_done = 100 AND tasks_done = tasks_total AND tasks_total > 0 FROM autoscale.rebalance_progress")" \
  "rebalance_progress says 100%"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 1 "exactly one operation"
echo "after the rebalance: $(shard_spread 0)"
assert_true "$(q 0 "$BALANCED_SQL")" "every distributed table balanced (max - min shards per worker <= 1)"
assert_true "$(q 0 "SELECT count(*) >= 4 FROM citus_shards WHERE nodeport = $new AND citus_table_type = 'distributed' AND table_name = 'items'::regclass")" \
  "the new node holds a third of items' shards"
assert_true "$(q 0 "SELECT count(*) = 1 FROM citus_shards WHERE nodeport = $new AND table_name = 'regions'::regclass")" \
  "the reference table has a placement on the new node"
assert_true "$(q 0 "SELECT bool_and((SELECT count(*) FROM citus_shards WHERE table_name = 'items'::regclass AND nodeport = s.nodeport)
                          = (SELECT count(*) FROM citus_shards WHERE table_name = 'item_events'::regclass AND nodeport = s.nodeport))
                     FROM (SELECT DISTINCT nodeport FROM citus_shards) s")" "colocated tables moved together"
after=$(row_counts 0)
assert_eq "$after" "$before" "every table's row count unchanged"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_shard s USING (shardid)
                  WHERE s.logicalrelid = 'items'::regclass")" 12 "one placement per shard of items"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"
assert_true "$(q 0 "SELECT count(*) >= 1 FROM autoscale.events WHERE kind = 'operation_succeeded'")" "operation_succeeded event recorded"

# the new set is the baseline: no second rebalance follows
sleep 4
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 1 "no further operation once balanced"
