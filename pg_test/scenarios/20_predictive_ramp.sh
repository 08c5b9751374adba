#!/usr/bin/env bash
# A predictive policy scales out ahead of a rising load. pgbench runs read-write on a distributed
# table at 100 transactions/s for 160 s (history for the forecast: at a 0.5 s sample interval its
# buckets are 6 s and it needs 150 s), then its rate ramps up by 40/s every 10 s. The policy watches
# the busiest worker's tps (commits + rollbacks per second) with a threshold of 300/s and
# autoscale.forecast_lead_time = 60 s: the scale-out must start while that tps is still below 300,
# and the decision event must say that the forecast crosses 300 within the lead time.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "predictive policy: scale-out under a ramping pgbench load before it reaches the threshold"
make_cluster 2 1
standby=$(node_port 3)
make_kv 8 100000
script=$(kv_rw_script 100000)

set_gucs 0 autoscale.mode act autoscale.sample_interval 500ms autoscale.forecast_lead_time 60s
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby offered to the pool"
q 0 "SELECT autoscale.set_policy('ramp', metric => 'tps', aggregate => 'max', scale_out_above => 300,
       scale_in_below => 1, scale_in_for => '1 hour', min_workers => 2, max_workers => 3, predictive => true)" >/dev/null

# the load: 16 segments of 10 s at 100/s, then +40/s every 10 s up to 900/s
log="$CLUSTER_DIR/ramp.out"
(
  for r in $(for _ in $(seq 16); do echo 100; done) $(seq 140 40 900); do
    as_pg pgbench -h 127.0.0.1 -p "$(node_port 0)" -U postgres -n -c 8 -j 2 -R "$r" -T 10 -f "$script" postgres \
      >>"$log" 2>&1 || echo "pgbench exited with status $?" >>"$log"
    [ -e "$CLUSTER_DIR/stop.ramp" ] && break
  done
) &
ramp=$!
trap 'touch "$CLUSTER_DIR/stop.ramp"; kill $ramp 2>/dev/null || true; stop_all' EXIT
t0=$(date +%s)

sleep 150
echo "after 150 s at 100/s: $(q 0 "SELECT current_value, decision, forecast, forecast_note FROM autoscale.explain()")"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'scale_out'")" 0 "no scale-out while the load is flat"

wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_out')" 300 || { dump_state 0; false; } ||
  fail "no scale_out within 450 s (explain: $(q 0 "SELECT current_value, decision, forecast_note, reasons FROM autoscale.explain()"))"
t_out=$(date +%s)
echo "scale_out started $(( t_out - t0 )) s after the load began ($(( t_out - t0 - 160 )) s into the ramp)"
assert_eq "$(q 0 "SELECT requested_by FROM autoscale.operations WHERE kind = 'scale_out'")" policy "started by the policy"
assert_contains "$(q 0 "SELECT reason FROM autoscale.operations WHERE kind = 'scale_out'")" "forecast to cross 300" \
  "the operation's reason is the forecast"
event="SELECT detail FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'scale out from 2 to 3%' ORDER BY id LIMIT 1"
q 0 "SELECT at::time, message FROM autoscale.events WHERE kind = 'decision' ORDER BY id LIMIT 3"
assert_contains "$(q 0 "SELECT message FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'scale out from 2 to 3%' ORDER BY id LIMIT 1")" \
  "a scale-out takes 1m here (autoscale.forecast_lead_time)" "the decision event says why: the forecast and the lead time"
value=$(q 0 "SELECT (d -> 'policies' -> 0 ->> 'current')::float8 FROM ($event) e(d)")
assert_true "$(q 0 "SELECT $value < 300")" "the busiest worker's tps was still below 300 when the scale-out was decided ($value)"
crossed=$(q 0 "SELECT min(w.sampled_at) FROM autoscale.worker_count w
                WHERE (SELECT max(s.tps) FROM autoscale.node_samples s
                        WHERE s.sample_id = w.sample_id AND NOT s.is_coordinator) > 300")
echo "the busiest worker first sampled above 300/s at: ${crossed:-never before the scale-out took effect}"
echo "operation started at: $(q 0 "SELECT started_at FROM autoscale.operations WHERE kind = 'scale_out'")"

wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'scale_out'" 120 || { dump_state 0; false; } ||
  fail "scale_out did not finish within 120 s"
assert_eq "$(q 0 "SELECT status || ' ' || nodeport FROM autoscale.operations WHERE kind = 'scale_out'")" "succeeded $standby" \
  "scale_out succeeded with the standby"
echo "scale_out took $(q 0 "SELECT round(extract(epoch FROM finished_at - started_at)) FROM autoscale.operations WHERE kind = 'scale_out'") s"
touch "$CLUSTER_DIR/stop.ramp"; wait "$ramp" || true
trap stop_all EXIT
assert_eq "$(grep -c 'pgbench exited with status' "$log" || true)" 0 "every pgbench segment ran to its end"
assert_eq "$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')" 0 \
  "zero failed pgbench transactions"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"
# the rollups the tick filled meanwhile, and what a row costs
q 0 "SELECT level, rows, bytes, nodes, round(days::numeric, 4) AS days, bytes_per_node_per_day FROM autoscale.history_storage"
echo "1-minute rollup row: $(q 0 "SELECT round(avg(pg_column_size(t.*))) FROM autoscale.node_samples_1min t") bytes on average (plus its index entry)"
assert_true "$(q 0 "SELECT count(*) > 0 FROM autoscale.node_samples_1min WHERE nodename = 'cluster'")" "the tick filled the 1-minute rollups"
