#!/usr/bin/env bash
# Scale-out with an empty standby pool asks a provisioner for a node: a provision_requests row,
# NOTIFY autoscale_provision (a LISTENing session sees it) and an HTTP POST of the same json to
# autoscale.webhook_url (a loopback listener receives it). A node added by hand then lets the
# operation go on: rebalance onto it, succeeded, request fulfilled. A request nobody answers
# expires after autoscale.provision_timeout and the scale-out fails.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "provision request: outbox, NOTIFY, webhook; fulfilled by a node added by hand"
make_cluster 2 1
new=$(node_port 3)

q 0 "CREATE TABLE t (id bigint PRIMARY KEY, v text);
     SELECT create_distributed_table('t', 'id', shard_count := 6);
     INSERT INTO t SELECT g, 'x' FROM generate_series(1, 3000) g" >/dev/null
before=$(row_counts 0)

# loopback webhook listener: logs each POST body on one line
hook_dir="$CLUSTER_DIR/hook"; rm -rf "$hook_dir"; mkdir -p "$hook_dir"
cat >"$hook_dir/hook.py" <<'PY'
import http.server, sys
log, portfile = sys.argv[1], sys.argv[2]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open(log, 'ab') as f:
            f.write(self.path.encode() + b' ' + self.headers.get('Content-Type', '').encode() + b' ' + body + b'\n')
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(('127.0.0.1', 0), Hook)
with open(portfile + '.tmp', 'w') as f:
    f.write(str(server.server_address[1]))
import os; os.rename(portfile + '.tmp', portfile)
server.serve_forever()
PY
python3 "$hook_dir/hook.py" "$hook_dir/bodies" "$hook_dir/port" &
hook_pid=$!
listen_pid=""
trap 'kill $hook_pid 2>/dev/null || true; [ -n "$listen_pid" ] && kill $listen_pid 2>/dev/null; stop_all' EXIT
for _ in $(seq 50); do [ -s "$hook_dir/port" ] && break; sleep 0.1; done
hook_port=$(cat "$hook_dir/port")
echo "webhook listener on 127.0.0.1:$hook_port (pid $hook_pid)"

set_gucs 0 autoscale.mode act autoscale.webhook_url "http://127.0.0.1:$hook_port/hook"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.standby_nodes")" 0 "the standby pool is empty"

# a session LISTENing on the channel (psql prints notifications after each command)
as_pg psql -X -h 127.0.0.1 -p "$(node_port 0)" -U postgres -d postgres \
  -c 'LISTEN autoscale_provision' -c 'SELECT pg_sleep(6)' -c 'SELECT pg_sleep(6)' >"$hook_dir/listen.out" 2>&1 &
listen_pid=$!
sleep 1

summary=$(q 0 "SELECT autoscale.scale_out(reason => 'need a node') ->> 'summary'")
echo "scale_out(): $summary"
wait_for 0 "SELECT EXISTS (SELECT 1 FROM autoscale.provision_requests WHERE kind = 'provision')" 10 || { dump_state 0; false; } ||
  fail "no provision request"
q 0 "SELECT id, kind, operation_id, status, payload FROM autoscale.provision_requests"
rid=$(q 0 "SELECT id FROM autoscale.provision_requests WHERE kind = 'provision'")
op=$(q 0 "SELECT id FROM autoscale.operations WHERE kind = 'scale_out'")
assert_true "$(q 0 "SELECT operation_id = $op AND status = 'pending' AND (payload ->> 'id')::bigint = id AND payload ->> 'kind' = 'provision'
                     AND (payload ->> 'operation_id')::bigint = $op FROM autoscale.provision_requests WHERE id = $rid")" \
  "request row: kind provision, pending, payload names itself and the operation"
wait_for 0 "SELECT step = 'wait_for_node' FROM autoscale.operations WHERE id = $op" 10 || fail "operation not waiting for a node"
assert_eq "$(q 0 "SELECT operation || ' ' || operation_step FROM autoscale.status")" "scale_out wait_for_node" "status shows the wait"
assert_true "$(q 0 "SELECT count(*) = 1 FROM autoscale.events WHERE kind = 'provision_request'")" "provision_request event"

# NOTIFY seen by the listener
wait "$listen_pid" || true
listen_pid=""
grep 'Asynchronous notification' "$hook_dir/listen.out" || { cat "$hook_dir/listen.out"; fail "the listener saw no notification"; }
notified=$(sed -n 's/^Asynchronous notification "autoscale_provision" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p' "$hook_dir/listen.out" | head -1)
[ -n "$notified" ] || fail "no notification on channel autoscale_provision"
assert_true "$(q 0 "SELECT \$j\$$notified\$j\$::jsonb = payload FROM autoscale.provision_requests WHERE id = $rid")" \
  "NOTIFY payload = the request's json"

# webhook POSTed by a later tick
wait_for 0 "SELECT webhook_status = 'delivered' FROM autoscale.provision_requests WHERE id = $rid" 15 ||
  fail "webhook not delivered: $(q 0 "SELECT webhook_status, webhook_attempts, webhook_error FROM autoscale.provision_requests WHERE id = $rid")"
cat "$hook_dir/bodies"
assert_eq "$(wc -l <"$hook_dir/bodies")" 1 "one POST received"
read -r path ctype body <"$hook_dir/bodies"
assert_eq "$path" /hook "POSTed to the configured path"
assert_eq "$ctype" application/json "Content-Type: application/json"
assert_true "$(q 0 "SELECT \$j\$$body\$j\$::jsonb = payload AND (\$j\$$body\$j\$::jsonb ->> 'id')::bigint = $rid FROM autoscale.provision_requests WHERE id = $rid")" \
  "webhook body = the same json (same id $rid)"
sleep 2
assert_eq "$(wc -l <"$hook_dir/bodies")" 1 "delivered once, not again"
assert_eq "$(q 0 "SELECT step FROM autoscale.operations WHERE id = $op")" wait_for_node "still waiting without a node"

# the "provisioner" adds a node by hand
q 0 "SELECT citus_add_node('127.0.0.1', $new)" >/dev/null
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op" 60 || { dump_state 0; false; } ||
  fail "scale_out did not finish after the node was added"
q 0 "SELECT at::time, message FROM autoscale.events WHERE (detail ->> 'operation_id')::int = $op ORDER BY id"
assert_eq "$(q 0 "SELECT status || ' ' || nodename || ':' || nodeport FROM autoscale.operations WHERE id = $op")" \
  "succeeded 127.0.0.1:$new" "scale_out succeeded with the added node"
assert_true "$(q 0 "SELECT status = 'fulfilled' AND fulfilled_at IS NOT NULL FROM autoscale.provision_requests WHERE id = $rid")" "request fulfilled"
assert_true "$(q 0 "SELECT job_id IS NOT NULL FROM autoscale.operations WHERE id = $op")" "a rebalance job ran"
assert_true "$(q 0 "SELECT count(*) >= 1 FROM citus_shards WHERE nodeport = $new")" "shards moved onto the new node ($(shard_spread 0))"
assert_eq "$(q 0 "SELECT state FROM autoscale.standby_nodes WHERE nodeport = $new")" active "the node is managed by autoscale (pool state active)"
assert_eq "$(row_counts 0)" "$before" "row counts unchanged"

# nobody answers: the request expires after provision_timeout and the scale-out fails
set_gucs 0 autoscale.provision_timeout 3s
op2=$(q 0 "SELECT autoscale.scale_out(reason => 'nobody answers') ->> 'id'")
wait_for 0 "SELECT status <> 'running' FROM autoscale.operations WHERE id = $op2" 20 || { dump_state 0; false; } ||
  fail "the unanswered scale_out did not end"
q 0 "SELECT status, step, error FROM autoscale.operations WHERE id = $op2"
assert_eq "$(q 0 "SELECT status FROM autoscale.operations WHERE id = $op2")" failed "unanswered scale_out failed"
assert_true "$(q 0 "SELECT error LIKE '%expired%' FROM autoscale.operations WHERE id = $op2")" "error says the request expired"
assert_eq "$(q 0 "SELECT status FROM autoscale.provision_requests WHERE operation_id = $op2")" expired "its request is expired"
assert_eq "$(q 0 "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0")" 3 "no node added or removed"
wait_for 0 "SELECT count(*) = 2 FROM autoscale.provision_requests WHERE webhook_status = 'delivered'" 15 || fail "second webhook not delivered"
assert_eq "$(wc -l <"$hook_dir/bodies")" 2 "the second request was POSTed too"
