#!/usr/bin/env bash
# Citus's own regression suite for shard operations (`make check-operations`, 17 tests: rebalancer,
# background rebalance, moves, drain, ...) as the coexistence test: run from a configured Citus source
# tree, three ways, and every test whose result differs from Citus alone is reported.
#   alone     Citus as its suite sets it up
#   observe   citus,pg_stat_statements,citus_autoscale preloaded, autoscale.database_name = 'regression',
#             sample_interval = 1s, and CREATE EXTENSION citus_autoscale right after multi_cluster_management
#   act       the same with autoscale.mode = act
#
#   pg_test/citus_operations.sh CITUS_TREE [RUNS]    RUNS act runs (default 1; the issue's check is 5)
#   REUSE_ALONE=1 reuses the alone run an earlier call left in OUT_DIR (default /tmp/citus_operations).
#   PGBIN=<bin dir> selects the PostgreSQL (default Debian's 15). CITUS_TREE is a Citus source tree configured
#   for that PostgreSQL (scripts/build_pairs.sh leaves them under /var/cache/citus_autoscale/build/).
# Outside the CI suite (about 3.5 minutes a run). Needs root (it installs the harness's Perl modules and runs
# the suite as postgres); prints a table and "tick failed" lines found in the servers' logs; exits 1 when a
# run of observe or act differs from alone.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
TREE=$(cd "${1:?usage: pg_test/citus_operations.sh CITUS_TREE [RUNS]}" && pwd)
RUNS=${2:-1}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
REGRESS=$TREE/src/test/regress
[ -f "$REGRESS/operations_schedule" ] || { echo "no operations_schedule in $REGRESS: not a Citus source tree" >&2; exit 2; }
[ -f "$("$PGBIN/pg_config" --pkglibdir)/citus_autoscale.so" ] || { echo "citus_autoscale is not installed in $PGBIN's PostgreSQL" >&2; exit 2; }
OUT=${OUT_DIR:-/tmp/citus_operations}
mkdir -p "$OUT"; chown postgres: "$OUT"

missing=()
for p in libfile-which-perl libipc-run-perl libio-pty-perl; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == *"install ok installed"* ]] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the suite writes its results into the tree and runs as postgres
chown -R postgres: "$REGRESS"

# the one-line test: CREATE EXTENSION citus_autoscale after multi_cluster_management (Citus propagates it)
printf 'CREATE EXTENSION citus_autoscale;\n' >"$REGRESS/sql/autoscale_create.sql"
printf 'CREATE EXTENSION citus_autoscale;\n' >"$REGRESS/expected/autoscale_create.out"
# and, last, what autoscale did meanwhile (its result is printed, not compared)
cat >"$REGRESS/sql/autoscale_report.sql" <<'SQL'
SELECT kind, status, count(*) FROM autoscale.operations GROUP BY 1, 2 ORDER BY 1, 2;
SELECT kind, count(*) FROM autoscale.events GROUP BY 1 ORDER BY 1;
SELECT count(*) AS samples FROM autoscale.worker_count;
SQL
: >"$REGRESS/expected/autoscale_report.out"
{ sed 's/^test: multi_cluster_management$/&\ntest: autoscale_create/' "$REGRESS/operations_schedule"; echo "test: autoscale_report"; } \
  >"$REGRESS/operations_schedule_autoscale"
chown postgres: "$REGRESS"/sql/autoscale_*.sql "$REGRESS"/expected/autoscale_*.out "$REGRESS/operations_schedule_autoscale"

# PERL wrapper: Citus's Makefile calls `$(PERL) pg_regress_multi.pl <its options> -- <pg_regress options>`;
# the wrapper adds the server options and the schedule of a mode
wrapper=$OUT/perl_wrapper
cat >"$wrapper" <<'WRAP'
#!/usr/bin/env bash
script=$1; shift
extra=()
if [ -n "${AUTOSCALE_MODE:-}" ]; then
  extra=("--server-option=shared_preload_libraries='citus,pg_stat_statements,citus_autoscale'"
         "--server-option=autoscale.database_name='regression'" "--server-option=autoscale.sample_interval='1s'"
         "--server-option=autoscale.mode='$AUTOSCALE_MODE'")
fi
args=()
for a in "$@"; do
  if [ -n "${AUTOSCALE_MODE:-}" ] && [[ "$a" == --schedule=*operations_schedule ]]; then a="${a}_autoscale"; fi
  args+=("$a")
done
exec perl "$script" "${extra[@]}" "${args[@]}"
WRAP
chmod 755 "$wrapper"

# run MODE N: one run; the failed tests in $OUT/MODE.N.failed, the servers' logs' "tick failed" lines counted
run() {
  local mode=$1 n=$2 log
  log=$OUT/$mode.$n.log
  rm -rf "$REGRESS/tmp_check" "$REGRESS/results" "$REGRESS/regression.diffs" "$REGRESS/regression.out"
  local t0; t0=$(date +%s)
  runuser -u postgres -- env AUTOSCALE_MODE="$( [ "$mode" = alone ] || echo "$mode")" \
    make -C "$REGRESS" check-operations PERL="$wrapper" PG_CONFIG="$PGBIN/pg_config" >"$log" 2>&1 || true
  grep -E '^(not ok|test .*FAILED|     [a-z_]+ +\.\.\. FAILED)' "$log" | sed -E 's/^not ok [0-9]+ +- +//; s/ +[0-9]+ ms$//; s/^test +//; s/ +\.\.\. FAILED.*//; s/^ +//' \
    | awk '{print $1}' | grep -vx autoscale_report | sort >"$OUT/$mode.$n.failed" || true
  if [ -f "$REGRESS/results/autoscale_report.out" ]; then
    cp "$REGRESS/results/autoscale_report.out" "$OUT/$mode.$n.report"
    echo "$mode run $n: what autoscale did: $(grep -E '^ [a-z_]+ +\|' "$REGRESS/results/autoscale_report.out" | tr -s ' ' | paste -sd';' | cut -c1-400)"
  fi
  # pg_regress of PostgreSQL 15 says "running regression test queries"; 18's prints TAP lines
  if ! grep -qE "running regression test queries|^(not )?ok [0-9]+ " "$log"; then
    echo "$mode run $n: the suite did not start (see $log)"; echo "(did not start)" >"$OUT/$mode.$n.failed"
  fi
  local ticks; ticks=$(cat "$REGRESS"/tmp_check/*/log/*.log "$REGRESS"/tmp_check/*.log 2>/dev/null | grep -cE '(tick|sample) failed' || true)
  cp -r "$REGRESS/regression.diffs" "$OUT/$mode.$n.diffs" 2>/dev/null || true
  printf '%-8s run %d: %2d failed (%s), %d "tick failed" lines, %d s\n' "$mode" "$n" "$(wc -l <"$OUT/$mode.$n.failed")" \
    "$(paste -sd, "$OUT/$mode.$n.failed")" "$ticks" "$(( $(date +%s) - t0 ))"
  echo "$ticks" >"$OUT/$mode.$n.ticks"
}

# REUSE_ALONE=1 keeps the alone run of an earlier call in OUT_DIR
if [ "${REUSE_ALONE:-0}" = 1 ] && [ -f "$OUT/alone.1.failed" ]; then
  echo "alone    run 1: reused: $(paste -sd, "$OUT/alone.1.failed")"
else
  run alone 1
fi
run observe 1
for n in $(seq 1 "$RUNS"); do run act "$n"; done
status=0
for f in "$OUT"/observe.*.failed "$OUT"/act.*.failed; do
  if ! diff -q "$OUT/alone.1.failed" "$f" >/dev/null; then
    echo "DIFFERS from Citus alone: $(basename "$f" .failed): $(diff "$OUT/alone.1.failed" "$f" | grep '^[<>]' | paste -sd' ')"
    status=1
  fi
done
for f in "$OUT"/*.ticks; do [ "$(cat "$f")" = 0 ] || { echo "tick failed lines in $(basename "$f" .ticks)"; status=1; }; done
[ "$status" = 0 ] && echo "citus_operations: every run's failures are Citus alone's"
exit "$status"
