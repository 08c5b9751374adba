#!/usr/bin/env bash
# The whole test suite (README's test command; .ci/run calls exactly this):
#   1. pure logic with plain cargo test (parsers, rates, policy engine, operation state machine)
#   2. #[pg_test]s on a pgrx-managed PostgreSQL 15 (SQL API, settings, the background worker)
#   3. real-cluster scenarios in pg_test/ (skipped, with one line saying so, when Citus is not installed)
# Installs its own dependencies first (scripts/setup.sh --deps). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/setup.sh --deps

echo "== 1/3 pure logic: cargo test -p autoscale_core"
cargo test -p autoscale_core 2>&1 | grep -vE "^test .* \.\.\. ok$"

echo "== 2/3 pg_test: cargo pgrx test pg15"
PGTEST_DIR=${PGTEST_DIR:-/tmp/citus_autoscale_pgtest}
mkdir -p "$PGTEST_DIR"; chown postgres: "$PGTEST_DIR"
# one test at a time: the worker tests change server settings through ALTER SYSTEM
RUST_TEST_THREADS=1 cargo pgrx test pg15 --runas postgres --pgdata "$PGTEST_DIR/data"

echo "== 3/3 real-cluster scenarios: pg_test/run.sh"
# cargo pgrx test installed a build with test-only objects; install one for the cluster with the
# failpoint setting the scenarios stop operations at exact steps with (autoscale.test_hold_at_steps)
cargo pgrx install --features failpoints --pg-config /usr/lib/postgresql/15/bin/pg_config >/dev/null 2>&1
pg_test/run.sh
