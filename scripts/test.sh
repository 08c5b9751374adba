#!/usr/bin/env bash
# The whole test suite (README's test command; .ci/run calls exactly this), on every PostgreSQL / Citus
# pair this machine has:
#   PostgreSQL 15 (Debian's) with Citus 13.2    PostgreSQL 18 with Citus 14.0
#
#   1. pure logic with plain cargo test (parsers, rates, policy engine, operation state machine, the
#      provisioner daemon's config, protocol and drivers), once; the daemon is built for scenario 26
#   then for each pair:
#   2. #[pg_test]s on a pgrx-managed instance of that PostgreSQL (SQL API, settings, the background worker)
#   3. user-visible SQL output against tests/pg_regress/expected (pg_test/regress.sh, pg_regress)
#   4. real-cluster scenarios in pg_test/ (skipped, with one line saying so, when that PostgreSQL has no
#      Citus): every scenario on PostgreSQL 18 / Citus 14; on 15 / 13.2 the scenarios that touch
#      version-specific code (PG15_SCENARIOS below, listed in the README), the upgrade from 0.1.0 first
#   5. the Debian package of that major: scripts/package.sh builds it, pg_test/package_test.sh installs it
#
#   CITUS_AUTOSCALE_SOURCES=<dir> scripts/test.sh   first builds what is missing (PostgreSQL 18, Citus 13.2
#       for 15, Citus 14 for 18) from the source tarballs in <dir> (scripts/build_pairs.sh; cached outside
#       the clone, a second run builds nothing)
#   PAIRS="15 18"          the pairs to run (default: both; a pair whose PostgreSQL is missing is skipped
#                          with one line)
#   ALL_SCENARIOS_ON_15=1  every scenario on PostgreSQL 15 too (about 25 minutes more)
#   TRACE_SCENARIOS=1      scenario 29_recurring_rise too: a rise of a real trace replayed live (about 13
#                          minutes per pair; needs bench/traces' twitter21.counts.xz)
# Installs its own dependencies first (scripts/setup.sh --deps). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
started=$(date +%s)

scripts/setup.sh --deps
if [ -n "${CITUS_AUTOSCALE_SOURCES:-}" ]; then
  scripts/build_pairs.sh "$CITUS_AUTOSCALE_SOURCES" ||
    echo "test: some of PostgreSQL 18 / Citus could not be built from $CITUS_AUTOSCALE_SOURCES (see above)"
  scripts/setup.sh --deps   # registers a PostgreSQL 18 that was just built with pgrx
fi

# the scenarios that touch version-specific code, run on PostgreSQL 15 / Citus 13.2 as well
PG15_SCENARIOS=${PG15_SCENARIOS:-"00_upgrade 01_sampling 02_rebalance_on_join 07_scale_out_in_cycle 14_fault_matrix
  17_clone_split 18_load_skew 24_kept_connections 25_sampler_never_stops 26_provisioner_daemon 27_schedule 28_resize"}

echo "== 1 pure logic: cargo test -p autoscale_core, cargo test -p citus-autoscale-provisioner"
cargo test -p autoscale_core 2>&1 | grep -vE "^test .* \.\.\. ok$"
cargo test -p citus-autoscale-provisioner 2>&1 | grep -vE "^test .* \.\.\. ok$"
# the provisioner daemon (scenario 26 runs target/debug/citus-autoscale-provisioner; cached by cargo)
cargo build -p citus-autoscale-provisioner

pg_bin() {
  case "$1" in
    15) echo /usr/lib/postgresql/15/bin ;;
    *) scripts/build_pairs.sh --print-pg"$1" ;;
  esac
}

run_pair() {
  local major=$1 bin pgc
  bin=$(pg_bin "$major")
  if [ -z "$bin" ] || [ ! -x "$bin/pg_config" ]; then
    echo "== PostgreSQL $major is not installed or built here: its part skipped (CITUS_AUTOSCALE_SOURCES=<dir with postgresql-$major*.tar.*> builds it)"
    return 0
  fi
  pgc=$bin/pg_config
  export PGBIN=$bin
  echo "== PostgreSQL $major ($("$pgc" --version)), $(
    [ -f "$("$pgc" --pkglibdir)/citus.so" ] && echo "Citus $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$("$pgc" --sharedir)/extension/citus.control")" ||
      echo "no Citus")"

  echo "== 2 pg_test: cargo pgrx test pg$major"
  PGTEST_DIR=${PGTEST_BASE:-/tmp/citus_autoscale_pgtest}-$major
  mkdir -p "$PGTEST_DIR"; chown postgres: "$PGTEST_DIR"
  # pg_cron where it is installed for this PostgreSQL (none for 18 here); the pg_cron test says when it skips
  if [ -f "$("$pgc" --pkglibdir)/pg_cron.so" ]; then export CITUS_AUTOSCALE_TEST_PG_CRON=on; else export CITUS_AUTOSCALE_TEST_PG_CRON=off; fi
  # one test at a time: the worker tests change server settings through ALTER SYSTEM
  RUST_TEST_THREADS=1 cargo pgrx test "pg$major" --runas postgres --pgdata "$PGTEST_DIR/data"

  # cargo pgrx test installed a build with test-only objects; install one without them, with the
  # failpoint settings the scenarios stop operations at exact steps with (autoscale.test_hold_at_steps)
  cargo pgrx install --features failpoints --pg-config "$pgc" >/dev/null 2>&1

  echo "== 3 user-visible SQL output: pg_test/regress.sh (PostgreSQL $major)"
  pg_test/regress.sh

  echo "== 4 real-cluster scenarios: pg_test/run.sh (PostgreSQL $major)"
  if [ "$major" = 15 ] && [ "${ALL_SCENARIOS_ON_15:-0}" != 1 ]; then
    echo "   PostgreSQL 15 / Citus 13.2: the version-specific subset: $(echo $PG15_SCENARIOS)"
    ONLY_LIST="$PG15_SCENARIOS" pg_test/run.sh
  else
    pg_test/run.sh
  fi

  echo "== 5 the Debian package: scripts/package.sh, pg_test/package_test.sh (PostgreSQL $major)"
  local deb
  deb=$(PG_CONFIG=$pgc scripts/package.sh | tail -1)
  pg_test/package_test.sh "$deb"
  # the package test removed what it installed and put the dev build back; the next pair's scenarios
  # need nothing of this one
}

for major in ${PAIRS:-15 18}; do
  run_pair "$major"
done
# the configuration of a PostgreSQL 15 coordinator moved to PostgreSQL 18 / Citus 14 (needs both pairs)
echo "== 6 configuration migration from PostgreSQL 15 to 18: pg_test/migrate_15_to_18.sh"
pg_test/migrate_15_to_18.sh
echo "test: the whole suite passed in $(( ($(date +%s) - started) / 60 )) min"
