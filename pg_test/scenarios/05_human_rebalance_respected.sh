#!/usr/bin/env bash
# A rebalance started by a person is respected, and it handles the join it follows: right after a node
# joins, a human runs citus_rebalance_start(shard_transfer_mode := 'force_logical') with Citus's default
# strategy (by_shard_count), while autoscale's is its own autoscale_by_load. While that job runs autoscale
# starts nothing (the trigger is held, manual rebalance_now()/scale_out() are refused with the reason), the
# human's job finishes unharmed, and afterwards autoscale starts no rebalance "because workers were added":
# a join_handled event names the human's job. No autoscale job ever runs.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "a human's rebalance job blocks autoscale until it ends"
make_cluster 2 1

q 0 "CREATE TABLE docs (id bigint PRIMARY KEY, body text);
     SELECT create_distributed_table('docs', 'id', shard_count := 12);
     CREATE TABLE doc_tags (doc_id bigint, tag int, PRIMARY KEY (doc_id, tag));
     SELECT create_distributed_table('doc_tags', 'doc_id', colocate_with := 'docs');
     INSERT INTO docs SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 30000) g;
     INSERT INTO doc_tags SELECT g % 30000 + 1, g FROM generate_series(1, 30000) g" >/dev/null
before=$(row_counts 0)
settle=3
# autoscale keeps its own strategy (autoscale_by_load, the default); the human uses Citus's default
set_gucs 0 autoscale.mode act autoscale.rebalance_settle "${settle}s"
sleep 1.5

# The human's job must outlast the settle time: with block_writes a dozen small shards move in
# about a second, so the human uses force_logical (several seconds per move: a logical-replication
# copy and catch-up per shard group).
# node added and the human's job created in one transaction: no tick can see the node without the job
human=$(psql_node 0 2>/dev/null <<SQL | tail -1
BEGIN;
SELECT citus_add_node('127.0.0.1', $(node_port 3));
SELECT citus_rebalance_start(shard_transfer_mode := 'force_logical');
COMMIT;
SQL
)
t_add=$(q 0 "SELECT extract(epoch FROM clock_timestamp())")
echo "a human started Citus rebalance job $human right after the node joined"
[ -n "$human" ] || fail "the human's citus_rebalance_start returned no job"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "autoscale had not started anything yet (settle ${settle}s)"

# while the human's job runs, past the settle time: autoscale holds
wait_for 0 "SELECT extract(epoch FROM clock_timestamp()) > $t_add + $settle + 2" 10
if [ "$(q 0 "SELECT state IN ('scheduled', 'running') FROM pg_dist_background_job WHERE job_id = $human")" != t ]; then
  dump_state 0; fail "the human's job ended before the settle time passed; the scenario needs a slower job"
fi
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "settle passed, human job running: autoscale starts nothing"
assert_sqlstate 55000 0 "SELECT autoscale.rebalance_now('test')"
assert_true "$(q 0 "SELECT position('job $human, not started by autoscale' IN '$(sql_error 0 "SELECT autoscale.rebalance_now('test')" | head -1 | sed "s/'//g")') > 0")" \
  "the refusal names the human's job"
assert_sqlstate 55000 0 "SELECT autoscale.scale_out()"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_background_job")" 1 "one Citus job: the human's"

wait_for 0 "SELECT state NOT IN ('scheduled', 'running') FROM pg_dist_background_job WHERE job_id = $human" 90 ||
  fail "the human's job did not finish within 90 s"
assert_eq "$(q 0 "SELECT state FROM pg_dist_background_job WHERE job_id = $human")" finished "the human's job finished unharmed"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_background_task WHERE job_id = $human AND status <> 'done'")" 0 "all its tasks done"
human_end=$(q 0 "SELECT finished_at FROM pg_dist_background_job WHERE job_id = $human")
echo "human job: $(q 0 "SELECT started_at::time || ' .. ' || finished_at::time FROM pg_dist_background_job WHERE job_id = $human")"

# then autoscale's trigger runs: the join was the human's job's, autoscale starts no rebalance for it
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.events WHERE kind = 'join_handled')" 20 || { dump_state 0; false; } ||
  fail "no join_handled event after the human's job"
q 0 "SELECT at::time, kind, message FROM autoscale.events WHERE kind = 'join_handled'"
assert_contains "$(q 0 "SELECT message FROM autoscale.events WHERE kind = 'join_handled'")" "rebalanced by Citus job $human" \
  "the event names the human's job"
# ten more samples (well past the settle time): still nothing of autoscale's
s=$(q 0 "SELECT max(sample_id) FROM autoscale.worker_count")
wait_for 0 "SELECT count(*) >= 10 FROM autoscale.worker_count WHERE sample_id > $s" 60 || fail "sampling stopped"
q 0 "SELECT id, kind, status, requested_by, reason, job_id, started_at::time FROM autoscale.operations"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "autoscale started no operation after the human's job"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE message LIKE 'would rebalance%' OR kind = 'operation_started'")" 0 \
  "and decided none"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_background_job")" 1 "still one Citus job in total: the human's"
assert_eq "$(row_counts 0)" "$before" "every table's row count unchanged"
assert_true "$(q 0 "SELECT count(*) > 0 FROM citus_shards WHERE nodeport = $(node_port 3)")" "the new node holds shards (the human's job)"
