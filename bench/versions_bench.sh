#!/usr/bin/env bash
# Citus 13.2 (PostgreSQL 15) and Citus 14 (PostgreSQL 18) side by side (prints figures; asserts nothing):
# the rebalance, scale cycle, load strategy and clone split benchmarks, run one after the other on each
# pair this machine has, each on a quiet machine (nothing else should run meanwhile).
#   bench/versions_bench.sh                  both pairs, quick settings (about 12 minutes a pair)
#   PAIRS="18" bench/versions_bench.sh       one pair
#   BENCHES="rebalance scale_cycle" ...      a subset (rebalance scale_cycle load_strategy clone_split)
# The outputs are kept in OUT_DIR (default /tmp/citus_autoscale_versions_bench/<major>/<bench>.txt).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-/tmp/citus_autoscale_versions_bench}
BENCHES=${BENCHES:-rebalance scale_cycle load_strategy clone_split}
for major in ${PAIRS:-15 18}; do
  case $major in
    15) bin=/usr/lib/postgresql/15/bin ;;
    *) bin=$(scripts/build_pairs.sh --print-pg"$major") ;;
  esac
  if [ -z "$bin" ] || [ ! -f "$("$bin/pg_config" --pkglibdir)/citus.so" ]; then
    echo "PostgreSQL $major with Citus is not here: skipped"; continue
  fi
  mkdir -p "$OUT/$major"
  citus=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$("$bin/pg_config" --sharedir)/extension/citus.control")
  for b in $BENCHES; do
    echo "=== PostgreSQL $major, Citus $citus: $b"
    case $b in
      rebalance) PGBIN=$bin RUNS=${RUNS:-3} bench/rebalance_bench.sh ;;
      scale_cycle) PGBIN=$bin bench/scale_cycle_bench.sh ;;
      load_strategy) PGBIN=$bin bench/load_strategy_bench.sh ;;
      clone_split) PGBIN=$bin SIZES=${SIZES:-0.5} bench/clone_split_bench.sh ;;
    esac 2>&1 | tee "$OUT/$major/$b.txt"
  done
done
