#!/usr/bin/env bash
# Fault toolkit for the real-cluster scenarios (sourced after lib.sh). Loopback only; every process
# it starts is stopped by PID (proxies) or by pg_ctl (nodes).
#
#   fault_crash I        node I stops at once (pg_ctl stop -m immediate: no checkpoint, backends
#                        killed; crash recovery at the next start)
#   fault_restart I      starts node I again (after fault_crash), waits until it accepts connections
#   fault_hang I         SIGSTOP of node I's postmaster (first, so it forks no more) and of every
#                        process below it; the kernel still accepts TCP connections for it, nothing
#                        answers: peers wait for their own timeouts
#   fault_unhang I       SIGCONT of every process fault_hang stopped (and of the postmaster's
#                        current children), postmaster last
#   proxy_start I        a TCP proxy on port proxy_port I forwarding to node I; register the node in
#                        Citus (pg_dist_node, the standby pool) with the proxy's port
#   fault_cut I          partition: every connection through the proxy is closed, new ones refused
#   fault_stall I        partition: the proxy stops forwarding (a black hole, nothing is refused)
#   fault_heal I         the proxy forwards again
#   proxy_stop_all       stops every proxy started here, by PID
#
# Why a proxy and not network namespaces: the nodes all run on 127.0.0.1 with fixed ports and unix
# sockets in one directory (lib.sh); moving a node into a namespace needs CAP_NET_ADMIN, veth pairs,
# addresses and routes, and the test's own psql would have to enter the namespace to inspect the
# node. A proxy needs no privilege, changes nothing but the port the cluster knows the node by, and
# its modes change synchronously (a command returns once the mode is in force), so a case never
# depends on timing. What it partitions is exactly the cluster's view of the node: the coordinator
# (the autoscale worker, Citus's background jobs, the maintenance daemon) and the other workers
# (shard moves connect worker to worker through pg_dist_node's address) reach the node only
# through the proxy, while the test reaches it directly to check it. It models two kinds of
# partition: connections reset and refused (cut), and packets silently dropped (stall).

FAULTS_PROXY_OFFSET=${FAULTS_PROXY_OFFSET:-100}
FAULTS_CONTROL_OFFSET=${FAULTS_CONTROL_OFFSET:-200}
FAULTS_DIR_PROXY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

proxy_port() { echo $(( $(node_port "$1") + FAULTS_PROXY_OFFSET )); }
proxy_control_port() { echo $(( $(node_port "$1") + FAULTS_CONTROL_OFFSET )); }

# postmaster_pid I: the PID of node I's postmaster (first line of postmaster.pid), empty when down.
postmaster_pid() {
  local f
  f="$(node_dir "$1")/postmaster.pid"
  [ -f "$f" ] && head -1 "$f"
}

# descendants PID: every process below PID (children, their children, ...), one per line.
descendants() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      for (i in pids) {
        p = pids[i]; q = parent[p]
        while (q != "" && q != 0 && q != 1) { if (q == root) { print p; break } q = parent[q] }
      }
    }'
}

fault_crash() {
  local i=$1
  as_pg "$PGBIN/pg_ctl" -D "$(node_dir "$i")" -m immediate -w -t 60 stop >/dev/null ||
    fail "fault_crash $i: pg_ctl stop -m immediate failed"
}

fault_restart() {
  local i=$1
  start_node "$i" || fail "fault_restart $i: pg_ctl start failed (log $(node_dir "$i").log)"
  wait_up "$i" 60 || fail "fault_restart $i: node $i does not accept connections"
}

fault_hang() {
  local i=$1 pm list
  pm=$(postmaster_pid "$i")
  [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null || fail "fault_hang $i: node $i is not running"
  kill -STOP "$pm"
  list="$(node_dir "$i").hung"
  { echo "$pm"; descendants "$pm"; } >"$list"
  xargs -r kill -STOP <"$list" 2>/dev/null || true
}

fault_unhang() {
  local i=$1 pm list p
  pm=$(postmaster_pid "$i")
  list="$(node_dir "$i").hung"
  [ -f "$list" ] || fail "fault_unhang $i: node $i was not hung"
  for p in $( (grep -vx "$pm" "$list"; [ -n "$pm" ] && descendants "$pm") | sort -u); do
    kill -CONT "$p" 2>/dev/null || true
  done
  [ -n "$pm" ] && kill -CONT "$pm" 2>/dev/null
  rm -f "$list"
}

# proxy_start I: starts the proxy for node I (idempotent), waits until its control port answers.
proxy_start() {
  local i=$1 pidf
  pidf="$CLUSTER_DIR/proxy.$i.pid"
  [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null && return 0
  python3 "$FAULTS_DIR_PROXY/tcp_proxy.py" "$(proxy_port "$i")" "$(node_port "$i")" "$(proxy_control_port "$i")" \
    >>"$CLUSTER_DIR/proxy.$i.log" 2>&1 &
  echo $! >"$pidf"
  local deadline=$(( $(date +%s) + 10 ))
  until proxy_command "$i" status >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "proxy for node $i did not start (log $CLUSTER_DIR/proxy.$i.log)"
    sleep 0.1
  done
}

# proxy_command I CMD: sends CMD to node I's proxy, prints its reply, fails unless it starts with ok.
proxy_command() {
  local i=$1 cmd=$2 fd reply
  exec {fd}<>"/dev/tcp/127.0.0.1/$(proxy_control_port "$i")" || return 1
  printf '%s\n' "$cmd" >&"$fd"
  IFS= read -r -t 10 reply <&"$fd" || reply="no reply"
  exec {fd}>&-
  echo "$reply"
  [[ "$reply" == ok* ]]
}

fault_cut() { proxy_command "$1" cut >/dev/null || fail "fault_cut $1"; }
fault_stall() { proxy_command "$1" stall >/dev/null || fail "fault_stall $1"; }
fault_heal() { proxy_command "$1" heal >/dev/null || fail "fault_heal $1"; }

proxy_stop_all() {
  local f
  for f in "$CLUSTER_DIR"/proxy.*.pid; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  return 0
}

# unhang_all: SIGCONT for every node left hung (so that stop_all can stop it).
unhang_all() {
  local f i
  for f in "$CLUSTER_DIR"/n*.hung; do
    [ -f "$f" ] || continue
    i=${f##*/n}; i=${i%.hung}
    fault_unhang "$i"
  done
  return 0
}

# faults_cleanup: for a scenario's EXIT trap: nothing stays stopped, no proxy keeps running.
faults_cleanup() { unhang_all; proxy_stop_all; stop_all; }
