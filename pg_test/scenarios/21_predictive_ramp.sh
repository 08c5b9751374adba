#!/usr/bin/env bash
# A predictive policy scales out under a ramping pgbench load while the load is still below the
# threshold, and the decision event, the operation and explain() say why: the forecast crosses it
# within the time a scale-out takes.
#
# Deterministic: a real ramp needs half an hour of history before the model may be used (at a 5 s
# sample interval its buckets are 1 minute, the trend is fitted over 30 of them and its error is
# measured on the buckets after the first 15), and on a shared machine its timing is luck. So the
# scenario measures the real load of a pgbench run first, then writes the 35 minutes before it into
# the history as a ramp would have recorded them: the workers' tps rising linearly from a tenth of
# the measured level to it (2.6% of it a minute), with a small deterministic wobble. The threshold
# is 1.4 x the measured level, so the forecast crosses it about 16 minutes ahead (0.4 / 0.0257),
# inside autoscale.forecast_lead_time = 20 min, while the measured load is 30% below it (a margin for
# a shared machine, where pgbench catches up in bursts after a stall). pgbench
# keeps ramping at the same rate meanwhile. The same policy without predictive holds.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "predictive policy: scale-out under a ramping pgbench load before it reaches the threshold"
make_cluster 2 1
standby=$(node_port 3)
make_kv 8 100000
script=$(kv_rw_script 100000)
set_gucs 0 autoscale.mode act autoscale.sample_interval 5s autoscale.forecast_lead_time 20min
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby offered to the pool"

# the load: 30 s segments from 200 transactions/s, each 2.6% of 200 a minute higher (1.3% per segment)
awk 'BEGIN { for (s = 0; s < 1000; s++) printf "%.1f\n", 200 * (1 + 0.0129 * s) }' >"$CLUSTER_DIR/rates"
rate_segments_start "$script" "$CLUSTER_DIR/rates"
trap 'rate_segments_stop; stop_all' EXIT
t_load=$(q 0 "SELECT now()")

# the measured load: the workers' average tps over 6 samples
measure_worker_tps "$t_load"
level=$LEVEL first=$FIRST
threshold=$(q 0 "SELECT ceil(1.4 * $level)")
echo "measured: the workers' tps ${level}/s on average (pgbench at 200/s); threshold ${threshold}/s"
assert_true "$(q 0 "SELECT $level > 20")" "pgbench loads the workers"

# the 35 minutes before the first measured sample, as a ramp would have recorded them: a copy of
# that sample's rows every 5 s, the workers' tps 0.1 x level 35 min earlier rising linearly to level
q 0 "DELETE FROM autoscale.node_samples WHERE sample_id < $first;
     DELETE FROM autoscale.worker_count WHERE sample_id < $first;
     INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers,
                                         inactive_workers, driver)
       SELECT w.sampled_at - make_interval(secs => 5 * k), -k, w.worker_count, w.reachable_workers,
              w.unreachable_workers, w.inactive_workers, 'seed'
         FROM autoscale.worker_count w, generate_series(1, 420) k WHERE w.sample_id = $first;
     INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable,
                                         data_node, tps)
       SELECT -k, s.sampled_at - make_interval(secs => 5 * k), s.nodeid, s.nodename, s.nodeport, s.is_coordinator,
              s.reachable, s.data_node,
              CASE WHEN s.is_coordinator THEN s.tps
                   ELSE $level * (1 - 0.9 * k / 420.0) * (1 + 0.04 * sin(1.7 * k + s.nodeport)) END
         FROM autoscale.node_samples s, generate_series(1, 420) k WHERE s.sample_id = $first" >/dev/null
echo "history: $(q 0 "SELECT count(*) || ' samples from ' || min(sampled_at)::time || ' to ' || max(sampled_at)::time FROM autoscale.worker_count")"

policy="SELECT autoscale.set_policy('ramp', metric => 'tps', aggregate => 'avg', scale_out_above => $threshold,
          scale_in_below => 1, scale_out_for => '5 min', scale_in_for => '1 hour', min_workers => 2, max_workers => 3"
# the reactive policy: the load is below the threshold, it holds
q 0 "$policy)" >/dev/null
assert_eq "$(q 0 "SELECT decision FROM autoscale.explain()")" hold \
  "without predictive the policy holds (current $(q 0 "SELECT round(current_value::numeric, 1) FROM autoscale.explain()"))"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "no operation"
# predictive: the next tick scales out
q 0 "$policy, predictive => true)" >/dev/null
echo "explain: $(q 0 "SELECT round(current_value::numeric, 1), decision, round(forecast::numeric, 1), horizon, round(model_error::numeric, 2), forecast_note FROM autoscale.explain()")"
# metrics() exports the forecast: the crossing within the scan, and the cycle in use (none: 0, or a period)
metrics=$(q 0 "SELECT autoscale.metrics()")
crosses=$(printf '%s\n' "$metrics" | sed -n 's/^autoscale_policy_forecast_crosses_in_seconds{policy="ramp",metric="tps"} //p')
cycle=$(printf '%s\n' "$metrics" | sed -n 's/^autoscale_policy_forecast_cycle_seconds{policy="ramp",metric="tps"} //p')
assert_true "$(q 0 "SELECT ${crosses:-'-1'} BETWEEN 0 AND 1500")" "metrics() exports the forecast crossing in ${crosses:-nothing} s"
assert_true "$(q 0 "SELECT ${cycle:-'-1'} >= 0")" "and the cycle's period (${cycle:-nothing})"
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_out')" 60 || { dump_state 0; false; } ||
  fail "no scale_out within 60 s (explain: $(q 0 "SELECT current_value, decision, forecast_note, reasons FROM autoscale.explain()"))"
assert_eq "$(q 0 "SELECT requested_by FROM autoscale.operations WHERE kind = 'scale_out'")" policy "started by the policy"
reason=$(q 0 "SELECT reason FROM autoscale.operations WHERE kind = 'scale_out'")
echo "reason: $reason"
assert_contains "$reason" "forecast to cross $threshold in" "the operation's reason is the forecast"
assert_contains "$reason" "a scale-out takes 20m here (autoscale.forecast_lead_time)" "and the lead time"
assert_contains "$reason" "scale out 2 -> 3 ahead of it" "and what it does about it"

# the decision event: when, what the policy read then, and the crossing it forecast
decision="FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'scale out from 2 to 3 workers:%' ORDER BY id LIMIT 1"
message=$(q 0 "SELECT message $decision")
assert_contains "$message" "forecast to cross $threshold in" "the decision event says the forecast crosses the threshold"
assert_contains "$message" "a scale-out takes 20m here (autoscale.forecast_lead_time)" "and how long a scale-out takes here"
minutes=$(sed -n "s/.*forecast to cross $threshold in \([0-9]*\)m.*/\1/p" <<<"$message" | head -1)
echo "the forecast crosses $threshold in ${minutes}m (the seeded ramp: about 16m)"
assert_true "$(q 0 "SELECT ${minutes:-0} BETWEEN 12 AND 19")" "the crossing is where the ramp puts it (${minutes}m)"
current=$(q 0 "SELECT round((detail -> 'policies' -> 0 ->> 'current')::numeric, 1) $decision")
decided=$(q 0 "SELECT at $decision")
latest=$(q 0 "SELECT round(avg(s.tps)::numeric, 1) FROM autoscale.node_samples s
               WHERE NOT s.is_coordinator AND s.reachable
                 AND s.sample_id = (SELECT sample_id FROM autoscale.worker_count
                                     WHERE sampled_at <= '$decided'::timestamptz ORDER BY sampled_at DESC LIMIT 1)")
echo "at the decision ($decided): the policy read ${current}/s, the latest sample ${latest}/s, threshold ${threshold}/s"
assert_true "$(q 0 "SELECT $current < $threshold")" "the policy's value was below scale_out_above when it scaled out ($current)"
assert_true "$(q 0 "SELECT $latest < $threshold")" "so was the latest sample ($latest)"
assert_true "$(q 0 "SELECT (SELECT min(w.sampled_at) FROM autoscale.worker_count w WHERE w.sample_id > 0) < '$decided'::timestamptz - interval '20 s'")" \
  "measured samples of the real load were in the history"

wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'scale_out'" 180 || { dump_state 0; false; } ||
  fail "scale_out did not finish within 180 s"
assert_eq "$(q 0 "SELECT status || ' ' || nodeport FROM autoscale.operations WHERE kind = 'scale_out'")" "succeeded $standby" \
  "scale_out succeeded with the standby"
echo "scale_out took $(q 0 "SELECT round(extract(epoch FROM finished_at - started_at)) FROM autoscale.operations WHERE kind = 'scale_out'") s"
rate_segments_stop
trap stop_all EXIT
rate_segments_check
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"
