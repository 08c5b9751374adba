#!/usr/bin/env bash
# Sampling benchmark (prints figures; asserts nothing):
#   - wall time of one autoscale.sample() with 1, 2, 4 and 8 workers (p50/p95 over RUNS samples),
#     next to Citus's own fan-out floor (run_command_on_workers of a no-op)
#   - CPU of the background worker over 60 s at the default 5 s interval, on the coordinator,
#     and the extra CPU a worker node spends answering (whole instance, autoscale on vs off)
#   - bytes per autoscale.node_samples row and the daily volume for 8 workers at 5 s
# Needs Citus installed; runs a local cluster on loopback ports 9900+ and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. pg_test/lib.sh
CLUSTER_DIR=/tmp/autoscale-bench BASE_PORT=9900 SAMPLE_INTERVAL=5s
RUNS=${RUNS:-60}
CPU_SECS=${CPU_SECS:-60}
citus_installed || { citus_missing_line; exit 0; }
trap stop_all EXIT

echo "building a cluster: coordinator + 8 workers"
make_cluster 0 8
q 0 "ALTER SYSTEM SET autoscale.worker_enabled = off" >/dev/null; q 0 "SELECT pg_reload_conf()" >/dev/null
q 0 "CREATE TABLE bench (id bigint PRIMARY KEY, v text); SELECT create_distributed_table('bench', 'id', shard_count := 32)" >/dev/null 2>&1 || true

pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR-1)*p/100)+1; printf "%.1f", a[i]}'; }
echo
echo "autoscale.sample() wall time (ms, measured inside the server), $RUNS samples each;"
echo "'+100ms' is the same fan-out with every node taking 100 ms longer to answer (a slow network or"
echo "node): a sequential fan-out would cost workers x 100 ms, a parallel one about 100 ms."
echo "'citus floor' is run_command_on_workers('SELECT 1') alone: Citus opens a new connection (fork, TLS with"
echo "the default citus.node_conninfo) to every worker on every call, whatever the command."
printf "%-8s %8s %8s %8s %14s %12s\n" workers p50 p95 max "+100ms p50" "citus floor"
added=0
for n in 1 2 4 8; do
  while [ "$added" -lt "$n" ]; do
    added=$((added + 1))
    q 0 "SELECT citus_add_node('127.0.0.1', $(node_port "$added"))" >/dev/null
  done
  q 0 "SELECT autoscale.sample()" >/dev/null   # warm-up
  times=$(for _ in $(seq "$RUNS"); do echo "SELECT autoscale.sample()->>'elapsed_ms';"; done | psql_node 0)
  slow=$(for _ in $(seq 10); do
    echo "SELECT extract(epoch FROM clock_timestamp() - now()) * 1000 FROM (SELECT count(*) FROM run_command_on_workers('SELECT autoscale.node_stats()::text FROM pg_sleep(0.1)')) s;"
  done | psql_node 0)
  floor=$(for _ in $(seq 20); do
    echo "SELECT extract(epoch FROM clock_timestamp() - now()) * 1000 FROM (SELECT count(*) FROM run_command_on_workers('SELECT 1')) s;"
  done | psql_node 0)
  printf "%-8s %8s %8s %8s %14s %12s\n" "$n" "$(echo "$times" | pct 50)" "$(echo "$times" | pct 95)" "$(echo "$times" | pct 100)" "$(echo "$slow" | pct 50)" "$(echo "$floor" | pct 50)"
done

# CPU: utime+stime (+ reaped children for a whole instance) in clock ticks from /proc
hz=$(getconf CLK_TCK)
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
instance_cpu() {  # postmaster incl. reaped children + live children
  local pm=$1 total
  total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
  for c in $(cat "/proc/$pm/task/$pm/children" 2>/dev/null); do
    [ -r "/proc/$c/stat" ] && total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$c/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
pm1=$(head -1 "$(node_dir 1)/postmaster.pid")
measure() {  # label: runs CPU_SECS seconds, prints coordinator worker CPU and worker-instance CPU
  local wpid c0 c1 w0 w1
  wpid=$(worker_pid 0)
  c0=$(proc_cpu "$wpid"); w0=$(instance_cpu "$pm1")
  sleep "$CPU_SECS"
  c1=$(proc_cpu "$wpid"); w1=$(instance_cpu "$pm1")
  echo "$(( c1 - c0 )) $(( w1 - w0 ))"
}
echo
echo "CPU over ${CPU_SECS} s at sample_interval = 5s, 8 workers (clock ticks of 1/$hz s)"
q 0 "ALTER SYSTEM SET autoscale.mode = off" >/dev/null; q 0 "ALTER SYSTEM RESET autoscale.worker_enabled" >/dev/null
q 0 "SELECT pg_reload_conf()" >/dev/null; sleep 2
read -r off_coord off_worker < <(measure)
q 0 "ALTER SYSTEM RESET autoscale.mode" >/dev/null; q 0 "SELECT pg_reload_conf()" >/dev/null; sleep 2
read -r on_coord on_worker < <(measure)
awk -v hz="$hz" -v s="$CPU_SECS" -v c="$on_coord" -v co="$off_coord" -v w="$on_worker" -v wo="$off_worker" 'BEGIN {
  printf "coordinator background worker: %d ticks = %.3f%% of one core (mode off: %.3f%%)\n", c, 100*c/hz/s, 100*co/hz/s
  printf "worker node, whole instance:   %d ticks = %.3f%% of one core (autoscale off: %.3f%%; difference %.3f%%)\n", w, 100*w/hz/s, 100*wo/hz/s, 100*(w-wo)/hz/s
}'

echo
echo "history volume"
q 0 "VACUUM ANALYZE autoscale.node_samples" >/dev/null
q 0 "SELECT format('node_samples: %s rows, %s bytes per row on disk (table + indexes), %s bytes average row data',
                  count(*), pg_total_relation_size('autoscale.node_samples') / greatest(count(*), 1),
                  round(avg(pg_column_size(s.*))))
       FROM autoscale.node_samples s"
q 0 "SELECT format('8 workers at 5 s: %s rows/day, about %s/day (7 days retention: %s)',
                  9 * 17280, pg_size_pretty(9 * 17280 * pg_total_relation_size('autoscale.node_samples') / greatest(count(*), 1)),
                  pg_size_pretty(7 * 9 * 17280 * pg_total_relation_size('autoscale.node_samples') / greatest(count(*), 1)))
       FROM autoscale.node_samples"
