#!/usr/bin/env bash
# Sampling at scale (prints figures; asserts nothing). A coordinator and up to 64 workers on loopback:
#   - per worker count (WORKERS, default 1 8 16 32 64) with 32 shards, and at 32 workers with about
#     3,200 and 10,000 shard groups: the background worker's samples (its kept connections) p50/p95
#     from autoscale.worker_count.sample_ms, a SQL autoscale.sample() (fresh connections) p50/p95,
#     and Citus's own no-op fan-out (run_command_on_workers('SELECT 1')) p50;
#   - node_stats() p50 in one session on a worker, with its shard count;
#   - at 32 workers, CPU_SECS (default 300) at sample_interval 5 s: the coordinator's background
#     processes (worker and sampler) and each worker instance (whole instance, autoscale on minus off);
#   - bytes per node-sample (node_history table, TOAST and indexes, and the per-sample rows of worker_count
#     and shard_group_load_history), MB per day at 32 and 64 workers, WAL per sample.
# Needs Citus installed and the release build (scripts/setup.sh); ports 9900+; stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
. pg_test/lib.sh
CLUSTER_DIR=${BENCH_CLUSTER_DIR:-/tmp/autoscale-bench} BASE_PORT=${BENCH_BASE_PORT:-9900} SAMPLE_INTERVAL=5s
WORKERS=${WORKERS:-1 8 16 32 64}
RUNS=${RUNS:-30}
CPU_SECS=${CPU_SECS:-300}
BG_INTERVAL=${BG_INTERVAL:-2s}
citus_installed || { citus_missing_line; exit 0; }
trap stop_all EXIT

max=0; for n in $WORKERS; do [ "$n" -gt "$max" ] && max=$n; done
echo "building a cluster: coordinator + $max workers ($(${PGBIN}/pg_config --version), Citus $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$("$PGBIN/pg_config" --sharedir)/extension/citus.control"))"
stop_all
for i in $(seq 0 "$max"); do
  init_node "$i"
  # 65 servers on one machine: small ones
  sed -i 's/^shared_buffers = 64MB/shared_buffers = 16MB/; s/^max_connections = 200/max_connections = 100/' "$(node_dir "$i")/postgresql.conf"
  start_node "$i"
  q "$i" "CREATE EXTENSION citus" >/dev/null
done
q 0 "SELECT citus_set_coordinator_host('127.0.0.1', $(node_port 0))" >/dev/null
q 0 "CREATE EXTENSION citus_autoscale" >/dev/null
set_gucs 0 autoscale.worker_enabled off autoscale.mode observe autoscale.sample_interval "$BG_INTERVAL"

pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {if (NR == 0) {print "-"; exit} i=int((NR-1)*p/100)+1; printf "%.1f", a[i]}'; }
last_sample() { q 0 "SELECT coalesce(max(sample_id), 0) FROM autoscale.worker_count"; }
lsn() { q 0 "SELECT pg_current_wal_lsn()"; }
wal_since() { q 0 "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$1')"; }

# the background worker's RUNS samples; prints "p50 p95 wal_bytes_per_sample"
bg_samples() {
  local from l0 n
  set_gucs 0 autoscale.worker_enabled on
  # its first samples connect; measure from the third on
  from=$(last_sample)
  wait_for 0 "SELECT count(*) >= 2 FROM autoscale.worker_count WHERE driver = 'worker' AND sample_id > $from" 120 >/dev/null
  from=$(last_sample); l0=$(lsn)
  wait_for 0 "SELECT count(*) >= $RUNS FROM autoscale.worker_count WHERE driver = 'worker' AND sample_id > $from" $((RUNS * 10 + 60)) >/dev/null
  n=$(q 0 "SELECT count(*) FROM autoscale.worker_count WHERE driver = 'worker' AND sample_id > $from")
  local wal; wal=$(( $(wal_since "$l0") / n ))
  set_gucs 0 autoscale.worker_enabled off
  local ms; ms=$(q 0 "SELECT sample_ms FROM autoscale.worker_count WHERE driver = 'worker' AND sample_id > $from ORDER BY sample_id LIMIT $RUNS")
  echo "$(echo "$ms" | pct 50) $(echo "$ms" | pct 95) $wal"
}
sql_samples() {  # SQL sample(): fresh connections, 10 runs
  local t; t=$(for _ in $(seq 10); do echo "SELECT autoscale.sample()->>'elapsed_ms';"; done | psql_node 0)
  echo "$(echo "$t" | pct 50) $(echo "$t" | pct 95)"
}
citus_floor() {
  local t; t=$(for _ in $(seq 10); do
    echo "SELECT extract(epoch FROM clock_timestamp() - now()) * 1000 FROM (SELECT count(*) FROM run_command_on_workers('SELECT 1')) s;"
  done | psql_node 0)
  echo "$t" | pct 50
}
node_stats_p50() {  # on worker 1, one session, after 6 warm-up calls (its plans become generic)
  local t
  t=$( (for _ in $(seq 6); do echo "SELECT autoscale.node_stats() \\g /dev/null"; done
        for _ in $(seq 30); do
          printf "SELECT extract(epoch FROM clock_timestamp()) AS t0 \\\\gset\nSELECT autoscale.node_stats() \\\\g /dev/null\nSELECT round(((extract(epoch FROM clock_timestamp()) - :t0) * 1000)::numeric, 3);\n"
        done) | psql_node 1)
  echo "$t" | pct 50
}
shards_on_1() { q 0 "SELECT count(*) FROM pg_dist_placement WHERE groupid = (SELECT groupid FROM pg_dist_node WHERE nodeport = $(node_port 1))"; }

echo
echo "sample wall time in ms: 'worker' = the background worker's samples on its kept connections"
echo "(worker_count.sample_ms, $RUNS samples at $BG_INTERVAL), 'sql' = autoscale.sample() on fresh connections,"
echo "'citus' = run_command_on_workers('SELECT 1') alone; WAL = bytes of WAL per background-worker sample;"
echo "node_stats = one call on worker 1 in a session that answers every sample"
printf "%-8s %7s %9s %9s %9s %9s %9s %10s %12s %9s\n" workers shards "worker50" "worker95" "sql50" "sql95" "citus50" "WAL/smpl" "node_stats" "shards@1"
row() {  # workers
  local bg sq fl ns
  read -r b50 b95 wal < <(bg_samples)
  read -r s50 s95 < <(sql_samples)
  fl=$(citus_floor); ns=$(node_stats_p50)
  printf "%-8s %7s %9s %9s %9s %9s %9s %10s %12s %9s\n" "$1" "$(q 0 "SELECT count(*) FROM pg_dist_shard")" "$b50" "$b95" "$s50" "$s95" "$fl" "$wal" "$ns" "$(shards_on_1)"
}
added=0
for n in $WORKERS; do
  while [ "$added" -lt "$n" ]; do
    added=$((added + 1))
    q 0 "SELECT citus_add_node('127.0.0.1', $(node_port "$added"))" >/dev/null
  done
  [ "$(q 0 "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'bench0'::regclass" 2>/dev/null || echo 0)" = 1 ] ||
    q 0 "CREATE TABLE bench0 (id bigint PRIMARY KEY, v text); SELECT create_distributed_table('bench0', 'id', shard_count := 32)" >/dev/null
  row "$n"
done

# CPU at 32 workers (or the largest count up to 32): let the workers above it go
cpu_n=0; for n in $WORKERS; do [ "$n" -le 32 ] && [ "$n" -gt "$cpu_n" ] && cpu_n=$n; done
if [ "$added" -gt "$cpu_n" ]; then
  for i in $(seq $((cpu_n + 1)) "$added"); do
    q 0 "SELECT citus_remove_node('127.0.0.1', $(node_port "$i"))" >/dev/null
    stop_node "$i"
  done
  added=$cpu_n
fi

hz=$(getconf CLK_TCK)
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
instance_cpu() {  # a postmaster with its reaped and live children, in clock ticks
  local pm=$1 total c
  total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
  for c in $(cat "/proc/$pm/task/$pm/children" 2>/dev/null); do
    [ -r "/proc/$c/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
workers_cpu() {  # sum over the workers' instances
  local s=0 i
  for i in $(seq 1 "$added"); do s=$((s + $(instance_cpu "$(head -1 "$(node_dir "$i")/postmaster.pid")"))); done
  echo "$s"
}
if [ "$cpu_n" -gt 0 ] && [ "$CPU_SECS" -gt 0 ]; then
  echo
  echo "CPU over $CPU_SECS s at sample_interval 5 s, $added workers (clock ticks of 1/$hz s)"
  set_gucs 0 autoscale.sample_interval 5s autoscale.worker_enabled off
  w0=$(workers_cpu); sleep "$CPU_SECS"; w1=$(workers_cpu)
  off_w=$((w1 - w0))
  set_gucs 0 autoscale.worker_enabled on
  sleep 12   # the worker starts and makes its connections
  # the worker (decides, acts) and the sampler
  pids=$(q 0 "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type IN ('citus_autoscale', 'citus_autoscale sampler')")
  ours() { local s=0 p; for p in $pids; do s=$((s + $(proc_cpu "$p"))); done; echo "$s"; }
  c0=$(ours); w0=$(workers_cpu); sleep "$CPU_SECS"; c1=$(ours); w1=$(workers_cpu)
  on_w=$((w1 - w0))
  awk -v hz="$hz" -v s="$CPU_SECS" -v c="$((c1 - c0))" -v on="$on_w" -v off="$off_w" -v n="$added" 'BEGIN {
    printf "coordinator, autoscale'"'"'s background processes (worker and sampler): %d ticks = %.3f%% of one core\n", c, 100*c/hz/s
    printf "each worker instance (mean): %.3f%% of one core with autoscale sampling, %.3f%% without: %.3f%% for autoscale\n", 100*on/n/hz/s, 100*off/n/hz/s, 100*(on-off)/n/hz/s
  }'
  set_gucs 0 autoscale.worker_enabled off autoscale.sample_interval "$BG_INTERVAL"
fi

# shard groups at the CPU count: about 100 and about 312 per worker
if [ "$cpu_n" -gt 0 ]; then
  for target in ${SHARD_TARGETS:-3200 10000}; do
    have=$(q 0 "SELECT count(*) FROM pg_dist_shard")
    k=$(q 0 "SELECT count(*) FROM pg_dist_partition")
    while [ "$have" -lt "$target" ]; do
      q 0 "CREATE TABLE bench$k (id bigint PRIMARY KEY, v text); SELECT create_distributed_table('bench$k', 'id', shard_count := 100, colocate_with := 'none')" >/dev/null
      k=$((k + 1)); have=$((have + 100))
    done
    row "$added"
  done
fi

echo
echo "history volume (after the samples above)"
q 0 "VACUUM ANALYZE autoscale.node_history, autoscale.worker_count, autoscale.shard_group_load_history" >/dev/null
# The history holds samples of every worker count above; a sample of the largest cluster, the latest,
# is stored 1000 times more in a copy of autoscale.node_history (same storage settings) to measure what
# one sample of that many nodes takes, indexes and TOAST included.
q 0 "SET client_min_messages = warning; DROP TABLE IF EXISTS public.bench_node_history;
     CREATE TABLE public.bench_node_history (LIKE autoscale.node_history INCLUDING ALL) WITH (toast_tuple_target = 128);
     INSERT INTO public.bench_node_history
     SELECT -g, h.sampled_at - make_interval(secs => 5 * g), h.nodes
       FROM (SELECT * FROM autoscale.node_history ORDER BY sample_id DESC LIMIT 1) h, generate_series(1, 1000) g" >/dev/null
# the same for the worker_count row of every sample (a table's first pages would count for much over a
# few hundred samples)
q 0 "SET client_min_messages = warning; DROP TABLE IF EXISTS public.bench_worker_count;
     CREATE TABLE public.bench_worker_count (LIKE autoscale.worker_count INCLUDING ALL);
     INSERT INTO public.bench_worker_count
     SELECT w.sampled_at - make_interval(secs => 5 * g), -g, w.worker_count, w.reachable_workers, w.unreachable_workers,
            w.inactive_workers, w.driver, w.sample_ms
       FROM (SELECT * FROM autoscale.worker_count ORDER BY sampled_at DESC LIMIT 1) w, generate_series(1, 1000) g" >/dev/null
q 0 "VACUUM ANALYZE public.bench_node_history, public.bench_worker_count" >/dev/null
q 0 "WITH s AS (SELECT (SELECT count(*) FROM autoscale.node_samples
                         WHERE sample_id = (SELECT max(sample_id) FROM autoscale.node_history)) AS nodes,
                       pg_total_relation_size('public.bench_node_history') / 1000.0 AS bytes),
          per AS (SELECT pg_total_relation_size('public.bench_worker_count') / 1000.0
                         + (SELECT count(*) FROM autoscale.shard_group_load_history
                             WHERE sample_id = (SELECT max(sample_id) FROM autoscale.worker_count))
                           * pg_total_relation_size('autoscale.shard_group_load_history')
                           / greatest((SELECT count(*) FROM autoscale.shard_group_load_history), 1) AS bytes),
          fixed AS (SELECT pg_total_relation_size('autoscale.history_nodes') + pg_total_relation_size('autoscale.node_latest') AS bytes)
     SELECT format('node_history: a sample of %s nodes takes %s bytes, %s bytes per node-sample (table, TOAST and indexes); '
                   '%s bytes more per sample (worker_count, and shard_group_load_history''s rows of the latest sample); %s bytes that do not grow '
                   '(history_nodes, node_latest)',
                   s.nodes, round(s.bytes), round(s.bytes / greatest(s.nodes, 1), 1), round(per.bytes), fixed.bytes)
            || E'\\n' ||
            format('at 5 s: 32 workers %s MB/day, 64 workers %s MB/day',
                   round((33 * 17280 * s.bytes / greatest(s.nodes, 1) + 17280 * per.bytes) / 1e6, 1),
                   round((65 * 17280 * s.bytes / greatest(s.nodes, 1) + 17280 * per.bytes) / 1e6, 1))
       FROM s, per, fixed"
q 0 "DROP TABLE public.bench_node_history, public.bench_worker_count" >/dev/null
