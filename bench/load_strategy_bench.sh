#!/usr/bin/env bash
# Rebalance strategies against a measured, skewed load (prints figures; asserts nothing).
# Two layouts on 2 workers, each loaded by pgbench at a fixed rate while autoscale measures the load
# of every shard group (observe mode: nothing moves):
#   hot6: 16 shard groups, 8 per worker, the 6 equally hot tenants (6 shard groups) all on worker 1;
#   zipf: 32 shard groups, 1,000 tenants, tenant popularity Zipf(s = 1.1) (pgbench random_zipfian),
#         first as Citus placed them, then with the 16 busiest groups packed on worker 1 (16/16).
# Then for each strategy (none, by_shard_count, by_disk_size, autoscale_by_load), Citus's own plan
# (get_rebalance_table_shards_plan) is computed and applied to the measured per-group load: the
# per-worker load max/mean it leads to, shard groups moved, bytes moved and planning time. Last, the
# autoscale_by_load plan is really run (citus_rebalance_start) and the load measured again.
# Needs Citus installed; runs a local cluster on loopback (BASE_PORT, default 9900) and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. pg_test/lib.sh
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/autoscale-bench} BASE_PORT=${BASE_PORT:-9900} SAMPLE_INTERVAL=1s
LOAD_S=${LOAD_S:-25}
RATE=${RATE:-300}
citus_installed || { citus_missing_line; exit 0; }
trap 'pgbench_loop_stop lb 2>/dev/null; stop_all' EXIT

echo "building a cluster: coordinator + 2 workers (ports $BASE_PORT+)"
make_cluster 2 0
set_gucs 0 autoscale.mode observe autoscale.load_window 5s autoscale.rebalance_interval -1
w1=$(q 0 "SELECT nodeid FROM pg_dist_node WHERE nodeport = $(node_port 1)")
w2=$(q 0 "SELECT nodeid FROM pg_dist_node WHERE nodeport = $(node_port 2)")

# per-worker load (ops/s) after a plan, from the measured load of each shard group
PREDICT_SQL="WITH plan AS (
    SELECT DISTINCT pt.colocationid, s.shardminvalue, m.targetname, m.targetport
      FROM bench_plan m JOIN pg_dist_shard s USING (shardid) JOIN pg_dist_partition pt ON pt.logicalrelid = s.logicalrelid),
  placed AS (
    SELECT coalesce(p.targetport, l.nodeport) AS port, l.load_per_sec
      FROM autoscale.shard_group_load l LEFT JOIN plan p USING (colocationid, shardminvalue)),
  per AS (
    SELECT n.nodeport, coalesce(sum(placed.load_per_sec), 0) AS l
      FROM pg_dist_node n LEFT JOIN placed ON placed.port = n.nodeport
     WHERE n.groupid <> 0 GROUP BY n.nodeport)
  SELECT round((max(l) / nullif(avg(l), 0))::numeric, 2) || '|' || string_agg(nodeport || ':' || round(l::numeric), ' ' ORDER BY nodeport)
    FROM per"

compare() {  # LAYOUT
  printf "%-7s %-18s %8s %-22s %7s %12s %9s\n" layout strategy max/mean "per-worker ops/s" groups "bytes" "plan_ms"
  for s in none by_shard_count by_disk_size autoscale_by_load; do
    if [ "$s" = none ]; then
      q 0 "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_plan; CREATE TABLE bench_plan AS SELECT * FROM get_rebalance_table_shards_plan() LIMIT 0" >/dev/null
      ms=0
    else
      ms=$(q 0 "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_plan;
                SELECT set_config('bench.t0', clock_timestamp()::text, false);
                CREATE TABLE bench_plan AS SELECT * FROM get_rebalance_table_shards_plan(rebalance_strategy := '$s');
                SELECT round(extract(epoch FROM clock_timestamp() - current_setting('bench.t0')::timestamptz)::numeric * 1000, 1)" | tail -1)
    fi
    r=$(q 0 "$PREDICT_SQL")
    moved=$(q 0 "SELECT count(DISTINCT (pt.colocationid, s.shardminvalue)) FROM bench_plan m JOIN pg_dist_shard s USING (shardid)
                  JOIN pg_dist_partition pt ON pt.logicalrelid = s.logicalrelid")
    # the plan's shard_size is the strategy's cost, not bytes: the shards' sizes from citus_shards
    bytes=$(q 0 "SELECT coalesce(sum(shard_size), 0) FROM citus_shards WHERE shardid IN (SELECT shardid FROM bench_plan)")
    printf "%-7s %-18s %8s %-22s %7s %12s %9s\n" "$1" "$s" "${r%%|*}" "${r#*|}" "$moved" "$bytes" "$ms"
  done
}

run_load() {  # NAME PGBENCH_ARGS...: fixed-rate load for LOAD_S seconds (autoscale samples every 1 s)
  local name=$1; shift
  pgbench_loop_start lb -c 6 -j 2 -R "$RATE" "$@"
  sleep "$LOAD_S"
}

measured() {  # per-worker commits/s over the last 8 s (node_samples)
  q 0 "SELECT round((max(c) / nullif(avg(c), 0))::numeric, 2) || ' (' || string_agg(nodeport || ':' || round(c::numeric), ' ' ORDER BY nodeport) || ')'
         FROM (SELECT nodeport, avg(commits_per_sec) c FROM autoscale.node_samples
                WHERE NOT is_coordinator AND sampled_at > now() - interval '8 s' GROUP BY nodeport) x"
}

run_by_load() {  # runs the autoscale_by_load plan for real while the load goes on
  local t0 job
  t0=$(date +%s.%N)
  job=$(q 0 "SELECT citus_rebalance_start(rebalance_strategy := 'autoscale_by_load', shard_transfer_mode := 'block_writes')")
  [ -n "$job" ] && q 0 "SELECT citus_rebalance_wait()" >/dev/null 2>&1
  echo "autoscale_by_load run for real: job ${job:-none}, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
  sleep 10
  echo "measured per-worker commits/s max/mean after it: $(measured)"
}

# --- hot6 ---
q 0 "CREATE TABLE t (tenant int, id bigint, v bigint NOT NULL DEFAULT 0, PRIMARY KEY (tenant, id));
     SELECT create_distributed_table('t', 'tenant', shard_count := 16);
     INSERT INTO t SELECT tn, g FROM generate_series(1, 200) tn, generate_series(1, 200) g" >/dev/null
hot=$(q 0 "SELECT string_agg(tn::text, ' ' ORDER BY tn) FROM (
             SELECT min(tn) AS tn FROM generate_series(1, 200) tn
              GROUP BY get_shard_id_for_distribution_column('t', tn) ORDER BY 1 LIMIT 6) x")
hot_shards=$(for h in $hot; do q 0 "SELECT get_shard_id_for_distribution_column('t', $h)"; done | tr '\n' ',' | sed 's/,$//')
for s in ${hot_shards//,/ }; do
  if [ "$(q 0 "SELECT nodeport FROM citus_shards WHERE shardid = $s")" = "$(node_port 2)" ]; then
    q 0 "SELECT citus_move_shard_placement($s, $w2, $w1, 'block_writes')" >/dev/null
    cold=$(q 0 "SELECT shardid FROM citus_shards WHERE table_name = 't'::regclass AND nodeport = $(node_port 1)
                  AND shardid NOT IN ($hot_shards) ORDER BY shardid LIMIT 1")
    q 0 "SELECT citus_move_shard_placement($cold, $w1, $w2, 'block_writes')" >/dev/null
  fi
done
q 0 "CALL citus_cleanup_orphaned_resources()" >/dev/null 2>&1
scripts=()
for h in $hot; do
  f="$CLUSTER_DIR/hot_$h.sql"
  printf '\\set id random(1, 200)\nUPDATE t SET v = v + 1 WHERE tenant = %s AND id = :id;\nSELECT v FROM t WHERE tenant = %s AND id = :id;\n' "$h" "$h" >"$f"
  chown postgres "$f"; scripts+=(-f "$f@1")
done
echo
echo "hot6: 6 equally hot tenants on worker 1 of 2 (16 shard groups, 8 per worker), pgbench -R $RATE"
run_load hot6 "${scripts[@]}"
echo "measured per-worker commits/s max/mean before: $(measured)"
compare hot6
run_by_load
pgbench_loop_stop lb
q 0 "DROP TABLE t" >/dev/null
q 0 "TRUNCATE autoscale.shard_group_load" >/dev/null

# --- zipf ---
q 0 "CREATE TABLE z (tenant int, id bigint, v bigint NOT NULL DEFAULT 0, PRIMARY KEY (tenant, id));
     SELECT create_distributed_table('z', 'tenant', shard_count := 32);
     INSERT INTO z SELECT tn, g FROM generate_series(1, 1000) tn, generate_series(1, 20) g" >/dev/null
f="$CLUSTER_DIR/zipf.sql"
printf '\\set tn random_zipfian(1, 1000, 1.1)\n\\set id random(1, 20)\nUPDATE z SET v = v + 1 WHERE tenant = :tn AND id = :id;\nSELECT v FROM z WHERE tenant = :tn AND id = :id;\n' >"$f"
chown postgres "$f"
echo
echo "zipf: 1,000 tenants, Zipf(1.1) popularity, 32 shard groups on 2 workers as Citus placed them, pgbench -R $RATE"
run_load zipf -f "$f"
echo "measured per-worker commits/s max/mean before: $(measured)"
echo "hottest shard group: $(q 0 "SELECT round(100 * cluster_share::numeric) || '% of the load' FROM autoscale.hot_tenants LIMIT 1")"
compare zipf
pgbench_loop_stop lb

# the same, with the 16 busiest shard groups (by Zipf weight) packed on worker 1, counts still 16/16
zhot=$(q 0 "WITH w AS (SELECT get_shard_id_for_distribution_column('z', tn) AS shardid, sum(power(tn, -1.1)) AS w
                         FROM generate_series(1, 1000) tn GROUP BY 1)
            SELECT string_agg(shardid::text, ',') FROM (SELECT shardid FROM w ORDER BY w DESC LIMIT 16) x")
for s in ${zhot//,/ }; do
  if [ "$(q 0 "SELECT nodeport FROM citus_shards WHERE shardid = $s")" = "$(node_port 2)" ]; then
    q 0 "SELECT citus_move_shard_placement($s, $w2, $w1, 'block_writes')" >/dev/null
    cold=$(q 0 "SELECT shardid FROM citus_shards WHERE table_name = 'z'::regclass AND nodeport = $(node_port 1)
                  AND shardid NOT IN ($zhot) ORDER BY shardid LIMIT 1")
    q 0 "SELECT citus_move_shard_placement($cold, $w1, $w2, 'block_writes')" >/dev/null
  fi
done
q 0 "CALL citus_cleanup_orphaned_resources()" >/dev/null 2>&1
echo
echo "zipf-packed: the 16 busiest of the 32 shard groups on worker 1 (16 per worker), pgbench -R $RATE"
run_load zipfp -f "$f"
echo "measured per-worker commits/s max/mean before: $(measured)"
compare zipfp
run_by_load
pgbench_loop_stop lb
echo
echo "max/mean: busiest worker's measured load after the plan / the mean (1.00 = even); groups: shard groups the plan"
echo "moves; bytes: their size; plan_ms: get_rebalance_table_shards_plan() time. Loads are autoscale's measured"
echo "per-group loads (scans + rows written + rows read x 0.01, smoothed over 5 s), placed where each plan puts them."
