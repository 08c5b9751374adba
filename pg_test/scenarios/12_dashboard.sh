#!/usr/bin/env bash
# The Grafana dashboard (dashboards/citus_autoscale.json) and the sql_exporter query
# (dashboards/sql_exporter.yml) against a real cluster with history: 2 workers and a standby,
# three policies (threshold, target tracking, custom), a scale-out that takes the standby from the
# pool and rebalances, pgbench load. Every panel's query (once per policy for the repeated policy
# panel), every annotation and the policy variable run with Grafana's macros replaced by SQL
# (pg_test/dashboard_check.py) and return the columns their panels need; then what they show is
# compared with the cluster: worker count 2 then 3, every node's cpu, the policy value the engine
# sees (explain()), the pool, the finished rebalance, the operation as an annotation.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "the Grafana dashboard's queries and the sql_exporter query on a cluster with samples"
here=$(cd "$(dirname "$0")/../.." && pwd)
make_cluster 2 1
standby=$(node_port 3)
make_kv 8 20000
script=$(kv_rw_script 20000)
set_gucs 0 autoscale.mode act autoscale.rebalance_settle 1s
q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby)" >/dev/null
# a local table for the custom metric (a query on a distributed table in the tick's transaction
# makes the scale-out's citus_add_node fail: Citus refuses metadata syncing after a parallel query)
q 0 "CREATE TABLE public.queue (id int); INSERT INTO public.queue SELECT generate_series(1, 500);
     GRANT SELECT ON public.queue TO autoscale_metrics" >/dev/null
q 0 "SELECT autoscale.set_policy('cpu', metric => 'cpu', scale_out_above => 99, scale_in_below => 0,
       scale_in_for => '1 hour', min_workers => 2, max_workers => 3);
     SELECT autoscale.set_policy('conns', metric => 'connections', aggregate => 'max', target => 500,
       scale_in_for => '1 hour', min_workers => 2, max_workers => 3);
     SELECT autoscale.set_policy('rows', metric => 'custom', custom_sql => 'SELECT count(*) FROM public.queue',
       scale_out_above => 1e9, scale_in_below => -1, scale_in_for => '1 hour', min_workers => 2, max_workers => 3)" >/dev/null
sleep 3

# load, and a scale-out from the pool while it runs
as_pg pgbench -h 127.0.0.1 -p "$(node_port 0)" -U postgres -n -c 4 -R 200 -T 12 -f "$script" postgres >"$CLUSTER_DIR/pgbench.out" 2>&1 &
pgb=$!
trap 'kill $pgb 2>/dev/null || true; stop_all' EXIT
sleep 3
q 0 "SELECT autoscale.scale_out(reason => 'dashboard test')" >/dev/null
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'scale_out'" 60 || { dump_state 0; false; } ||
  fail "scale_out did not finish"
[ "$(q 0 "SELECT status FROM autoscale.operations WHERE kind = 'scale_out'")" = succeeded ] || { dump_state 0; fail "scale_out failed"; }
echo "ok: scale_out from the pool succeeded"
wait "$pgb" || true
trap stop_all EXIT
sleep 2
# freeze the history: no more samples while the queries run (mode off: the worker idles)
set_gucs 0 autoscale.mode off
sleep 1.5
assert_true "$(q 0 "SELECT count(*) > 10 FROM autoscale.worker_count")" "the cluster has $(q 0 "SELECT count(*) FROM autoscale.worker_count") samples"

out=$(python3 "$here/pg_test/dashboard_check.py" "$here/dashboards/citus_autoscale.json" "$here/dashboards/sql_exporter.yml" "$(node_port 0)") ||
  { printf '%s\n' "$out"; fail "dashboard_check.py"; }
printf '%s\n' "$out" | sed '$d'
res=$(printf '%s\n' "$out" | tail -1)
jqr() { printf '%s' "$res" | jq -r "$@"; }

# what the panels show is what the cluster did
assert_eq "$(jqr '.Workers.A.rows | map(.[1]) | unique | join(",")')" "2,3" "worker count panel: 2 workers, then 3"
assert_eq "$(jqr '.Workers.A.rows | last | .[1]')" 3 "worker count panel ends at 3"
assert_eq "$(jqr '.["CPU busy per node"].A.rows | map(.[1]) | unique | length')" 4 "cpu panel: a series per node (coordinator and 3 workers)"
assert_true "$(q 0 "SELECT $(jqr '.["Commits per second per node"].A.rows | map(select(.[2] != "") | .[2] | tonumber) | max') > 10")" \
  "commits/s panel shows the pgbench load"
assert_eq "$(jqr '.["Connections per node"].A.rows | map(.[1]) | unique | length')" 4 "connections panel: a series per node"
title='Policy value against its thresholds: $policy'
for p in cpu conns; do
  panel_value=$(jqr --arg t "$title" --arg k "${p}A" '.[$t][$k].rows | last | .[1]')
  engine_value=$(q 0 "SELECT current_value FROM autoscale.explain() WHERE policy = '$p'")
  assert_true "$(q 0 "SELECT abs($panel_value - $engine_value) < 0.01")" \
    "policy panel [$p] ends at the value explain() uses ($panel_value vs $engine_value)"
done
assert_eq "$(jqr --arg t "$title" '.[$t].cpuA.rows | map(.[2]) | unique | join(",")')" 99 "policy panel [cpu]: the scale-out threshold"
assert_eq "$(jqr --arg t "$title" '.[$t].cpuA.rows | map(.[3]) | unique | join(",")')" 0 "policy panel [cpu]: the scale-in threshold"
assert_eq "$(jqr --arg t "$title" '.[$t].connsA.rows | map(.[4]) | unique | join(",")')" 500 "policy panel [conns]: the target"
assert_eq "$(jqr --arg t "$title" '.[$t].rowsA.rows | last | .[1]')" "$(q 0 "SELECT value FROM autoscale.metric_samples WHERE policy = 'rows' ORDER BY sample_id DESC LIMIT 1")" \
  "policy panel [rows]: the custom metric's last value"
assert_eq "$(jqr --arg t "$title" '.[$t].rowsA.rows | last | .[1]')" 500 "which is the custom query's result"
assert_eq "$(jqr '.["Standby pool by state"].A.rows | map(.[0] + "=" + .[1]) | join(" ")')" \
  "available=0 joining=0 active=1 draining=0 returned=0" "pool panel: the standby is active"
assert_eq "$(jqr '.["Rebalance progress"].A.rows[0][0]')" 100 "rebalance progress panel: the scale-out's rebalance is done"
assert_eq "$(jqr '.["Rebalance job"].A.rows[0][2]')" succeeded "rebalance job panel: succeeded"
assert_contains "$(jqr '.["annotation Operations"].A.rows | map(.[3]) | join(" ")')" "operation,scale_out,succeeded" \
  "the scale-out is an annotation"
assert_contains "$(jqr '.["annotation Decisions and errors"].A.rows | map(.[1]) | join(" ")')" "operation_started: scale_out started" \
  "events are annotations"
echo "ok: the dashboard's queries run and show the cluster's history"
