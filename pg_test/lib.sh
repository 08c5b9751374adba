#!/usr/bin/env bash
# The real-cluster test harness, sourced by the demo, the scenarios and the benchmarks. One file
# per concern, in pg_test/lib/:
#   cluster.sh       nodes on loopback (initdb, pg_ctl start/stop), SQL on a node, settings, waits,
#                    the autoscale background worker, the failpoint check
#   assert.sh        fail, assert_*, SQLSTATE checks, scenario(), the failure dump
#   citus_checks.sh  balance, shard spread, row counts, orphaned placements
#   workloads.sh     pgbench loops and their statistics, the kv workload, the hot-tenant layout
#   provisioner.sh   the provisioner daemon: started as postgres, the nodes it made stopped
# Every process started here is stopped with pg_ctl or by its PID.

PG_TEST_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib"
. "$PG_TEST_LIB/cluster.sh"
. "$PG_TEST_LIB/assert.sh"
. "$PG_TEST_LIB/citus_checks.sh"
. "$PG_TEST_LIB/workloads.sh"
. "$PG_TEST_LIB/provisioner.sh"
