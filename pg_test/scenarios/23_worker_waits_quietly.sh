#!/usr/bin/env bash
# The background worker waits quietly. A node whose autoscale.database_name does not exist yet starts only
# the launcher, which logs one line and waits (no FATAL, no restart every 5 s); once the database is
# created the worker starts in it, logs once that the extension is not created there, and samples as soon
# as it is. Plain PostgreSQL is enough (no Citus on this node).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "the background worker waits quietly for its database and its extension"
stop_all
init_node 0 citus_autoscale
sed -i "s/^autoscale.database_name = 'postgres'/autoscale.database_name = 'later'/" "$(node_dir 0)/postgresql.conf"
log="$(node_dir 0).log"
rm -f "$log"   # pg_ctl appends: this run's lines only
start_node 0
wait_for 0 "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'citus_autoscale launcher'" 20 ||
  fail "no launcher"
# two restart periods of the old worker (5 s each) pass with the database missing
wait_for 0 "SELECT now() - backend_start > interval '11 s' FROM pg_stat_activity WHERE backend_type = 'citus_autoscale launcher'" 30 ||
  fail "the launcher did not stay up"
assert_eq "$(q 0 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'citus_autoscale'")" 0 "no worker while the database is missing"
assert_eq "$(grep -c 'database "later" (autoscale.database_name) does not exist; waiting' "$log")" 1 "the launcher said so once"
assert_eq "$(grep -c 'FATAL' "$log" || true)" 0 "no FATAL in the log"
assert_eq "$(grep -c 'exited with exit code' "$log" || true)" 0 "no background worker exited"

q 0 "CREATE DATABASE later" >/dev/null
wait_for 0 "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'citus_autoscale' AND datname = 'later'" 20 ||
  fail "the worker did not start in the new database"
echo "ok: the worker started in database later"
later() { as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d later -c "$1"; }
wait_for 0 "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'citus_autoscale' AND now() - backend_start > interval '3 s'" 20
assert_eq "$(grep -c 'the extension is not created in database "later"; waiting' "$log")" 1 "the worker said once that the extension is missing"
later "CREATE EXTENSION citus_autoscale"
deadline=$(( $(date +%s) + 30 ))
until [ "$(later "SELECT count(*) FROM autoscale.worker_count WHERE driver = 'worker'")" -gt 0 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the worker does not sample after CREATE EXTENSION"
  sleep 0.3
done
echo "ok: the worker samples once the extension exists"
assert_eq "$(grep -c 'FATAL' "$log" || true)" 0 "still no FATAL in the log"
