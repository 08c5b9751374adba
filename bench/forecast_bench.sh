#!/usr/bin/env bash
# What a predictive policy's forecast costs per tick (prints figures; asserts nothing):
#   1. the one-shot forecast fit the extension makes per predictive policy and tick (release build of
#      core/examples/forecast_cost.rs; no PostgreSQL): on the 1-minute rollups of the cycle window and
#      the recent samples, with and without the cycle search (autoscale.forecast_cycle_window), the
#      search made and reused;
#   2. with PGBIN (a PostgreSQL whose lib has this tree's build; one server, no Citus needed, port
#      9960): autoscale.explain() in one session, which fits the forecast as a tick does, on 3 days of
#      1-minute rollups and 95 minutes of samples of 2 workers, a jump every two hours: a reactive
#      policy, the same policy predictive without the cycle search, and with it (the first call
#      searches, the next ones reuse the search).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p autoscale_core --example forecast_cost "$@"
[ -n "${PGBIN:-}" ] || { echo "PGBIN not set: the explain() figures are skipped"; exit 0; }
CLUSTER_DIR=${BENCH_CLUSTER_DIR:-/tmp/autoscale-forecast-bench} BASE_PORT=${BENCH_BASE_PORT:-9960} SAMPLE_INTERVAL=1h
. pg_test/lib.sh
trap stop_all EXIT
stop_all
init_node 0 citus_autoscale
start_node 0
q 0 "CREATE EXTENSION citus_autoscale" >/dev/null
set_gucs 0 autoscale.worker_enabled off
echo
echo "$("$PGBIN/pg_config" --version): autoscale.explain() with one policy, ms per call (median of 15 after the first)"
q 0 "INSERT INTO autoscale.node_samples_1min (bucket, nodename, nodeport, samples, workers, data_nodes, cpu_busy_pct_avg)
       SELECT now() + make_interval(mins => m), 'cluster', 0, 12, 2, 2,
              25 * (1 + 0.1 * ((hashint4(m) & 1023) / 1023.0 - 0.5))
                 * CASE WHEN ((m - 10) % 120 + 120) % 120 < 15 THEN 4.5 ELSE 1 END
         FROM generate_series(-3 * 24 * 60, -96) m;
     INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers,
                                         inactive_workers, driver)
       SELECT now() - make_interval(secs => (1140 - i) * 5.0), -i, 2, 2, 0, 0, 'bench' FROM generate_series(1, 1140) i;
     INSERT INTO autoscale.node_samples (sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable,
                                         cpu_busy_pct)
       SELECT -i, now() - make_interval(secs => (1140 - i) * 5.0), w, 'w' || w, 5432, false, true,
              20 * (1 + 0.05 * sin(i * 1.3)) + CASE w WHEN 3 THEN 10 ELSE 0 END
         FROM generate_series(1, 1140) i, generate_series(2, 3) w" >/dev/null
as_pg psql -X -q -At -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d postgres <<'SQL'
SET client_min_messages = notice;
SET autoscale.sample_interval = '5s';
SET autoscale.forecast_lead_time = '12min';
CREATE FUNCTION pg_temp.timed(what text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; first float8; ms float8[] := '{}'; note text;
BEGIN
  FOR i IN 0..15 LOOP
    t0 := clock_timestamp();
    SELECT coalesce(forecast_note, decision) INTO note FROM autoscale.explain();
    IF i = 0 THEN first := 1000 * extract(epoch FROM clock_timestamp() - t0);
    ELSE ms := ms || (1000 * extract(epoch FROM clock_timestamp() - t0))::float8; END IF;
  END LOOP;
  RAISE NOTICE '%  first %  then %  (%)', rpad(what, 36), to_char(first, '9990.0'),
    to_char((SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x), '9990.0'),
    left(note, 110);
END $$;
DO $$ BEGIN
  PERFORM autoscale.set_policy('cpu', scale_out_above => 70, scale_in_below => 10, min_workers => 1);
  PERFORM pg_temp.timed('reactive');
  PERFORM autoscale.set_policy('cpu', scale_out_above => 70, scale_in_below => 10, min_workers => 1, predictive => true);
  SET LOCAL autoscale.forecast_cycle_window = 0;
  PERFORM pg_temp.timed('predictive, no cycle search');
  RESET autoscale.forecast_cycle_window;
  PERFORM pg_temp.timed('predictive, cycle search (3 days)');
END $$;
SQL
