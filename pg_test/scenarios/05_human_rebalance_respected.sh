#!/usr/bin/env bash
# A rebalance started by a person is respected: right after a node joins, a human runs
# citus_rebalance_start(shard_transfer_mode := 'force_logical'), balancing shard counts as autoscale is
# set to here; while that job runs autoscale
# starts nothing (the trigger is held, manual rebalance_now()/scale_out() are refused with the
# reason), the human's job finishes unharmed, and afterwards autoscale's trigger finds nothing left
# to move. No autoscale job overlaps it.
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
# both rebalances balance shard counts: after the human's job, autoscale's plan is empty whatever
# load the samples measured meanwhile (with autoscale_by_load, the default, the measured load of
# the shard groups could ask for a move the human's strategy did not make)
set_gucs 0 autoscale.mode act autoscale.rebalance_settle "${settle}s" autoscale.rebalance_strategy by_shard_count
sleep 1.5

# The human's job must outlast the settle time: with block_writes a dozen small shards move in
# about a second, so the human uses force_logical (several seconds per move: a logical-replication
# copy and catch-up per shard group).
# node added and the human's job created in one transaction: no tick can see the node without the job
human=$(psql_node 0 2>/dev/null <<SQL | tail -1
BEGIN;
SELECT citus_add_node('127.0.0.1', $(node_port 3));
SELECT citus_rebalance_start(rebalance_strategy := 'by_shard_count', shard_transfer_mode := 'force_logical');
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

# then autoscale's trigger runs: nothing left to move
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE status <> 'running')" 20 || { dump_state 0; false; } ||
  fail "no autoscale operation after the human's job"
q 0 "SELECT id, kind, status, requested_by, reason, job_id, started_at::time FROM autoscale.operations"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 1 "one autoscale operation"
assert_true "$(q 0 "SELECT kind = 'rebalance' AND status = 'succeeded' AND started_at >= '$human_end' FROM autoscale.operations")" \
  "autoscale's rebalance started after the human's job finished and succeeded"
assert_true "$(q 0 "SELECT job_id IS NULL FROM autoscale.operations")" "nothing to move: no Citus job started by autoscale"
assert_true "$(q 0 "SELECT count(*) = 1 FROM autoscale.events WHERE kind = 'operation_succeeded' AND message LIKE '%nothing to move%'")" \
  "the operation says nothing to move"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_background_job")" 1 "still one Citus job in total: no autoscale job ran concurrently"
assert_eq "$(row_counts 0)" "$before" "every table's row count unchanged"
assert_true "$(q 0 "SELECT count(*) > 0 FROM citus_shards WHERE nodeport = $(node_port 3)")" "the new node holds shards (the human's job)"
