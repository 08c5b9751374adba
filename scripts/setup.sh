#!/usr/bin/env bash
# Installs what citus_autoscale needs on Debian 12 and builds and installs the extension into the
# system PostgreSQL 15. Idempotent: what is already there is left alone.
#   scripts/setup.sh            deps + release build installed
#   scripts/setup.sh --deps     deps only (apt packages, cargo-pgrx 0.18.1, pgrx config)
#   scripts/setup.sh --dev      deps + debug build installed (faster to build)
set -euo pipefail
cd "$(dirname "$0")/.."

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGRX_VERSION=0.18.1
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-contrib-15 postgresql-client-15
              clang libclang-dev pkg-config libssl-dev libpq-dev sudo build-essential)
# postgresql-contrib-15 is a virtual name on some releases; dpkg knows the real package as postgresql-15
missing=()
for p in "${APT_PACKAGES[@]}"; do
  [ "$p" = postgresql-contrib-15 ] && continue
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == *"install ok installed"* ]] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "setup: run as root to install packages" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts a 'main' cluster on 5432 when postgresql-15 is installed; we use our own instances.

if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if [ "$(cargo pgrx --version 2>/dev/null | awk '{print $2}')" != "$PGRX_VERSION" ]; then
  echo "setup: installing cargo-pgrx $PGRX_VERSION (about 5 minutes on 2 cores)"
  cargo install cargo-pgrx --version "=$PGRX_VERSION" --locked
fi
# pgrx knows every PostgreSQL this machine has: Debian's 15, and 18 when scripts/build_pairs.sh built it
PG18_BIN=$(scripts/build_pairs.sh --print-pg18)
PGRX_CONFIG="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if ! grep -qs "pg15" "$PGRX_CONFIG" || { [ -n "$PG18_BIN" ] && ! grep -qs "^pg18 = \"$PG18_BIN/pg_config\"" "$PGRX_CONFIG"; }; then
  cargo pgrx init --pg15="$PG_CONFIG" ${PG18_BIN:+--pg18="$PG18_BIN/pg_config"} >/dev/null
fi

case "${1:-}" in
  --deps) exit 0 ;;
  --dev) cargo pgrx install --pg-config "$PG_CONFIG" 2>&1 | tail -1 ;;
  *) cargo pgrx install --release --pg-config "$PG_CONFIG" 2>&1 | tail -1 ;;
esac
