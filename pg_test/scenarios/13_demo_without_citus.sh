#!/usr/bin/env bash
# The demo without Citus (scripts/demo.sh with DEMO_WITHOUT_CITUS=1, on this harness's port and
# directory, no set-up step): under pgbench load the observe-mode policy records a
# "would scale out from 1 to 2 workers" decision, explain() shows a row deciding out, backtest()
# replays the same scale-out, metrics() lines are printed, and the summary says where to look next.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "the demo on plain PostgreSQL shows an observe-mode decision, explain(), backtest(), metrics()"
here=$(cd "$(dirname "$0")/../.." && pwd)
out=$(DEMO_WITHOUT_CITUS=1 SKIP_SETUP=1 CLUSTER_DIR="$CLUSTER_DIR" BASE_PORT="$BASE_PORT" PLAIN_LOAD_SECS=20 \
      "$here/scripts/demo.sh" 2>&1) || { printf '%s\n' "$out"; fail "demo exited with an error"; }
printf '%s\n' "$out" | sed 's/^/  | /'
section() {  # the lines after the header line starting with $1, up to the next header
  printf '%s\n' "$out" | awk -v h="$1" 'index($0, h) == 1 { on = 1; next } /^(==|---)/ { on = 0 } on'
}
decisions=$(section "== the decisions it recorded")
assert_contains "$decisions" "would scale out from 1 to 2 workers: writes: commits_per_sec max" "an observe-mode decision about the load"
assert_contains "$(section "== autoscale.explain() while the load ran")" "workers 1 -> 2, decision out: commits_per_sec max" "an explain() row deciding out"
assert_contains "$(section "== autoscale.explain() now")" "writes: commits_per_sec max" "explain() after the load"
assert_contains "$(section "== the policy replayed")" "out 1 -> 2" "backtest() replays the scale-out"
assert_contains "$(section "== a few lines of autoscale.metrics()")" 'autoscale_policy_value{policy="writes",metric="commits_per_sec"}' "metrics() lines"
assert_contains "$out" "Summary: pgbench pushed this node to" "a summary"
assert_contains "$out" "get Citus (https://docs.citusdata.com/en/stable/installation/)" "how to get Citus"
[ ! -f "$(node_dir 0)/postmaster.pid" ] || fail "the demo left its instance running"
echo "ok: the demo stopped its instance"
