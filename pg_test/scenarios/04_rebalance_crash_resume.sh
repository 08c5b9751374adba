#!/usr/bin/env bash
# Crash in the middle of a rebalance: SIGKILL of the coordinator's autoscale worker while the
# Citus job moves shards (force_logical: a few seconds per move). The postmaster reinitializes;
# the new worker resumes the SAME operation following the SAME Citus job (no second rebalance
# job is started) and the operation ends succeeded, balanced, with every row.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "worker killed during a rebalance: resume the same job"
make_cluster 2 1

q 0 "CREATE TABLE events (id bigint PRIMARY KEY, kind int, body text);
     SELECT create_distributed_table('events', 'id', shard_count := 12);
     CREATE TABLE tags (id int PRIMARY KEY, name text);
     SELECT create_reference_table('tags');
     INSERT INTO events SELECT g, g % 7, repeat(md5(g::text), 4) FROM generate_series(1, 30000) g;
     INSERT INTO tags SELECT g, 't' || g FROM generate_series(1, 10) g" >/dev/null
before=$(row_counts 0)
echo "row counts before: $before"
set_gucs 0 autoscale.mode act autoscale.rebalance_strategy by_shard_count autoscale.rebalance_settle 1s \
  autoscale.shard_transfer_mode force_logical
sleep 1.5
q 0 "SELECT citus_add_node('127.0.0.1', $(node_port 3))" >/dev/null

# wait until the job is really moving shards, with moves left
wait_for 0 "SELECT j.state = 'running' AND o.op ->> 'job_state' = 'running'
              FROM autoscale.operations o JOIN pg_dist_background_job j USING (job_id)
             WHERE o.kind = 'rebalance' AND o.status = 'running'" 30 || { dump_state 0; false; } ||
  fail "the rebalance job never ran"
job=$(q 0 "SELECT job_id FROM autoscale.operations WHERE kind = 'rebalance'")
op=$(q 0 "SELECT id FROM autoscale.operations WHERE kind = 'rebalance'")
progress=$(q 0 "SELECT (SELECT count(*) FROM pg_dist_background_task WHERE job_id = $job AND status = 'done') || '/' ||
                       (SELECT count(*) FROM pg_dist_background_task WHERE job_id = $job)")
echo "operation $op follows Citus job $job, tasks done $progress; killing the autoscale worker"
assert_true "$(q 0 "SELECT count(*) FILTER (WHERE status = 'done') < count(*) FROM pg_dist_background_task WHERE job_id = $job")" \
  "moves left when the worker is killed"
killed=$(kill_worker 0)
echo "killed autoscale worker $killed; coordinator back, new worker $(worker_pid 0)"
grep -q "terminated by signal 9" "$(node_dir 0).log" && echo "ok: the postmaster saw the SIGKILL and reinitialized"
t_kill=$(q 0 "SELECT now()")
assert_eq "$(q 0 "SELECT status || ' ' || step || ' ' || job_id FROM autoscale.operations WHERE id = $op")" \
  "running wait_rebalance $job" "after the restart the operation is still at wait_rebalance on job $job"

wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 90 || { dump_state 0; false; } ||
  fail "operation $op did not finish within 90 s of the restart"
q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE kind LIKE 'operation%' ORDER BY id"
assert_eq "$(q 0 "SELECT status || ' ' || step FROM autoscale.operations WHERE id = $op")" "succeeded done" "the operation ended succeeded"
assert_eq "$(q 0 "SELECT job_id FROM autoscale.operations WHERE id = $op")" "$job" "same Citus job id after the restart"
assert_eq "$(q 0 "SELECT state FROM pg_dist_background_job WHERE job_id = $job")" finished "Citus job $job finished"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_background_job")" 1 \
  "exactly one Citus job in the cluster's life (no second rebalance started)"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 1 "exactly one operation"
assert_true "$(q 0 "SELECT count(*) > 0 FROM autoscale.events WHERE at > '$t_kill' AND (detail ->> 'operation_id')::bigint = $op
                     AND kind IN ('operation_progress', 'operation_succeeded')")" "the restarted worker followed the job"
assert_true "$(q 0 "SELECT (op ->> 'progress_done') = (op ->> 'progress_total') FROM autoscale.operations WHERE id = $op")" \
  "progress recorded to the end ($(q 0 "SELECT tasks_done || '/' || tasks_total FROM autoscale.rebalance_progress"))"
echo "after: $(shard_spread 0)"
assert_true "$(q 0 "$BALANCED_SQL")" "balanced"
assert_eq "$(row_counts 0)" "$before" "every table's row count unchanged"
sleep 3
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 1 "no further operation afterwards"
