#!/usr/bin/env bash
# A worker replaced by a larger one under load, through the provisioner daemon's local driver (its
# "size" is the node's settings): autoscale.resize(host, port, size) asks for a node of that size,
# the daemon makes it (the size's settings in its postgresql.conf), the operation adds it, drains the
# old worker onto it and removes the old worker; the deprovision request hands it back and the daemon
# stops it and removes its data directory. pgbench runs throughout: 0 failed transactions, every row
# kept; the events show each step. Bad input (not a worker, a size that is not settings) is refused. Then a
# second resize is interrupted at every step (the worker SIGKILLed, the daemon down at the first kill) and
# still ends succeeded, with nothing orphaned.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "resize: a worker replaced by a larger one under pgbench, through the provisioner daemon"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PROVISIONER_BIN:-$REPO/target/debug/citus-autoscale-provisioner}
[ -x "$BIN" ] || fail "no daemon binary at $BIN (cargo build -p citus-autoscale-provisioner)"
make_cluster 2 0

root="$CLUSTER_DIR/prov"
rm -rf "$root" "$CLUSTER_DIR/prov.d"; mkdir -p "$root" "$CLUSTER_DIR/prov.d"
chown postgres: "$root" "$CLUSTER_DIR/prov.d"
lo=$((BASE_PORT + 50)); hi=$((BASE_PORT + 59))
daemon_pid=""
trap 'pgbench_loop_stop rw; [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null; daemon_nodes_stop "$root"; stop_all' EXIT
cat >"$CLUSTER_DIR/prov.d/local.toml" <<TOML
conninfo = "host=127.0.0.1 port=$(node_port 0) user=postgres dbname=postgres"
claimer = "scenario-28"
poll_interval = 1
lease = 120
[driver]
kind = "local"
root = "$root"
bin = "$PGBIN"
port_range = [$lo, $hi]
settings = ["autoscale.database_name = 'postgres'", "autoscale.sample_interval = '$SAMPLE_INTERVAL'", "fsync = off", "shared_buffers = 64MB", "wal_keep_size = 256MB"]
TOML
chown postgres: "$CLUSTER_DIR/prov.d/local.toml"
daemon_start "$BIN" "$CLUSTER_DIR/prov.d/local.toml" "$CLUSTER_DIR/prov.d/daemon.log"
daemon_pid=$DAEMON_PID
echo "daemon started: pid $daemon_pid"

make_kv 8 20000
script=$(kv_rw_script 20000)
set_gucs 0 autoscale.mode act
w1=$(node_port 1)

# --- bad input: named errors, nothing started ---
assert_sqlstate 22023 0 "SELECT autoscale.resize('127.0.0.1', $(node_port 0), '{}')"
e=$(sql_error 0 "SELECT autoscale.resize('127.0.0.1', $w1, '{\"shared_buffers\": \"1GB''\"}')")
assert_contains "$e" "size" "a size value with a quote is refused, naming size: $e"
assert_contains "$e" "names [a-z_]" "and saying what is allowed"
assert_sqlstate 22023 0 "SELECT autoscale.resize('127.0.0.1', $w1, '[1]')"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'resize'")" 0 "no resize started"

# --- the resize, under pgbench ---
pgbench_loop_start rw -c 4 -j 2 -f "$script"
sleep 3
t0=$(date +%s.%N)
op=$(q 0 "SELECT autoscale.resize('127.0.0.1', $w1, '{\"shared_buffers\": \"128MB\", \"max_connections\": 250}',
                                  reason => 'bigger worker') ->> 'id'")
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 240 ||
  { dump_state 0; cat "$CLUSTER_DIR/prov.d/daemon.log"; false; } || fail "the resize did not finish"
t1=$(date +%s.%N)
sleep 3
pgbench_loop_stop rw
echo "FIGURE: resize from the call to succeeded: $(echo "$t1 - $t0" | bc) s"
q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op ORDER BY id"
cat "$CLUSTER_DIR/prov.d/daemon.log"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "the resize succeeded"
new=$(q 0 "SELECT nodeport FROM autoscale.operations WHERE id = $op")
assert_true "$(q 0 "SELECT $new BETWEEN $lo AND $hi")" "the new worker ($new) is the daemon's node"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $w1")" 0 "the old worker left the cluster"
assert_true "$(q 0 "SELECT isactive AND shouldhaveshards FROM pg_dist_node WHERE nodeport = $new")" "the new worker is active"
assert_eq "$(q 0 "SELECT count(*) FROM citus_shards WHERE nodeport = $w1")" 0 "no placement on the old worker"
assert_true "$(q 0 "SELECT count(*) >= 1 FROM citus_shards WHERE nodeport = $new AND table_name = 'kv'::regclass")" \
  "its shards moved onto the new worker ($(shard_spread 0))"
assert_eq "$(as_pg psql -X -At -h 127.0.0.1 -p "$new" -U postgres -d postgres -c 'SHOW shared_buffers')" 128MB \
  "the new worker has the size asked: shared_buffers 128MB"
assert_eq "$(as_pg psql -X -At -h 127.0.0.1 -p "$new" -U postgres -d postgres -c 'SHOW max_connections')" 250 \
  "and max_connections 250"
assert_eq "$(q 0 "SELECT payload -> 'size' ->> 'shared_buffers' FROM autoscale.provision_requests WHERE operation_id = $op AND kind = 'provision'")" \
  128MB "the provision request carried the size"
assert_eq "$(q 0 "SELECT count(*) FROM kv")" 20000 "every kv row kept"
stats=$(pgbench_stats rw "${t0%.*}" "$(( ${t1%.*} + 1 ))")
echo "pgbench during the resize: $stats"
assert_contains "$stats" "failed 0 " "0 failed pgbench transactions during the resize"
steps=$(q 0 "SELECT string_agg(message, ' | ' ORDER BY id) FROM autoscale.events
             WHERE (detail ->> 'operation_id')::bigint = $op AND kind = 'operation_step'")
for s in request_node wait_for_node add_node mark_draining start_drain wait_drain cleanup verify_empty remove_node; do
  assert_contains "$steps" ": $s -> " "the events show step $s"
done
assert_contains "$steps" "add_node -> mark_draining: node 127.0.0.1:$new added: it replaces 127.0.0.1:$w1" \
  "the event of the add names the new worker and the one it replaces"
# the old worker was made by make_cluster, not by the daemon: its deprovision request is failed by the daemon
wait_for 0 "SELECT status <> 'pending' OR last_error IS NOT NULL FROM autoscale.provision_requests
             WHERE kind = 'deprovision' AND (payload -> 'node' ->> 'port')::int = $w1" 30 ||
  fail "the deprovision request of the old worker was not handled"
q 0 "SELECT id, kind, status, attempts, last_error FROM autoscale.provision_requests WHERE kind = 'deprovision'"

# --- a resize interrupted at every step: the autoscale worker SIGKILLed (the coordinator's postmaster
#     reinitializes) at each step the worker runs, stopped there by the failpoint; the daemon is down at the
#     first kill, so the coordinator restarts with the provision request pending. Each time the operation
#     resumes at its step, and it ends succeeded: one new node, the replaced one (the daemon's) stopped
#     and its data directory gone, no second drain job, every row kept.
require_failpoints
kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""
first_dir=$(find "$root" -mindepth 1 -maxdepth 1 -type d)
jobs=$(q 0 "SELECT count(*) FROM pg_dist_background_job")
steps="wait_for_node,add_node,mark_draining,start_drain,wait_drain,cleanup,verify_empty,remove_node,return_to_pool"
set_gucs 0 autoscale.test_hold_at_steps "$steps"
op2=$(q 0 "SELECT autoscale.resize('127.0.0.1', $new, '{\"shared_buffers\": \"160MB\"}', reason => 'again, with kills') ->> 'id'")
IFS=, read -r -a held <<<"$steps"
for i in "${!held[@]}"; do
  rest=$(IFS=,; echo "${held[*]:$((i + 1))}")
  kill_worker_at "$op2" "${held[$i]}" "$rest"
  if [ "${held[$i]}" = wait_for_node ]; then
    assert_eq "$(q 0 "SELECT status FROM autoscale.provision_requests WHERE operation_id = $op2 AND kind = 'provision'")" pending \
      "the provision request is pending across the coordinator's restart"
    daemon_start "$BIN" "$CLUSTER_DIR/prov.d/local.toml" "$CLUSTER_DIR/prov.d/daemon.log"
    daemon_pid=$DAEMON_PID
    echo "daemon started again: pid $daemon_pid"
  fi
done
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op2" 120 || { dump_state 0; false; } ||
  fail "the interrupted resize did not finish"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op2")" succeeded "the resize interrupted at 9 steps succeeded"
new2=$(q 0 "SELECT nodeport FROM autoscale.operations WHERE id = $op2")
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport IN ($new, $new2) AND isactive")" 1 "one of the two in the cluster"
assert_eq "$(as_pg psql -X -At -h 127.0.0.1 -p "$new2" -U postgres -d postgres -c 'SHOW shared_buffers')" 160MB "the new one of 160MB"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.provision_requests WHERE operation_id = $op2 AND kind = 'provision'")" 1 \
  "one provision request despite the kills"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_background_job")" $((jobs + 1)) "one drain job (no second one after a kill)"
assert_eq "$(q 0 "SELECT count(*) FROM kv")" 20000 "every kv row kept"
wait_for 0 "SELECT status = 'fulfilled' FROM autoscale.provision_requests WHERE kind = 'deprovision'
             AND (payload -> 'node' ->> 'port')::int = $new" 60 || fail "the replaced node was not deprovisioned"
assert_eq "$(find "$root" -mindepth 1 -maxdepth 1 -type d | wc -l)" 1 "one data directory left: the new node's"
[ ! -e "$first_dir" ] || fail "the replaced node's data directory $first_dir is still there"
echo "ok: the replaced node's data directory is gone"
