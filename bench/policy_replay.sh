#!/usr/bin/env bash
# Decision-quality benchmark of the policy engine: replays synthetic load traces (diurnal, spike,
# ramp, noisy plateau near 80%, sawtooth) through the default threshold policy, target tracking
# and a naive alert rule, and prints actions, minutes above 80% CPU, worker-minutes and flapping.
# Exits non-zero when threshold/target flap as much as the naive rule or miss the spike or ramp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release -q -p autoscale_core --example replay "$@"
