#!/usr/bin/env bash
# The README's first command: installs everything (scripts/setup.sh), then runs a local cluster on
# loopback that autoscales: a coordinator and two workers, the extension preloaded everywhere, an
# empty standby pool and the provisioner daemon (citus-autoscale-provisioner, local driver), a
# policy on commits per second; pgbench load makes autoscale ask for a node, the daemon makes it
# and the shards rebalance onto it; when the load stops the node drains, leaves and the daemon
# stops it and removes its data directory. Prints the cluster's load and what
# autoscale does as it goes. Without Citus (or with DEMO_WITHOUT_CITUS=1) it runs the same brain on
# plain PostgreSQL: a policy in observe mode under pgbench load, its 'would scale out' decisions,
# explain(), backtest() and metrics(). Both end with a summary and where to look next.
# Everything it starts is stopped at the end (KEEP=1 leaves the cluster running; SKIP_SETUP=1 skips
# scripts/setup.sh when the extension is already installed).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-0}" = 1 ] || scripts/setup.sh
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/citus_autoscale_demo}
BASE_PORT=${BASE_PORT:-9800}
SAMPLE_INTERVAL=1s
. pg_test/lib.sh
LOAD_SECS=${LOAD_SECS:-45}
PLAIN_LOAD_SECS=${PLAIN_LOAD_SECS:-25}
PLAIN_THRESHOLD=${PLAIN_THRESHOLD:-500}
[ "${KEEP:-0}" = 1 ] || trap stop_all EXIT

line() { printf '%s\n' "------------------------------------------------------------------------------"; }
show_load() {  # one line per node from the latest sample
  q 0 "SELECT format('  %-16s %-11s cpu %5s%%  mem %5s%%  conns %3s  commits/s %7s  shards %3s',
                     nodename || ':' || nodeport, CASE WHEN is_coordinator THEN 'coordinator' ELSE 'worker' END,
                     coalesce(round(cpu_busy_pct::numeric, 1)::text, '-'), round(mem_used_pct::numeric, 1),
                     connections, coalesce(round(commits_per_sec::numeric, 1)::text, '-'), coalesce(shard_count::text, '-'))
       FROM autoscale.latest_node_load WHERE sampled_at > now() - interval '10 s' ORDER BY nodeport"
}
status_line() {
  q 0 "SELECT format('%s  workers %s | decision %s | operation %s %s %s',
                     to_char(now(), 'HH24:MI:SS'), s.active_workers, coalesce(s.last_decision, '-'),
                     coalesce(s.operation, 'none'), coalesce(s.operation_step, ''),
                     coalesce((SELECT format('(job %s: %s/%s tasks, %s%%)', job_id, tasks_done, tasks_total, percent_done)
                                 FROM autoscale.rebalance_progress WHERE status = 'running'), ''))
       FROM autoscale.status s"
}

# ---- without Citus: the brain on plain PostgreSQL, in observe mode ----
demo_without_citus() {
  echo "== Without Citus the extension still samples this node, decides and explains; it cannot add nodes."
  echo "== starting PostgreSQL 15 on 127.0.0.1:$(node_port 0) with citus_autoscale preloaded (in $CLUSTER_DIR)"
  stop_all
  init_node 0 citus_autoscale; start_node 0
  q 0 "CREATE EXTENSION citus_autoscale" >/dev/null
  echo "== a policy: scale out above $PLAIN_THRESHOLD commits/s held for 10 s (autoscale.mode = $(q 0 "SHOW autoscale.mode"): decide and record only)"
  q 0 "SELECT autoscale.set_policy('writes', metric => 'commits_per_sec', aggregate => 'max',
         scale_out_above => $PLAIN_THRESHOLD, scale_in_below => 20, scale_out_for => '10 s', scale_in_for => '30 s',
         cooldown => '30 s', min_workers => 1, max_workers => 4)" >/dev/null
  q 0 "SELECT format('  %s: %s %s %s, for %s (in: %s), workers %s..%s', name, metric, aggregate, rule,
                     scale_out_for, scale_in_for, min_workers, max_workers) FROM autoscale.policies"
  as_pg "$PGBIN/pgbench" -i -q -h 127.0.0.1 -p "$(node_port 0)" -U postgres postgres >/dev/null 2>&1
  echo "== pgbench: 4 clients for ${PLAIN_LOAD_SECS}s; every 3 s this node's latest sample and the engine's decision"
  as_pg "$PGBIN/pgbench" -n -c 4 -T "$PLAIN_LOAD_SECS" -h 127.0.0.1 -p "$(node_port 0)" -U postgres postgres \
    >/tmp/citus_autoscale_demo.pgbench.out 2>&1 &
  local bench=$! explained=""
  while kill -0 "$bench" 2>/dev/null; do
    sleep 3
    plain_status_line
    if [ -z "$explained" ] && [ "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind = 'decision'")" -gt 0 ]; then
      explained=$(explain_rows)
    fi
  done
  wait "$bench" || true
  grep -E "^tps" /tmp/citus_autoscale_demo.pgbench.out | sed 's/^/  pgbench: /'
  for _ in 1 2; do sleep 3; plain_status_line; done
  line
  echo "== the decisions it recorded (autoscale.events, kind decision)"
  q 0 "SELECT format('  %s  %s', to_char(at, 'HH24:MI:SS'), left(message, 150))
         FROM autoscale.events WHERE kind = 'decision' ORDER BY id"
  echo "== autoscale.explain() while the load ran: value, rule, held for, decision, reasons"
  printf '%s\n' "${explained:-  (no decision during the load: see autoscale.events)}"
  echo "== autoscale.explain() now"
  explain_rows
  echo "== the policy replayed over this run's samples: autoscale.backtest('1 hour', operation_time => '10 s')"
  local bt
  bt=$(backtest_rows)
  printf '%s\n' "${bt:-  (no scale action)}"
  echo "== a few lines of autoscale.metrics() (Prometheus text)"
  q 0 "SELECT '  ' || l FROM regexp_split_to_table(autoscale.metrics(), E'\\n') l
        WHERE l ~ '^autoscale_(mode|node_commits_per_second|node_cpu_busy_percent|policy_value|policy_desired_workers)'
          AND l !~ ' 0$'"
  line
  echo "Summary: pgbench pushed this node to $(q 0 "SELECT round(max(commits_per_sec)::numeric) FROM autoscale.node_samples") commits/s;" \
       "the policy (> $PLAIN_THRESHOLD for 10 s) recorded $(q 0 "SELECT count(*) || ' decision(s): ' || coalesce(string_agg(quote_literal(split_part(message, ':', 1)), ', ' ORDER BY id), 'none')
                                                              FROM autoscale.events WHERE kind = 'decision'")," \
       "and changed nothing (observe mode, no Citus)."
  echo "Next: SELECT * FROM autoscale.explain(); autoscale.backtest('1 day') on your own load; autoscale.metrics() for Prometheus."
  echo "To act on it, get Citus (https://docs.citusdata.com/en/stable/installation/), then run scripts/demo.sh again: it starts a cluster that scales for real."
}
plain_status_line() {
  q 0 "SELECT format('  %s  commits/s %7s  cpu %5s%%  conns %3s | decision %s (%s -> %s workers)',
                     to_char(now(), 'HH24:MI:SS'), coalesce(round(l.commits_per_sec::numeric, 1)::text, '-'),
                     coalesce(round(l.cpu_busy_pct::numeric, 1)::text, '-'), l.connections,
                     coalesce(s.last_decision, '-'), (SELECT workers FROM autoscale.explain() LIMIT 1),
                     coalesce(s.last_desired_workers::text, '-'))
         FROM autoscale.status s, autoscale.latest_node_load l"
}
explain_rows() {
  q 0 "SELECT format('  %s: %s %s = %s, rule %s, held %s, workers %s -> %s, decision %s: %s', policy, metric, aggregate,
                     current_value, rule, held_for, workers, desired_workers, decision, array_to_string(reasons, '; '))
         FROM autoscale.explain()"
}
backtest_rows() {
  q 0 "SELECT format('  %s  %-3s %s -> %s  %s', to_char(at, 'HH24:MI:SS'), decision, from_workers, to_workers,
                    left(array_to_string(reasons, '; '), 100))
         FROM autoscale.backtest('1 hour', operation_time => '10 s') ORDER BY at"
}

if [ "${DEMO_WITHOUT_CITUS:-0}" = 1 ] || ! citus_installed; then
  citus_installed || citus_missing_line
  demo_without_citus
  exit 0
fi

echo "== building the provisioner daemon (cargo build -p citus-autoscale-provisioner)"
export PATH="$HOME/.cargo/bin:$PATH"
cargo build -q -p citus-autoscale-provisioner
DAEMON=$PWD/target/debug/citus-autoscale-provisioner
echo "== starting a coordinator and 2 workers on 127.0.0.1:$(node_port 0)-$(node_port 2) (in $CLUSTER_DIR)"
make_cluster 2 0
# the daemon makes nodes under $CLUSTER_DIR/prov on ports BASE_PORT+10.., as postgres; stopped at the end
prov_root="$CLUSTER_DIR/prov"
rm -rf "$prov_root" "$CLUSTER_DIR/provisioner.toml"; mkdir -p "$prov_root"; chown postgres: "$prov_root"
cat >"$CLUSTER_DIR/provisioner.toml" <<TOML
conninfo = "host=127.0.0.1 port=$(node_port 0) user=postgres dbname=postgres"
claimer = "demo"
poll_interval = 1
[driver]
kind = "local"
root = "$prov_root"
bin = "$PGBIN"
port_range = [$((BASE_PORT + 10)), $((BASE_PORT + 19))]
settings = ["autoscale.database_name = 'postgres'", "autoscale.sample_interval = '$SAMPLE_INTERVAL'", "fsync = off"]
TOML
chown postgres: "$CLUSTER_DIR/provisioner.toml"
rm -f "$CLUSTER_DIR/provisioner.log"
daemon_start "$DAEMON" "$CLUSTER_DIR/provisioner.toml" "$CLUSTER_DIR/provisioner.log"
daemon_pid=$DAEMON_PID
stop_demo() {
  kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  daemon_nodes_stop "$prov_root"
  stop_all
}
[ "${KEEP:-0}" = 1 ] || trap stop_demo EXIT
echo "== a distributed table with 32 shards and 200k rows, and a reference table"
q 0 "CREATE TABLE orders (id bigint PRIMARY KEY, customer int, amount numeric, note text)" >/dev/null
q 0 "SELECT create_distributed_table('orders', 'id', shard_count := 32)" >/dev/null
q 0 "INSERT INTO orders SELECT g, g % 1000, g % 97, repeat('x', 50) FROM generate_series(1, 200000) g" >/dev/null
q 0 "CREATE TABLE regions (id int PRIMARY KEY, name text)" >/dev/null
q 0 "SELECT create_reference_table('regions')" >/dev/null
q 0 "INSERT INTO regions SELECT g, 'r' || g FROM generate_series(1, 10) g" >/dev/null
rows_before=$(q 0 "SELECT count(*) FROM orders")

echo "== the standby pool is empty; the provisioner daemon (pid $daemon_pid, local driver) makes a node when autoscale asks"
echo "== a policy: scale out above 40 commits/s on the busiest worker"
q 0 "SELECT autoscale.set_policy('writes', metric => 'commits_per_sec', aggregate => 'max',
       scale_out_above => 40, scale_in_below => 8, scale_out_for => '8 s', scale_in_for => '15 s',
       cooldown => '10 s', min_workers => 2, max_workers => 3)" >/dev/null
q 0 "SELECT name, rule, scale_out_for, scale_in_for, min_workers, max_workers FROM autoscale.policies"
q 0 "ALTER SYSTEM SET autoscale.mode = 'act'" >/dev/null
q 0 "ALTER SYSTEM SET autoscale.rebalance_settle = '2s'" >/dev/null
q 0 "ALTER SYSTEM SET autoscale.shard_transfer_mode = 'block_writes'" >/dev/null
q 0 "SELECT pg_reload_conf()" >/dev/null
sleep 3; line; status_line; show_load

cat >/tmp/citus_autoscale_demo.pgbench <<'SQL'
\set id random(1, 200000)
UPDATE orders SET amount = amount + 1 WHERE id = :id;
SELECT amount FROM orders WHERE id = :id;
SQL
chmod 644 /tmp/citus_autoscale_demo.pgbench
echo "== pgbench: 6 clients writing for ${LOAD_SECS}s"
as_pg /usr/lib/postgresql/15/bin/pgbench -n -c 6 -T "$LOAD_SECS" -f /tmp/citus_autoscale_demo.pgbench \
  -h 127.0.0.1 -p "$(node_port 0)" -U postgres postgres >/tmp/citus_autoscale_demo.pgbench.out 2>&1 &
bench=$!
while kill -0 "$bench" 2>/dev/null; do sleep 3; line; status_line; show_load; done
wait "$bench" || true
grep -E "tps|failed" /tmp/citus_autoscale_demo.pgbench.out | sed 's/^/  pgbench: /'
echo "== load stopped; waiting for the node to drain and leave"
for _ in $(seq 40); do
  sleep 3; line; status_line; show_load
  if [ "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'scale_in' AND status <> 'running'")" -gt 0 ]; then break; fi
done
# the daemon answers the scale-in's deprovision request: it stops the node and removes its data directory
for _ in $(seq 20); do
  [ "$(q 0 "SELECT count(*) FROM autoscale.provision_requests WHERE kind = 'deprovision' AND status = 'pending'")" = 0 ] && break
  sleep 1
done
line
echo "== what autoscale did (autoscale.events)"
q 0 "SELECT format('  %s  %-20s %s', to_char(at, 'HH24:MI:SS'), kind, left(message, 110))
       FROM autoscale.events WHERE kind NOT IN ('operation_progress') ORDER BY id"
echo "== operations"
q 0 "SELECT format('  %s %-9s %-9s %-15s %s', id, kind, status, coalesce(nodename || ':' || nodeport, ''), finished_at - started_at)
       FROM autoscale.operations ORDER BY id"
echo "== the same policy replayed over this run's samples (autoscale.backtest), and a few of autoscale.metrics()"
q 0 "SELECT format('  %s  %-3s %s -> %s  %s', to_char(at, 'HH24:MI:SS'), decision, from_workers, to_workers,
                  left(array_to_string(reasons, '; '), 90))
       FROM autoscale.backtest('1 hour', operation_time => '10 s') ORDER BY at"
q 0 "SELECT '  ' || l FROM regexp_split_to_table(autoscale.metrics(), E'\\n') l
      WHERE l ~ '^autoscale_(workers|node_commits_per_second|operations_total|standby_nodes)' AND l !~ ' 0$'"
echo "== the provisioner: its requests (autoscale.provision_requests) and what the daemon did"
q 0 "SELECT format('  %s %-11s %-9s %s', id, kind, status, coalesce(answer::text, last_error, '')) FROM autoscale.provision_requests ORDER BY id"
sed 's/^citus-autoscale-provisioner: /  daemon: /' "$CLUSTER_DIR/provisioner.log"
echo "== rows: $rows_before before, $(q 0 "SELECT count(*) FROM orders") after; data directories the daemon holds: $(find "$prov_root" -mindepth 1 -maxdepth 1 -type d | wc -l)"
line
echo "Summary: $(q 0 "SELECT coalesce(string_agg(format('%s %s in %s', kind, status, date_trunc('second', finished_at - started_at)), ', ' ORDER BY id), 'no operation') FROM autoscale.operations");" \
     "workers now $(q 0 "SELECT active_workers FROM autoscale.status"); orders: $rows_before rows before, $(q 0 "SELECT count(*) FROM orders") after."
echo "Next: SELECT * FROM autoscale.status / autoscale.explain() / autoscale.events; autoscale.backtest('1 day') before you switch to act."
echo "Dashboard: import dashboards/citus_autoscale.json into Grafana (PostgreSQL data source on this coordinator); Prometheus: dashboards/sql_exporter.yml."
[ "${KEEP:-0}" = 1 ] && echo "cluster left running in $CLUSTER_DIR (stop: pg_ctl -D $CLUSTER_DIR/nN stop)"
exit 0
