#!/usr/bin/env bash
# Cost of measuring per-shard-group load (prints figures; asserts nothing). For 32 and 1,000 shard
# groups (two colocated tables, so 64 and 2,000 shard relations) on 2 workers:
#   - bytes per sample on the wire: the size of one worker's node_stats() answer, and of its
#     shard_groups part;
#   - autoscale.sample() wall time, p50/p95 over RUNS samples (the shard groups travel in the same
#     single run_command_on_workers fan-out);
#   - bytes written per sample: WAL per sample (node_samples + shard_group_load updated in place +
#     history of the top autoscale.load_history_top_n groups per node), and the rows kept.
# Needs Citus installed; runs a local cluster on loopback (BASE_PORT, default 9900) and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. pg_test/lib.sh
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/autoscale-bench} BASE_PORT=${BASE_PORT:-9900} SAMPLE_INTERVAL=5s
RUNS=${RUNS:-30}
citus_installed || { citus_missing_line; exit 0; }
trap stop_all EXIT

echo "building a cluster: coordinator + 2 workers (ports $BASE_PORT+)"
make_cluster 2 0
q 0 "ALTER SYSTEM SET autoscale.worker_enabled = off" >/dev/null; q 0 "SELECT pg_reload_conf()" >/dev/null

pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR-1)*p/100)+1; printf "%.1f", a[i]}'; }
printf "%-7s %9s %12s %10s %10s %12s %14s %10s\n" shards "answer_B" "groups_B" "sample_p50" "sample_p95" "WAL_B/sample" "load_rows" "hist/sample"
for shards in 32 1000; do
  q 0 "DROP TABLE IF EXISTS lb_log, lb" >/dev/null
  # sequential: creating 2,000 shard relations in parallel opens more connections than file descriptors
  q 0 "SET citus.multi_shard_modify_mode TO sequential;
       CREATE TABLE lb (tenant int, id bigint, v bigint DEFAULT 0, PRIMARY KEY (tenant, id));
       SELECT create_distributed_table('lb', 'tenant', shard_count := $shards);
       CREATE TABLE lb_log (tenant int, seq bigserial, PRIMARY KEY (tenant, seq));
       SELECT create_distributed_table('lb_log', 'tenant', colocate_with := 'lb');
       INSERT INTO lb SELECT g % 5000, g FROM generate_series(1, 20000) g" >/dev/null
  q 0 "TRUNCATE autoscale.shard_group_load, autoscale.shard_group_load_history" >/dev/null
  q 0 "SELECT autoscale.sample()" >/dev/null; q 0 "SELECT autoscale.sample()" >/dev/null   # warm-up, baseline
  answer=$(q 1 "SELECT length(autoscale.node_stats()::text)")
  groups=$(q 1 "SELECT length((autoscale.node_stats() -> 'shard_groups')::text)")
  lsn0=$(q 0 "SELECT pg_current_wal_insert_lsn()")
  h0=$(q 0 "SELECT count(*) FROM autoscale.shard_group_load_history")
  times=$(for _ in $(seq "$RUNS"); do echo "SELECT autoscale.sample()->>'elapsed_ms';"; done | psql_node 0)
  wal=$(q 0 "SELECT (pg_current_wal_insert_lsn() - '$lsn0'::pg_lsn) / $RUNS")
  h1=$(q 0 "SELECT count(*) FROM autoscale.shard_group_load_history")
  rows=$(q 0 "SELECT count(*) || ' (' || pg_size_pretty(pg_total_relation_size('autoscale.shard_group_load')) || ')' FROM autoscale.shard_group_load")
  printf "%-7s %9s %12s %10s %10s %12s %14s %10s\n" "$shards" "$answer" "$groups" \
    "$(echo "$times" | pct 50)" "$(echo "$times" | pct 95)" "$wal" "$rows" "$(( (h1 - h0) / RUNS ))"
done
echo
echo "answer_B: one worker's node_stats() json (bytes); groups_B: its shard_groups part; sample_p50/p95: autoscale.sample()"
echo "in ms (coordinator + 2 workers, one fan-out); WAL_B/sample: WAL bytes per sample; load_rows: rows of"
echo "autoscale.shard_group_load (one per shard group, updated in place); hist/sample: history rows per sample"
echo "(top $(q 0 "SHOW autoscale.load_history_top_n") groups per node)."
