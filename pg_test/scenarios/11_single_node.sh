#!/usr/bin/env bash
# Grow from a single node and shrink back (issue 11). A single-node Citus: the coordinator holds
# the 32 shards of an IoT events table (jsonb payload, 200 devices, 200,000 rows), two standbys in
# the pool, a CPU policy with min_workers => 0, max_workers => 2, step => 2. pgbench (8 clients)
# runs the "outliers" query and drives the CPU over the threshold -> ONE scale-out adds both
# standbys and ONE rebalance spreads the shards over the three data nodes (autoscale.coordinator_shards
# = 'keep': the coordinator keeps its share), with 0 failed transactions. explain() names the
# coordinator as the data node it reads on a single node. The load stops -> a scale-in to a single
# node is refused while the coordinator's shouldhaveshards is false, and once it is true again both
# workers drain back onto the coordinator in ONE scale-in, are removed and return to the pool.
# Every row, the reference table and the citus local table are intact at each stage.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "grow from a single node to 3 data nodes under pgbench, shrink back to a single node"
make_cluster 0 2
c=$(node_port 0); s1=$(node_port 1); s2=$(node_port 2)
q 0 "SELECT citus_set_node_property('127.0.0.1', $c, 'shouldhaveshards', true)" >/dev/null

# seed 000's workload: events of 200 devices with a jsonb payload
# (one statement per transaction: on a single node Citus executes locally)
for sql in "CREATE TABLE devices (device_id int PRIMARY KEY, name text NOT NULL)" \
           "SELECT create_reference_table('devices')" \
           "INSERT INTO devices SELECT d, 'device ' || d FROM generate_series(1, 200) d" \
           "CREATE TABLE events (device_id int NOT NULL, event_id bigint NOT NULL, at timestamptz NOT NULL,
                                 payload jsonb NOT NULL, PRIMARY KEY (device_id, event_id))" \
           "SELECT create_distributed_table('events', 'device_id', shard_count := 32)" \
           "INSERT INTO events
              SELECT 1 + g % 200, g, '2024-01-01'::timestamptz + g * interval '1 s',
                     jsonb_build_object('temperature', round((15 + 25 * random())::numeric, 1),
                                        'humidity', round((20 + 80 * random())::numeric, 1),
                                        'battery', round((100 * random())::numeric))
                FROM generate_series(1, 200000) g" \
           "CREATE TABLE thresholds (metric text PRIMARY KEY, outlier_above float8 NOT NULL)" \
           "INSERT INTO thresholds VALUES ('humidity', 90), ('temperature', 37)" \
           "SELECT citus_add_local_table_to_metadata('thresholds')" \
           "ANALYZE events"; do
  q 0 "$sql" >/dev/null
done
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
                   WHERE s.logicalrelid = 'events'::regclass AND p.groupid = 0")" 32 "single node: the coordinator holds all 32 shards"
# what must survive: rows and a checksum of every payload, the reference and the citus local table
CHECK_SQL="SELECT count(*) || ' ' || sum(event_id) || ' ' || sum(hashtext(payload::text)::bigint) FROM events"
JOIN_SQL="SELECT count(*) FROM events e JOIN devices d USING (device_id) WHERE d.name LIKE 'device 1%'"
events_before=$(q 0 "$CHECK_SQL"); join_before=$(q 0 "$JOIN_SQL")
assert_eq "${events_before%% *}" 200000 "200,000 events"
intact() {
  assert_eq "$(q 0 "$CHECK_SQL")" "$events_before" "$1: every event kept (count, ids, payload checksum)"
  assert_eq "$(q 0 "$JOIN_SQL")" "$join_before" "$1: join with the reference table devices"
  assert_eq "$(q 0 "SELECT count(*) FROM devices")" 200 "$1: reference table devices intact"
  assert_eq "$(q 0 "SELECT string_agg(metric || '=' || outlier_above, ',' ORDER BY metric) FROM thresholds")" \
    "humidity=90,temperature=37" "$1: citus local table thresholds intact"
  assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
                     WHERE s.logicalrelid = 'thresholds'::regclass AND p.groupid = 0")" 1 \
    "$1: the citus local table stays on the coordinator"
  assert_eq "$(q 0 "$ORPHAN_SQL")" 0 "$1: no placement on a removed node"
}

# the outliers query (seed 000): per device, how many readings are outliers of humidity and temperature
script="$CLUSTER_DIR/outliers.sql"
cat >"$script" <<'SQL'
SELECT device_id,
       count(*) FILTER (WHERE (payload ->> 'humidity')::float8 > 90) AS humid,
       count(*) FILTER (WHERE (payload ->> 'temperature')::float8 > 37) AS hot,
       count(*) AS readings
  FROM events
 GROUP BY device_id
 ORDER BY 2 DESC, 3 DESC
 LIMIT 10;
SQL
chown postgres "$script"
t=$(date +%s%N); q 0 "$(cat "$script")" >/dev/null; echo "one outliers query on the single node: $(( ($(date +%s%N) - t) / 1000000 )) ms"

# no skew-triggered rebalance: every shard move here is the scale-out's or the scale-in's
set_gucs 0 autoscale.max_operations_per_hour 0 autoscale.failure_backoff 0 autoscale.rebalance_interval -1
for p in "$s1" "$s2"; do
  assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $p) ->> 'state'")" available "standby $p in the pool"
done
# refused on 0.1.0 ("min_workers (0) must be at least 1"); a single node is 0 workers now
q 0 "SELECT autoscale.set_policy('cpu', metric => 'cpu', scale_out_above => 85, scale_in_below => 50,
       scale_out_for => '8 s', scale_in_for => '10 s', cooldown => '10 s', scale_in_cooldown => '10 s',
       min_workers => 0, max_workers => 2, step => 2)" >/dev/null
wait_for 0 "SELECT data_nodes = ARRAY['127.0.0.1:$c (coordinator)'] FROM autoscale.explain()" 20 ||
  fail "explain() does not name the coordinator as the data node: $(q 0 "SELECT data_nodes, reasons FROM autoscale.explain()")"
echo "ok: explain() on the single node reads the coordinator: $(q 0 "SELECT data_nodes FROM autoscale.explain()")"
assert_eq "$(q 0 "SELECT data_nodes FROM autoscale.status")" "{\"127.0.0.1:$c (coordinator)\"}" "status names the coordinator as the data node"
assert_eq "$(q 0 "SELECT workers FROM autoscale.explain()")" 0 "0 workers"
echo "idle: $(q 0 "SELECT current_value, decision, reasons FROM autoscale.explain()")"

# --- load: 8 clients on the outliers query; the mode becomes act once pgbench runs
echo "active connections (max over data nodes) while idle: $(q 0 "SELECT max(active_connections) FROM autoscale.latest_node_load")"
pgbench_loop_start outliers -c 8 -j 2 -f "$script"
trap 'pgbench_loop_stop outliers; stop_all' EXIT
t_load=$(date +%s)
set_gucs 0 autoscale.mode act
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_out')" 90 || { dump_state 0; false; } ||
  fail "no scale_out within 90 s of load (explain: $(q 0 "SELECT current_value, decision, reasons FROM autoscale.explain()"))"
t_out=$(date +%s)
echo "scale_out started $((t_out - t_load)) s after the load began: $(q 0 "SELECT reason FROM autoscale.operations WHERE kind = 'scale_out'")"
assert_eq "$(q 0 "SELECT requested_by FROM autoscale.operations WHERE kind = 'scale_out'")" policy "started by the policy"
assert_contains "$(q 0 "SELECT reason FROM autoscale.operations WHERE kind = 'scale_out'")" "cpu avg" "driven by the CPU policy"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'scale_out'" 400 || { dump_state 0; false; } ||
  fail "scale_out did not finish within 400 s"
t_out_done=$(date +%s)
echo "scale_out took $((t_out_done - t_out)) s"
echo "active connections per data node under load: $(q 0 "SELECT string_agg(nodeport || ':' || active_connections, ' ' ORDER BY nodeport) FROM autoscale.latest_node_load")"
sleep 5   # some load on the grown cluster, for the figures
pgbench_loop_stop outliers
t_stop=$(date +%s)
trap stop_all EXIT
op=$(q 0 "SELECT id FROM autoscale.operations WHERE kind = 'scale_out'")
q 0 "SELECT at::time, message FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op ORDER BY id"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "scale_out succeeded"
assert_eq "$(q 0 "SELECT (op ->> 'want') || '/' || jsonb_array_length(op -> 'added') FROM autoscale.operations WHERE id = $op")" \
  2/2 "both standbys joined in one operation"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op
                   AND message LIKE '%start_rebalance -> wait_rebalance%'")" 1 "with one rebalance job"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'scale_out'")" 1 "one scale_out (max_workers 2)"
spread=$(q 0 "SELECT string_agg(nodeport || ':' || n, ' ' ORDER BY nodeport) FROM (
                SELECT nodeport, count(*) n FROM citus_shards WHERE table_name = 'events'::regclass GROUP BY nodeport) x")
echo "events shards per node: $spread"
for p in "$c" "$s1" "$s2"; do
  assert_true "$(q 0 "SELECT count(*) >= 4 FROM citus_shards WHERE table_name = 'events'::regclass AND nodeport = $p")" \
    "events shards on data node $p (keep: the coordinator keeps its share)"
done
assert_true "$(q 0 "SELECT bool_and(shouldhaveshards) FROM pg_dist_node")" "every node, the coordinator included, should have shards"

segments=$(ls "$CLUSTER_DIR"/pgb/outliers.*.out | wc -l)
echo "pgbench, 8 clients on the outliers query ($segments segments of 5 s):"
echo "  single node, before the scale-out:  $(pgbench_stats outliers "$t_load" "$t_out")"
echo "  during the scale-out and rebalance: $(pgbench_stats outliers "$t_out" "$t_out_done")"
echo "  3 data nodes, after:                $(pgbench_stats outliers "$t_out_done" "$t_stop")"
all=$(pgbench_stats outliers "$t_load" "$t_stop")
echo "  all:                                $all"
failed=$(echo "$all" | sed -n 's/.*failed \([0-9]*\).*/\1/p')
# A Citus 13.2 race, not autoscale's: a multi-shard query planned before a shard move can reach the
# moved shard's old placement after Citus's maintenance daemon dropped it ("deferred drop of orphaned
# resource"), and fails with 'relation "public.events_<shard>" does not exist' (docs/faults.md,
# finding 9). Such a run is counted apart, and only when every error it printed is that one and the
# node logs show that very shard's deferred drop; any other error still fails the scenario.
race='relation "public\.events_[0-9]+" does not exist'
raced=0
for f in "$CLUSTER_DIR"/pgb/outliers.[0-9][0-9][0-9].out; do
  grep -q 'pgbench exited with status' "$f" || continue
  if grep 'ERROR:' "$f" | grep -qvE "$race"; then continue; fi
  ok_race=1
  for shard in $(grep -oE 'public\.events_[0-9]+' "$f" | sort -u); do
    grep -q "deferred drop of orphaned resource $shard on" "$CLUSTER_DIR"/n*.log || ok_race=0
  done
  if [ "$ok_race" = 1 ]; then
    raced=$((raced + 1))
    echo "  Citus race (finding 9): $(basename "$f"): $(grep -oE "$race" "$f" | sort -u | tr '\n' ' ')"
  fi
done
assert_eq "$((failed - raced))" 0 "0 failed pgbench transactions (other than the Citus race counted above: $raced)"
errors=$(cat "$CLUSTER_DIR"/pgb/outliers.*.out | grep -vE "$race|Run was aborted|pgbench exited with status" |
  grep -ciE 'error|fatal|terminat' || true)
assert_eq "$errors" 0 "no connection error in pgbench's output"
intact "after the scale-out"
wait_for 0 "SELECT cardinality(data_nodes) = 3 FROM autoscale.explain()" 20 || fail "explain() does not read 3 data nodes"
echo "ok: explain() reads 3 data nodes: $(q 0 "SELECT data_nodes FROM autoscale.explain()")"

# --- idle. The CPU the sampler reads is the machine's (/proc/stat), and every node of this test
# cluster shares one machine with whatever else runs on it: its CPU need not fall when our load
# stops. So that the scale-in is decided by our load alone, the CPU policy that grew the cluster
# gives way to one on the busiest data node's active connections (pgbench's 8 clients fan out to
# every data node; idle, only the sampler's own query is active).
echo "machine CPU after the load stopped: $(q 0 "SELECT current_value FROM autoscale.explain()")%"
q 0 "SELECT autoscale.drop_policy('cpu')" >/dev/null
q 0 "SELECT autoscale.set_policy('conns', metric => 'active_connections', aggregate => 'max',
       scale_out_above => 40, scale_in_below => 4, scale_out_for => '8 s', scale_in_for => '10 s',
       cooldown => '10 s', scale_in_cooldown => '10 s', min_workers => 0, max_workers => 2, step => 2)" >/dev/null
# no scale-in to a single node while the coordinator's shouldhaveshards is false
q 0 "SELECT citus_set_node_property('127.0.0.1', $c, 'shouldhaveshards', false)" >/dev/null
wait_for 0 "SELECT bool_or(r LIKE '%no scale-in to a single node: the coordinator''s shouldhaveshards is false%')
              FROM autoscale.explain(), unnest(reasons) r" 240 || { dump_state 0; false; } ||
  fail "no refusal in explain() (explain: $(q 0 "SELECT current_value, decision, reasons FROM autoscale.explain()"))"
echo "ok: refused while shouldhaveshards is false: $(q 0 "SELECT r FROM autoscale.explain(), unnest(reasons) r WHERE r LIKE 'no scale-in to a single node%'")"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE kind = 'scale_in'")" 0 "no scale_in started"

# --- shouldhaveshards true again: both workers drain back onto the coordinator in one scale-in
q 0 "SELECT citus_set_node_property('127.0.0.1', $c, 'shouldhaveshards', true)" >/dev/null
t_idle=$(date +%s)
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE kind = 'scale_in')" 240 || { dump_state 0; false; } ||
  fail "no scale_in within 240 s (explain: $(q 0 "SELECT current_value, decision, reasons FROM autoscale.explain()"))"
t_in=$(date +%s)
op=$(q 0 "SELECT id FROM autoscale.operations WHERE kind = 'scale_in'")
echo "scale_in started $((t_in - t_idle)) s after shouldhaveshards was set back ($((t_in - t_stop)) s after the load stopped): $(q 0 "SELECT reason FROM autoscale.operations WHERE id = $op")"
assert_eq "$(q 0 "SELECT requested_by FROM autoscale.operations WHERE id = $op")" policy "started by the policy"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 400 || { dump_state 0; false; } ||
  fail "scale_in did not finish within 400 s"
echo "scale_in took $(( $(date +%s) - t_in )) s"
q 0 "SELECT at::time, message FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op ORDER BY id"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "scale_in succeeded"
assert_eq "$(q 0 "SELECT 1 + jsonb_array_length(op -> 'also') FROM autoscale.operations WHERE id = $op")" 2 \
  "both workers left in one operation"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op
                   AND message LIKE '%start_drain -> wait_drain%'")" 1 "with one drain job"
for step in verify_empty remove_node return_to_pool; do
  assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op
                     AND message LIKE '%-> $step%'")" 1 "through the step $step"
done
assert_eq "$(q 0 "SELECT string_agg(nodeport::text, ',') FROM pg_dist_node")" "$c" "a single node again: only the coordinator in pg_dist_node"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
                   WHERE s.logicalrelid = 'events'::regclass AND p.groupid = 0")" 32 "the coordinator holds all 32 shards again"
assert_eq "$(q 0 "SELECT string_agg(state, ',') FROM autoscale.standby_nodes")" "returned,returned" "both standbys back in the pool"
for i in 1 2; do
  assert_eq "$(q "$i" "SET citus.override_table_visibility = off; SELECT count(*) FROM pg_class WHERE relname ~ '^events_[0-9]+\$'")" 0 \
    "no events shard left on standby $i"
done
intact "back on a single node"
wait_for 0 "SELECT data_nodes = ARRAY['127.0.0.1:$c (coordinator)'] FROM autoscale.explain()" 20 ||
  fail "explain() does not read the coordinator alone again: $(q 0 "SELECT data_nodes FROM autoscale.explain()")"
echo "ok: explain() reads the coordinator alone again"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 2 "two operations in all: one scale_out, one scale_in"
assert_eq "$(q 0 "SELECT coalesce(string_agg(kind || ': ' || message, ' | ' ORDER BY id), '') FROM autoscale.events
                 WHERE kind IN ('operation_failed', 'error')")" "" "no failure or error events"
