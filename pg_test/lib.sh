#!/usr/bin/env bash
# Helpers for a local Citus cluster on loopback: one coordinator (node 0), workers (1..N) and
# standby nodes, each a PostgreSQL 15 instance run by the postgres OS user. Sourced by the demo
# and by the real-cluster scenarios. Every process started here is stopped with pg_ctl.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/autoscale-cluster}
BASE_PORT=${BASE_PORT:-9700}
SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-1s}

as_pg() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

citus_installed() {
  [ -f "$("$PGBIN/pg_config" --pkglibdir)/citus.so" ] &&
    [ -f "$("$PGBIN/pg_config" --sharedir)/extension/citus.control" ]
}

citus_missing_line() {
  echo "Citus is not installed in this PostgreSQL ($("$PGBIN/pg_config" --pkglibdir)/citus.so missing); real-cluster part skipped. Official packages: https://docs.citusdata.com/en/stable/installation/"
}

node_port() { echo $((BASE_PORT + $1)); }
node_dir() { echo "$CLUSTER_DIR/n$1"; }

# psql_node I SQL...: run SQL on node I, unaligned, tuples only, stop on error.
psql_node() {
  local i=$1; shift
  as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port "$i")" -U postgres -d postgres "$@"
}
q() { local i=$1; shift; psql_node "$i" -c "$*"; }

# init_node I [preload]: initdb and configure node I (not started).
init_node() {
  local i=$1 preload=${2:-citus,citus_autoscale} dir
  dir=$(node_dir "$i")
  mkdir -p "$CLUSTER_DIR"; chown postgres: "$CLUSTER_DIR"
  rm -rf "$dir"
  as_pg "$PGBIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$dir/postgresql.conf" <<CONF
port = $(node_port "$i")
listen_addresses = '127.0.0.1'
unix_socket_directories = '$CLUSTER_DIR'
shared_preload_libraries = '$preload'
wal_level = logical
max_connections = 200
max_worker_processes = 32
max_wal_senders = 20
max_replication_slots = 20
shared_buffers = 64MB
fsync = off
full_page_writes = off
log_min_messages = warning
autoscale.database_name = 'postgres'
autoscale.sample_interval = '$SAMPLE_INTERVAL'
citus.log_remote_commands = off
CONF
}

start_node() {
  local i=$1
  as_pg "$PGBIN/pg_ctl" -D "$(node_dir "$i")" -l "$(node_dir "$i").log" -w -t 60 start >/dev/null
}

stop_node() {
  local i=$1 dir
  dir=$(node_dir "$i")
  [ -f "$dir/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1
  return 0
}

# stop_all: stop every node of the cluster directory.
stop_all() {
  local d
  for d in "$CLUSTER_DIR"/n*; do
    [ -f "$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null 2>&1
  done
  return 0
}

# make_cluster WORKERS STANDBYS: coordinator 0, workers 1..W added to Citus, standbys W+1..W+S
# started with the extension's files but not added. CREATE EXTENSION citus, citus_autoscale.
make_cluster() {
  local workers=$1 standbys=${2:-0} i
  stop_all
  for i in $(seq 0 $((workers + standbys))); do init_node "$i"; start_node "$i"; done
  for i in $(seq 0 $((workers + standbys))); do q "$i" "CREATE EXTENSION citus" >/dev/null; done
  q 0 "SELECT citus_set_coordinator_host('127.0.0.1', $(node_port 0))" >/dev/null
  for i in $(seq 1 "$workers"); do
    q 0 "SELECT citus_add_node('127.0.0.1', $(node_port "$i"))" >/dev/null
  done
  q 0 "CREATE EXTENSION citus_autoscale" >/dev/null
  # custom metric SQL runs as this role without superuser; scenarios GRANT it what their SQL reads
  # (a release without the setting, such as 0.1.0 in the upgrade scenario, gets the role only)
  q 0 "CREATE ROLE autoscale_metrics" >/dev/null
  if [ "$(q 0 "SELECT count(*) FROM pg_settings WHERE name = 'autoscale.custom_sql_role'")" = 1 ]; then
    q 0 "ALTER SYSTEM SET autoscale.custom_sql_role = 'autoscale_metrics'" >/dev/null
    q 0 "SELECT pg_reload_conf()" >/dev/null
  fi
}

# wait_for I SQL TIMEOUT_S: poll SQL on node I until it returns 't'.
wait_for() {
  local i=$1 sql=$2 timeout=${3:-30} deadline
  deadline=$(( $(date +%s) + timeout ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(q "$i" "$sql" 2>/dev/null)" = t ] && return 0
    sleep 0.2
  done
  return 1
}

# --- scenario helpers ---
fail() { echo "FAILED: $*" >&2; exit 1; }
assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; echo "ok: $3"; }
assert_true() { [ "$1" = t ] || fail "$2 (got '$1')"; echo "ok: $2"; }
# assert_contains TEXT NEEDLE MSG: TEXT contains NEEDLE. No pipe into grep -q: under pipefail
# the writer can be killed by SIGPIPE once grep has seen a match, and the match counts as a failure.
assert_contains() { [[ "$1" == *"$2"* ]] || fail "$3: '$2' not in: $(printf '%s' "$1" | head -c 300)"; echo "ok: $3"; }
# scenario NAME: a scenario's first line; the cluster is stopped however it ends.
scenario() { echo "# $*"; trap 'stop_all' EXIT; }
# require_failpoints: the scenario stops operations at exact steps with autoscale.test_hold_at_steps,
# which only a build with the cargo feature failpoints has (scripts/test.sh installs one).
require_failpoints() {
  [ "$(q 0 "SELECT count(*) FROM pg_settings WHERE name = 'autoscale.test_hold_at_steps'")" = 1 ] ||
    fail "this scenario needs citus_autoscale built with --features failpoints (scripts/test.sh installs one)"
}
# backend pid of the autoscale background worker on node I
worker_pid() { q "$1" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'citus_autoscale'"; }

# --- helpers for the operation scenarios (02-09) and the benchmarks ---
# q_as ROLE I SQL...: like q, connected as ROLE.
q_as() {
  local r=$1 i=$2; shift 2
  as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port "$i")" -U "$r" -d postgres -c "$*"
}
# sql_error I SQL [ROLE]: 'ok' when SQL succeeds, else psql's verbose error text (ERROR:  CODE: ...).
sql_error() {
  local i=$1 sql=$2 role=${3:-postgres} out
  if out=$(as_pg psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -h 127.0.0.1 -p "$(node_port "$i")" \
      -U "$role" -d postgres -c "$sql" 2>&1); then echo ok; else echo "$out"; fi
}
# sqlstate I SQL [ROLE]: the SQLSTATE SQL fails with, or 'ok'.
sqlstate() {
  local out
  out=$(sql_error "$@")
  if [ "$out" = ok ]; then echo ok; else echo "$out" | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -1; fi
}
# assert_sqlstate CODE I SQL [ROLE]: SQL must fail with CODE.
assert_sqlstate() {
  local code=$1 i=$2 sql=$3 role=${4:-postgres} out
  out=$(sql_error "$i" "$sql" "$role")
  [ "$(echo "$out" | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -1)" = "$code" ] ||
    fail "$sql (as $role): expected SQLSTATE $code, got: $out"
  echo "ok: $code from $sql${4:+ as $role}: $(echo "$out" | head -1 | cut -c1-150)"
}
# set_gucs I NAME VALUE [NAME VALUE...]: ALTER SYSTEM SET each, then reload.
set_gucs() {
  local i=$1; shift
  while [ $# -ge 2 ]; do
    q "$i" "ALTER SYSTEM SET $1 = '$2'" >/dev/null; shift 2
  done
  q "$i" "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
}
# wait_up I TIMEOUT: wait until node I accepts connections (after a crash restart).
wait_up() {
  local i=$1 timeout=${2:-60} deadline
  deadline=$(( $(date +%s) + timeout ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(q "$i" "SELECT 1" 2>/dev/null)" = 1 ] && return 0
    sleep 0.2
  done
  return 1
}
# kill_worker I: SIGKILL the autoscale background worker of node I (the postmaster then
# reinitializes: every backend ends), wait until a new worker runs. Prints the killed pid.
kill_worker() {
  local i=$1 pid
  pid=$(worker_pid "$i")
  [ -n "$pid" ] || fail "no autoscale worker on node $i"
  kill -KILL "$pid"
  sleep 1
  wait_up "$i" 60 || fail "node $i does not accept connections after the worker was killed"
  wait_for "$i" "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'citus_autoscale' AND pid <> $pid" 30 ||
    fail "autoscale worker not restarted after SIGKILL"
  echo "$pid"
}
# SQL: t when every hash-distributed table has, on every active worker that should have shards,
# a shard count within 1 of every other such worker.
BALANCED_SQL="SELECT coalesce(bool_and(mx - mn <= 1), true) FROM (
  SELECT p.logicalrelid, max(c) mx, min(c) mn FROM (
    SELECT p.logicalrelid, n.groupid,
           (SELECT count(*) FROM pg_dist_shard s JOIN pg_dist_placement pl USING (shardid)
             WHERE s.logicalrelid = p.logicalrelid AND pl.groupid = n.groupid) c
      FROM pg_dist_partition p CROSS JOIN pg_dist_node n
     WHERE p.partmethod = 'h' AND n.groupid <> 0 AND n.isactive AND n.noderole = 'primary' AND n.shouldhaveshards) p
  GROUP BY p.logicalrelid) x"
# shard_spread I: 'port:count ...' of shard placements per worker (for logs).
shard_spread() {
  q "$1" "SELECT string_agg(nodeport || ':' || c, ' ' ORDER BY nodeport) FROM (
            SELECT n.nodeport, count(pl.shardid) c FROM pg_dist_node n
              LEFT JOIN pg_dist_placement pl USING (groupid)
             WHERE n.groupid <> 0 GROUP BY n.nodeport) s"
}
# row_counts I: 'table=count ...' of every distributed and reference table, in name order.
row_counts() {
  local i=$1 t out=""
  for t in $(q "$i" "SELECT logicalrelid::text FROM pg_dist_partition ORDER BY 1"); do
    out+="$t=$(q "$i" "SELECT count(*) FROM $t") "
  done
  echo "$out"
}
# ORPHAN_SQL: placements pointing at a group that is no longer in pg_dist_node (a node removed while
# it still held placements). Must always be 0.
ORPHAN_SQL="SELECT count(*) FROM pg_dist_placement WHERE groupid NOT IN (SELECT groupid FROM pg_dist_node)"
# pgbench_failed LOGFILE: the 'number of failed transactions' pgbench printed (0 when absent).
pgbench_failed() { sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$1" | head -1; }
# dump_state I: operations and the latest events of node I, to stderr (for failure logs).
dump_state() {
  {
    echo "--- operations:"; q "$1" "SELECT id, kind, status, step, job_id, nodename || ':' || nodeport, error FROM autoscale.operations ORDER BY id" 2>&1
    echo "--- last events:"; q "$1" "SELECT id, at::time, kind, left(message, 200) FROM autoscale.events ORDER BY id DESC LIMIT 25" 2>&1
    echo "--- citus jobs:"; q "$1" "SELECT job_id, state, job_type, started_at::time, finished_at::time FROM pg_dist_background_job ORDER BY job_id" 2>&1
  } >&2 || true
}
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
  eval "PGB_LOOP_$name=$!"
}
pgbench_loop_stop() {
  local name=$1 pid
  touch "$CLUSTER_DIR/pgb/stop.$name"
  eval "pid=\${PGB_LOOP_$name:-}"
  [ -n "$pid" ] && wait "$pid" 2>/dev/null
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
