#!/usr/bin/env bash
# Bad input to the node functions (add_standby_node, scale_in, scale_out, remove_standby_node,
# cancel_operation) is refused with the right SQLSTATE and an error that names the argument, and
# starts nothing and adds nothing.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
scenario "node functions: bad input refused with the right SQLSTATE"
make_cluster 2 1
w1=$(node_port 1); standby=$(node_port 3)
set_gucs 0 autoscale.mode act
# a policy that never fires, for its worker bounds
q 0 "CREATE TABLE public.knob (v float8); INSERT INTO public.knob VALUES (50);
     GRANT SELECT ON public.knob TO autoscale_metrics" >/dev/null
q 0 "SELECT autoscale.set_policy('bounds', metric => 'custom', custom_sql => 'SELECT v FROM public.knob',
       scale_out_above => 1000, scale_in_below => -1, min_workers => 2, max_workers => 3)" >/dev/null

# --- bad input
free_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
assert_sqlstate 08006 0 "SELECT autoscale.add_standby_node('127.0.0.1', $free_port)"
for p in 0 70000 -1; do
  assert_sqlstate 22023 0 "SELECT autoscale.add_standby_node('127.0.0.1', $p)"
  assert_contains "$(sql_error 0 "SELECT autoscale.add_standby_node('127.0.0.1', $p)")" 'invalid value for port' \
    "port $p: the error names port"
done
echo "ok: bad ports name the argument: $(sql_error 0 "SELECT autoscale.add_standby_node('127.0.0.1', 70000)" | head -2 | tr '\n' ' ')"
assert_sqlstate 22023 0 "SELECT autoscale.add_standby_node('', 5432)"
assert_sqlstate 22023 0 "SELECT autoscale.add_standby_node('127.0.0.1', $w1)"
assert_sqlstate 22023 0 "SELECT autoscale.add_standby_node('127.0.0.1', $(node_port 0))"
assert_eq "$(q 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby) ->> 'state'")" available "standby added"
assert_sqlstate 42710 0 "SELECT autoscale.add_standby_node('127.0.0.1', $standby)"
assert_sqlstate 22023 0 "SELECT autoscale.scale_in('127.0.0.1', $(node_port 0))"
assert_sqlstate 22023 0 "SELECT autoscale.scale_in('127.0.0.1', $free_port)"
assert_sqlstate 22023 0 "SELECT autoscale.scale_in('127.0.0.1', 0)"
assert_sqlstate 55000 0 "SELECT autoscale.scale_in('127.0.0.1', $w1)"
assert_contains "$(sql_error 0 "SELECT autoscale.scale_in('127.0.0.1', $w1)")" 'below min_workers' \
  "scale_in below min_workers gives the reason"
assert_sqlstate 22023 0 "SELECT autoscale.scale_out('127.0.0.1', $w1)"
assert_sqlstate 42704 0 "SELECT autoscale.remove_standby_node('127.0.0.1', $free_port)"
assert_sqlstate 22023 0 "SELECT autoscale.remove_standby_node('127.0.0.1', 0)"
assert_sqlstate 55000 0 "SELECT autoscale.cancel_operation()"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.operations")" 0 "bad input started no operation"
assert_eq "$(q 0 "SELECT count(*) FROM autoscale.standby_nodes")" 1 "bad input added nothing to the pool"
