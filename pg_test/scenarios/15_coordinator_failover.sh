#!/usr/bin/env bash
# Coordinator failover under load: the coordinator (node 0) has a synchronous streaming replica
# (node 5, synchronous_standby_names), both with the extension preloaded. pgbench writes through
# the coordinator (one row per transaction, tagged with its pgbench run and client) and a scale-out
# is in flight: held by the failpoint at wait_rebalance, its Citus rebalance job running. The
# primary is stopped immediately, the replica promoted, and the coordinator's address in Citus's
# metadata updated the way an HA manager would (citus_set_coordinator_host). Expected: the extension on the
# replica did nothing while in recovery (its tick says so, its log has no failed tick); on the new
# primary it resumes the persisted operation, following the same Citus job (no second job), to
# success; no acknowledged transaction is lost (rows per pgbench run and client >= the
# transactions pgbench logged as committed); sampling resumes. Prints the time from the stop to
# the first sample and to the operation's end.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "coordinator failover under load, with an operation in flight"
R=5 # the replica's node index
trap 'touch "$CLUSTER_DIR/pgb.stop" 2>/dev/null; wait ${loop:-} 2>/dev/null || true; stop_all' EXIT
make_cluster 2 1
require_failpoints
standby=$(node_port 3)

q 0 "CREATE TABLE m (id bigint PRIMARY KEY, v text NOT NULL);
     SELECT create_distributed_table('m', 'id', shard_count := 8);
     INSERT INTO m SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 40000) g;
     CREATE TABLE acks (id bigserial PRIMARY KEY, run int NOT NULL, client int NOT NULL);
     SELECT create_distributed_table('acks', 'id', colocate_with := 'none', shard_count := 4)" >/dev/null
m_before=$(q 0 "SELECT count(*) || '/' || sum(hashtext(id || v)) FROM m")
set_gucs 0 autoscale.mode act autoscale.max_operations_per_hour 0 autoscale.rebalance_strategy by_shard_count \
  autoscale.sample_interval 1s autoscale.rebalance_settle 86400 autoscale.rebalance_interval -1 \
  autoscale.shard_transfer_mode force_logical
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby in the pool"

# --- the synchronous replica (taken after the settings above, which it inherits)
rdir=$(node_dir $R); rm -rf "$rdir"
as_pg pg_basebackup -h 127.0.0.1 -p "$(node_port 0)" -U postgres -D "$rdir" -X stream -c fast >/dev/null
cat >>"$rdir/postgresql.conf" <<CONF
port = $(node_port $R)
primary_conninfo = 'host=127.0.0.1 port=$(node_port 0) user=postgres application_name=replica1'
CONF
as_pg touch "$rdir/standby.signal"
rm -f "$rdir.log"
start_node $R
set_gucs 0 synchronous_standby_names replica1
wait_for 0 "SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'replica1'" 30 ||
  fail "the replica is not synchronous"
echo "ok: replica $(node_port $R) streams synchronously"
assert_eq "$(q $R "SELECT autoscale.tick() ->> 'skipped'")" "this node is in recovery" "the extension on the replica skips its tick"

# --- load: back-to-back 4 s pgbench runs against PORT (the file $CLUSTER_DIR/pgb.port), each
# run numbered and logging every committed transaction
mkdir -p "$CLUSTER_DIR/pgb"; chown postgres: "$CLUSTER_DIR/pgb"; rm -f "$CLUSTER_DIR/pgb/"* "$CLUSTER_DIR/pgb.stop"
cat >"$CLUSTER_DIR/acks.sql" <<'SQL'
INSERT INTO acks (run, client) VALUES (:run, :client_id);
SQL
chown postgres "$CLUSTER_DIR/acks.sql"
echo "$(node_port 0)" >"$CLUSTER_DIR/pgb.port"
(
  run=0
  while [ ! -e "$CLUSTER_DIR/pgb.stop" ]; do
    run=$((run + 1))
    as_pg pgbench -h 127.0.0.1 -p "$(cat "$CLUSTER_DIR/pgb.port")" -U postgres -n -c 4 -j 2 -R 150 -T 4 -D run="$run" \
      -l --log-prefix="$CLUSTER_DIR/pgb/run.$run" -f "$CLUSTER_DIR/acks.sql" postgres >"$CLUSTER_DIR/pgb/run.$run.out" 2>&1 || true
    sleep 0.2
  done
) &
loop=$!
sleep 3

# --- an operation in flight: a scale-out whose rebalance job runs
set_gucs 0 autoscale.test_hold_at_steps wait_rebalance
jobs_before=$(q 0 "SELECT coalesce(max(job_id), 0) FROM pg_dist_background_job")
op=$(q 0 "SELECT autoscale.scale_out(reason => 'failover case') ->> 'id'")
wait_for 0 "SELECT o.step = 'wait_rebalance' AND j.state = 'running'
              FROM autoscale.operations o JOIN pg_dist_background_job j USING (job_id) WHERE o.id = $op" 60 ||
  { dump_state 0; fail "the scale-out's rebalance job never ran"; }
job=$(q 0 "SELECT job_id FROM autoscale.operations WHERE id = $op")
echo "operation $op held at wait_rebalance, Citus job $job: $(q 0 "SELECT count(*) FILTER (WHERE status = 'done') || '/' || count(*) FROM pg_dist_background_task WHERE job_id = $job") tasks done"
# the replica has the operation (synchronous) and is still doing nothing
wait_for $R "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE id = $op AND step = 'wait_rebalance')" 10 ||
  fail "the replica does not have operation $op"

# --- failover
t_stop=$(date +%s.%N)
as_pg "$PGBIN/pg_ctl" -D "$(node_dir 0)" -m immediate -w stop >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$rdir" -w promote >/dev/null
echo "$(node_port $R)" >"$CLUSTER_DIR/pgb.port"
q $R "SELECT citus_set_coordinator_host('127.0.0.1', $(node_port $R))" >/dev/null
t_promoted=$(date +%s.%N)
echo "primary stopped, replica promoted and registered as the coordinator in $(awk -v a="$t_stop" -v b="$t_promoted" 'BEGIN { printf "%.1f", b - a }') s"
if grep -E "citus_autoscale: (tick|sample) failed|citus_autoscale.*(ERROR|PANIC)" "$rdir.log"; then
  fail "the extension on the replica failed while in recovery"
fi
echo "ok: the replica's log has no failed tick from its time in recovery"

wait_for $R "SELECT max(sampled_at) > to_timestamp($t_stop) FROM autoscale.worker_count" 60 ||
  { dump_state $R; fail "no sample on the new primary within 60 s"; }
t_sample=$(date +%s.%N)
assert_eq "$(q $R "SELECT reachable_workers || '/' || worker_count FROM autoscale.worker_count ORDER BY sampled_at DESC LIMIT 1")" \
  "$(q $R "SELECT count(*) || '/' || count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive")" "the new primary samples every worker"
set_gucs $R autoscale.test_hold_at_steps ""
wait_for $R "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 120 ||
  { dump_state $R; fail "operation $op did not end on the new primary"; }
t_end=$(date +%s.%N)
q $R "SELECT '  ' || at::time || ' ' || kind || ': ' || left(message, 200) FROM autoscale.events
       WHERE (detail ->> 'operation_id')::bigint = $op ORDER BY id"
assert_eq "$(q $R "SELECT status || ' ' || job_id FROM autoscale.operations WHERE id = $op")" "succeeded $job" \
  "the new primary resumed operation $op, following the same Citus job, to success"
assert_eq "$(q $R "SELECT count(*) FROM pg_dist_background_job WHERE job_id > $jobs_before")" 1 "no second Citus job"
assert_eq "$(q $R "SELECT count(*) FROM autoscale.operations")" 1 "no second operation"
assert_true "$(q $R "SELECT isactive AND shouldhaveshards FROM pg_dist_node WHERE nodeport = $standby")" "the standby is a worker"
assert_true "$(q $R "$BALANCED_SQL")" "balanced ($(shard_spread $R))"

# --- writes go on on the new primary; then no acknowledged transaction lost
n1=$(q $R "SELECT count(*) FROM acks"); sleep 5
assert_true "$(q $R "SELECT count(*) > $n1 FROM acks")" "pgbench writes through the new primary"
touch "$CLUSTER_DIR/pgb.stop"; wait "$loop" 2>/dev/null || true
acked="$CLUSTER_DIR/acked"
for f in "$CLUSTER_DIR/pgb/run."*.[0-9]*; do
  [ -f "$f" ] || continue
  run=${f#"$CLUSTER_DIR/pgb/run."}; run=${run%%.*}
  awk -v run="$run" '$3 != "failed" && $3 != "skipped" { n[$1]++ } END { for (c in n) print run, c, n[c] }' "$f"
done | sort -n >"$acked"
total_acked=$(awk '{ s += $3 } END { print s + 0 }' "$acked")
rows=$(q $R "SELECT run || ' ' || client || ' ' || count(*) FROM acks GROUP BY run, client ORDER BY 1")
lost=$(awk 'NR == FNR { have[$1 " " $2] = $3; next } { if (have[$1 " " $2] + 0 < $3) { l += $3 - have[$1 " " $2] } } END { print l + 0 }' \
  <(echo "$rows") "$acked")
echo "pgbench: $total_acked transactions acknowledged over $(ls "$CLUSTER_DIR/pgb/"run.*.out | wc -l) runs, $(q $R "SELECT count(*) FROM acks") rows in acks"
assert_true "$(q $R "SELECT $total_acked > 100")" "pgbench wrote through the failover ($total_acked acknowledged)"
assert_eq "$lost" 0 "no acknowledged transaction lost (rows per run and client >= acknowledged)"
assert_eq "$(q $R "SELECT count(*) || '/' || sum(hashtext(id || v)) FROM m")" "$m_before" "m unchanged (count and checksum)"
assert_eq "$(q $R "$ORPHAN_SQL")" 0 "no placement on a removed node"
printf 'failover: stop -> promoted+registered %.1f s, -> first sample %.1f s, -> operation end %.1f s\n' \
  "$(awk -v a="$t_stop" -v b="$t_promoted" 'BEGIN { print b - a }')" \
  "$(awk -v a="$t_stop" -v b="$t_sample" 'BEGIN { print b - a }')" \
  "$(awk -v a="$t_stop" -v b="$t_end" 'BEGIN { print b - a }')"
