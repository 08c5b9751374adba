#!/usr/bin/env bash
# Workloads: pgbench loops with per-transaction logs and their statistics, the kv tables, the hot-tenant layout. Sourced through pg_test/lib.sh.

# pid of each running pgbench loop, by name
declare -gA PGB_LOOP=()

# pgbench_failed LOGFILE: the 'number of failed transactions' pgbench printed (0 when absent).
pgbench_failed() { sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$1" | head -1; }
# pgbench_loop_start NAME PGBENCH_ARGS...: runs pgbench against the coordinator in back-to-back
# 5 s segments, each with a per-transaction log ($CLUSTER_DIR/pgb/NAME.SEG.*), until
# pgbench_loop_stop NAME. (Segments, because a pgbench killed early loses its buffered log.)
pgbench_loop_start() {
  local name=$1; shift
  mkdir -p "$CLUSTER_DIR/pgb"; chown postgres: "$CLUSTER_DIR/pgb"
  rm -f "$CLUSTER_DIR/pgb/$name".* "$CLUSTER_DIR/pgb/stop.$name"
  (
    seg=0
    while [ ! -e "$CLUSTER_DIR/pgb/stop.$name" ]; do
      seg=$((seg + 1))
      as_pg pgbench -h 127.0.0.1 -p "$(node_port 0)" -U postgres -n -T 5 -l \
        --log-prefix="$CLUSTER_DIR/pgb/$name.$(printf %03d $seg)" "$@" postgres \
        >"$CLUSTER_DIR/pgb/$name.$(printf %03d $seg).out" 2>&1 ||
        echo "pgbench exited with status $?" >>"$CLUSTER_DIR/pgb/$name.$(printf %03d $seg).out"
    done
  ) &
  PGB_LOOP[$name]=$!
}
pgbench_loop_stop() {
  local name=$1 pid
  touch "$CLUSTER_DIR/pgb/stop.$name"
  pid=${PGB_LOOP[$name]:-}
  [ -n "$pid" ] && wait "$pid" 2>/dev/null
  unset "PGB_LOOP[$name]"
  return 0
}
# pgbench_stats NAME FROM TO: over transactions of loop NAME that ended in [FROM, TO) (epoch s):
# prints "tps N failed F p50_ms p95_ms max_ms" (failed: transactions logged as failed, plus
# pgbench runs that exited non-zero).
pgbench_stats() {
  local name=$1 from=$2 to=$3 aborted failed lats n
  aborted=$(cat "$CLUSTER_DIR/pgb/$name".*.out 2>/dev/null | grep -c 'pgbench exited with status' || true)
  lats=$(cat "$CLUSTER_DIR/pgb/$name".[0-9][0-9][0-9].[0-9]* 2>/dev/null | awk -v from="$from" -v to="$to" '
    { t = $5 + $6 / 1e6; if (t < from || t >= to) next
      if ($3 == "failed") { print "F"; next } if ($3 == "skipped") next
      printf "%.3f\n", $3 / 1000 }')
  failed=$(( $(printf '%s\n' "$lats" | grep -c '^F$' || true) + aborted ))
  lats=$(printf '%s\n' "$lats" | grep -v '^F$' | grep . | sort -n || true)
  n=$(printf '%s\n' "$lats" | grep -c . || true)
  if [ "$n" -eq 0 ]; then
    printf "tps %8.1f  n %7d  failed %d  p50 %7s  p95 %7s  max %7s\n" 0 0 "$failed" - - -
    return 0
  fi
  printf '%s\n' "$lats" | awk -v n="$n" -v from="$from" -v to="$to" -v failed="$failed" '
    { a[NR] = $1 }
    END { dur = to - from; if (dur <= 0) dur = 1
      printf "tps %8.1f  n %7d  failed %d  p50 %7.1f  p95 %7.1f  max %7.1f ms\n", n / dur, n, failed,
        a[int((n - 1) * 0.50) + 1], a[int((n - 1) * 0.95) + 1], a[n] }'
}

# --- a load at given rates, for the predictive scenarios (21, 29) ---
# rate_segments_start SCRIPT RATES: runs pgbench (8 clients) on the coordinator in 30-s segments, each
# at the rate (transactions/s) of the next line of the file RATES, until its end or
# rate_segments_stop; its output goes to $CLUSTER_DIR/rate.out.
rate_segments_start() {
  local script=$1 rates=$2
  rm -f "$CLUSTER_DIR/rate.stop" "$CLUSTER_DIR/rate.out"
  (
    while read -r rate; do
      [ -e "$CLUSTER_DIR/rate.stop" ] && break
      as_pg pgbench -h 127.0.0.1 -p "$(node_port 0)" -U postgres -n -c 8 -j 2 -R "$rate" -T 30 -f "$script" postgres \
        >>"$CLUSTER_DIR/rate.out" 2>&1 </dev/null || echo "pgbench exited with status $?" >>"$CLUSTER_DIR/rate.out"
    done <"$rates"
  ) &
  RATE_PID=$!
}
rate_segments_stop() {
  touch "$CLUSTER_DIR/rate.stop"
  [ -n "${RATE_PID:-}" ] && wait "$RATE_PID" 2>/dev/null
  RATE_PID=
  return 0
}
# rate_segments_check: every segment ran to its end, no transaction failed.
rate_segments_check() {
  assert_eq "$(grep -c 'pgbench exited with status' "$CLUSTER_DIR/rate.out" || true)" 0 "every pgbench segment ran to its end"
  assert_eq "$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$CLUSTER_DIR/rate.out" | awk '{s += $1} END {print s + 0}')" 0 \
    "zero failed pgbench transactions"
}
# measure_worker_tps SINCE: waits (90 s at most) for 6 samples taken from 10 s after SINCE (a
# timestamp; the first sample after a load starts covers a partly idle interval); sets LEVEL, the
# workers' average tps over them, and FIRST, the first one's sample_id.
measure_worker_tps() {
  local measured="FROM autoscale.worker_count w JOIN autoscale.node_samples s USING (sample_id)
           WHERE w.sampled_at > '$1'::timestamptz + interval '10 s' AND NOT s.is_coordinator AND s.reachable"
  wait_for 0 "SELECT count(DISTINCT w.sample_id) >= 6 $measured" 90 || fail "no 6 samples under load within 90 s"
  LEVEL=$(q 0 "SELECT round(avg(s.tps)::numeric, 1) $measured")
  FIRST=$(q 0 "SELECT min(w.sample_id) $measured")
}

# --- the kv workload shared by scenario 07 and the benchmarks ---
# make_kv SHARDS ROWS: distributed kv (and kv_log colocated with it) with ROWS rows on node 0.
make_kv() {
  q 0 "CREATE TABLE kv (id bigint PRIMARY KEY, v bigint NOT NULL DEFAULT 0);
       SELECT create_distributed_table('kv', 'id', shard_count := $1);
       CREATE TABLE kv_log (id bigint, seq bigserial, at timestamptz DEFAULT now(), PRIMARY KEY (id, seq));
       SELECT create_distributed_table('kv_log', 'id', colocate_with := 'kv');
       INSERT INTO kv SELECT g FROM generate_series(1, $2) g" >/dev/null
}
# kv_rw_script ROWS: writes the read-write pgbench script for kv to $CLUSTER_DIR/rw.sql; prints its path.
kv_rw_script() {
  local script="$CLUSTER_DIR/rw.sql"
  cat >"$script" <<SQL
\set id random(1, $1)
BEGIN;
UPDATE kv SET v = v + 1 WHERE id = :id;
SELECT v FROM kv WHERE id = :id;
INSERT INTO kv_log (id) VALUES (:id);
END;
SQL
  chown postgres "$script"
  echo "$script"
}

# --- the hot-tenant layout shared by the load-skew scenarios ---
# make_hot_tenants: table t (200 tenants x 200 rows, 16 shards) and t_log colocated with it; the 6
# lowest tenants of 6 different shard groups are hot; their groups are all moved to worker 1 while
# the shard counts stay 8/8. Sets HOT (tenants), HOT_SHARDS (comma-separated shard ids of t) and
# HOT_SCRIPTS (pgbench -f arguments, one equally weighted script per hot tenant).
make_hot_tenants() {
  local w1 w2 s cold h f
  q 0 "CREATE TABLE t (tenant int, id bigint, v bigint NOT NULL DEFAULT 0, PRIMARY KEY (tenant, id));
       SELECT create_distributed_table('t', 'tenant', shard_count := 16);
       CREATE TABLE t_log (tenant int, seq bigserial, PRIMARY KEY (tenant, seq));
       SELECT create_distributed_table('t_log', 'tenant', colocate_with := 't');
       INSERT INTO t SELECT tn, g FROM generate_series(1, 200) tn, generate_series(1, 200) g" >/dev/null
  w1=$(q 0 "SELECT nodeid FROM pg_dist_node WHERE nodeport = $(node_port 1)")
  w2=$(q 0 "SELECT nodeid FROM pg_dist_node WHERE nodeport = $(node_port 2)")
  HOT=$(q 0 "SELECT string_agg(tn::text, ' ' ORDER BY tn) FROM (
               SELECT min(tn) AS tn FROM generate_series(1, 200) tn
                GROUP BY get_shard_id_for_distribution_column('t', tn) ORDER BY 1 LIMIT 6) x")
  HOT_SHARDS=$(for h in $HOT; do q 0 "SELECT get_shard_id_for_distribution_column('t', $h)"; done | paste -sd,)
  for s in ${HOT_SHARDS//,/ }; do
    if [ "$(q 0 "SELECT nodeport FROM citus_shards WHERE shardid = $s")" = "$(node_port 2)" ]; then
      q 0 "SELECT citus_move_shard_placement($s, $w2, $w1, 'block_writes')" >/dev/null
      cold=$(q 0 "SELECT shardid FROM citus_shards WHERE table_name = 't'::regclass AND nodeport = $(node_port 1)
                    AND shardid NOT IN ($HOT_SHARDS) ORDER BY shardid LIMIT 1")
      q 0 "SELECT citus_move_shard_placement($cold, $w1, $w2, 'block_writes')" >/dev/null
    fi
  done
  q 0 "CALL citus_cleanup_orphaned_resources()" >/dev/null 2>&1
  HOT_SCRIPTS=()
  for h in $HOT; do
    f="$CLUSTER_DIR/hot_$h.sql"
    tenant_script "$f" "$h"
    HOT_SCRIPTS+=(-f "$f@1")
  done
}
# tenant_script FILE TENANT [PRELUDE]: writes the pgbench script FILE that updates, reads and logs
# (in t_log) a random row of tenant TENANT of table t: a number, or a pgbench variable such as :tn
# that the PRELUDE line sets.
tenant_script() {
  local f=$1 tenant=$2 prelude=${3:-}
  {
    if [ -n "$prelude" ]; then echo "$prelude"; fi
    cat <<SQL
\set id random(1, 200)
BEGIN;
UPDATE t SET v = v + 1 WHERE tenant = $tenant AND id = :id;
SELECT v FROM t WHERE tenant = $tenant AND id = :id;
INSERT INTO t_log (tenant) VALUES ($tenant);
END;
SQL
  } >"$f"
  chown postgres "$f"
}
# worker_commits SECS: 'port:commits/s ...' of every worker, averaged over the last SECS seconds of samples.
worker_commits() {
  q 0 "SELECT string_agg(nodeport || ':' || round(c::numeric, 1), ' ' ORDER BY nodeport) FROM (
         SELECT nodeport, avg(commits_per_sec) c FROM autoscale.node_samples
          WHERE NOT is_coordinator AND reachable AND sampled_at > now() - make_interval(secs => $1) GROUP BY nodeport) x"
}
# worker_commits_ratio SECS: max/mean of the workers' commits/s over the last SECS seconds of samples.
worker_commits_ratio() {
  q 0 "SELECT round((max(c) / avg(c))::numeric, 2) FROM (
         SELECT nodeport, avg(commits_per_sec) c FROM autoscale.node_samples
          WHERE NOT is_coordinator AND reachable AND sampled_at > now() - make_interval(secs => $1) GROUP BY nodeport) x"
}
