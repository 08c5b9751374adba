#!/usr/bin/env bash
# A rise that recurred on the earlier days of a real trace: the predictive policy, its forecast
# finding the trace's 2-hour cycle in the history, scales out before the live pgbench load crosses
# the threshold, and the decision event, the operation and explain() say why.
#
# The trace is the Twitter sample stream of August 2021 (bench/traces/README.md: where it comes
# from and how convert.py makes twitter21.counts.xz; read from CITUS_AUTOSCALE_TRACES). Its rises
# (3-5x within a minute, for 10-20 minutes) come at nearly the same minute every two hours.
# pg_test/traces/recurring_rise.py picks the first rise, 3 days into the trace, that recurred at the
# same minute of the period in at least 8 of the 12 periods before it and follows 104 calm minutes,
# and writes the trace as ratios to the load before it.
#
# Real time, not compressed: a 2-hour period compressed to fit in half an hour is shorter than the
# 1-minute rollups the forecast searches, and a rise of a few seconds is shorter than a scale-out.
# So, as in 21_predictive_ramp, the days before are written into the history and the rise itself
# is live: pgbench runs 30-s segments at 60/s x the trace's ratio from 9 minutes before the rise;
# the scenario measures the workers' tps at the base rate, then writes the 3 days before as the
# cluster's 1-minute rollups (its tps x the trace's ratio per minute) and the last 95 minutes as
# samples (per 5 s). The threshold is 2 x the measured level: the rise crosses it, the load before
# it does not. The same policy without the cycle search holds.
#
# About 13 minutes: it runs when TRACE_SCENARIOS=1 (scripts/test.sh passes it through) and the
# trace is there; otherwise it says so in one line.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "a rise that recurred in a real trace: predictive scale-out before the live load crosses the threshold"
trace="${CITUS_AUTOSCALE_TRACES:-/var/cache/citus_autoscale/traces}/twitter21.counts.xz"
if [ "${TRACE_SCENARIOS:-0}" != 1 ]; then
  echo "a 13-minute scenario: it runs with TRACE_SCENARIOS=1: skipped"; exit 0
fi
if [ ! -f "$trace" ]; then
  echo "no $trace (bench/traces/README.md says how to make it): skipped"; exit 0
fi
make_cluster 2 1
standby=$(node_port 3)
make_kv 8 100000
script=$(kv_rw_script 100000)
win="$CLUSTER_DIR/trace"
rm -rf "$win"; mkdir -p "$win"
python3 "$(dirname "$0")/../traces/recurring_rise.py" "$trace" "$win"
# rise_minute, rise_height, rise_peak, recurred, trace_day, trace_time
. "$win/info"
echo "the rise: day $trace_day $trace_time UTC of the trace, ${rise_height}x the load before it (peak ${rise_peak}x),"
echo "  at the same minute of the 2-hour period in $recurred of the 12 periods before; $rise_minute minutes after pgbench starts"
set_gucs 0 autoscale.mode act autoscale.sample_interval 5s autoscale.forecast_lead_time 10min \
  autoscale.forecast_cycle_window 0
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby offered to the pool"

# the live load: 30-s segments at 60/s x the trace's ratio
base_rate=60
awk -v b=$base_rate '{ x = $1 * b; if (x < 1) x = 1; printf "%.1f\n", x }' "$win/live" >"$CLUSTER_DIR/rates"
rate_segments_start "$script" "$CLUSTER_DIR/rates"
trap 'rate_segments_stop; stop_all' EXIT
t_load=$(q 0 "SELECT now()")

# the measured level: the workers' average tps over 6 samples at the base rate
measure_worker_tps "$t_load"
level=$LEVEL first=$FIRST
threshold=$(q 0 "SELECT ceil(2 * $level)")
echo "measured: the workers' tps ${level}/s on average (pgbench at ${base_rate}/s); threshold ${threshold}/s"
assert_true "$(q 0 "SELECT $level > 10")" "pgbench loads the workers"

# the history before: the 95 minutes before the first measured sample as samples every 5 s (copies
# of its rows, the workers' tps = level x the trace's ratio), the 3 days before those as the
# cluster's 1-minute rollups
samples="{$(paste -sd, "$win/samples")}"
minutes="{$(paste -sd, "$win/minutes")}"
n=$(wc -l <"$win/samples")
seed_started=$(date +%s)
q 0 "DELETE FROM autoscale.node_samples WHERE sample_id < $first;
     DELETE FROM autoscale.worker_count WHERE sample_id < $first;
     DELETE FROM autoscale.node_samples_1min;
     INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers,
                                         inactive_workers, driver)
       SELECT w.sampled_at - make_interval(secs => 5 * k), -k, w.worker_count, w.reachable_workers,
              w.unreachable_workers, w.inactive_workers, 'seed'
         FROM autoscale.worker_count w, generate_series(1, $n) k WHERE w.sample_id = $first;
     INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable,
                                         data_node, tps)
       SELECT -k, s.sampled_at - make_interval(secs => 5 * k), s.nodeid, s.nodename, s.nodeport, s.is_coordinator,
              s.reachable, s.data_node,
              CASE WHEN s.is_coordinator THEN s.tps ELSE $level * r.ratio END
         FROM autoscale.node_samples s,
              unnest('$samples'::float8[]) WITH ORDINALITY AS r(ratio, j), LATERAL (SELECT $n + 1 - r.j AS k) kk
        WHERE s.sample_id = $first;
     INSERT INTO autoscale.node_samples_1min (bucket, nodename, nodeport, samples, workers, data_nodes, tps_avg, tps_max)
       SELECT date_trunc('minute', w.sampled_at) - interval '3 days' + make_interval(mins => (r.j - 1)::int),
              'cluster', 0, 12, 2, 2, $level * r.ratio, $level * r.ratio
         FROM autoscale.worker_count w, unnest('$minutes'::float8[]) WITH ORDINALITY AS r(ratio, j)
        WHERE w.sample_id = $first" >/dev/null
echo "history written in $(( $(date +%s) - seed_started )) s: $(q 0 "SELECT count(*) || ' samples from ' || min(sampled_at)::time || ', ' FROM autoscale.worker_count")$(q 0 "SELECT count(*) || ' rollup minutes from ' || min(bucket) FROM autoscale.node_samples_1min WHERE nodename = 'cluster'")"

policy="SELECT autoscale.set_policy('rise', metric => 'tps', aggregate => 'avg', scale_out_above => $threshold,
          scale_in_below => 1, scale_out_for => '5 min', scale_in_for => '1 hour', min_workers => 2, max_workers => 3,
          predictive => true)"
# without the cycle search the forecast sees a calm load: it holds
q 0 "$policy" >/dev/null
read -r decision note < <(q 0 "SELECT decision, forecast_note FROM autoscale.explain()" | tr '|' ' ')
echo "without the cycle search: $decision; $note"
assert_eq "$decision" hold "without the cycle search the predictive policy holds"
assert_not_contains "$note" "cycle" "and its forecast has no cycle"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "no operation"

# with it (the default: 3 days): the next tick scales out
q 0 "ALTER SYSTEM RESET autoscale.forecast_cycle_window" >/dev/null
q 0 "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
echo "explain: $(q 0 "SELECT round(current_value::numeric, 1), decision, round(forecast::numeric, 1), horizon, round(model_error::numeric, 2), forecast_note FROM autoscale.explain()")"
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_out')" 60 || { dump_state 0; false; } ||
  fail "no scale_out within 60 s (explain: $(q 0 "SELECT current_value, decision, forecast_note, reasons FROM autoscale.explain()"))"
assert_eq "$(q 0 "SELECT requested_by FROM autoscale.operations WHERE kind = 'scale_out'")" policy "started by the policy"
reason=$(q 0 "SELECT reason FROM autoscale.operations WHERE kind = 'scale_out'")
echo "reason: $reason"
assert_contains "$reason" "forecast to cross $threshold in" "the operation's reason is the forecast"
assert_contains "$reason" "a 2h cycle (strength" "found as a 2-hour cycle"
assert_contains "$reason" "the cycle helps: its one-step error" "that forecasts better than without it"
assert_contains "$reason" "scale out 2 -> 3 ahead of it" "and what it does about it"

decision="FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'scale out from 2 to 3 workers:%' ORDER BY id LIMIT 1"
message=$(q 0 "SELECT message $decision")
assert_contains "$message" "a 2h cycle (strength" "the decision event names the cycle"
minutes_ahead=$(sed -n "s/.*forecast to cross $threshold in \([0-9]*\)m.*/\1/p" <<<"$message" | head -1)
decided=$(q 0 "SELECT at $decision")
since_load=$(q 0 "SELECT round(extract(epoch FROM '$decided'::timestamptz - '$t_load'::timestamptz))")
echo "decided ${since_load} s after pgbench started; the forecast crosses $threshold in ${minutes_ahead}m (the rise: ${rise_minute}m after the start)"
assert_true "$(q 0 "SELECT abs(${minutes_ahead:-99} * 60 + $since_load - $rise_minute * 60) <= 150")" \
  "the forecast places the crossing at the rise (within 2.5 minutes)"
current=$(q 0 "SELECT round((detail -> 'policies' -> 0 ->> 'current')::numeric, 1) $decision")
assert_true "$(q 0 "SELECT $current < $threshold")" "the policy's value was below scale_out_above when it scaled out ($current)"

# the rise, live: the first sample whose workers' tps, on the 2 workers the cluster had, is above the threshold
crossed="SELECT w.sampled_at FROM autoscale.worker_count w JOIN autoscale.node_samples s USING (sample_id)
          WHERE w.sample_id > 0 AND NOT s.is_coordinator AND s.reachable
          GROUP BY w.sample_id, w.sampled_at HAVING sum(s.tps) > 2 * $threshold ORDER BY w.sampled_at LIMIT 1"
left=$(q 0 "SELECT greatest(1, ceil(extract(epoch FROM '$t_load'::timestamptz + make_interval(mins => $rise_minute + 4) - now())))::int")
wait_for 0 "SELECT EXISTS ($crossed)" "$left" ||
  fail "the live rise did not cross $threshold per worker (on 2 workers) within ${rise_minute}m + 4m of the start"
at=$(q 0 "$crossed")
lead=$(q 0 "SELECT round(extract(epoch FROM '$at'::timestamptz - '$decided'::timestamptz))")
echo "the live load crossed $threshold per worker (on 2 workers) at $at: ${lead} s after the scale-out was decided"
assert_true "$(q 0 "SELECT $lead > 0")" "the scale-out started before the load crossed the threshold"
finished=$(q 0 "SELECT coalesce(round(extract(epoch FROM '$at'::timestamptz - finished_at))::text, 'not yet') FROM autoscale.operations WHERE kind = 'scale_out'")
echo "the scale-out finished ${finished} s before the crossing"

wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'scale_out'" 240 || { dump_state 0; false; } ||
  fail "scale_out did not finish within 240 s"
assert_eq "$(q 0 "SELECT status || ' ' || nodeport FROM autoscale.operations WHERE kind = 'scale_out'")" "succeeded $standby" \
  "scale_out succeeded with the standby"
rate_segments_stop
trap stop_all EXIT
rate_segments_check
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"
