#!/usr/bin/env bash
# Observe mode and privileges. In observe mode (the default) a joining node produces one
# 'decision' event "would rebalance: ..." and nothing moves; manual calls are refused (55000,
# observe). Every function that changes the cluster is refused (42501) to a login role that is not
# a superuser, even a pg_monitor member, who can read autoscale.status and explain(); an explicit
# GRANT EXECUTE lets that role call the granted function.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "observe mode records decisions only; privileges"
make_cluster 2 1

q 0 "CREATE TABLE notes (id bigint PRIMARY KEY, body text);
     SELECT create_distributed_table('notes', 'id', shard_count := 8);
     INSERT INTO notes SELECT g, md5(g::text) FROM generate_series(1, 5000) g" >/dev/null
assert_eq "$(q 0 "SHOW autoscale.mode")" observe "observe is the default mode"
set_gucs 0 autoscale.rebalance_settle 2s
sleep 1.5

# --- observe: a node joins -> one decision event, no operation, no move
new=$(node_port 3)
placements_before=$(q 0 "SELECT string_agg(shardid || '@' || groupid, ',' ORDER BY shardid) FROM pg_dist_placement")
q 0 "SELECT citus_add_node('127.0.0.1', $new)" >/dev/null
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'would rebalance:%')" 15 ||
  { dump_state 0; false; } || fail "no 'would rebalance' decision event in observe mode"
echo "event: $(q 0 "SELECT message FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'would rebalance:%'")"
assert_true "$(q 0 "SELECT message LIKE '%workers added: 127.0.0.1:$new%' FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'would rebalance:%'")" \
  "the decision names the joined node"
sleep 4
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.events WHERE kind = 'decision' AND message LIKE 'would rebalance:%'")" 1 \
  "recorded once, not at every tick"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "no operation in observe mode"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_background_job")" 0 "no Citus job"
assert_eq "$(q 0 "SELECT string_agg(shardid || '@' || groupid, ',' ORDER BY shardid) FROM pg_dist_placement")" "$placements_before" \
  "no shard moved"
assert_eq "$(q 0 "SELECT count(*) FROM citus_shards WHERE nodeport = $new")" 0 "nothing on the new node"
assert_eq "$(q 0 "SELECT mode || ' ' || active_workers FROM autoscale.status")" "observe 3" "status: observe, 3 active workers"

# manual calls need act
out=$(sql_error 0 "SELECT autoscale.rebalance_now('test')")
assert_sqlstate 55000 0 "SELECT autoscale.rebalance_now('test')"
case "$out" in *observe*) echo "ok: the refusal says observe";; *) fail "refusal does not mention observe: $out";; esac
assert_sqlstate 55000 0 "SELECT autoscale.scale_out()"
assert_sqlstate 55000 0 "SELECT autoscale.scale_in('127.0.0.1', $new)"

# --- privileges
q 0 "CREATE ROLE plain_user LOGIN" >/dev/null
q 0 "CREATE ROLE monitor_user LOGIN IN ROLE pg_monitor" >/dev/null
w1=$(node_port 1)
calls=(
  "SELECT autoscale.rebalance_now()"
  "SELECT autoscale.scale_out()"
  "SELECT autoscale.scale_out('127.0.0.1', 1)"
  "SELECT autoscale.scale_in('127.0.0.1', $w1)"
  "SELECT autoscale.set_policy('p', metric => 'cpu', scale_out_above => 80, scale_in_below => 20)"
  "SELECT autoscale.drop_policy('p')"
  "SELECT autoscale.add_standby_node('127.0.0.1', $w1)"
  "SELECT autoscale.remove_standby_node('127.0.0.1', $w1)"
  "SELECT autoscale.cancel_operation()"
  "SELECT autoscale.pause('1 hour')"
  "SELECT autoscale.resume()"
  "SELECT autoscale.tick()"
  "SELECT autoscale.sample()"
  "SELECT * FROM autoscale.claim_provision_request('p')"
  "SELECT autoscale.answer_provision_request(1, '127.0.0.1', $w1)"
  "SELECT autoscale.fail_provision_request(1, 'e', true)"
)
for role in plain_user monitor_user; do
  for c in "${calls[@]}"; do assert_sqlstate 42501 0 "$c" "$role"; done
done
# a provisioner role granted EXECUTE explicitly claims (SECURITY DEFINER: no table privileges of its own)
q 0 "CREATE ROLE provisioner_user LOGIN;
     GRANT EXECUTE ON FUNCTION autoscale.claim_provision_request(text, interval) TO provisioner_user" >/dev/null
assert_eq "$(q_as provisioner_user 0 "SELECT count(*) FROM autoscale.claim_provision_request('p')")" 0 \
  "a role granted EXECUTE claims (nothing pending)"
assert_sqlstate 42501 0 "SELECT autoscale.fail_provision_request(1, 'e', true)" provisioner_user
# the pg_monitor member is refused on the function itself, not on the schema
out=$(sql_error 0 "SELECT autoscale.rebalance_now()" monitor_user)
case "$out" in *"permission denied for function rebalance_now"*) echo "ok: denied on the function";;
  *) fail "expected 'permission denied for function rebalance_now', got: $out";; esac
assert_sqlstate 42501 0 "SET autoscale.mode = 'act'" monitor_user
assert_sqlstate 42501 0 "SELECT * FROM autoscale.status" plain_user
assert_sqlstate 42501 0 "INSERT INTO autoscale.standby_nodes (nodename, nodeport) VALUES ('x', 1)" monitor_user
assert_sqlstate 42501 0 "UPDATE autoscale.operations SET op = op" monitor_user

# pg_monitor reads
assert_eq "$(q_as monitor_user 0 "SELECT mode FROM autoscale.status")" observe "pg_monitor member reads autoscale.status"
assert_eq "$(q_as monitor_user 0 "SELECT count(*) FROM autoscale.explain()")" 0 "pg_monitor member runs autoscale.explain() (no policies)"
q 0 "SELECT autoscale.set_policy('cpu', metric => 'cpu', scale_out_above => 90, scale_in_below => 5, min_workers => 1)" >/dev/null
assert_eq "$(q_as monitor_user 0 "SELECT policy || ' ' || decision FROM autoscale.explain()")" "cpu hold" "explain() shows the policy to pg_monitor"
assert_true "$(q_as monitor_user 0 "SELECT count(*) > 0 FROM autoscale.events")" "pg_monitor member reads events"
assert_true "$(q_as monitor_user 0 "SELECT count(*) > 0 FROM autoscale.node_samples")" "pg_monitor member reads node_samples"
q_as monitor_user 0 "SELECT count(*) FROM autoscale.rebalance_progress" >/dev/null && echo "ok: pg_monitor member reads rebalance_progress"

# an explicit grant works (the function is SECURITY DEFINER: no table privileges needed)
q 0 "GRANT EXECUTE ON FUNCTION autoscale.rebalance_now(text) TO monitor_user" >/dev/null
assert_sqlstate 55000 0 "SELECT autoscale.rebalance_now('granted')" monitor_user
echo "ok: after GRANT the role passes the privilege check (refused only because of observe mode)"
assert_sqlstate 42501 0 "SELECT autoscale.rebalance_now()" plain_user
set_gucs 0 autoscale.mode act
sleep 1.5
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE requested_by = 'trigger' AND reason LIKE 'workers added: 127.0.0.1:$new%')" 20 ||
  fail "the join seen in observe mode was not rebalanced once the mode became act"
echo "ok: the join seen in observe mode is rebalanced once the mode is act"
wait_for 0 "SELECT NOT EXISTS (SELECT 1 FROM autoscale.operations WHERE status = 'running')" 60 || fail "operation did not finish"
out=$(q_as monitor_user 0 "SELECT autoscale.rebalance_now('granted role') ->> 'summary'" 2>&1) ||
  fail "granted role could not call rebalance_now: $out"
echo "ok: granted role called rebalance_now(): $out"
assert_eq "$(q 0 "SELECT requested_by FROM autoscale.operations WHERE reason = 'granted role'")" manual "the operation is recorded as manual"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE reason = 'granted role'" 60 || fail "manual rebalance did not finish"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE reason = 'granted role'")" succeeded "granted role's rebalance succeeded"
assert_true "$(q 0 "SELECT count(*) > 0 FROM citus_shards WHERE nodeport = $new")" "and moved shards onto the joined node"
assert_sqlstate 42501 0 "SELECT autoscale.scale_out()" monitor_user
echo "ok: the grant covers only the granted function"
