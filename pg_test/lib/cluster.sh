#!/usr/bin/env bash
# The local cluster: nodes on loopback, each a PostgreSQL instance of $PGBIN (default Debian's 15) run by the postgres OS user
# and started and stopped with pg_ctl; SQL on a node; settings; waiting; the autoscale worker. Sourced through pg_test/lib.sh.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/autoscale-cluster}
BASE_PORT=${BASE_PORT:-9700}
SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-1s}

# as_pg CMD ARGS...: run as the postgres OS user. A PostgreSQL program named bare (psql, pgbench,
# pg_basebackup, pg_dump, ...) is the one of $PGBIN: the pair under test, not whichever major
# Debian's wrapper in /usr/bin would choose.
as_pg() {
  local cmd=$1; shift
  [[ "$cmd" != */* ]] && [ -x "$PGBIN/$cmd" ] && cmd=$PGBIN/$cmd
  if [ "$(id -un)" = postgres ]; then "$cmd" "$@"; else runuser -u postgres -- "$cmd" "$@"; fi
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
# clones made with pg_basebackup (no slot) must find the WAL they start from, whatever checkpoints ran since
wal_keep_size = 256MB
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

# stop_all: stop the pgbench loops this shell started (a scenario that fails while one runs would
# leave it running against the next scenario's cluster on the same ports), then every node of the
# cluster directory.
stop_all() {
  local d n
  for n in ${PGB_LOOP[@]+"${!PGB_LOOP[@]}"}; do pgbench_loop_stop "$n"; done
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

# q_as ROLE I SQL...: like q, connected as ROLE.
q_as() {
  local r=$1 i=$2; shift 2
  as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port "$i")" -U "$r" -d postgres -c "$*"
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
# kill_worker_at OP STEP NEXT_HOLDS: operation OP is held (failpoint autoscale.test_hold_at_steps) before
# STEP: wait until it is there (90 s at most), SIGKILL node 0's worker, check that after the restart OP is
# still running at STEP, then hold at NEXT_HOLDS instead.
kill_worker_at() {
  local op=$1 step=$2 next=$3 st
  wait_for 0 "SELECT step = '$step' OR status <> 'running' FROM autoscale.operations WHERE id = $op" 90 ||
    { dump_state 0; fail "operation $op never reached $step"; }
  st=$(q 0 "SELECT status || ':' || step FROM autoscale.operations WHERE id = $op")
  [ "$st" = "running:$step" ] || { dump_state 0; fail "operation $op is $st, expected to be held at $step"; }
  kill_worker 0 >/dev/null
  assert_eq "$(q 0 "SELECT status || ':' || step FROM autoscale.operations WHERE id = $op")" "running:$step" \
    "killed the worker at $step; after the restart operation $op is still at $step"
  set_gucs 0 autoscale.test_hold_at_steps "$next"
}
# require_failpoints: the scenario stops operations at exact steps with autoscale.test_hold_at_steps,
# which only a build with the cargo feature failpoints has (scripts/test.sh installs one).
require_failpoints() {
  [ "$(q 0 "SELECT count(*) FROM pg_settings WHERE name = 'autoscale.test_hold_at_steps'")" = 1 ] ||
    fail "this scenario needs citus_autoscale built with --features failpoints (scripts/test.sh installs one)"
}
# backend pid of the autoscale background worker on node I
worker_pid() { q "$1" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'citus_autoscale'"; }


# --- warm clones (scenarios 17) ---
# clone_cluster ROWS: coordinator, 2 workers, 1 standby; kv (8 shards, ROWS rows) and the reference
# table kv_kind. Ends the scenario as skipped when this Citus has no snapshot split (13.2+).
clone_cluster() {
  make_cluster 2 1
  require_failpoints
  if [ "$(q 0 "SELECT count(*) FROM pg_proc WHERE proname = 'citus_promote_clone_and_rebalance'")" != 1 ]; then
    echo "this Citus has no citus_promote_clone_and_rebalance (Citus 13.2+): scenario skipped"; exit 0
  fi
  make_kv 8 "$1"
  q 0 "CREATE TABLE kv_kind (k int PRIMARY KEY, name text);
       SELECT create_reference_table('kv_kind');
       INSERT INTO kv_kind VALUES (1, 'one'), (2, 'two')" >/dev/null
}
# make_clone I FROM: node I becomes a streaming replica of node FROM (pg_basebackup -R), started.
make_clone() {
  local i=$1 from=$2 dir
  dir=$(node_dir "$i")
  rm -rf "$dir"
  as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$(node_port "$from")" -U postgres -D "$dir" -R -X stream -c fast
  echo "port = $(node_port "$i")" >>"$dir/postgresql.conf"
  start_node "$i"
  wait_for "$i" "SELECT status = 'streaming' FROM pg_stat_wal_receiver" 30 || fail "clone $i does not stream"
}
# offer_clone PORT PRIMARY_PORT: autoscale.add_standby_clone() on the coordinator; it must stream.
offer_clone() {
  # a clone's WAL receiver can restart a moment after it first streamed (seen on PostgreSQL 18 while a second
  # clone of the same primary was being made); add_standby_clone() rightly refuses it then: offer it streaming
  local deadline=$(( $(date +%s) + 30 ))
  until [ "$(as_pg psql -X -q -At -h 127.0.0.1 -p "$1" -U postgres -d postgres \
               -c "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'" 2>/dev/null)" = 1 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "clone $1 does not stream"
    sleep 0.2
  done
  assert_true "$(q 0 "SELECT (autoscale.add_standby_clone('127.0.0.1', $1, '127.0.0.1', $2) ->> 'streaming')::bool")" \
    "clone $1 of $2 offered"
}
# split_fell_back OP WHY: waits for split_out OP to end: it succeeded by the ordinary scale-out, and its
# split_fallback event and the operation's fallback field say WHY.
split_fell_back() {
  local op=$1 why=$2
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 120 || { dump_state 0; false; } ||
    fail "split_out $op did not finish"
  q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op ORDER BY id"
  assert_eq "$(q 0 "SELECT kind || ' ' || status FROM autoscale.operations WHERE id = $op")" "split_out succeeded" \
    "the split_out succeeded by its fallback"
  assert_contains "$(q 0 "SELECT string_agg(message, ' | ') FROM autoscale.events
                           WHERE kind = 'split_fallback' AND (detail ->> 'operation_id')::int = $op")" \
    "$why" "the split_fallback event says why ($why)"
  assert_contains "$(q 0 "SELECT op ->> 'fallback' FROM autoscale.operations WHERE id = $op")" "$why" "the operation records why"
}
