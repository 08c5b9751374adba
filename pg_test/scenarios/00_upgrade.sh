#!/usr/bin/env bash
# Upgrade from the first release built for this PostgreSQL, through every later release, to this tree's
# version, on a real Citus cluster. PostgreSQL 15: 0.1.0 -> 0.2.0 -> 0.3.0 -> 0.4.0 -> 0.5.0 -> this
# version; PostgreSQL 18 (0.3.0 was its first release): 0.3.0 -> 0.4.0 -> 0.5.0 -> this version.
#   1. builds the releases from their commits (git archive; cached outside the clone under
#      $CITUS_AUTOSCALE_CACHE/upgrade), installs the first one's files, makes a cluster (coordinator, 2
#      workers, 1 standby) and gives it policies, a pool, history and a finished scale-out;
#   2. for every later release: installs its files, restarts, runs ALTER EXTENSION citus_autoscale UPDATE;
#   3. installs this tree's files over the running servers as a package does (new files, old library still
#      loaded) and runs the update: it must refuse with a HINT to restart and change nothing; then restarts
#      every node and runs it again (on a worker too where Citus did not);
#   4. checks that the data is kept and that sampling, explain() and an operation (a scale-in) work;
#   5. compares the catalogs (pg_test/sql/catalog_snapshot.sql) of the upgraded coordinator, an upgraded
#      worker and a fresh install: they must be identical;
#   6. pg_dump and pg_restore of a database with the extension keep its policies and pool.
# The system's extension files are put back as they were however the scenario ends.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "upgrade from every release to this version: refused until restarted, data kept, catalogs identical to a fresh install"

PG_MAJOR=$("$PGBIN/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
# main's commits that released each version
declare -A RELEASE=(
  [0.1.0]=fe137e01ee2dd2c62fc135c9f20ad9b728f96178
  [0.2.0]=7dd5c72ebc1ad531d4adb1d8a4adddbdab1238a5
  [0.3.0]=00467a6e1accf178467a0f5e2c8d7e4afbda05d2
  [0.4.0]=05e012774d72bc26fad4d94fb85b6fff5cf6c57c
  [0.5.0]=a98aa837b67e94968473ea2cc75a19efe62d653e
)
case "$PG_MAJOR" in
  15) CHAIN="0.1.0 0.2.0 0.3.0 0.4.0 0.5.0" ;;
  18) CHAIN="0.3.0 0.4.0 0.5.0" ;;
  *) echo "PostgreSQL $PG_MAJOR: no release was built for it here, nothing to upgrade from: scenario skipped"; exit 0 ;;
esac
read -r -a CHAIN <<<"$CHAIN"
FIRST=${CHAIN[0]}
LAST=${CHAIN[${#CHAIN[@]}-1]}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
NEW_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -1)
LIBDIR=$("$PGBIN/pg_config" --pkglibdir)
EXTDIR=$("$PGBIN/pg_config" --sharedir)/extension
SNAPSHOT_SQL="$REPO/pg_test/sql/catalog_snapshot.sql"
UPGRADE_CACHE=${CITUS_AUTOSCALE_CACHE:-/var/cache/citus_autoscale}/upgrade
export PATH="$HOME/.cargo/bin:$PATH"

# --- 1. the releases, built from their commits (once: a release's build never changes) ---
# build_release VERSION: prints the directory of its `cargo pgrx package` output
build_release() {
  local version=$1 commit=${RELEASE[$1]} dir t0
  dir=$UPGRADE_CACHE/$version-$commit-pg$PG_MAJOR
  if [ ! -f "$dir/pkg/.built" ]; then
    git -C "$REPO" cat-file -e "$commit^{commit}" 2>/dev/null ||
      fail "the $version release commit $commit is not in this clone (a shallow clone? fetch the full history)"
    rm -rf "$dir"; mkdir -p "$dir/src"
    git -C "$REPO" archive "$commit" | tar -x -C "$dir/src"
    t0=$(date +%s)
    (cd "$dir/src" && CARGO_TARGET_DIR="$UPGRADE_CACHE/target-pg$PG_MAJOR" cargo pgrx package --debug \
        --pg-config "$PGBIN/pg_config" --out-dir "$dir/pkg" >"$dir/build.log" 2>&1) ||
      { tail -20 "$dir/build.log" >&2; fail "building $version failed"; }
    touch "$dir/pkg/.built"
    echo "built $version from $commit in $(( $(date +%s) - t0 )) s" >&2
  fi
  echo "$dir/pkg"
}
declare -A REL_SO REL_EXT
for v in "${CHAIN[@]}"; do
  pkg=$(build_release "$v")
  REL_SO[$v]=$(find "$pkg" -name citus_autoscale.so | head -1)
  REL_EXT[$v]=$(dirname "$(find "$pkg" -name citus_autoscale.control | head -1)")
  [ -f "${REL_SO[$v]}" ] && [ -f "${REL_EXT[$v]}/citus_autoscale--$v.sql" ] || fail "$v package incomplete under $pkg"
done

# save this tree's installed files; put them back at the end
saved="$CLUSTER_DIR/installed-$NEW_VERSION"
rm -rf "$saved"; mkdir -p "$saved"
[ -f "$EXTDIR/citus_autoscale--$NEW_VERSION.sql" ] ||
  fail "citus_autoscale $NEW_VERSION is not installed (cargo pgrx install first)"
[ -f "$EXTDIR/citus_autoscale--$LAST--$NEW_VERSION.sql" ] || fail "the upgrade script $LAST--$NEW_VERSION is not installed"
cp -a "$LIBDIR/citus_autoscale.so" "$EXTDIR"/citus_autoscale.control "$EXTDIR"/citus_autoscale--*.sql "$saved/"
# the release scripts (citus_autoscale--<release>.sql) that were not installed before are removed at the end
declare -A HAD_SCRIPT
for v in "${CHAIN[@]}"; do HAD_SCRIPT[$v]=no; [ -f "$EXTDIR/citus_autoscale--$v.sql" ] && HAD_SCRIPT[$v]=yes; done
restore_install() {
  stop_all
  cp -a "$saved/citus_autoscale.so" "$LIBDIR/"
  cp -a "$saved"/citus_autoscale.control "$saved"/citus_autoscale--*.sql "$EXTDIR/"
  for v in "${CHAIN[@]}"; do [ "${HAD_SCRIPT[$v]}" = yes ] || rm -f "$EXTDIR/citus_autoscale--$v.sql"; done
}
trap restore_install EXIT
# install_release VERSION: that release's library, control file and scripts
install_release() {
  install -m 755 "${REL_SO[$1]}" "$LIBDIR/citus_autoscale.so"
  install -m 644 "${REL_EXT[$1]}/citus_autoscale.control" "${REL_EXT[$1]}"/citus_autoscale--*.sql "$EXTDIR/"
}
install_release "$FIRST"

make_cluster 2 1
standby=$(node_port 3)
assert_eq "$(q 0 "SELECT extversion FROM pg_extension WHERE extname = 'citus_autoscale'")" "$FIRST" "$FIRST installed on the coordinator"
assert_eq "$(q 1 "SELECT extversion FROM pg_extension WHERE extname = 'citus_autoscale'")" "$FIRST" "and on a worker (Citus propagated it)"
make_kv 8 20000
set_gucs 0 autoscale.mode act
q 0 "SELECT autoscale.set_policy('cpu', scale_out_above => 95, scale_in_below => 1, scale_in_for => '1 day',
       min_workers => 2, max_workers => 3)" >/dev/null
q 0 "SELECT autoscale.set_policy('commits', metric => 'commits_per_sec', aggregate => 'max', target => 500,
       min_workers => 2, max_workers => 3)" >/dev/null
# an administrator's grant on a function the upgrade drops and creates again (explain(): a new result type)
q 0 "CREATE ROLE upgrade_reader NOLOGIN" >/dev/null
q 0 "GRANT EXECUTE ON FUNCTION autoscale.explain() TO upgrade_reader" >/dev/null
q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby)" >/dev/null
q 0 "SELECT autoscale.scale_out(reason => 'before the upgrade')" >/dev/null
wait_for 0 "SELECT status = 'succeeded' FROM autoscale.operations WHERE kind = 'scale_out'" 90 || { dump_state 0; false; } ||
  fail "$FIRST's scale-out did not succeed"
wait_for 0 "SELECT count(DISTINCT sample_id) >= 3 FROM autoscale.node_samples" 30 || fail "$FIRST recorded no history"
kept_sql="SELECT (SELECT string_agg(name || ':' || metric, ',' ORDER BY name) FROM autoscale.policies)
          || ' pool=' || (SELECT string_agg(nodeport || ':' || state, ',' ORDER BY nodeport) FROM autoscale.standby_nodes)
          || ' ops=' || (SELECT string_agg(id || ':' || kind || ':' || status, ',' ORDER BY id) FROM autoscale.operations)"
kept_before=$(q 0 "$kept_sql")
counts_sql="SELECT (SELECT count(*) FROM autoscale.node_samples WHERE sample_id <= %s) || '/'
                || (SELECT count(*) FROM autoscale.worker_count WHERE sample_id <= %s) || '/'
                || (SELECT count(*) FROM autoscale.events WHERE id <= %s)"
last_sample=$(q 0 "SELECT max(sample_id) FROM autoscale.node_samples")
last_event=$(q 0 "SELECT max(id) FROM autoscale.events")
# shellcheck disable=SC2059
counts_before=$(q 0 "$(printf "$counts_sql" "$last_sample" "$last_sample" "$last_event")")
rows_before=$(row_counts 0)
# the node history's values, compared across the update to this version: exact columns by digest, CPU busy %
# (kept to 0.01 from 0.5.0 on) by its sum
digest_sql="SELECT md5(string_agg(concat_ws(':', sample_id, sampled_at, nodeid, nodename, nodeport, is_coordinator, reachable,
                                            data_node, shard_count, shard_bytes, database_size, connections, error),
                                  ',' ORDER BY sample_id, nodename, nodeport)) || ' ' || count(cpu_busy_pct)
              FROM autoscale.node_samples WHERE sample_id <= $last_sample"
cpu_sum_sql="SELECT coalesce(sum(cpu_busy_pct::numeric), 0) FROM autoscale.node_samples WHERE sample_id <= $last_sample"
echo "$FIRST state: $kept_before; history rows (samples/worker_count/events): $counts_before"

# --- 2. every later release's files, restart, ALTER EXTENSION UPDATE (the released path) ---
ext_version() { q "$1" "SELECT extversion FROM pg_extension WHERE extname = 'citus_autoscale'"; }
for v in "${CHAIN[@]:1}"; do
  stop_all
  install_release "$v"
  for i in 0 1 2 3; do start_node "$i"; done
  q 0 "ALTER EXTENSION citus_autoscale UPDATE" >/dev/null
  assert_eq "$(ext_version 0)" "$v" "coordinator updated to $v"
  for i in 1 2 3; do [ "$(ext_version "$i")" = "$v" ] || q "$i" "ALTER EXTENSION citus_autoscale UPDATE" >/dev/null; done
  if [ "$v" = 0.2.0 ]; then
    # the load strategy as 0.2.0 registers it (its first tick does; registered here if no tick has yet; a tick
    # that registers it meanwhile wins)
    q 0 "DO \$\$ BEGIN
           PERFORM citus_add_rebalance_strategy('autoscale_by_load', 'autoscale.shard_load_cost', 'citus_node_capacity_1',
             'citus_shard_allowed_on_node_true', 0.1, 0.01, 0.5);
         EXCEPTION WHEN unique_violation THEN NULL;
         END \$\$" >/dev/null
    assert_eq "$(q 0 "SELECT improvement_threshold FROM pg_dist_rebalance_strategy WHERE name = 'autoscale_by_load'")" 0.5 \
      "0.2.0's load strategy has improvement_threshold 0.5"
  fi
  if [ "$v" = 0.3.0 ] && [ "$FIRST" != 0.3.0 ]; then
    assert_eq "$(q 0 "SELECT improvement_threshold FROM pg_dist_rebalance_strategy WHERE name = 'autoscale_by_load'")" 0.2 \
      "the 0.3.0 update set the load strategy's improvement_threshold to 0.2"
  fi
done

# the history as the last release keeps it (0.1.0 had no data_node column)
digest_before=$(q 0 "$digest_sql")
cpu_sum_before=$(q 0 "$cpu_sum_sql")

# --- 3. this version's files over the running servers, as dpkg installs them (a new file; the old library
#        stays mapped), then the update: refused with a HINT, nothing changed; after a restart it runs ---
catalog_before=$(as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d postgres -f "$SNAPSHOT_SQL")
install -m 755 "$saved/citus_autoscale.so" "$LIBDIR/citus_autoscale.so"
install -m 644 "$saved"/citus_autoscale.control "$saved"/citus_autoscale--*.sql "$EXTDIR/"
assert_eq "$(q 0 "SELECT default_version FROM pg_available_extensions WHERE name = 'citus_autoscale'")" "$NEW_VERSION" \
  "the new files are installed ($NEW_VERSION) while the servers run $LAST's library"
refused=$(as_pg psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d postgres \
  -c "ALTER EXTENSION citus_autoscale UPDATE" 2>&1 && echo "UPDATE SUCCEEDED" || true)
echo "$refused" | sed 's/^/   | /'
assert_not_contains "$refused" "UPDATE SUCCEEDED" "the update with the old library loaded is refused"
assert_contains "$refused" "55000" "with SQLSTATE 55000 (object_not_in_prerequisite_state)"
assert_contains "$refused" "the library loaded in this server is older than $NEW_VERSION" "saying why"
assert_contains "$refused" "HINT:  restart PostgreSQL on this node so that it loads the new library, then run the update again" "and what to do"
assert_not_contains "$refused" "could not find function" "not the raw 'could not find function' error"
assert_eq "$(ext_version 0)" "$LAST" "the coordinator is still at $LAST"
assert_eq "$(ext_version 1)" "$LAST" "and so is a worker"
assert_eq "$(as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d postgres -f "$SNAPSHOT_SQL")" \
  "$catalog_before" "the refused update changed no object"
stop_all
for i in 0 1 2 3; do start_node "$i"; done
q 0 "ALTER EXTENSION citus_autoscale UPDATE" >/dev/null
assert_eq "$(ext_version 0)" "$NEW_VERSION" "after a restart the coordinator updated to $NEW_VERSION"
assert_eq "$(q 0 "SELECT autoscale.library_version()")" "$NEW_VERSION" "and runs the $NEW_VERSION library"
for i in 1 2 3; do
  v=$(ext_version "$i")
  if [ "$v" != "$NEW_VERSION" ]; then
    echo "worker $i still at $v after the coordinator's update: ALTER EXTENSION UPDATE there"
    q "$i" "ALTER EXTENSION citus_autoscale UPDATE" >/dev/null
  fi
  assert_eq "$(ext_version "$i")" "$NEW_VERSION" "node $i at $NEW_VERSION"
done

[ "$(q 0 "SELECT count(*) FROM pg_dist_rebalance_strategy WHERE name = 'autoscale_by_load'")" = 0 ] ||
  assert_eq "$(q 0 "SELECT improvement_threshold FROM pg_dist_rebalance_strategy WHERE name = 'autoscale_by_load'")" 0.2 \
    "the load strategy's improvement_threshold is 0.2"
# --- 4. data kept; sampling, explain and an operation work ---
assert_eq "$(q 0 "$kept_sql")" "$kept_before" "policies, pool and operations kept"
# shellcheck disable=SC2059
assert_eq "$(q 0 "$(printf "$counts_sql" "$last_sample" "$last_sample" "$last_event")")" "$counts_before" "history rows kept"
assert_eq "$(row_counts 0)" "$rows_before" "user tables kept"
assert_eq "$(q 0 "$digest_sql")" "$digest_before" "the node history's nodes, roles, reachability, shard counts and sizes kept"
cpu_sum_after=$(q 0 "$cpu_sum_sql")
assert_true "$(q 0 "SELECT abs($cpu_sum_after - $cpu_sum_before) <= 0.005 * (SELECT count(*) FROM autoscale.node_samples
                                                                          WHERE sample_id <= $last_sample) + 0.001")" \
  "CPU busy % kept to 0.01 (sum $cpu_sum_before before, $cpu_sum_after after)"
s=$(q 0 "SELECT max(sample_id) FROM autoscale.node_samples")
q 0 "SELECT autoscale.sample()" >/dev/null
assert_eq "$(q 0 "SELECT count(*) FILTER (WHERE reachable) FROM autoscale.node_samples WHERE sample_id = (SELECT max(sample_id) FROM autoscale.node_samples) AND sample_id > $s")" 4 \
  "a sample after the upgrade reads the coordinator and 3 workers"
# (the policies' rows: a trigger's row, load skew say, comes and goes with the tick's assessment)
assert_eq "$(q 0 "SELECT string_agg(policy, ',' ORDER BY policy) FROM autoscale.explain()
                   WHERE policy IN (SELECT name FROM autoscale.policies)")" "commits,cpu" "explain() explains both policies"
# 0.6.0: metrics() exports the predictive policies' forecasts, and its comment says so
assert_contains "$(q 0 "SELECT autoscale.metrics()")" "# TYPE autoscale_policy_forecast_cycle_seconds gauge" \
  "metrics() has the forecast families"
assert_contains "$(q 0 "SELECT obj_description('autoscale.metrics()'::regprocedure, 'pg_proc')")" \
  "autoscale_policy_forecast_cycle_seconds" "the updated comment of metrics() names them"
assert_eq "$(q 0 "SELECT has_function_privilege('upgrade_reader', 'autoscale.explain()', 'EXECUTE')")" t \
  "a role granted EXECUTE on explain() before the upgrade keeps it"
# the grant is not part of a fresh install: gone before the catalogs are compared
q 0 "REVOKE EXECUTE ON FUNCTION autoscale.explain() FROM upgrade_reader" >/dev/null
q 0 "DROP ROLE upgrade_reader" >/dev/null
q 0 "SELECT autoscale.scale_in('127.0.0.1', $standby, reason => 'after the upgrade')" >/dev/null
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE kind = 'scale_in'" 90 || { dump_state 0; false; } ||
  fail "the scale-in after the upgrade did not finish"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE kind = 'scale_in'")" succeeded "a scale-in after the upgrade succeeded"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE nodeport = $standby")" 0 "the node left the cluster"
assert_eq "$(row_counts 0)" "$rows_before" "user tables kept through the scale-in"

# --- 5. identical objects: fresh install vs upgraded coordinator and worker ---
q 0 "CREATE DATABASE fresh" >/dev/null
as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d fresh \
  -c "CREATE EXTENSION citus" -c "CREATE EXTENSION citus_autoscale" >/dev/null
snapshot() { as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port "$1")" -U postgres -d "$2" -f "$SNAPSHOT_SQL"; }
snapshot 0 fresh >"$CLUSTER_DIR/catalog.fresh"
snapshot 0 postgres >"$CLUSTER_DIR/catalog.upgraded"
snapshot 1 postgres >"$CLUSTER_DIR/catalog.worker"
n=$(wc -l <"$CLUSTER_DIR/catalog.fresh")
[ "$n" -gt 50 ] || fail "the catalog snapshot has only $n lines"
assert_true "$(q 0 "SELECT $(grep -c '^function ' "$CLUSTER_DIR/catalog.fresh") > 10")" "the snapshot lists the functions ($n lines in all)"
diff -u "$CLUSTER_DIR/catalog.fresh" "$CLUSTER_DIR/catalog.upgraded" >&2 ||
  fail "the upgraded coordinator's objects differ from a fresh install (diff above: - fresh, + upgraded)"
echo "ok: upgraded coordinator = fresh install ($n catalog lines)"
diff -u "$CLUSTER_DIR/catalog.fresh" "$CLUSTER_DIR/catalog.worker" >&2 ||
  fail "the upgraded worker's objects differ from a fresh install (diff above: - fresh, + worker)"
echo "ok: upgraded worker = fresh install"

# --- 6. pg_dump / pg_restore keep policies and pool (config tables) ---
# A database without Citus: the pool row is written directly, as add_standby_node needs a coordinator.
q 0 "CREATE DATABASE dumpsrc" >/dev/null
q 0 "CREATE DATABASE dumpdst" >/dev/null
psql_db() { local db=$1; shift; as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d "$db" "$@"; }
psql_db dumpsrc -c "CREATE EXTENSION citus_autoscale" \
  -c "SELECT autoscale.set_policy('dumped', metric => 'commits_per_sec', scale_out_above => 123, scale_in_below => 4, min_workers => 2)" \
  -c "INSERT INTO autoscale.standby_nodes (nodename, nodeport) VALUES ('10.0.0.9', 5432)" >/dev/null
config_sql="SELECT (SELECT string_agg(name || ':' || metric || ':' || coalesce(scale_out_above::text, '-'), ',') FROM autoscale.policies)
            || ' pool=' || (SELECT string_agg(nodename || ':' || nodeport || ':' || state, ',') FROM autoscale.standby_nodes)"
src_config=$(psql_db dumpsrc -c "$config_sql")
as_pg pg_dump -h 127.0.0.1 -p "$(node_port 0)" -U postgres -Fc -f "$CLUSTER_DIR/dumpsrc.dump" dumpsrc
as_pg pg_restore -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d dumpdst --exit-on-error "$CLUSTER_DIR/dumpsrc.dump"
assert_eq "$(psql_db dumpdst -c "$config_sql")" "$src_config" "pg_dump/pg_restore keep policies and pool"
