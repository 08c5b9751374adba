#!/usr/bin/env bash
# The user's way off PostgreSQL 15, the part that can be tested here: the autoscale configuration of a
# PostgreSQL 15 / Citus 13.2 coordinator (policies, the standby pool, autoscale.* settings, roles and their
# grants on autoscale's functions) moved to a PostgreSQL 18 / Citus 14 coordinator with the README's
# commands (pg_dumpall --roles-only, pg_dump --extension citus_autoscale of the configuration tables, the settings
# as ALTER SYSTEM), and autoscale working there: it samples, explains the moved policies and scales out
# from the moved pool.
# Needs both pairs (Debian's 15 with Citus, 18 with Citus; scripts/build_pairs.sh builds 18); says so in one
# line and ends otherwise. Every node it starts is stopped with pg_ctl however it ends.
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
PG15_BIN=/usr/lib/postgresql/15/bin
PG18_BIN=$(../scripts/build_pairs.sh --print-pg18)
has_citus() { [ -n "$1" ] && [ -f "$("$1/pg_config" --pkglibdir)/citus.so" ]; }
if ! has_citus "$PG15_BIN" || ! has_citus "$PG18_BIN"; then
  echo "migration 15 -> 18: needs PostgreSQL 15 and 18, each with Citus (CITUS_AUTOSCALE_SOURCES=<dir> scripts/test.sh builds them): skipped"
  exit 0
fi
WORK=${MIGRATE_DIR:-/tmp/citus_autoscale_migrate}
rm -rf "$WORK"; mkdir -p "$WORK"; chown postgres: "$WORK"

# the two clusters: each its own PGBIN, directory and ports
use_old() { PGBIN=$PG15_BIN; CLUSTER_DIR=$WORK/pg15; BASE_PORT=9740; }
use_new() { PGBIN=$PG18_BIN; CLUSTER_DIR=$WORK/pg18; BASE_PORT=9750; }
cleanup() { use_old; stop_all; use_new; stop_all; }
trap cleanup EXIT
echo "# configuration migration: PostgreSQL 15 / Citus 13.2 -> PostgreSQL 18 / Citus 14"

# --- the new cluster first (the pool entry moved to it names its standby): coordinator, 1 worker, 1 standby,
#     without citus_autoscale created (the restore creates it)
use_new
make_cluster 1 1
new_standby=$(node_port 2)
q 0 "DROP EXTENSION citus_autoscale" >/dev/null
assert_eq "$(psql_node 1 -c "SELECT count(*) FROM pg_extension WHERE extname = 'citus_autoscale'")" 0 "new cluster: no citus_autoscale yet"

# --- the old cluster, configured as an operator would ---
use_old
make_cluster 1 0
q 0 "SELECT autoscale.set_policy('cpu', metric => 'cpu', scale_out_above => 85, scale_in_below => 20,
       scale_out_for => '3 min', scale_in_for => '20 min', cooldown => '15 min', min_workers => 1, max_workers => 6)" >/dev/null
q 0 "SELECT autoscale.set_policy('conns', metric => 'active_connections', aggregate => 'max', target => 40,
       min_workers => 1, max_workers => 6)" >/dev/null
q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $new_standby)" >/dev/null
set_gucs 0 autoscale.mode observe autoscale.max_operations_per_hour 20 autoscale.history_retention 3d \
  autoscale.rebalance_settle 2s autoscale.maintenance_window '00:00-23:59'
q 0 "CREATE ROLE autoscale_ops LOGIN" >/dev/null
q 0 "GRANT EXECUTE ON FUNCTION autoscale.scale_out(text, integer, text, integer), autoscale.explain() TO autoscale_ops" >/dev/null
q 0 "GRANT pg_monitor TO autoscale_ops" >/dev/null
config_sql="SELECT (SELECT string_agg(name || ':' || metric || ':' || aggregate || ':' || coalesce(scale_out_above::text, '-') || ':'
                                      || coalesce(target::text, '-') || ':' || min_workers || '..' || max_workers, ',' ORDER BY name)
                      FROM autoscale.policies)
            || ' pool=' || (SELECT string_agg(nodename || ':' || nodeport || ':' || state, ',' ORDER BY nodeport) FROM autoscale.standby_nodes)
            || ' grants=' || has_function_privilege('autoscale_ops', 'autoscale.scale_out(text, integer, text, integer)', 'EXECUTE')
            || ',' || has_function_privilege('autoscale_ops', 'autoscale.explain()', 'EXECUTE')
            || ',' || pg_has_role('autoscale_ops', 'pg_monitor', 'MEMBER')"
settings_sql="SELECT string_agg(name || '=' || current_setting(name), ',' ORDER BY name) FROM pg_settings
               WHERE name LIKE 'autoscale.%' AND source = 'configuration file'"
old_config=$(q 0 "$config_sql")
old_settings=$(q 0 "$settings_sql")
echo "PostgreSQL 15 configuration: $old_config"
echo "PostgreSQL 15 settings: $old_settings"

# --- the README's commands, with PostgreSQL 18's client programs (a dump is read by its own major or newer) ---
old_port=$(node_port 0)
as_pg "$PG18_BIN/pg_dumpall" -h 127.0.0.1 -p "$old_port" -U postgres --roles-only -f "$WORK/roles.sql"
as_pg "$PG18_BIN/pg_dump" -h 127.0.0.1 -p "$old_port" -U postgres -d postgres -Fc \
  --extension citus_autoscale --table autoscale.policy_config --table autoscale.standby_nodes -f "$WORK/autoscale.dump"
as_pg "$PG18_BIN/psql" -X -At -h 127.0.0.1 -p "$old_port" -U postgres -d postgres -o "$WORK/settings.sql" -c \
  "SELECT pg_catalog.format('ALTER SYSTEM SET %s = %L;', name, pg_catalog.current_setting(name)) FROM pg_catalog.pg_settings
    WHERE name LIKE 'autoscale.%' AND source = 'configuration file' ORDER BY name"
stop_all

use_new
new_port=$(node_port 0)
# roles: those the new cluster has already (the bootstrap superuser, autoscale_metrics) are left as they are
as_pg "$PG18_BIN/psql" -X -q -h 127.0.0.1 -p "$new_port" -U postgres -d postgres -f "$WORK/roles.sql" 2>"$WORK/roles.err" || true
grep -v 'already exists' "$WORK/roles.err" | grep ERROR && fail "restoring the roles failed"
as_pg "$PG18_BIN/pg_restore" -h 127.0.0.1 -p "$new_port" -U postgres -d postgres --exit-on-error "$WORK/autoscale.dump"
as_pg "$PG18_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$new_port" -U postgres -d postgres -f "$WORK/settings.sql"
q 0 "SELECT pg_reload_conf()" >/dev/null
sleep 1

assert_eq "$(q 0 "SELECT extversion FROM pg_extension WHERE extname = 'citus_autoscale'")" \
  "$(sed -n 's/^version = "\(.*\)"/\1/p' ../Cargo.toml | head -1)" "the restore created citus_autoscale on the PostgreSQL 18 coordinator"
assert_eq "$(psql_node 1 -c "SELECT count(*) FROM pg_extension WHERE extname = 'citus_autoscale'")" 1 "and Citus 14 created it on the worker"
assert_eq "$(q 0 "$config_sql")" "$old_config" "policies, pool and grants moved"
assert_eq "$(q 0 "$settings_sql")" "$old_settings" "autoscale.* settings moved"
assert_eq "$(q 0 "SELECT support FROM autoscale.version_support()")" tested "PostgreSQL 18 with Citus 14.0 is a tested pair"

# --- autoscale works there ---
wait_for 0 "SELECT count(DISTINCT sample_id) >= 2 FROM autoscale.node_samples" 30 || fail "no samples on the new coordinator"
echo "ok: the background worker samples on PostgreSQL 18"
assert_eq "$(q 0 "SELECT string_agg(policy, ',' ORDER BY policy) FROM autoscale.explain() WHERE policy IN ('cpu', 'conns')")" "conns,cpu" \
  "explain() explains the moved policies"
make_kv 8 2000
rows=$(row_counts 0)
set_gucs 0 autoscale.mode act
op=$(as_pg "$PG18_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$new_port" -U autoscale_ops -d postgres \
  -c "SELECT autoscale.scale_out(reason => 'after the migration') ->> 'id'")
[ -n "$op" ] || fail "the granted role could not start a scale-out"
echo "ok: autoscale_ops, granted on PostgreSQL 15, started scale-out $op on 18"
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 120 || { dump_state 0; false; } ||
  fail "the scale-out did not finish"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op")" succeeded "the scale-out from the moved pool succeeded"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $new_standby AND isactive")" 1 "the moved pool's node joined"
assert_eq "$(row_counts 0)" "$rows" "every row kept"
echo "migration 15 -> 18: passed"
