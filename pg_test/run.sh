#!/usr/bin/env bash
# Runs every real-cluster scenario in pg_test/scenarios/ on a local Citus cluster (loopback only).
# Skips, with one line saying so, when Citus is not installed. Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"
. ./lib.sh
if ! citus_installed; then
  citus_missing_line
  exit 0
fi
passed=0; failed=0; failed_names=()
for s in scenarios/*.sh; do
  [ -n "${ONLY:-}" ] && [[ "$s" != *"$ONLY"* ]] && continue
  name=$(basename "$s" .sh)
  # ONLY_LIST: these scenarios only (names without .sh, blank-separated)
  if [ -n "${ONLY_LIST:-}" ] && ! [[ " $(echo $ONLY_LIST) " == *" $name "* ]]; then continue; fi
  start=$(date +%s)
  log="${LOG_DIR:-/tmp}/citus_autoscale_scenario_$name.log"
  if bash "$s" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name ($(( $(date +%s) - start ))s)"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "FAIL $name ($(( $(date +%s) - start ))s), log: $log"
    tail -25 "$log" | sed 's/^/     | /'
  fi
  CLUSTER_DIR=${CLUSTER_DIR:-/tmp/autoscale-cluster} stop_all
done
echo "pg_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
