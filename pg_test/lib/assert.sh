#!/usr/bin/env bash
# Assertions and scenario bookkeeping: fail, assert_*, SQLSTATE checks, the failure dump. Sourced through pg_test/lib.sh.

fail() { echo "FAILED: $*" >&2; exit 1; }
assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; echo "ok: $3"; }
assert_true() { [ "$1" = t ] || fail "$2 (got '$1')"; echo "ok: $2"; }
# assert_contains TEXT NEEDLE MSG: TEXT contains NEEDLE. No pipe into grep -q: under pipefail
# the writer can be killed by SIGPIPE once grep has seen a match, and the match counts as a failure.
assert_contains() { [[ "$1" == *"$2"* ]] || fail "$3: '$2' not in: $(printf '%s' "$1" | head -c 300)"; echo "ok: $3"; }
assert_not_contains() { [[ "$1" != *"$2"* ]] || fail "$3: '$2' in: $(printf '%s' "$1" | head -c 300)"; echo "ok: $3"; }
# scenario NAME: a scenario's first line; the cluster is stopped however it ends.
scenario() { echo "# $*"; trap 'stop_all' EXIT; }
# sql_error I SQL [ROLE]: 'ok' when SQL succeeds, else psql's verbose error text (ERROR:  CODE: ...).
sql_error() {
  local i=$1 sql=$2 role=${3:-postgres} out
  if out=$(as_pg psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -h 127.0.0.1 -p "$(node_port "$i")" \
      -U "$role" -d postgres -c "$sql" 2>&1); then echo ok; else echo "$out"; fi
}
# sqlstate I SQL [ROLE]: the SQLSTATE SQL fails with, or 'ok'.
sqlstate() {
  local out
  out=$(sql_error "$@")
  if [ "$out" = ok ]; then echo ok; else echo "$out" | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -1; fi
}
# assert_sqlstate CODE I SQL [ROLE]: SQL must fail with CODE.
assert_sqlstate() {
  local code=$1 i=$2 sql=$3 role=${4:-postgres} out
  out=$(sql_error "$i" "$sql" "$role")
  [ "$(echo "$out" | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -1)" = "$code" ] ||
    fail "$sql (as $role): expected SQLSTATE $code, got: $out"
  echo "ok: $code from $sql${4:+ as $role}: $(echo "$out" | head -1 | cut -c1-150)"
}
# dump_state I: operations and the latest events of node I, to stderr (for failure logs).
dump_state() {
  {
    echo "--- operations:"; q "$1" "SELECT id, kind, status, step, job_id, nodename || ':' || nodeport, error FROM autoscale.operations ORDER BY id" 2>&1
    echo "--- last events:"; q "$1" "SELECT id, at::time, kind, left(message, 200) FROM autoscale.events ORDER BY id DESC LIMIT 25" 2>&1
    echo "--- citus jobs:"; q "$1" "SELECT job_id, state, job_type, started_at::time, finished_at::time FROM pg_dist_background_job ORDER BY job_id" 2>&1
  } >&2 || true
}
