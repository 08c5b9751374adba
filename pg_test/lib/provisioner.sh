#!/usr/bin/env bash
# The provisioner daemon (citus-autoscale-provisioner) in the scenarios and the demo. Sourced through pg_test/lib.sh.

# daemon_start BIN CONFIG LOG [VAR=VALUE...]: the daemon as the postgres OS user, with postgres's HOME as a
# service has it (the nodes it starts read ~/.postgresql) and the variables given; setpriv execs it, so
# DAEMON_PID is the daemon's own PID. Its output is appended to LOG.
daemon_start() {
  local bin=$1 config=$2 log=$3; shift 3
  setpriv --reuid=postgres --regid=postgres --init-groups \
    env HOME="$(getent passwd postgres | cut -d: -f6)" "$@" "$bin" --config "$config" >>"$log" 2>&1 &
  DAEMON_PID=$!
}
# daemon_nodes_stop DIR...: pg_ctl stop of every node the daemon made under each DIR (its root).
daemon_nodes_stop() {
  local root d
  for root in "$@"; do
    for d in "$root"/*/; do
      [ -f "$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null 2>&1
    done
  done
  return 0
}
