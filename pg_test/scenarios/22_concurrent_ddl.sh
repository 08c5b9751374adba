#!/usr/bin/env bash
# Concurrent DDL never fails a sample or a tick. A table dropped after a statement's snapshot was taken
# but before autoscale looks its shards up by name (Citus's shard_name(): "object_name does not reference a
# valid relation") is the case seen while Citus's own operations suite ran next to autoscale. The window is
# held open deterministically: a session (dblink) takes a REPEATABLE READ snapshot, the table is dropped
# and committed, and that session, whose snapshot still sees the table's shards in Citus's metadata, then
# calls node_stats() on a worker, and sample() and tick() on the coordinator. Each must answer, and the
# next sample must have shard figures again.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "concurrent DDL: a table dropped between a snapshot and the shard lookup fails no sample and no tick"
make_cluster 1 0
coord=$(node_port 0); w1=$(node_port 1)
# the coordinator holds shards too, so that its own sample reads shard names
q 0 "SELECT citus_set_node_property('127.0.0.1', $coord, 'shouldhaveshards', true)" >/dev/null
q 0 "CREATE EXTENSION IF NOT EXISTS dblink" >/dev/null
make_tables() {
  q 0 "CREATE TABLE gone (id bigint PRIMARY KEY, v text);
       SELECT create_distributed_table('gone', 'id', shard_count := 4);
       INSERT INTO gone SELECT g, md5(g::text) FROM generate_series(1, 1000) g" >/dev/null
}
q 0 "CREATE TABLE stays (id bigint PRIMARY KEY); SELECT create_distributed_table('stays', 'id', shard_count := 4)" >/dev/null
make_tables
assert_true "$(q 0 "SELECT count(DISTINCT nodeport) = 2 FROM citus_shards WHERE table_name = 'gone'::regclass")" \
  "the table's shards are on the coordinator and the worker"

# snapshot_then_drop PORT CALL: a REPEATABLE READ session on PORT takes its snapshot, 'gone' is dropped,
# then that session runs CALL; prints its result or its error
snapshot_then_drop() {
  local port=$1 call=$2
  psql_node 0 2>&1 <<SQL || true
SELECT dblink_connect('rr', 'host=127.0.0.1 port=$port dbname=postgres user=postgres');
SELECT dblink_exec('rr', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT n FROM dblink('rr', 'SELECT count(*) FROM pg_catalog.pg_dist_shard') AS t(n bigint);
DROP TABLE gone;
SELECT r FROM dblink('rr', \$\$SELECT ($call)::text\$\$) AS t(r text);
SELECT dblink_exec('rr', 'COMMIT');
SELECT dblink_disconnect('rr');
SQL
}

# 1. node_stats() on the worker, whose metadata still lists the dropped table's shards in that snapshot
out=$(snapshot_then_drop "$w1" "autoscale.node_stats()")
echo "$out" | cut -c1-200
assert_not_contains "$out" "ERROR" "node_stats() on the worker answers"
assert_contains "$out" '"cpu"' "with its reading"

# 2. sample() and tick() on the coordinator, in such a snapshot
make_tables
out=$(snapshot_then_drop "$coord" "autoscale.sample()")
echo "$out" | cut -c1-200
assert_not_contains "$out" "ERROR" "sample() on the coordinator answers"
assert_contains "$out" '"sample_id"' "and records a sample"
make_tables
out=$(snapshot_then_drop "$coord" "autoscale.tick()")
echo "$out" | cut -c1-200
assert_not_contains "$out" "ERROR" "tick() on the coordinator answers"

# 3. the next sample, with the table gone for good, has shard figures again, and the worker never failed a tick
s=$(q 0 "SELECT autoscale.sample() ->> 'sample_id'")
assert_true "$(q 0 "SELECT bool_and(shard_bytes IS NOT NULL) FROM autoscale.node_samples WHERE sample_id = $s AND data_node")" \
  "the next sample has shard figures for every data node"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind = 'error' AND message ~ '^(tick|sample) failed'")" 0 \
  "no tick of the background worker failed"
