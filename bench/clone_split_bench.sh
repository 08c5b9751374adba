#!/usr/bin/env bash
# Scale-out benchmark (prints figures; asserts nothing): time from the decision to the relieved node
# for the three scale-out paths, at each data size, with pgbench running:
#   split     - a warm clone of worker 1 (pg_basebackup -R, made before the decision: not timed) is
#               promoted and takes part of worker 1's shards (Citus 13.2 snapshot split, split_out);
#   logical serial   - an empty standby joins and a rebalance job moves shards by logical
#               replication, one move per node at a time (Citus's defaults);
#   logical parallel - the same with autoscale.parallel_transfer_colocated_shards and
#               autoscale.parallel_transfer_reference_tables on, and
#               citus.max_background_task_executors_per_node = PARALLEL_EXECUTORS.
# decision -> relief: from the operation's start (the scale_out() call: what a policy's decision
# does) to its end (the split committed, or the rebalance job finished). tps and p95 are pgbench's
# (CLIENTS clients, read-write on the distributed table, rate-limited to RATE tps) over that window.
# Per size: one cluster (coordinator, 2 workers, 1 standby), SIZE GB in a distributed table of 16
# shards; logical serial, then a scale-in back (not timed), logical parallel, scale-in, then split.
# SIZES (GB, default "0.5 1 2 4") for a quicker run: SIZES="0.5 1". Needs Citus 13.2 or later (14 too); runs
# on loopback ports BASE_PORT.. (default 9900), stops everything at the end and removes the data
# (KEEP_DATA=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
. pg_test/lib.sh
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/autoscale-bench}
BASE_PORT=${BASE_PORT:-9900}
SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-1s}
SIZES=${SIZES:-0.5 1 2 4}
PATHS=${PATHS:-serial parallel split}   # which paths to run (a subset for a quicker run)
CLIENTS=${CLIENTS:-4}
RATE=${RATE:-200}
PARALLEL_EXECUTORS=${PARALLEL_EXECUTORS:-4}
citus_installed || { citus_missing_line; exit 0; }
# the data is removed at the end (several GB per size) unless KEEP_DATA=1
trap 'pgbench_loop_stop bench 2>/dev/null; stop_all; [ "${KEEP_DATA:-0}" = 1 ] || rm -rf "$CLUSTER_DIR"' EXIT

ROW_BYTES=1000   # payload per row; the table's size on disk is about rows * (ROW_BYTES + 40)

# run_op LABEL SQL: starts an operation with SQL (returns the operation id as json ->> 'id'), waits
# for it to end, prints one result line: path, seconds decision -> relief, status, pgbench figures.
run_op() {
  local label=$1 sql=$2 op t0 t1 secs status
  op=$(q 0 "$sql ->> 'id'")
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 3600 || { dump_state 0; return 1; }
  IFS='|' read -r t0 t1 status <<<"$(q 0 "SELECT extract(epoch FROM started_at), extract(epoch FROM finished_at),
                                                kind || ' ' || status FROM autoscale.operations WHERE id = $op")"
  secs=$(echo "$t1 - $t0" | bc)
  sleep 1
  stats=$(pgbench_stats bench "${t0%.*}" "$(( ${t1%.*} + 1 ))")
  printf "  %-5s %-17s %9.1f s  %-22s %s\n" "$SIZE" "$label" "$secs" "$status" \
    "$(echo "$stats" | awk '{print "tps", $2, " failed", $6, " p95", $10, "ms"}')"
}

# scale_in_new: drain and remove the worker the last scale-out added (not timed)
scale_in_new() {
  local n op
  n=$(q 0 "SELECT nodeport FROM autoscale.standby_nodes WHERE state = 'active' ORDER BY joined_at DESC LIMIT 1")
  op=$(q 0 "SELECT autoscale.scale_in('127.0.0.1', $n, 'bench: back to 2 workers') ->> 'id'")
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 3600 || { dump_state 0; return 1; }
  q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $n)" >/dev/null
}

printf "  %-5s %-17s %11s  %-22s %s\n" "GB" "path" "to relief" "operation" "pgbench during it"
for SIZE in $SIZES; do
  make_cluster 2 1
  standby=$(node_port 3)
  rows=$(echo "$SIZE * 1024 * 1024 * 1024 / ($ROW_BYTES + 40)" | bc)
  q 0 "CREATE TABLE big (id bigint PRIMARY KEY, v bigint NOT NULL DEFAULT 0, pad text);
       SELECT create_distributed_table('big', 'id', shard_count := 16)" >/dev/null
  q 0 "INSERT INTO big SELECT g, 0, repeat(md5(g::text), $ROW_BYTES / 32) FROM generate_series(1, $rows) g" >/dev/null
  q 0 "VACUUM ANALYZE big" >/dev/null
  echo "# $SIZE GB: $(q 0 "SELECT pg_size_pretty(sum(shard_size)) FROM citus_shards WHERE table_name = 'big'::regclass") in big ($rows rows)" >&2
  script="$CLUSTER_DIR/bench.sql"
  printf '\\set id random(1, %s)\nUPDATE big SET v = v + 1 WHERE id = :id;\nSELECT v FROM big WHERE id = :id;\n' "$rows" >"$script"
  chown postgres "$script"
  set_gucs 0 autoscale.mode act autoscale.max_operations_per_hour 0 autoscale.step_timeout 600s \
    autoscale.rebalance_strategy by_shard_count autoscale.job_timeout -1 autoscale.split_out off
  q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby)" >/dev/null
  pgbench_loop_start bench -c "$CLIENTS" -j 2 -R "$RATE" -f "$script"
  sleep 3

  if [[ " $PATHS " == *" serial "* ]]; then
    run_op "logical serial" "SELECT autoscale.scale_out(reason => 'bench')"
    scale_in_new
  fi

  if [[ " $PATHS " == *" parallel "* ]]; then
    set_gucs 0 autoscale.parallel_transfer_colocated_shards on autoscale.parallel_transfer_reference_tables on \
      citus.max_background_task_executors_per_node "$PARALLEL_EXECUTORS"
    run_op "logical parallel" "SELECT autoscale.scale_out(reason => 'bench')"
    scale_in_new
    set_gucs 0 autoscale.parallel_transfer_colocated_shards off autoscale.parallel_transfer_reference_tables off
  fi
  [[ " $PATHS " == *" split "* ]] || { pgbench_loop_stop bench; stop_all; continue; }

  # the warm clone: made and offered before the decision
  clone=4
  make_clone $clone 1
  q 0 "SELECT autoscale.add_standby_clone('127.0.0.1', $(node_port $clone), '127.0.0.1', $(node_port 1))" >/dev/null
  set_gucs 0 autoscale.split_out on
  q 0 "SELECT autoscale.sample()" >/dev/null
  echo "# clone lag at the decision: $(q 0 "SELECT clone_lag_bytes FROM autoscale.standby_nodes WHERE nodeport = $(node_port $clone)") bytes" >&2
  run_op "split" "SELECT autoscale.scale_out(reason => 'bench')"
  # where the split's time went: each step's seconds (promote_clone includes Citus's catch-up wait,
  # which polls the clone's lag every 5 s)
  echo "# split steps: $(q 0 "SELECT string_agg(step || ' ' || round(secs, 1) || ' s', ', ' ORDER BY id) FROM (
        SELECT id, lag(detail ->> 'step') OVER w AS step, extract(epoch FROM at - lag(at) OVER w) AS secs
          FROM autoscale.events
         WHERE (detail ->> 'operation_id')::int = (SELECT max(id) FROM autoscale.operations)
           AND kind IN ('operation_started', 'operation_step', 'operation_succeeded')
        WINDOW w AS (ORDER BY id)) x WHERE step IS NOT NULL" || echo "?")" >&2

  pgbench_loop_stop bench
  stop_all
done
