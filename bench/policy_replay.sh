#!/usr/bin/env bash
# Decision-quality benchmark of the policy engine: replays synthetic load traces (diurnal, spike,
# ramp, noisy plateau near 80%, weekly, sawtooth) and real public request traces (the 1998 World
# Cup site, the NASA KSC web server, the Twitter sample stream; sources, licenses and the
# conversion in bench/traces/README.md) through the default threshold policy, target
# tracking, a naive alert rule and predictive target tracking, next to an oracle (an omniscient
# scaler with the same operation time), and prints actions, minutes above 80% CPU (and how many
# of them fell inside the noise's short bursts), worker-minutes (on real traces as a ratio to the
# oracle's) and flapping. On the real traces it also prints the best a scaler without foresight
# does (reactive_bound: target tracking on the uncapped demand, no window, no step cap) and splits
# the minutes above 80% by what was running (a scale-out, a scale-in, nothing).
# Exits non-zero when threshold/target/predictive flap as much as the naive rule or miss the spike
# or ramp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The real traces are not in the repository (third-party counts, one of them under no stated
# license): bench/traces/README.md says where they come from and how convert.py makes the
# *.counts.xz files; they are read from CITUS_AUTOSCALE_TRACES (default outside the clone).
src="${CITUS_AUTOSCALE_TRACES:-/var/cache/citus_autoscale/traces}"
traces="${REPLAY_TRACES_DIR:-target/replay-traces}"
mkdir -p "$traces"
found=0
for f in "$src"/*.counts.xz; do
    [ -f "$f" ] || continue
    found=1
    out="$traces/$(basename "$f" .xz)"
    [ "$out" -nt "$f" ] || xz -dc "$f" >"$out"
done
[ "$found" = 1 ] || echo "no real traces in $src (bench/traces/README.md says how to make them): replaying the synthetic traces only"
REPLAY_TRACES="$traces" exec cargo run --release -q -p autoscale_core --example replay "$@"
