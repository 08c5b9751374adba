#!/usr/bin/env bash
# The provisioner daemon (citus-autoscale-provisioner) with its local driver, on an empty standby
# pool: scale_out() writes a provision request, the daemon claims it, makes a node (initdb in
# <root>/<request_key>, Citus and citus_autoscale preloaded), answers it, and the operation adds
# the node and rebalances onto it; scale_in() sends a deprovision request, the daemon stops the
# node and removes its data directory. Faults: the daemon killed (failpoint) after it made the node
# and before it answered, restarted: the same node answers, no second data directory; a command
# driver that fails and one that hangs: the error is written to the request.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "provisioner daemon: local driver, crash after create, command driver errors"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PROVISIONER_BIN:-$REPO/target/debug/citus-autoscale-provisioner}
[ -x "$BIN" ] || fail "no daemon binary at $BIN (cargo build -p citus-autoscale-provisioner)"
make_cluster 2 0

root="$CLUSTER_DIR/prov"
rm -rf "$root" "$CLUSTER_DIR/prov.d" "$CLUSTER_DIR/readme-nodes"; mkdir -p "$root" "$CLUSTER_DIR/prov.d"
chown postgres: "$root" "$CLUSTER_DIR/prov.d"
lo=$((BASE_PORT + 50)); hi=$((BASE_PORT + 59))
daemon_pid=""
# every node the daemon made is stopped with pg_ctl, the daemon by its PID
trap 'pgbench_loop_stop rw; [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null; daemon_nodes_stop "$root" "$CLUSTER_DIR/readme-nodes"; stop_all' EXIT

write_config() { # FILE DRIVER-TOML
  cat >"$1" <<TOML
conninfo = "host=127.0.0.1 port=$(node_port 0) user=postgres dbname=postgres"
claimer = "scenario-26"
poll_interval = 1
lease = 120
max_attempts = ${MAX_ATTEMPTS:-3}
$2
TOML
  chown postgres: "$1"
}
write_config "$CLUSTER_DIR/prov.d/local.toml" "[driver]
kind = \"local\"
root = \"$root\"
bin = \"$PGBIN\"
port_range = [$lo, $hi]
settings = [\"autoscale.database_name = 'postgres'\", \"autoscale.sample_interval = '$SAMPLE_INTERVAL'\", \"fsync = off\", \"shared_buffers = 64MB\", \"wal_keep_size = 256MB\"]"

# start_daemon CONFIG [FAILPOINT]: the daemon (daemon_start), with DAEMON_ENV's variables
start_daemon() {
  # shellcheck disable=SC2086 # DAEMON_ENV: VAR=VALUE words
  daemon_start "$BIN" "$1" "$CLUSTER_DIR/prov.d/daemon.log" ${DAEMON_ENV:-} CITUS_AUTOSCALE_PROVISIONER_FAIL_AT="${2:-}"
  daemon_pid=$DAEMON_PID
  echo "daemon started: pid $daemon_pid (${2:-no failpoint})"
}
stop_daemon() {
  kill -TERM "$daemon_pid"
  local rc=0; wait "$daemon_pid" || rc=$?
  daemon_pid=""
  assert_eq "$rc" 0 "the daemon exits cleanly on SIGTERM"
}
dirs() { find "$root" -mindepth 1 -maxdepth 1 -type d | wc -l; }

q 0 "CREATE TABLE t (id bigint PRIMARY KEY, v text);
     SELECT create_distributed_table('t', 'id', shard_count := 8);
     INSERT INTO t SELECT g, 'x' FROM generate_series(1, 5000) g" >/dev/null
before=$(row_counts 0)
set_gucs 0 autoscale.mode act
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.standby_nodes")" 0 "the standby pool is empty"

# === 1. scale-out under pgbench: request -> daemon -> node -> rebalance ===
start_daemon "$CLUSTER_DIR/prov.d/local.toml"
cat >"$CLUSTER_DIR/prov.d/rw.sql" <<'SQL'
\set id random(1, 5000)
UPDATE t SET v = 'y' WHERE id = :id;
SELECT v FROM t WHERE id = :id;
SQL
chown postgres "$CLUSTER_DIR/prov.d/rw.sql"
pgbench_loop_start rw -c 4 -j 2 -f "$CLUSTER_DIR/prov.d/rw.sql"
sleep 2
t0=$(date +%s)
op=$(q 0 "SELECT autoscale.scale_out(reason => 'provisioner daemon') ->> 'id'")
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 180 || { dump_state 0; cat "$CLUSTER_DIR/prov.d/daemon.log"; false; } ||
  fail "scale_out did not finish"
t1=$(date +%s)
sleep 2
pgbench_loop_stop rw
stats=$(pgbench_stats rw "$t0" "$((t1 + 1))")
echo "pgbench during the scale-out: $stats"
assert_contains "$stats" "failed 0 " "0 failed pgbench transactions from the request to the rebalanced node"
cat "$CLUSTER_DIR/prov.d/daemon.log"
q 0 "SELECT id, kind, status, claimed_by, attempts, answer, last_error FROM autoscale.provision_requests ORDER BY id"
rid=$(q 0 "SELECT id FROM autoscale.provision_requests WHERE operation_id = $op AND kind = 'provision'")
key=$(q 0 "SELECT request_key FROM autoscale.provision_requests WHERE id = $rid")
port=$(q 0 "SELECT (answer ->> 'port')::int FROM autoscale.provision_requests WHERE id = $rid")
assert_eq "$(q 0 "SELECT status || ' ' || nodename || ':' || nodeport FROM autoscale.operations WHERE id = $op")" \
  "succeeded 127.0.0.1:$port" "scale_out succeeded with the daemon's node"
assert_true "$([ "$port" -ge "$lo" ] && [ "$port" -le "$hi" ] && echo t)" "the node's port $port is in the configured range [$lo, $hi]"
assert_eq "$(q 0 "SELECT status || ' ' || claimed_by || ' ' || attempts || ' ' || (answer ->> 'host') FROM autoscale.provision_requests WHERE id = $rid")" \
  "fulfilled scenario-26 1 127.0.0.1" "request fulfilled by the daemon, first attempt"
assert_eq "$(dirs)" 1 "one data directory"
assert_true "$([ -d "$root/$key" ] && echo t)" "the data directory is <root>/<request_key>"
assert_true "$(q 0 "SELECT job_id IS NOT NULL FROM autoscale.operations WHERE id = $op")" "a rebalance job ran"
assert_true "$(q 0 "SELECT count(*) >= 1 FROM citus_shards WHERE nodeport = $port")" "shards moved onto the new node ($(shard_spread 0))"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged"
echo "FIGURE: request to node answered: $(q 0 "SELECT round(extract(epoch FROM fulfilled_at - requested_at)::numeric, 2) FROM autoscale.provision_requests WHERE id = $rid") s"
echo "FIGURE: request to node active and rebalanced: $(q 0 "SELECT round(extract(epoch FROM o.finished_at - r.requested_at)::numeric, 2)
   FROM autoscale.provision_requests r JOIN autoscale.operations o ON o.id = r.operation_id WHERE r.id = $rid") s"

# === 2. scale-in: deprovision -> the daemon stops the node and removes its data directory ===
pm_pid=$(head -1 "$root/$key/postmaster.pid")
op=$(q 0 "SELECT autoscale.scale_in('127.0.0.1', $port, 'provisioner daemon') ->> 'id'")
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 180 || { dump_state 0; false; } ||
  fail "scale_in did not finish"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "scale_in succeeded"
did=$(q 0 "SELECT id FROM autoscale.provision_requests WHERE operation_id = $op AND kind = 'deprovision'")
wait_for 0 "SELECT status = 'fulfilled' FROM autoscale.provision_requests WHERE id = $did" 60 ||
  fail "deprovision not answered: $(q 0 "SELECT status, attempts, last_error FROM autoscale.provision_requests WHERE id = $did")"
assert_true "$([ ! -e "$root/$key" ] && echo t)" "the data directory is gone"
# dead: gone, or a zombie its (container's) init has not reaped yet
pm_state=$(awk '{print $3}' "/proc/$pm_pid/stat" 2>/dev/null || true)
assert_true "$([ -z "$pm_state" ] || [ "$pm_state" = Z ] && echo t)" "the node's postmaster (pid $pm_pid) is dead (state '${pm_state:-gone}')"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.standby_nodes WHERE nodeport = $port")" 0 "the node left the standby pool"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged"
stop_daemon

# === 3. the daemon dies after it made the node, before it answered; restarted, it answers with that node ===
start_daemon "$CLUSTER_DIR/prov.d/local.toml" after_create
crashed=$daemon_pid
op=$(q 0 "SELECT autoscale.scale_out(reason => 'crash after create') ->> 'id'")
rc=0; wait "$crashed" || rc=$?
daemon_pid=""
assert_eq "$rc" 137 "the daemon was killed at the failpoint (SIGKILL)"
rid=$(q 0 "SELECT id FROM autoscale.provision_requests WHERE operation_id = $op AND kind = 'provision'")
key=$(q 0 "SELECT request_key FROM autoscale.provision_requests WHERE id = $rid")
assert_eq "$(q 0 "SELECT status || ' ' || claimed_by || ' ' || attempts || ' ' || (answer IS NULL) FROM autoscale.provision_requests WHERE id = $rid")" \
  "pending scenario-26 1 true" "the request is claimed, not answered"
assert_eq "$(dirs)" 1 "one data directory after the crash"
made_port=$(sed -E 's/.*"port": ([0-9]+).*/\1/' "$root/$key/citus_autoscale_provisioner.json")
assert_true "$(as_pg "$PGBIN/pg_ctl" -D "$root/$key" status >/dev/null && echo t)" "the node made before the crash runs (port $made_port)"
start_daemon "$CLUSTER_DIR/prov.d/local.toml"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 180 || { dump_state 0; cat "$CLUSTER_DIR/prov.d/daemon.log"; false; } ||
  fail "scale_out did not finish after the restart"
assert_eq "$(q 0 "SELECT status || ' ' || nodeport FROM autoscale.operations WHERE id = $op")" "succeeded $made_port" \
  "the restarted daemon answered with the node made before the crash"
assert_eq "$(q 0 "SELECT status || ' ' || attempts FROM autoscale.provision_requests WHERE id = $rid")" "fulfilled 2" "fulfilled at the second attempt"
assert_eq "$(dirs)" 1 "still one data directory: no second node for one request"
assert_contains "$(cat "$CLUSTER_DIR/prov.d/daemon.log")" "exists (port $made_port), reused" "the daemon says it reused the directory"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged"
stop_daemon

# === 4. command driver: a failing program and a hanging one ===
set_gucs 0 autoscale.provision_timeout 60s
cat >"$CLUSTER_DIR/prov.d/fail.sh" <<'SH'
#!/bin/sh
cat >/dev/null
echo "asking the cloud for a node" >&2
echo "no capacity in zone a" >&2
exit 3
SH
cat >"$CLUSTER_DIR/prov.d/hang.sh" <<'SH'
#!/bin/sh
echo "waiting for the cloud" >&2
exec sleep 600
SH
chmod 755 "$CLUSTER_DIR/prov.d/fail.sh" "$CLUSTER_DIR/prov.d/hang.sh"
# command_case SCRIPT TIMEOUT EXPECTED...: one scale-out answered by SCRIPT (one attempt): the
# request fails with the expected words in last_error; the waiting operation fails with them, well
# before provision_timeout; no node is left in the pool, no request pending
command_case() {
  local script=$1 timeout=$2 op rid err; shift 2
  MAX_ATTEMPTS=1 write_config "$CLUSTER_DIR/prov.d/cmd.toml" "[driver]
kind = \"command\"
program = \"$script\"
timeout = $timeout"
  start_daemon "$CLUSTER_DIR/prov.d/cmd.toml"
  op=$(q 0 "SELECT autoscale.scale_out(reason => 'command driver') ->> 'id'")
  wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.provision_requests WHERE operation_id = $op AND status = 'failed')" 60 ||
    fail "the request did not fail: $(q 0 "SELECT status, attempts, last_error FROM autoscale.provision_requests WHERE operation_id = $op")"
  rid=$(q 0 "SELECT id FROM autoscale.provision_requests WHERE operation_id = $op")
  err=$(q 0 "SELECT last_error FROM autoscale.provision_requests WHERE id = $rid")
  echo "last_error: $err"
  for w in "$@"; do assert_contains "$err" "$w" "the error names: $w"; done
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 40 ||
    { dump_state 0; fail "the operation still waits after its request failed"; }
  assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" failed "the scale-out failed"
  operr=$(q 0 "SELECT error FROM autoscale.operations WHERE id = $op")
  assert_contains "$operr" "the provisioner gave provision request $rid up: $(echo "$err" | head -1)" \
    "with the provisioner's error"
  assert_eq "$(q 0 "SELECT count(*) FROM autoscale.provision_requests WHERE status = 'pending'")" 0 "no request left pending"
  assert_eq "$(q 0 "SELECT count(*) FROM autoscale.standby_nodes WHERE state = 'available'")" 0 "no node left in the pool"
  stop_daemon
}
command_case "$CLUSTER_DIR/prov.d/fail.sh" 30 "exit status: 3" "no capacity in zone a" "attempt 1 of 1"
command_case "$CLUSTER_DIR/prov.d/hang.sh" 2 "timed out after 2 s" "waiting for the cloud"
# a node that never comes up: the program answers an address where nothing listens
dead_port=$((BASE_PORT + 49))
cat >"$CLUSTER_DIR/prov.d/dead.sh" <<SH
#!/bin/sh
cat >/dev/null
echo '{"host": "127.0.0.1", "port": $dead_port}'
SH
chmod 755 "$CLUSTER_DIR/prov.d/dead.sh"
command_case "$CLUSTER_DIR/prov.d/dead.sh" 30 "127.0.0.1:$dead_port does not answer"
assert_eq "$(dirs)" 1 "the command driver made no data directory"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged"

# === 5. the README's command driver, as printed there: a scale-out and a scale-in through it ===
awk '/^## The provisioner daemon/{f=1} f&&/^```sh$/{p=1;next} p&&/^```$/{exit} p' "$REPO/README.md" >"$CLUSTER_DIR/prov.d/readme.sh"
chmod 755 "$CLUSTER_DIR/prov.d/readme.sh"
assert_contains "$(head -1 "$CLUSTER_DIR/prov.d/readme.sh")" "#!/bin/sh" "the README's driver script extracted"
write_config "$CLUSTER_DIR/prov.d/readme.toml" "[driver]
kind = \"command\"
program = \"$CLUSTER_DIR/prov.d/readme.sh\"
timeout = 100"
readme_first=$((BASE_PORT + 60))
DAEMON_ENV="PG_BIN=$PGBIN NODES=$CLUSTER_DIR/readme-nodes FIRST_PORT=$readme_first" start_daemon "$CLUSTER_DIR/prov.d/readme.toml"
set_gucs 0 autoscale.provision_timeout 5min
op=$(q 0 "SELECT autoscale.scale_out(reason => 'the README driver') ->> 'id'")
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 180 || { dump_state 0; tail -20 "$CLUSTER_DIR/prov.d/daemon.log"; false; } ||
  fail "scale_out through the README driver did not finish"
assert_eq "$(q 0 "SELECT status || ' ' || nodeport FROM autoscale.operations WHERE id = $op")" "succeeded $readme_first" \
  "scale_out succeeded with the README driver's node"
assert_eq "$(q 0 "SELECT status FROM autoscale.provision_requests WHERE operation_id = $op")" fulfilled "its request is fulfilled"
op=$(q 0 "SELECT autoscale.scale_in('127.0.0.1', $readme_first, 'the README driver') ->> 'id'")
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 180 || { dump_state 0; false; } || fail "scale_in did not finish"
wait_for 0 "SELECT status = 'fulfilled' FROM autoscale.provision_requests WHERE operation_id = $op AND kind = 'deprovision'" 60 ||
  fail "deprovision not answered: $(q 0 "SELECT status, last_error FROM autoscale.provision_requests WHERE operation_id = $op")"
assert_eq "$(find "$CLUSTER_DIR/readme-nodes" -mindepth 1 -maxdepth 1 -type d | wc -l)" 0 "the README driver removed its node's directory"
stop_daemon
assert_eq "$(row_counts 0)" "$before" "row counts unchanged"
