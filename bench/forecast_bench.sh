#!/usr/bin/env bash
# What a predictive policy's forecast costs per tick: the extension's one-shot forecast fit on
# the 1-minute rollups of the cycle window and the recent samples, with and without the cycle
# search (autoscale.forecast_cycle_window). Prints milliseconds per fit; no PostgreSQL needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release -q -p autoscale_core --example forecast_cost "$@"
