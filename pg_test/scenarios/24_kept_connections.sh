#!/usr/bin/env bash
# Sampling at scale (issue 22): the background worker keeps one connection per node across samples
# (application_name 'citus_autoscale sampler connection' on each node), so a sample forks no backend anywhere. A kept
# connection that the node closed is replaced within the same sample (the node is never recorded
# unreachable for it); a node that leaves the cluster is let go. node_stats() measures sizes again only
# every autoscale.size_refresh_interval in a session that answers every sample, and says how old they are.
# A SQL call of sample() connects afresh and changes nothing of this.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "kept sample connections, cheap node_stats"
make_cluster 2 0

sampler() {  # pids of the sampler's sessions on node I
  q "$1" "SELECT coalesce(string_agg(pid::text, ' ' ORDER BY pid), '') FROM pg_stat_activity WHERE application_name = 'citus_autoscale sampler connection' AND backend_type = 'client backend'"
}
last_sample() { q 0 "SELECT coalesce(max(sample_id), 0) FROM autoscale.worker_count WHERE driver = 'worker'"; }
wait_samples() {  # N: wait until N more samples of the worker are written
  local from; from=$(last_sample)
  wait_for 0 "SELECT count(*) >= $1 FROM autoscale.worker_count WHERE driver = 'worker' AND sample_id > $from" 30 ||
    fail "the worker did not take $1 samples"
}

wait_samples 2
p1=$(sampler 1); p2=$(sampler 2)
assert_true "$(q 0 "SELECT '$p1' ~ '^[0-9]+\$' AND '$p2' ~ '^[0-9]+\$'")" "one sampler session on each worker ($p1, $p2)"
forks_before=$(q 1 "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'")
wait_samples 5
assert_eq "$(sampler 1) $(sampler 2)" "$p1 $p2" "the same sessions answered 5 more samples"
forks_after=$(q 1 "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'")
# the check's own psql sessions count too: at most the 2 of these two queries and the sampler lookups
assert_true "$(q 0 "SELECT $forks_after - $forks_before <= 4")" "no session per sample on worker 1 ($((forks_after - forks_before)) new sessions over 5 samples, all of them this check's)"
assert_true "$(q 0 "SELECT bool_and(sample_ms > 0) FROM autoscale.worker_count WHERE sample_id > 0")" "every sample says how long it took"
echo "sample_ms of the worker's samples: $(q 0 "SELECT string_agg(round(sample_ms::numeric, 1)::text, ' ' ORDER BY sample_id) FROM (SELECT * FROM autoscale.worker_count WHERE driver = 'worker' ORDER BY sample_id DESC LIMIT 8) w")"

# the node closes the kept connection (as idle_session_timeout or a restart would): the next sample
# makes a new one and still reads the node
at=$(last_sample)
q 1 "SELECT pg_terminate_backend($p1)" >/dev/null
wait_samples 3
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.node_samples WHERE sample_id > $at AND nodeport = $(node_port 1) AND NOT reachable")" 0 \
  "no sample recorded worker 1 unreachable after its kept connection was closed"
p1b=$(sampler 1)
assert_true "$(q 0 "SELECT '$p1b' ~ '^[0-9]+\$' AND '$p1b' <> '$p1'")" "a new kept session on worker 1 ($p1b)"

# a SQL sample() connects afresh: the kept sessions stay as they are
q 0 "SELECT autoscale.sample()" >/dev/null
assert_eq "$(sampler 1) $(sampler 2)" "$p1b $p2" "sample() from SQL left the kept sessions alone"

# a node that leaves is let go
q 0 "SELECT citus_remove_node('127.0.0.1', $(node_port 2))" >/dev/null
wait_samples 2
assert_eq "$(sampler 2)" "" "the removed worker's kept session is closed"
assert_eq "$(sampler 1)" "$p1b" "and worker 1's is kept"

# node_stats: sizes measured at the first call of a session, reused by the next (size_refresh_interval 60 s)
ages=$(psql_node 1 -c "SELECT autoscale.node_stats()->>'sizes_age_secs'" -c "SELECT pg_sleep(0.2)" -c "SELECT autoscale.node_stats()->>'sizes_age_secs'" | grep -v '^$')
assert_true "$(q 0 "SELECT (string_to_array('$(echo $ages)', ' '))[1]::float8 = 0 AND (string_to_array('$(echo $ages)', ' '))[2]::float8 >= 0.2")" \
  "a session measures sizes once and reuses them (ages: $(echo $ages))"
ages=$(psql_node 1 -c "SET autoscale.size_refresh_interval = 0" -c "SELECT autoscale.node_stats()->>'sizes_age_secs'" -c "SELECT autoscale.node_stats()->>'sizes_age_secs'" | grep -v '^$')
assert_eq "$(echo $ages)" "0.0 0.0" "with size_refresh_interval 0 every call measures"
assert_eq "$(q 1 "SELECT autoscale.node_stats()->>'sizes_age_secs'")" 0.0 "a fresh session's sizes are new"
