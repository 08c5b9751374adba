#!/usr/bin/env bash
# User-visible SQL output, checked the pg_regress way: tests/pg_regress/sql/*.sql run through psql,
# their output compared with tests/pg_regress/expected/*.out (setup.sql first). The layout is the one
# `cargo pgrx regress` uses; cargo-pgrx 0.18.1 cannot run it as root (it runs initdb as the calling
# user), so this script starts a throwaway PostgreSQL as the postgres user and calls pg_regress itself.
#   pg_test/regress.sh             run every test; on a difference print regression.diffs and fail
#   ACCEPT=1 pg_test/regress.sh    after a deliberate change: copy the new output over expected/
# Needs the extension installed (cargo pgrx install). Stops the instance it started with pg_ctl.
# PGBIN picks the PostgreSQL (default Debian's 15). Where a major words PostgreSQL's own message differently,
# pg_regress takes an alternative expected file: errors_1.out is PostgreSQL 18's (a GUC's range with its units).
# ACCEPT=1 writes to the file of the same number that matched before, or to the plain one.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. pg_test/lib.sh
REGRESS_DIR=${REGRESS_DIR:-/tmp/citus_autoscale_regress}
PORT=${REGRESS_PORT:-9690}
PG_REGRESS=$("$PGBIN/pg_config" --pgxs | sed 's|src/makefiles/pgxs.mk$||')src/test/regress/pg_regress

rm -rf "$REGRESS_DIR"; mkdir -p "$REGRESS_DIR"; chown postgres: "$REGRESS_DIR"
as_pg "$PGBIN/initdb" -D "$REGRESS_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >>"$REGRESS_DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$REGRESS_DIR'
fsync = off
client_min_messages = warning
shared_preload_libraries = 'citus_autoscale'
# the worker idles: the extension is created in the regression database, not here
autoscale.database_name = 'postgres'
CONF
as_pg "$PGBIN/pg_ctl" -D "$REGRESS_DIR/data" -l "$REGRESS_DIR/server.log" -w -t 60 start >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$REGRESS_DIR/data" -m fast -w stop >/dev/null 2>&1 || true' EXIT

mkdir -p "$REGRESS_DIR/in"; cp -r tests/pg_regress/sql tests/pg_regress/expected "$REGRESS_DIR/in/"
chown -R postgres: "$REGRESS_DIR/in"
tests=(setup)
for f in tests/pg_regress/sql/*.sql; do t=$(basename "$f" .sql); [ "$t" = setup ] || tests+=("$t"); done
status=0
as_pg "$PG_REGRESS" --inputdir="$REGRESS_DIR/in" --outputdir="$REGRESS_DIR/out" --bindir="$PGBIN" \
  --host=127.0.0.1 --port="$PORT" --user=postgres --dbname=citus_autoscale_regress "${tests[@]}" || status=$?
if [ "$status" -ne 0 ]; then
  if [ "${ACCEPT:-0}" = 1 ]; then
    for t in "${tests[@]}"; do
      dest="$REPO/tests/pg_regress/expected/$t.out"
      # keep another major's wording: write over the alternative that differs least from this output
      for alt in "$REPO/tests/pg_regress/expected/${t}"_[0-9].out; do
        [ -f "$alt" ] || continue
        if [ "$(diff "$REGRESS_DIR/out/results/$t.out" "$alt" | wc -l)" -lt "$(diff "$REGRESS_DIR/out/results/$t.out" "$dest" | wc -l)" ]; then
          dest=$alt
        fi
      done
      cp "$REGRESS_DIR/out/results/$t.out" "$dest"
    done
    echo "regress: expected output replaced from this run; review it with git diff tests/pg_regress"
    exit 0
  fi
  [ -f "$REGRESS_DIR/out/regression.diffs" ] && cat "$REGRESS_DIR/out/regression.diffs"
  echo "regress: output differs from tests/pg_regress/expected (ACCEPT=1 pg_test/regress.sh after a deliberate change)"
  exit 1
fi
