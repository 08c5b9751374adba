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
synchronous_commit = off
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
# scenario NAME: a scenario's first line; the cluster is stopped however it ends.
scenario() { echo "# $*"; trap 'stop_all' EXIT; }
# backend pid of the autoscale background worker on node I
worker_pid() { q "$1" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'citus_autoscale'"; }
