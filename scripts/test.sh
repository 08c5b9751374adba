#!/usr/bin/env bash
# The whole test suite (README's test command; .ci/run calls exactly this):
#   1. pure logic with plain cargo test (parsers, rates, policy engine, operation state machine)
#   2. #[pg_test]s on a pgrx-managed PostgreSQL 15 (SQL API, settings, the background worker)
#   3. user-visible SQL output against tests/pg_regress/expected (pg_test/regress.sh, pg_regress)
#   4. real-cluster scenarios in pg_test/ (skipped, with one line saying so, when Citus is not installed),
#      the upgrade from 0.1.0 first
#   5. the Debian package: scripts/package.sh builds it, pg_test/package_test.sh installs it with dpkg,
#      creates the extension on a throwaway instance, samples, removes it (the build from 4 is put back)
# Installs its own dependencies first (scripts/setup.sh --deps). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/setup.sh --deps

echo "== 1/5 pure logic: cargo test -p autoscale_core"
cargo test -p autoscale_core 2>&1 | grep -vE "^test .* \.\.\. ok$"

echo "== 2/5 pg_test: cargo pgrx test pg15"
PGTEST_DIR=${PGTEST_DIR:-/tmp/citus_autoscale_pgtest}
mkdir -p "$PGTEST_DIR"; chown postgres: "$PGTEST_DIR"
# one test at a time: the worker tests change server settings through ALTER SYSTEM
RUST_TEST_THREADS=1 cargo pgrx test pg15 --runas postgres --pgdata "$PGTEST_DIR/data"

# cargo pgrx test installed a build with test-only objects; install one without them, with the
# failpoint setting the scenarios stop operations at exact steps with (autoscale.test_hold_at_steps)
cargo pgrx install --features failpoints --pg-config /usr/lib/postgresql/15/bin/pg_config >/dev/null 2>&1

echo "== 3/5 user-visible SQL output: pg_test/regress.sh"
pg_test/regress.sh

echo "== 4/5 real-cluster scenarios: pg_test/run.sh"
pg_test/run.sh

echo "== 5/5 the Debian package: scripts/package.sh, pg_test/package_test.sh"
deb=$(scripts/package.sh | tail -1)
pg_test/package_test.sh "$deb"
