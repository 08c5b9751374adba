#!/usr/bin/env bash
# The fault matrix: for each operation kind (scale-out from the pool, scale-in of one node,
# rebalance, isolate_tenant; scale-in of two nodes and replace_dead in FAULTS=full), a fault (crash, hang or
# partition of the source or the target worker, restart of the coordinator) is injected while the operation is held
# by the test build's failpoint at an exact step: before the Citus call (add_node, start_rebalance,
# start_drain), while the Citus job runs (wait_rebalance, wait_drain: the job was started by the
# step before) or between jobs (cleanup, verify_empty, remove_node), or before a step that runs
# its Citus calls in the tick's transaction (isolate_tenant: isolate, move_tenant, verify_tenant;
# replace_dead's steps). The hold is then released and
# the operation runs against the fault for FAULT_WINDOW seconds; the fault heals and the operation
# must end in the case's documented state, with an event saying what happened:
#   succeeded  it finished once the fault healed
#   restored   a scale-in failed and was undone: shouldhaveshards back to true, the node still a
#              worker, its pool state active
#   failed     a rebalance, scale-out, replace_dead or isolate_tenant failed with its error; the
#              cluster is consistent (the next case starts from it); an isolate_tenant's tenant is
#              left where the failed step found it (shared on its worker, or on its own shard not moved)
# In every case: no row lost (row counts and checksums of every table), every shard has a
# placement, at no observation (a watcher, every 0.3 s) a placement on a removed node, one
# operation and at most one Citus job in the case, the pool consistent with pg_dist_node, no
# orphaned shard copy, cleanup record or replication slot after citus_cleanup_orphaned_resources(),
# and during the fault the tick kept sampling every healthy node (new reachable node_samples rows).
# An isolate_tenant case also checks the shard layout of m and m2 (hash ranges without gap or
# overlap, one placement each, colocated) and, after success, that the tenant's shard of each table
# is its own (one value) on the target the operation chose, holding that tenant's rows only; after
# failure, that the operation_failed event names the step and the error.
# The workers are registered through pg_test/tcp_proxy.py (faults.sh) so that they can be
# partitioned. A short profile runs by default; FAULTS=full runs the whole matrix. Prints a table.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../faults.sh"
PROFILE=${FAULTS:-short}
FAULT_WINDOW=${FAULT_WINDOW:-8}
scenario "fault matrix ($PROFILE profile): crash, hang, partition and coordinator restart at held operation steps"
trap 'kill ${watcher:-} 2>/dev/null || true; faults_cleanup' EXIT

# --- the cluster: coordinator 0, workers 1 and 2, standby 3 (and 4 in the full profile), every
# non-coordinator node known to the cluster only through its proxy
NODES=3; [ "$PROFILE" = full ] && NODES=4
stop_all
for i in $(seq 0 "$NODES"); do init_node "$i"; start_node "$i"; done
for i in $(seq 0 "$NODES"); do q "$i" "CREATE EXTENSION citus" >/dev/null; done
q 0 "SELECT citus_set_coordinator_host('127.0.0.1', $(node_port 0))" >/dev/null
for i in $(seq 1 "$NODES"); do proxy_start "$i"; done
for i in 1 2; do q 0 "SELECT citus_add_node('127.0.0.1', $(proxy_port "$i"))" >/dev/null; done
q 0 "CREATE EXTENSION citus_autoscale" >/dev/null
# the scale_in2 cases start their scale-in with a custom-metric policy, which needs this role
q 0 "CREATE ROLE autoscale_metrics" >/dev/null
set_gucs 0 autoscale.custom_sql_role autoscale_metrics
require_failpoints
addr() { echo "127.0.0.1:$(proxy_port "$1")"; }

q 0 "CREATE TABLE m (id bigint PRIMARY KEY, v text NOT NULL);
     SELECT create_distributed_table('m', 'id', shard_count := 8);
     CREATE TABLE m2 (id bigint, k int, w text, PRIMARY KEY (id, k));
     SELECT create_distributed_table('m2', 'id', colocate_with := 'm');
     CREATE TABLE r (id int PRIMARY KEY, name text);
     SELECT create_reference_table('r');
     INSERT INTO m SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 40000) g;
     INSERT INTO m2 SELECT g % 40000 + 1, g, md5(g::text) FROM generate_series(1, 40000) g;
     INSERT INTO r SELECT g, 'r' || g FROM generate_series(1, 10) g" >/dev/null
# every table's row count and a checksum of its rows
SIG_SQL="SELECT (SELECT count(*) || '/' || sum(hashtext(id || v)) FROM m) || ' ' ||
                (SELECT count(*) || '/' || sum(hashtext(id || ':' || k || w)) FROM m2) || ' ' ||
                (SELECT count(*) || '/' || sum(hashtext(id || name)) FROM r)"
ROWS_SQL="SELECT (SELECT count(*) FROM m) + (SELECT count(*) FROM m2) + (SELECT count(*) FROM r)"
sig_before=$(q 0 "$SIG_SQL"); rows_before=$(q 0 "$ROWS_SQL")
echo "data: $sig_before"
# the maintenance daemon does not drop a moved shard's old copy by itself: that is left to the
# operation's cleanup step, so that a fault at cleanup always meets something to clean up
set_gucs 0 citus.defer_shard_delete_interval -1
set_gucs 0 autoscale.mode act autoscale.max_operations_per_hour 0 autoscale.rebalance_strategy by_shard_count \
  autoscale.sample_interval 1s autoscale.node_timeout 2s autoscale.rebalance_settle 86400 \
  autoscale.rebalance_interval -1 autoscale.failure_backoff 0 autoscale.step_timeout 2s
for i in $(seq 3 "$NODES"); do
  assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $(proxy_port "$i")) ->> 'state'")" available "standby $i in the pool"
done

# --- watcher: at every observation, no placement on a node that left pg_dist_node and no shard
# without a placement (a node removed while it held a sole copy shows as either)
INVARIANT_SQL="SELECT ($ORPHAN_SQL) + (SELECT count(*) FROM pg_dist_shard s
                 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_placement p WHERE p.shardid = s.shardid))"
violations="$CLUSTER_DIR/violations"; : >"$violations"
( while :; do
    v=$(q 0 "$INVARIANT_SQL" 2>/dev/null) && [ "$v" != 0 ] && echo "$(date +%T.%N) $v bad placements" >>"$violations"
    sleep 0.3
  done ) &
watcher=$!

# --- helpers
op_status() { q 0 "SELECT status FROM autoscale.operations WHERE id = $1"; }
wait_op_end() {
  wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $1" "${2:-120}"
}
in_cluster() { q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $(proxy_port "$1")"; }
pool_state() { q 0 "SELECT coalesce((SELECT state FROM autoscale.standby_nodes WHERE nodeport = $(proxy_port "$1")), 'none')"; }
# run_plain SQL: an operation without faults or holds (to bring the cluster to a case's start)
run_plain() {
  local op
  set_gucs 0 autoscale.test_hold_at_steps ""
  op=$(q 0 "SELECT ($1) ->> 'id'")
  wait_op_end "$op" 120 || { dump_state 0; fail "setup operation $op ($1) did not finish"; }
  [ "$(op_status "$op")" = succeeded ] || { dump_state 0; fail "setup operation $op ($1) is $(op_status "$op")"; }
}
# node 3 (and 4) out of the cluster, in the pool
ensure_out() {
  local i
  for i in "$@"; do
    if [ "$(in_cluster "$i")" = 1 ]; then run_plain "autoscale.scale_in('127.0.0.1', $(proxy_port "$i"), 'case setup')"; fi
    # a scale-in leaves its node returned (deprovision request sent) and a failed join leaves it failed:
    # neither is claimable until offered again, which is what a provisioner that keeps it warm does
    case "$(pool_state "$i")" in
      none | returned | failed) q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $(proxy_port "$i"))" >/dev/null ;;
    esac
  done
  return 0
}
# node 3 (and 4) workers with shards, joined through the pool (a worker added outside autoscale, by
# ensure_empty_worker, is first taken out: the scale_in2 cases' policy picks the nodes autoscale added)
ensure_in() {
  local i
  for i in "$@"; do
    if [ "$(in_cluster "$i")" = 1 ] && [ "$(pool_state "$i")" = none ]; then ensure_out "$i"; fi
    if [ "$(in_cluster "$i")" = 0 ]; then run_plain "autoscale.scale_out('127.0.0.1', $(proxy_port "$i"), 'case setup')"; fi
  done
  return 0
}
# node 3 a worker without shards, not through autoscale (the case's rebalance moves onto it)
ensure_empty_worker() {
  ensure_out "$1"
  q 0 "SELECT autoscale.remove_standby_node('127.0.0.1', $(proxy_port "$1"))" >/dev/null
  q 0 "SELECT citus_add_node('127.0.0.1', $(proxy_port "$1"))" >/dev/null
}
# orphans: after citus_cleanup_orphaned_resources(), the cleanup records left, placements on
# removed nodes, shard tables on a node that Citus has no placement for there, and replication
# slots Citus left on a node (a shard move's), summed
orphans() {
  local i n=0 tables placed slots
  q 0 "CALL citus_cleanup_orphaned_resources()" >/dev/null
  n=$(( n + $(q 0 "SELECT count(*) FROM pg_dist_cleanup") + $(q 0 "$ORPHAN_SQL") ))
  for i in $(seq 1 "$NODES"); do
    tables=$(q "$i" "SET citus.override_table_visibility = off; SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname ~ '^(m|m2)_[0-9]+\$'")
    placed=$(q 0 "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
                   JOIN pg_dist_shard s USING (shardid)
                  WHERE n.nodeport = $(proxy_port "$i") AND s.logicalrelid IN ('m'::regclass, 'm2'::regclass)")
    slots=$(q "$i" "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'citus%'")
    n=$(( n + (tables > placed ? tables - placed : 0) + slots ))
  done
  echo "$n"
}

# --- replace_dead cases: node 3 a worker that holds only copies that exist elsewhere too (a table
# d with replication factor 2 over workers 1, 2 and 3, and the reference table), node 4 the
# standby in the pool; node 3 is then stopped for good, declared dead after dead_node_after (10 s
# here) and a replace_dead operation starts, held at the case's step. Faults: the replacement
# (node 4) is the target, worker 1 (it holds the other copies of some of node 3's shard groups) the
# source. failure_backoff is long in these cases once the case's operation started: a failed
# replace_dead is not followed by the next one within the case, so the case ends in the state
# the failed one left.
D_COPIES_SQL="SELECT min(c) || ' ' || max(c) FROM (
  SELECT s.shardid, count(p.placementid) FILTER (WHERE n.isactive) c
    FROM pg_dist_shard s LEFT JOIN pg_dist_placement p USING (shardid) LEFT JOIN pg_dist_node n USING (groupid)
   WHERE s.logicalrelid = 'd'::regclass GROUP BY s.shardid) x"
D_SIG_SQL="SELECT count(*) || '/' || sum(hashtext(id || v)) FROM d"
replace_setup() {
  ensure_out 3 4
  ensure_empty_worker 3
  q 0 "SET citus.shard_replication_factor = 2;
       CREATE TABLE d (id bigint PRIMARY KEY, v text NOT NULL);
       SELECT create_distributed_table('d', 'id', shard_count := 4, colocate_with := 'none');
       INSERT INTO d SELECT g, md5(g::text) FROM generate_series(1, 4000) g" >/dev/null
  q 0 "SELECT replicate_reference_tables('block_writes')" >/dev/null
  assert_eq "$(q 0 "$D_COPIES_SQL")" "2 2" "replace_dead case: every shard of d has 2 copies"
  assert_true "$(q 0 "SELECT count(*) > 0 FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
                       WHERE s.logicalrelid = 'd'::regclass AND p.groupid = (SELECT groupid FROM pg_dist_node WHERE nodeport = $(proxy_port 3))")" \
    "replace_dead case: node 3 holds copies of d"
  assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
                     WHERE s.logicalrelid IN ('m'::regclass, 'm2'::regclass) AND p.groupid = (SELECT groupid FROM pg_dist_node WHERE nodeport = $(proxy_port 3))")" 0 \
    "replace_dead case: node 3 holds no sole copy"
  d_sig_before=$(q 0 "$D_SIG_SQL")
  set_gucs 0 autoscale.dead_node_after 10s
}
# replace_start OP_BEFORE: stops node 3 for good; prints the replace_dead operation's id
replace_start() {
  fault_crash 3
  wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE id > $1 AND kind = 'replace_dead')" 60 ||
    { dump_state 0 >&2; fail "node 3 was not declared dead and replaced"; }
  set_gucs 0 autoscale.failure_backoff 3600
  q 0 "SELECT max(id) FROM autoscale.operations"
}
# replace_end OP: the end state of a replace_dead case (prints it); then node 3 back, d dropped
replace_end() {
  local op=$1 state
  state=$(op_status "$op")
  assert_eq "$(q 0 "$D_SIG_SQL")" "$d_sig_before" "no row of d lost or changed"
  if [ "$state" = succeeded ]; then
    assert_eq "$(in_cluster 3)" 0 "replaced: the dead node 3 is removed"
    assert_eq "$(q 0 "$D_COPIES_SQL")" "2 2" "replaced: every shard of d has 2 copies on active nodes"
    assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node n WHERE n.isactive AND n.noderole = 'primary' AND NOT EXISTS
                       (SELECT 1 FROM pg_dist_placement p JOIN pg_dist_shard s USING (shardid)
                         WHERE s.logicalrelid = 'r'::regclass AND p.groupid = n.groupid)")" 0 \
      "replaced: every active node holds the reference table"
    assert_eq "$(q 0 "SELECT count(*) FROM autoscale.dead_nodes")" 0 "replaced: no dead node left"
    echo "succeeded dead node replaced"
  else
    # a failed replace_dead never removes the dead node (disabled or not), and loses no copy
    assert_eq "$(in_cluster 3)" 1 "failed replace_dead: the dead node 3 is not removed"
    assert_true "$(q 0 "SELECT split_part(($D_COPIES_SQL), ' ', 1)::int >= 1")" \
      "failed replace_dead: every shard of d keeps a copy on an active node"
    echo "failed dead node $(q 0 "SELECT CASE WHEN isactive THEN 'active' ELSE 'disabled' END FROM pg_dist_node WHERE nodeport = $(proxy_port 3)"), not removed"
  fi
}
# replace_teardown: the dead node comes back (a new machine at its address once it was removed:
# a fresh instance), d dropped, the settings of the other cases back
replace_teardown() {
  local try
  if [ "$(in_cluster 3)" = 0 ]; then
    if [ -n "$(postmaster_pid 3)" ] && kill -0 "$(postmaster_pid 3)" 2>/dev/null; then as_pg "$PGBIN/pg_ctl" -D "$(node_dir 3)" -m fast -w stop >/dev/null; fi
    init_node 3; start_node 3; wait_up 3 60; q 3 "CREATE EXTENSION citus" >/dev/null
  else
    [ -n "$(postmaster_pid 3)" ] && kill -0 "$(postmaster_pid 3)" 2>/dev/null || fault_restart 3
    q 0 "SELECT citus_activate_node('127.0.0.1', $(proxy_port 3)) FROM pg_dist_node WHERE nodeport = $(proxy_port 3) AND NOT isactive" >/dev/null
  fi
  # (Citus syncs the metadata to a node it activates in a background worker, which deadlocks with
  # a DROP TABLE of a distributed table: wait for it)
  wait_for 0 "SELECT bool_and(metadatasynced) FROM pg_dist_node WHERE hasmetadata AND isactive" 60 ||
    fail "metadata not synced to every node after the replace_dead case"
  # the dead node forgotten (back, or left the cluster) before failure_backoff is short again, so
  # that no further replace_dead starts
  wait_for 0 "SELECT count(*) = 0 FROM autoscale.dead_nodes" 60 || fail "node 3 is still declared dead after the case"
  set_gucs 0 autoscale.dead_node_after -1 autoscale.failure_backoff 0
  for try in 1 2 3; do q 0 "DROP TABLE IF EXISTS d" >/dev/null && break; sleep 1; done
  assert_eq "$(q 0 "SELECT to_regclass('d') IS NULL")" t "replace_dead case: table d dropped"
}

# --- isolate cases: a tenant of m (an id) whose shard it shares with other ids, on worker 1 (or
# worker 2 once worker 1 holds no shared shard of m), is isolated with autoscale.isolate_tenant()
# towards the other of the two: isolate_tenant_to_new_shard splits the shard group on its worker
# (m's shard and m2's colocated one: CASCADE), citus_move_shard_placement then moves the tenant's
# new shard group to the target; both in the tick's transaction, block_writes, no Citus job.
# `_src` is the worker the tenant's shard is on (the split, the move's source), `_tgt` the
# target. Each case isolates a new tenant: the splits add shards, never merged again.
# iso_pick: sets iso_tenant, iso_src, iso_tgt
iso_pick() {
  local s
  for s in 1 2; do
    iso_tenant=$(q 0 "SELECT min(g) FROM generate_series(1, 40000) g
                       WHERE get_shard_id_for_distribution_column('m', g) IN (
                         SELECT s.shardid FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
                          WHERE s.logicalrelid = 'm'::regclass AND s.shardminvalue <> s.shardmaxvalue AND n.nodeport = $(proxy_port "$s"))")
    if [ -n "$iso_tenant" ]; then iso_src=$s; iso_tgt=$((3 - s)); return 0; fi
  done
  fail "isolate case: no shared shard of m on worker 1 or 2"
}
# the shard layout of m and m2 is consistent: each table's hash ranges cover the int32 range
# without gap or overlap, every shard has exactly one placement, and m2's shards have m's ranges
# and nodes (colocated); prints the number of violations
ISO_LAYOUT_SQL="WITH s AS (
    SELECT s.logicalrelid::text t, s.shardminvalue::bigint mn, s.shardmaxvalue::bigint mx,
           (SELECT min(p.groupid) FROM pg_dist_placement p WHERE p.shardid = s.shardid) g,
           (SELECT count(*) FROM pg_dist_placement p WHERE p.shardid = s.shardid) np
      FROM pg_dist_shard s WHERE s.logicalrelid IN ('m'::regclass, 'm2'::regclass)),
  o AS (SELECT *, lag(mx) OVER w prev, lead(mn) OVER w nxt FROM s WINDOW w AS (PARTITION BY t ORDER BY mn))
  SELECT count(*) FILTER (WHERE np <> 1)
       + count(*) FILTER (WHERE coalesce(prev, -2147483649) + 1 <> mn)
       + count(*) FILTER (WHERE nxt IS NULL AND mx <> 2147483647)
       + count(*) FILTER (WHERE t = 'm' AND NOT EXISTS (SELECT 1 FROM s s2 WHERE s2.t = 'm2' AND (s2.mn, s2.mx, s2.g) = (o.mn, o.mx, o.g)))
       + abs(count(*) FILTER (WHERE t = 'm') - count(*) FILTER (WHERE t = 'm2'))
    FROM o"
# iso_where TABLE: the tenant's shard of TABLE: 'own' or 'shared', and the node (src/tgt) it is on
iso_where() {
  local r
  r=$(q 0 "SELECT CASE WHEN s.shardminvalue = s.shardmaxvalue THEN 'own' ELSE 'shared' END || ' ' || n.nodeport
             FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
            WHERE s.shardid = get_shard_id_for_distribution_column('$1', $iso_tenant)")
  case ${r#* } in
    "$(proxy_port "$iso_src")") echo "${r% *} src" ;;
    "$(proxy_port "$iso_tgt")") echo "${r% *} tgt" ;;
    *) echo "${r% *} port ${r#* }" ;;
  esac
}
# iso_end OP: the isolation's own checks; prints the end state's note
iso_end() {
  local op=$1 own tbl
  assert_eq "$(q 0 "$ISO_LAYOUT_SQL")" 0 "isolate: the shard layout of m and m2 is consistent (ranges, one placement each, colocated)"
  assert_eq "$(iso_where m2)" "$(iso_where m)" "isolate: the tenant's m2 shard is where its m shard is (CASCADE)"
  if [ "$(op_status "$op")" = succeeded ]; then
    assert_eq "$(q 0 "SELECT nodeport FROM autoscale.operations WHERE id = $op")" "$(proxy_port "$iso_tgt")" "isolated: the operation's target is worker $iso_tgt"
    assert_eq "$(iso_where m)" "own tgt" "isolated: tenant $iso_tenant has a shard of its own on the target"
    for tbl in m m2; do
      own=$(q 0 "SELECT get_shard_id_for_distribution_column('$tbl', $iso_tenant)")
      assert_eq "$(q "$iso_tgt" "SET citus.override_table_visibility = off; SELECT count(DISTINCT id) || ' ' || min(id) FROM ${tbl}_$own")" "1 $iso_tenant" \
        "isolated: ${tbl}_$own on worker $iso_tgt holds tenant $iso_tenant's rows only"
    done
    echo "succeeded own shard on the target"
  else
    assert_true "$(q 0 "SELECT count(*) = 1 AND bool_and(message ~ ': failed at (isolate|move_tenant|verify_tenant) after [^:]+: .+')
                          FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op AND kind = 'operation_failed'")" \
      "failed isolate: the operation_failed event names the step and the error"
    case $(iso_where m) in
      "shared src") echo "failed tenant not isolated, on its worker" ;;
      "own src") echo "failed own shard, not moved" ;;
      *) echo "failed tenant $(iso_where m)" ;;
    esac
  fi
}

results="$CLUSTER_DIR/results"; : >"$results"
printf '%-14s %-12s %-18s %-9s %-28s %5s %7s %8s  %s\n' fault operation step expected "end state" rows orphans recover \
  "event" >"$results"

# case FAULT OPERATION STEP EXPECTED
#   FAULT: crash_src crash_tgt hang_src hang_tgt cut_src cut_tgt stall_src stall_tgt restart_coord
#   OPERATION: scale_out (node 3 from the pool), scale_in (node 3), scale_in2 (nodes 3 and 4),
#              rebalance (onto node 3, added empty), replace_dead (node 3 dead, node 4 the
#              replacement), isolate (a tenant of m, worker 1 -> worker 2: see iso_pick)
#   source/target: the node shards leave/reach: scale_out and rebalance: 1 -> 3; scale_in: 3 -> 1;
#              isolate: the tenant's worker -> the other worker
#   EXPECTED: succeeded, restored or failed (see the header)
case_() {
  local fault=$1 kind=$2 step=${3%@running} expected=$4 node op start_sql healthy=() jobs_before op_before mark
  # STEP@running: held at a wait_* step, inject once a task of the Citus job is running (moving a shard)
  local when_running=; [[ $3 == *@running ]] && when_running=1
  # STEP@N: held at the step once its progress counter (copies made) is N
  local at=${step%@*} progress="true"; [[ $step == *@[0-9]* ]] && progress="(op ->> 'progress_done')::int = ${step##*@}"
  local t_heal t_end end_state event rows_lost orph job_note="" h n i
  echo; echo "## case: $fault x $kind x $3 (expected: $expected)"
  case $kind in
    scale_out)
      # node 3 the only node in the pool, so that the scale-out takes it
      [ "$NODES" = 4 ] && ensure_in 4
      ensure_out 3; start_sql="autoscale.scale_out(reason => 'fault case')" ;;
    scale_in) ensure_in 3; start_sql="autoscale.scale_in('127.0.0.1', $(proxy_port 3), 'fault case')" ;;
    rebalance) ensure_empty_worker 3; start_sql="autoscale.rebalance_now('fault case')" ;;
    replace_dead) replace_setup; start_sql="" ;;
    isolate)
      iso_pick
      echo "tenant $iso_tenant of m: worker $iso_src -> worker $iso_tgt"
      start_sql="autoscale.isolate_tenant('m', '$iso_tenant', '127.0.0.1', $(proxy_port "$iso_tgt"), 'fault case')" ;;
    scale_in2)
      ensure_in 3 4
      # the policy's step => 2 lets the two newest workers autoscale added go in one operation
      start_sql="" ;;
    *) fail "unknown operation kind $kind" ;;
  esac
  case $kind:$fault in
    replace_dead:*_tgt) node=4 ;;
    replace_dead:*_src) node=1 ;;
    isolate:*_src) node=$iso_src ;;
    isolate:*_tgt) node=$iso_tgt ;;
    scale_in*:*_src | scale_out:*_tgt | rebalance:*_tgt) node=3 ;;
    scale_in*:*_tgt | scale_out:*_src | rebalance:*_src) node=1 ;;
    *:restart_coord) node=0 ;;
    *) fail "unknown fault $fault" ;;
  esac
  for i in 0 $(seq 1 "$NODES"); do
    # (node 3 of a replace_dead case is the dead node)
    if [ "$i" != "$node" ] && ! [ "$kind:$i" = replace_dead:3 ] &&
      { [ "$i" = 0 ] || [ "$(in_cluster "$i")" = 1 ]; }; then healthy+=("$i"); fi
  done
  jobs_before=$(q 0 "SELECT coalesce(max(job_id), 0) FROM pg_dist_background_job")
  op_before=$(q 0 "SELECT coalesce(max(id), 0) FROM autoscale.operations")
  set_gucs 0 autoscale.test_hold_at_steps "$step"
  if [ -n "$start_sql" ]; then
    op=$(q 0 "SELECT ($start_sql) ->> 'id'")
  elif [ "$kind" = replace_dead ]; then
    op=$(replace_start "$op_before")
  else
    q 0 "SELECT autoscale.set_policy('two_at_once', metric => 'custom', custom_sql => 'SELECT 0::float8',
           scale_out_above => 1000, scale_in_below => 10, scale_in_for => '1 s', scale_in_cooldown => '1 s',
           cooldown => '1 s', min_workers => 2, max_workers => 4, step => 2)" >/dev/null
    wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.operations WHERE id > $op_before)" 30 ||
      fail "the policy started no scale-in"
    q 0 "SELECT autoscale.drop_policy('two_at_once')" >/dev/null
    op=$(q 0 "SELECT max(id) FROM autoscale.operations")
  fi
  wait_for 0 "SELECT (step = '$at' AND $progress) OR status <> 'running' FROM autoscale.operations WHERE id = $op" 90 ||
    { dump_state 0; fail "operation $op never reached $step"; }
  [ "$(q 0 "SELECT status || ':' || step FROM autoscale.operations WHERE id = $op")" = "running:$at" ] ||
    { dump_state 0; fail "operation $op is not held at $step"; }
  if [ -n "$when_running" ]; then
    wait_for 0 "SELECT EXISTS (SELECT 1 FROM pg_dist_background_task WHERE status = 'running'
                  AND job_id = (SELECT job_id FROM autoscale.operations WHERE id = $op))" 60 ||
      { dump_state 0; fail "no task of operation $op's job ever ran"; }
  fi
  if [[ $step == wait_* ]]; then
    job_note=$(q 0 "SELECT 'job ' || j.state || ' ' || count(*) FILTER (WHERE t.status = 'done') || '/' || count(*) || ' tasks done at injection'
                      FROM pg_dist_background_job j JOIN pg_dist_background_task t USING (job_id)
                     WHERE j.job_id = (SELECT job_id FROM autoscale.operations WHERE id = $op) GROUP BY j.state")
  fi
  mark=$(q 0 "SELECT coalesce(max(sample_id), 0) FROM autoscale.node_samples")

  # inject, release the hold: the operation meets the fault (at any moment of the sample's cycle:
  # a sample's query in flight to the node is given up at its deadline, finding 8)
  case $fault in
    crash_*) fault_crash "$node" ;;
    hang_*) fault_hang "$node" ;;
    cut_*) fault_cut "$node" ;;
    stall_*) fault_stall "$node" ;;
    restart_coord) fault_crash 0; fault_restart 0 ;;
  esac
  set_gucs 0 autoscale.test_hold_at_steps ""
  # the fault lasts FAULT_WINDOW seconds; at a step other than wait_* also until the operation has
  # left the step (moved on, or given up after its attempts: at most 3 x (step_timeout + a tick)),
  # so that the end state never depends on whether the heal came before or after the last
  # attempt. A step that waits for the node without using up attempts (remove_node: the commit on
  # the node fails, nothing is recorded) is still there after FAULT_HOLD_MAX seconds: then heal.
  sleep "$FAULT_WINDOW"
  if [[ $step != wait_* ]]; then
    wait_for 0 "SELECT step <> '$at' OR status <> 'running' FROM autoscale.operations WHERE id = $op" "${FAULT_HOLD_MAX:-15}" ||
      echo "operation $op still at $step ${FAULT_HOLD_MAX:-15} s into the fault: it waits for the node"
  fi
  # the tick kept sampling every healthy node while the fault lasted
  for h in "${healthy[@]}"; do
    # (a node the operation removed meanwhile is no longer sampled)
    [ "$h" = 0 ] || [ "$(in_cluster "$h")" = 1 ] || continue
    n=$(q 0 "SELECT count(*) FROM autoscale.node_samples WHERE sample_id > $mark AND reachable
               AND nodeport = $( [ "$h" = 0 ] && node_port 0 || proxy_port "$h")")
    [ "$n" -ge 2 ] || { dump_stall; dump_state 0; fail "$fault x $kind x $step: node $h (healthy) got $n reachable samples in the ${FAULT_WINDOW}s fault window"; }
  done
  echo "ok: every healthy node (${healthy[*]}) sampled during the fault"
  echo "operation during the fault: $(q 0 "SELECT status || ' at ' || step || coalesce(' (' || error || ')', '') FROM autoscale.operations WHERE id = $op")"

  # heal, wait for the end
  case $fault in
    crash_*) fault_restart "$node" ;;
    hang_*) fault_unhang "$node" ;;
    cut_* | stall_*) fault_heal "$node" ;;
  esac
  t_heal=$(date +%s.%N)
  wait_op_end "$op" 150 || { dump_state 0; fail "$fault x $kind x $step: operation $op still $(q 0 "SELECT status || ' at ' || step FROM autoscale.operations WHERE id = $op") 150 s after the fault healed"; }
  t_end=$(date +%s.%N)
  q 0 "SELECT '  ' || at::time || ' ' || kind || ': ' || left(message, 230) FROM autoscale.events
        WHERE (detail ->> 'operation_id')::bigint = $op ORDER BY id"

  # the end state
  end_state=$(op_status "$op")
  if [ "$end_state" = failed ] && [[ $kind == scale_in* ]]; then
    for i in 3 $([ "$kind" = scale_in2 ] && echo 4); do
      assert_eq "$(q 0 "SELECT shouldhaveshards FROM pg_dist_node WHERE nodeport = $(proxy_port "$i")")" t \
        "failed scale-in: node $i is still a worker with shouldhaveshards = true"
      assert_eq "$(pool_state "$i")" active "failed scale-in: node $i's pool state is active"
    done
    end_state=restored
  fi
  if [ "$kind" = replace_dead ]; then
    replace_end "$op" >"$CLUSTER_DIR/replace_end"; cat "$CLUSTER_DIR/replace_end"
    end_state=$(tail -1 "$CLUSTER_DIR/replace_end"); job_note=${end_state#* }; end_state=${end_state%% *}
  fi
  if [ "$kind" = isolate ]; then
    iso_end "$op" >"$CLUSTER_DIR/iso_end"; cat "$CLUSTER_DIR/iso_end"
    job_note=$(tail -1 "$CLUSTER_DIR/iso_end"); job_note=${job_note#* }
  fi
  event=$(q 0 "SELECT kind FROM autoscale.events WHERE (detail ->> 'operation_id')::bigint = $op
                AND kind IN ('operation_succeeded', 'operation_failed', 'operation_cancelled') ORDER BY id DESC LIMIT 1")
  [ -n "$event" ] || fail "no event says how operation $op ended"
  # a failed scale-out leaves every node it added, and only those, a worker and active in the pool
  for i in $(seq 3 "$NODES"); do
    [ "$kind:$i" = replace_dead:3 ] && continue  # (the dead node: checked by replace_end)
    case "$(pool_state "$i"):$(in_cluster "$i")" in
      active:1 | available:0 | returned:0 | failed:0 | none:1) ;;
      *) fail "pool inconsistent: node $i is $(pool_state "$i") in the pool and in pg_dist_node $(in_cluster "$i") time(s)" ;;
    esac
  done
  assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations WHERE id > $op_before")" 1 "one operation in the case"
  assert_true "$(q 0 "SELECT count(*) <= 1 FROM pg_dist_background_job WHERE job_id > $jobs_before")" "at most one Citus job in the case"
  assert_eq "$(q 0 "$INVARIANT_SQL")" 0 "every shard has a placement, none on a removed node"
  assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE NOT isactive AND nodeport <> $([ "$kind" = replace_dead ] && proxy_port 3 || echo 0)")" 0 \
    "every node active$([ "$kind" = replace_dead ] && echo ' (but the dead one)')"
  assert_eq "$(q 0 "$SIG_SQL")" "$sig_before" "no row lost or changed (row counts and checksums)"
  rows_lost=$(( rows_before - $(q 0 "$ROWS_SQL") ))
  if [ "$kind" = replace_dead ]; then replace_teardown; fi
  orph=$(orphans)
  assert_eq "$orph" 0 "no orphaned shard copy, cleanup record or slot after cleanup"
  printf '%-14s %-12s %-18s %-9s %-28s %5s %7s %7.1fs  %s\n' "$fault" "$kind" "$3" "$expected" \
    "$end_state${job_note:+ ($job_note)}" "$rows_lost" "$orph" "$(awk -v a="$t_heal" -v b="$t_end" 'BEGIN { print b - a }')" "$event" >>"$results"
  [ "$end_state" = "$expected" ] || [ "$expected" = any ] ||
    { dump_state 0; fail "$fault x $kind x $step: ended $end_state, documented: $expected"; }
  echo "ok: $fault x $kind x $step ended $end_state"
}

# dump_stall: where the tick stands when it stopped sampling (taken before the fault heals): every
# coordinator backend's state and wait, the locks nobody was granted, and the autoscale worker's
# stack (gdb, when installed) - finding 8 of docs/faults.md
dump_stall() {
  {
    echo "--- coordinator backends:"
    q 0 "SELECT pid, backend_type, state, wait_event_type || ':' || wait_event, now() - query_start, left(query, 120)
           FROM pg_stat_activity WHERE pid <> pg_backend_pid() ORDER BY pid" 2>&1
    echo "--- locks not granted:"
    q 0 "SELECT pid, locktype, relation::regclass, mode FROM pg_locks WHERE NOT granted" 2>&1
    local w; w=$(q 0 "SELECT pid FROM pg_stat_activity WHERE backend_type = 'citus_autoscale'" 2>/dev/null | head -1)
    if [ -n "$w" ] && command -v gdb >/dev/null; then
      echo "--- stack of the autoscale worker (pid $w):"
      timeout 60 gdb -batch -p "$w" -ex bt 2>/dev/null | grep '^#' || true
    fi
  } >&2 || true
}

# --- the cases. (A scale-in's source is the node leaving; a scale-out's target the node joining.)
if [ "$PROFILE" = full ]; then
  CASES=(
    "crash_tgt scale_out add_node any" "hang_tgt scale_out add_node any" "cut_tgt scale_out add_node any"
    "crash_tgt scale_out start_rebalance any" "hang_tgt scale_out start_rebalance any" "stall_tgt scale_out start_rebalance any"
    "crash_tgt scale_out wait_rebalance any" "hang_tgt scale_out wait_rebalance any" "cut_tgt scale_out wait_rebalance any"
    "crash_src scale_out wait_rebalance any" "restart_coord scale_out wait_rebalance any" "restart_coord scale_out add_node any"
    "crash_src scale_in start_drain any" "hang_src scale_in start_drain any" "cut_src scale_in start_drain any"
    "crash_src scale_in wait_drain any" "hang_src scale_in wait_drain any" "stall_src scale_in wait_drain any"
    "hang_src scale_in wait_drain@running any" "hang_tgt scale_out wait_rebalance@running any" "crash_src scale_in wait_drain@running any"
    "crash_tgt scale_in wait_drain any" "restart_coord scale_in wait_drain any"
    "crash_src scale_in cleanup any" "hang_src scale_in cleanup any" "cut_src scale_in cleanup any"
    "crash_src scale_in verify_empty any" "hang_src scale_in remove_node any" "cut_src scale_in remove_node any"
    "restart_coord scale_in remove_node any"
    "crash_tgt rebalance start_rebalance any" "hang_tgt rebalance wait_rebalance any" "cut_tgt rebalance wait_rebalance any"
    "crash_src rebalance wait_rebalance any" "restart_coord rebalance wait_rebalance any"
    "crash_src scale_in2 wait_drain any" "hang_src scale_in2 remove_node any" "restart_coord scale_in2 cleanup any"
    "restart_coord replace_dead disable_node any" "cut_src replace_dead disable_node any"
    "crash_tgt replace_dead add_node any" "cut_tgt replace_dead add_node any" "restart_coord replace_dead add_node any"
    "crash_tgt replace_dead copy_placements any" "stall_tgt replace_dead copy_placements any"
    "hang_tgt replace_dead copy_placements any" "crash_src replace_dead copy_placements any"
    "restart_coord replace_dead copy_placements@1 any" "crash_tgt replace_dead copy_placements@1 any"
    "crash_tgt replace_dead remove_node any" "restart_coord replace_dead remove_node any"
    "crash_src isolate isolate failed" "hang_src isolate isolate failed" "cut_src isolate isolate failed"
    "crash_tgt isolate isolate failed" "hang_tgt isolate isolate failed" "restart_coord isolate isolate succeeded"
    "crash_src isolate move_tenant failed" "hang_src isolate move_tenant failed" "cut_src isolate move_tenant failed"
    "crash_tgt isolate move_tenant failed" "hang_tgt isolate move_tenant failed" "cut_tgt isolate move_tenant failed"
    "stall_tgt isolate move_tenant failed" "restart_coord isolate move_tenant succeeded"
    "crash_tgt isolate verify_tenant succeeded" "restart_coord isolate verify_tenant succeeded"
  )
else
  CASES=(
    "crash_tgt scale_out wait_rebalance succeeded"
    "hang_src scale_in wait_drain succeeded"
    "restart_coord rebalance wait_rebalance succeeded"
    "cut_src scale_in start_drain succeeded"
    "hang_tgt scale_out add_node failed"
    "crash_src scale_in cleanup restored"
    "stall_tgt rebalance start_rebalance succeeded"
    "restart_coord scale_in remove_node succeeded"
    "hang_src scale_in wait_drain@running succeeded"
    "crash_src scale_in remove_node succeeded"
    "crash_src isolate isolate failed"
    "restart_coord isolate move_tenant succeeded"
  )
fi
# FAULT_CASES='FAULT OPERATION STEP EXPECTED;...' runs only those cases
if [ -n "${FAULT_CASES:-}" ]; then IFS=';' read -r -a CASES <<<"$FAULT_CASES"; fi
# heal_all: after a failed case (FAULTS_KEEP_GOING), every node up and answering, every proxy
# forwarding, no operation running, so that the next case starts from a sound cluster
heal_all() {
  local i
  unhang_all
  for i in $(seq 0 "$NODES"); do
    [ -n "$(postmaster_pid "$i")" ] && kill -0 "$(postmaster_pid "$i")" 2>/dev/null || fault_restart "$i"
    [ "$i" = 0 ] || fault_heal "$i"
  done
  if [ "$(q 0 "SELECT to_regclass('d') IS NOT NULL")" = t ]; then replace_teardown; fi
  set_gucs 0 autoscale.test_hold_at_steps ""
  wait_for 0 "SELECT NOT EXISTS (SELECT 1 FROM autoscale.operations WHERE status = 'running')" 180 ||
    q 0 "SELECT autoscale.cancel_operation()" >/dev/null || true
}
t_all=$(date +%s); failed_cases=()
for c in "${CASES[@]}"; do
  read -r f k s e <<<"$c"
  if [ -n "${FAULTS_KEEP_GOING:-}" ]; then
    # the full profile's table records a failed case and goes on (the scenario still fails)
    # (not `if ! (...)`: errexit would be off inside the subshell)
    set +e; (set -e; case_ "$f" "$k" "$s" "$e"); rc=$?; set -e
    if [ "$rc" != 0 ]; then
      failed_cases+=("$c")
      printf '%-14s %-12s %-18s %-9s %s\n' "$f" "$k" "$s" "$e" "NOT CLEAN (the case failed: see its log above)" >>"$results"
      heal_all
    fi
  else
    case_ "$f" "$k" "$s" "$e"
  fi
done

kill "$watcher" 2>/dev/null || true
[ -s "$violations" ] && { cat "$violations"; fail "a shard was without a placement, or a placement on a removed node, at some observation"; }
echo "ok: at no observation was a shard without a placement or a placement on a removed node"
echo
echo "results ($PROFILE profile, ${#CASES[@]} cases, ${#failed_cases[@]} not clean, $(( $(date +%s) - t_all )) s; recover = from the heal to the operation's end):"
cat "$results"
[ "${#failed_cases[@]}" = 0 ] || fail "cases not clean: $(printf '%s; ' "${failed_cases[@]}")"
