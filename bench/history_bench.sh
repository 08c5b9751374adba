#!/usr/bin/env bash
# The compact node history (prints figures; asserts nothing). One server, no Citus needed:
#   - bytes per node-sample of autoscale.node_history (table, TOAST and indexes) for SAMPLES samples of
#     NODES nodes with busy, varied values (CPU 0-100% to 0.01, rates in the thousands, sizes in GB, a
#     mean statement time), written through autoscale.record_node_samples() as the sampler writes them;
#   - the worker_count row each sample writes too;
#   - the same samples in the 0.4.0 layout (a row per node per sample, table and its two indexes);
#   - the 0.5.0 update's conversion of that old table, per sample and per node row;
#   - reading through the view autoscale.node_samples: one node's rows over the whole history (a
#     dashboard panel's shape) and the latest sample of every node (autoscale.latest_node_load).
#   SAMPLES (default 17280: a day at 5 s), NODES (default 33: a coordinator and 32 workers).
# Needs this tree's build installed (scripts/setup.sh); port 9950; stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER_DIR=${BENCH_CLUSTER_DIR:-/tmp/autoscale-history-bench} BASE_PORT=${BENCH_BASE_PORT:-9950} SAMPLE_INTERVAL=1h
. pg_test/lib.sh
SAMPLES=${SAMPLES:-17280}
NODES=${NODES:-33}
trap stop_all EXIT

stop_all
init_node 0 citus_autoscale
start_node 0
q 0 "CREATE EXTENSION citus_autoscale" >/dev/null
set_gucs 0 autoscale.worker_enabled off
echo "$("$PGBIN/pg_config" --version), $SAMPLES samples of $NODES nodes"

ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }

# the samples in the 0.4.0 layout: a row per node per sample, with its counters
q 0 "CREATE TABLE public.old_samples (
       sample_id bigint NOT NULL, sampled_at timestamptz NOT NULL, nodeid int, nodename text NOT NULL,
       nodeport int NOT NULL, is_coordinator boolean NOT NULL, reachable boolean NOT NULL, error text,
       cpu_busy_pct real, load1 real, load5 real, load15 real, mem_used_pct real, disk_used_pct real,
       disk_free_bytes bigint, connections int, active_connections int, commits_per_sec real, rollbacks_per_sec real,
       database_size bigint, shard_count int, shard_bytes bigint, node_time double precision,
       cpu_busy_seconds double precision, cpu_capacity_seconds double precision, cpu_cores real, xact_commit bigint,
       xact_rollback bigint, data_node boolean, shard_load double precision, cache_hit_ratio real,
       replication_lag bigint, tps real, connection_saturation real, mean_statement_ms real, blks_hit bigint,
       blks_read bigint, stmt_calls bigint, stmt_total_ms double precision);
     SELECT setseed(0.42);
     INSERT INTO public.old_samples
     SELECT -s, now() - make_interval(secs => 5 * s), n, '10.0.' || (n / 200) || '.' || (n % 200 + 10), 5432,
            n = 1, true, NULL,
            (random() * 100)::real, (random() * 8)::real, (random() * 8)::real, (random() * 8)::real,
            (40 + random() * 50)::real, (30 + random() * 40)::real, (1e11 + random() * 1e10)::bigint,
            (20 + random() * 180)::int, (random() * 40)::int, (random() * 5000)::real, (random() * 5)::real,
            (9e9 + random() * 1e9)::bigint, 96 + (random() * 4)::int, (8e9 + random() * 1e9)::bigint,
            extract(epoch FROM now()) + 5 * s, 1e6 + s * 3.7, 4e6 + s * 20, 4,
            (1e9 + s * 9000)::bigint, (1e6 + s * 4)::bigint, true, random() * 3000, (95 + random() * 5)::real,
            NULL, (random() * 5000)::real, (random() * 100)::real, (random() * 2)::real,
            (1e10 + s * 90000)::bigint, (1e8 + s * 900)::bigint, (1e9 + s * 9000)::bigint, 1e8 + s * 3000.5
       FROM generate_series(1, $SAMPLES) s, generate_series(1, $NODES) n;
     CREATE INDEX ON public.old_samples (sampled_at);
     CREATE INDEX ON public.old_samples (nodename, nodeport, sampled_at DESC)" >/dev/null
q 0 "VACUUM ANALYZE public.old_samples" >/dev/null
old_bytes=$(q 0 "SELECT pg_total_relation_size('public.old_samples')")

# the 0.5.0 update's conversion (the statement of sql/citus_autoscale--0.4.0--0.5.0.sql), timed
convert_ms=$(ms q 0 "DO \$convert\$
DECLARE r record;
BEGIN
  FOR r IN SELECT o.sample_id, pg_catalog.jsonb_agg(pg_catalog.to_jsonb(o)) AS nodes
             FROM public.old_samples o
            GROUP BY o.sample_id
            ORDER BY o.sample_id
  LOOP
    PERFORM autoscale.record_node_samples(r.nodes, latest => false);
  END LOOP;
END \$convert\$")
q 0 "VACUUM ANALYZE autoscale.node_history" >/dev/null
new_bytes=$(q 0 "SELECT pg_total_relation_size('autoscale.node_history')")
fixed=$(q 0 "SELECT pg_total_relation_size('autoscale.history_nodes') + pg_total_relation_size('autoscale.node_latest')")
rows=$(q 0 "SELECT count(*) FROM autoscale.node_samples WHERE sample_id < 0")
raw=$(q 0 "SELECT round(avg(octet_length(nodes)) / $NODES, 1) FROM autoscale.node_history WHERE sample_id < 0")
stored=$(q 0 "SELECT round(avg(pg_column_size(nodes)) / $NODES, 1) FROM autoscale.node_history WHERE sample_id < 0")
# the worker_count row every sample also writes
q 0 "INSERT INTO autoscale.worker_count (sampled_at, sample_id, worker_count, reachable_workers, unreachable_workers,
                                         inactive_workers, driver, sample_ms)
     SELECT now() - make_interval(secs => 5 * s), -s, $NODES - 1, $NODES - 1, 0, 0, 'worker', random() * 60
       FROM generate_series(1, $SAMPLES) s" >/dev/null
q 0 "VACUUM ANALYZE autoscale.worker_count" >/dev/null
wc_bytes=$(q 0 "SELECT pg_total_relation_size('autoscale.worker_count') / count(*)::float8 FROM autoscale.worker_count")

one_node_ms=$(ms q 0 "SELECT count(*), avg(cpu_busy_pct) FROM autoscale.node_samples WHERE nodename = '10.0.0.15'")
latest_ms=$(ms q 0 "SELECT count(*) FROM autoscale.latest_node_load")

awk -v wc="$wc_bytes" -v s="$SAMPLES" -v n="$NODES" -v ob="$old_bytes" -v nb="$new_bytes" -v f="$fixed" -v rows="$rows" \
    -v raw="$raw" -v st="$stored" -v c="$convert_ms" -v one="$one_node_ms" -v lat="$latest_ms" 'BEGIN {
  printf "0.4.0 layout (a row per node):   %8.1f bytes per node-sample, %7.1f MB a day at 32 workers\n", ob / (s * n), ob / (s * n) * 33 * 17280 / 1e6
  printf "0.5.0 node_history:              %8.1f bytes per node-sample, %7.1f MB a day at 32 workers, %7.1f at 64\n", nb / (s * n), nb / (s * n) * 33 * 17280 / 1e6, nb / (s * n) * 65 * 17280 / 1e6
  printf "  and worker_count: %.1f bytes per sample; both: %.1f MB a day at 32 workers, %.1f at 64\n", wc, (nb / (s * n) * 33 + wc) * 17280 / 1e6, (nb / (s * n) * 65 + wc) * 17280 / 1e6
  printf "  encoded %.1f bytes per node, %.1f as stored (compressed); %d bytes that do not grow (history_nodes, node_latest)\n", raw, st, f
  printf "  node rows read back through the view: %d of %d\n", rows, s * n
  printf "0.5.0 update, conversion:        %8d ms for %d samples (%.3f ms per sample, %.1f us per node row)\n", c, s, c / s, c * 1000 / (s * n)
  printf "view, one node over the history: %8d ms (%d samples decoded)\n", one, s
  printf "view, latest_node_load:          %8d ms\n", lat
}'
