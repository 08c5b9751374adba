#!/usr/bin/env bash
# Decision-quality benchmark of the policy engine: replays synthetic load traces (diurnal, spike,
# ramp, noisy plateau near 80%, weekly, sawtooth) through the default threshold policy, target
# tracking, a naive alert rule and predictive target tracking, next to an oracle (an omniscient
# scaler with the same operation time), and prints actions, minutes above 80% CPU (and how many
# of them fell inside the noise's short bursts), worker-minutes and flapping.
# Exits non-zero when threshold/target/predictive flap as much as the naive rule or miss the spike
# or ramp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release -q -p autoscale_core --example replay "$@"
