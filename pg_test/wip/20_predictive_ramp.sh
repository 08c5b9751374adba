#!/usr/bin/env bash
# NOT IN THE SUITE YET (pg_test/wip): under a continuous load, PostgreSQL 15 backends publish their commit
# counters in bursts (up to 60 s apart), so 1 s tps readings became too noisy for the forecast gate in the last
# run; to be redone on cpu or with a longer bucket. Run by hand: bash pg_test/wip/20_predictive_ramp.sh
# Run again after merging main (2026-11-26, a shared 2-core machine): the flat phase passed (forecast error 5%,
# no scale-out); during the ramp the workers' 1 s tps readings jumped between about 220 and 670 per worker from
# one sample to the next (pgbench itself ran every segment, up to 800 tps), the model's one-step error rose to
# 85%, above the 25% gate, so no forecast was used and no scale-out was decided (nor by the reactive rule: the
# readings never stayed above 300 for scale_out_for). It stays parked until the metric is smoothed at the source.
# A predictive policy scales out ahead of a rising load. pgbench runs read-write on a distributed
# table at 100 transactions/s for 310 s (history for the forecast: at a 1 s sample interval its
# buckets are 12 s and it needs 25 of them), then its rate ramps up by 40/s every 10 s. The policy
# watches the workers' average tps (commits + rollbacks per second; a 1 s interval because backends
# publish their counters about once a second) with a threshold of 300/s and
# autoscale.forecast_lead_time = 60 s: the scale-out must start while the load (the last 12 s of
# samples) is still below 300, and the decision event must say that the forecast crosses 300 within
# the lead time.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "predictive policy: scale-out under a ramping pgbench load before it reaches the threshold"
make_cluster 2 1
standby=$(node_port 3)
make_kv 8 100000
script=$(kv_rw_script 100000)

set_gucs 0 autoscale.mode act autoscale.sample_interval 1s autoscale.forecast_lead_time 60s
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby offered to the pool"
q 0 "SELECT autoscale.set_policy('ramp', metric => 'tps', aggregate => 'avg', scale_out_above => 300,
       scale_in_below => 1, scale_in_for => '1 hour', min_workers => 2, max_workers => 3, predictive => true)" >/dev/null

# the load: 31 segments of 10 s at 100/s, then +40/s every 10 s up to 900/s
log="$CLUSTER_DIR/ramp.out"
rm -f "$CLUSTER_DIR/stop.ramp" "$log"
(
  for r in $(for _ in $(seq 31); do echo 100; done) $(seq 140 40 900); do
    as_pg pgbench -h 127.0.0.1 -p "$(node_port 0)" -U postgres -n -c 8 -j 2 -R "$r" -T 10 -f "$script" postgres \
      >>"$log" 2>&1 || echo "pgbench exited with status $?" >>"$log"
    [ -e "$CLUSTER_DIR/stop.ramp" ] && break
  done
) &
ramp=$!
trap 'touch "$CLUSTER_DIR/stop.ramp"; kill $ramp 2>/dev/null || true; stop_all' EXIT
t0=$(date +%s)

sleep 300
echo "after 300 s at 100/s: $(q 0 "SELECT current_value, decision, forecast, forecast_note FROM autoscale.explain()")"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'scale_out'")" 0 "no scale-out while the load is flat"

wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_out')" 300 || { dump_state 0; false; } ||
  fail "no scale_out within 600 s (explain: $(q 0 "SELECT current_value, decision, forecast_note, reasons FROM autoscale.explain()"))"
t_out=$(date +%s)
echo "scale_out started $(( t_out - t0 )) s after the load began ($(( t_out - t0 - 310 )) s into the ramp)"
assert_eq "$(q 0 "SELECT requested_by FROM autoscale.operations WHERE kind = 'scale_out'")" policy "started by the policy"
assert_contains "$(q 0 "SELECT reason FROM autoscale.operations WHERE kind = 'scale_out'")" "forecast to cross 300" \
  "the operation's reason is the forecast"
event="SELECT detail FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'scale out from 2 to 3%' ORDER BY id LIMIT 1"
q 0 "SELECT at::time, message FROM autoscale.events WHERE kind = 'decision' ORDER BY id LIMIT 3"
assert_contains "$(q 0 "SELECT message FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'scale out from 2 to 3%' ORDER BY id LIMIT 1")" \
  "a scale-out takes 1m here (autoscale.forecast_lead_time)" "the decision event says why: the forecast and the lead time"
value=$(q 0 "SELECT round((d -> 'policies' -> 0 ->> 'current')::numeric, 1) FROM ($event) e(d)")
# the load as the forecast sees it: the workers' average tps over the 12 s before the decision
# (single 1 s samples jump with the moments backends publish their counters)
decided=$(q 0 "SELECT at FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'scale out from 2 to 3%' ORDER BY id LIMIT 1")
load_12s="SELECT round(avg(s.tps)::numeric, 1) FROM autoscale.node_samples s
           WHERE NOT s.is_coordinator AND s.reachable AND s.sampled_at > %s - interval '12 s' AND s.sampled_at <= %s"
# shellcheck disable=SC2059
before=$(q 0 "$(printf "$load_12s" "'$decided'::timestamptz" "'$decided'::timestamptz")")
echo "at the decision: the latest sample ${value}/s, the last 12 s ${before}/s per worker"
assert_true "$(q 0 "SELECT $before < 300")" "the load was still below 300/s per worker when the scale-out was decided ($before)"
crossed=$(q 0 "SELECT min(w.sampled_at) FROM autoscale.worker_count w
                WHERE w.sampled_at > '$decided'::timestamptz - interval '5 min'
                  AND ($(printf "$load_12s" "w.sampled_at" "w.sampled_at")) >= 300")
echo "the 12 s load first reached 300/s per worker at: ${crossed:-not before the new worker took load}; decided at $decided"
[ -z "$crossed" ] || assert_true "$(q 0 "SELECT '$crossed'::timestamptz > '$decided'::timestamptz")" "the load reached 300/s after the decision"
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
