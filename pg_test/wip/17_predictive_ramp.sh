#!/usr/bin/env bash
# A predictive policy scales out ahead of a rising pgbench load, while the load is still below the threshold.
# The load: pgbench runs read-write transactions on a distributed table, each followed by one row in a local
# log table. The policy reads the load as a custom metric, the log's rows per second over the last 12 s,
# counted by the database itself (tps from pg_stat_database jumps with the moments busy backends publish
# their counters, which made the model's one-step error exceed its gate: pg_test/wip/20_predictive_ramp.sh).
# Sampling every 0.5 s, the forecast's buckets are 6 s and it needs 25 of them. pgbench runs at 100/s until
# explain() shows a usable forecast (a wait on a condition, not a fixed sleep), then ramps up by 40/s every
# 10 s. The threshold is 400/s (this machine's pgbench tops out near 600/s) and autoscale.forecast_lead_time
# is 2 min: the scale-out must start while the 12 s rate is still below 400, with a reason and a decision
# event that say the forecast crosses 400 within the lead time.
# NOT IN THE SUITE (pg_test/wip), run by hand: bash pg_test/wip/17_predictive_ramp.sh. Two runs on this shared
# 2-core machine (2026-11-26): with a threshold of 600/s and a 60 s lead time it passed, but only just: the
# scale-out started 132 s into the ramp at 586.9/s, when pgbench had levelled off near the machine's ~600/s and the
# model's error had dropped back under its gate. With 400/s and a 2 min lead time (this version) it failed: from
# the start of the ramp the model's one-step error was 26-30% of the mean load, above the 25% gate, so no forecast
# was used and the load passed 400/s with no scale-out (the trend lags the step from flat to ramp, and pgbench's
# 10 s segments arrive in bursts when the machine is saturated). Not reliable yet.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "predictive policy: scale-out under a ramping pgbench load before it reaches the threshold"
make_cluster 2 1
standby=$(node_port 3)
make_kv 8 100000
q 0 "CREATE TABLE public.ramp_log (at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp());
     CREATE INDEX ON public.ramp_log (at);
     GRANT SELECT ON public.ramp_log TO autoscale_metrics" >/dev/null
script="$CLUSTER_DIR/ramp.sql"
cat >"$script" <<'SQL'
\set id random(1, 100000)
BEGIN;
UPDATE kv SET v = v + 1 WHERE id = :id;
SELECT v FROM kv WHERE id = :id;
END;
INSERT INTO public.ramp_log DEFAULT VALUES;
SQL
chown postgres "$script"
rate_sql="SELECT pg_catalog.count(*) / 12.0 FROM public.ramp_log WHERE at > pg_catalog.now() - interval '12 seconds'"

set_gucs 0 autoscale.mode act autoscale.sample_interval 500ms autoscale.forecast_lead_time 120s autoscale.rebalance_settle 1s
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby offered to the pool"
q 0 "SELECT autoscale.set_policy('ramp', metric => 'custom', custom_sql => \$\$$rate_sql\$\$,
       scale_out_above => 400, scale_in_below => -1, scale_in_for => '1 hour', min_workers => 2, max_workers => 3,
       predictive => true)" >/dev/null

# the load: 100/s until the file go exists, then +40/s every 10 s up to 700/s, until the file stop exists
log="$CLUSTER_DIR/ramp.out"
rm -f "$CLUSTER_DIR/ramp.go" "$CLUSTER_DIR/ramp.stop" "$log"
pgb() {
  as_pg pgbench -h 127.0.0.1 -p "$(node_port 0)" -U postgres -n -c 8 -j 2 -R "$1" -T "$2" -f "$script" postgres \
    >>"$log" 2>&1 || echo "pgbench exited with status $?" >>"$log"
}
(
  while [ ! -e "$CLUSTER_DIR/ramp.go" ] && [ ! -e "$CLUSTER_DIR/ramp.stop" ]; do pgb 100 5; done
  for r in $(seq 140 40 700); do
    [ -e "$CLUSTER_DIR/ramp.stop" ] && break
    pgb "$r" 10
  done
) &
ramp=$!
trap 'touch "$CLUSTER_DIR/ramp.stop"; wait $ramp 2>/dev/null || true; stop_all' EXIT

# history for the forecast at the flat rate
wait_for 0 "SELECT forecast IS NOT NULL FROM autoscale.explain()" 400 ||
  fail "no usable forecast after 400 s at 100/s: $(q 0 "SELECT current_value, forecast_note FROM autoscale.explain()")"
echo "flat load: $(q 0 "SELECT current_value, decision, forecast, model_error, forecast_note FROM autoscale.explain()")"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'scale_out'")" 0 "no scale-out while the load is flat"
touch "$CLUSTER_DIR/ramp.go"
t0=$(date +%s)

wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_out')" 300 ||
  fail "no scale_out within 300 s of the ramp (explain: $(q 0 "SELECT current_value, decision, forecast_note, reasons FROM autoscale.explain()"))"
echo "scale_out started $(( $(date +%s) - t0 )) s into the ramp"
touch "$CLUSTER_DIR/ramp.stop"
assert_eq "$(q 0 "SELECT requested_by FROM autoscale.operations WHERE kind = 'scale_out'")" policy "started by the policy"
assert_contains "$(q 0 "SELECT reason FROM autoscale.operations WHERE kind = 'scale_out'")" "forecast to cross 400" \
  "the operation's reason is the forecast"
decision="SELECT %s FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'scale out from 2 to 3%%' ORDER BY id LIMIT 1"
# shellcheck disable=SC2059
assert_contains "$(q 0 "$(printf "$decision" message)")" "a scale-out takes 2m here (autoscale.forecast_lead_time)" \
  "the decision event says why: the forecast and the lead time"
# shellcheck disable=SC2059
decided=$(q 0 "$(printf "$decision" at)")
at_decision=$(q 0 "SELECT round(count(*) / 12.0, 1) FROM public.ramp_log
                    WHERE at > '$decided'::timestamptz - interval '12 seconds' AND at <= '$decided'::timestamptz")
# shellcheck disable=SC2059
echo "at the decision ($decided): the metric read $(q 0 "$(printf "$decision" "round((detail -> 'policies' -> 0 ->> 'current')::numeric, 1)")")/s, the log's 12 s rate was ${at_decision}/s"
assert_true "$(q 0 "SELECT $at_decision < 400")" "the load was below 400/s when the scale-out was decided ($at_decision)"
wait "$ramp" || true
peak=$(q 0 "SELECT round(max(n) / 12.0, 1) FROM (SELECT count(*) OVER (ORDER BY at RANGE BETWEEN interval '12 seconds' PRECEDING AND CURRENT ROW) n
                                                 FROM public.ramp_log WHERE at <= '$decided'::timestamptz + interval '90 seconds') s")
echo "the highest 12 s rate up to 90 s after the decision: ${peak}/s"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'scale_out'" 180 || { dump_state 0; false; } ||
  fail "scale_out did not finish within 180 s"
assert_eq "$(q 0 "SELECT status || ' ' || nodeport FROM autoscale.operations WHERE kind = 'scale_out'")" "succeeded $standby" \
  "scale_out succeeded with the standby"
echo "scale_out took $(q 0 "SELECT round(extract(epoch FROM finished_at - started_at)) FROM autoscale.operations WHERE kind = 'scale_out'") s"
assert_eq "$(grep -c 'pgbench exited with status' "$log" || true)" 0 "every pgbench segment ran to its end"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind IN ('operation_failed', 'error')")" 0 "no failure or error events"
assert_true "$(q 0 "SELECT count(*) > 0 FROM autoscale.node_samples_1min WHERE nodename = 'cluster'")" "the tick filled the 1-minute rollups"
