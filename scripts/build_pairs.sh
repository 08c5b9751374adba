#!/usr/bin/env bash
# Builds, for the tests, the PostgreSQL / Citus pairs that are missing on this machine, from the
# upstream source tarballs in a directory it is given:
#   PostgreSQL 15 (Debian's) + Citus 13.2.x    needs citus-13.2.*.tar.gz
#   PostgreSQL 18 (built)    + Citus 14.0.x    needs postgresql-18*.tar.bz2 (or .tar.gz) and citus-14.0.*.tar.gz
#
#   scripts/build_pairs.sh SOURCES_DIR     build what is missing; a second run builds nothing
#   scripts/build_pairs.sh --print-pg18    print the PostgreSQL 18 bin directory (empty when not built)
#
# Builds are cached outside the clone, under $CITUS_AUTOSCALE_CACHE (default /var/cache/citus_autoscale):
#   pg18/           PostgreSQL 18 installed there (with Citus 14 and pg_stat_statements)
#   build/          the unpacked, configured and built source trees
# Citus 13.2 is installed into Debian's PostgreSQL 15 (/usr/lib/postgresql/15), which needs root.
# Nothing of Citus is written into the repository. The one change made to a source tree is Citus
# 13.2's compatibility define for PostgreSQL 15.20 (which declares have_createdb_privilege() itself).
set -euo pipefail
CACHE=${CITUS_AUTOSCALE_CACHE:-/var/cache/citus_autoscale}
PG18_PREFIX=$CACHE/pg18
PG15_CONFIG=/usr/lib/postgresql/15/bin/pg_config

if [ "${1:-}" = --print-pg18 ]; then
  [ -x "$PG18_PREFIX/bin/postgres" ] && echo "$PG18_PREFIX/bin"
  exit 0
fi
SOURCES=${1:?usage: scripts/build_pairs.sh SOURCES_DIR}
SOURCES=$(cd "$SOURCES" && pwd)
mkdir -p "$CACHE/build"
log=$CACHE/build/build.log

BUILD_PACKAGES=(build-essential autoconf flex bison pkg-config libssl-dev libkrb5-dev liblz4-dev libzstd-dev
                libcurl4-openssl-dev libselinux1-dev libpam0g-dev libxml2-dev libxslt1-dev libreadline-dev
                zlib1g-dev libicu-dev)
install_build_packages() {
  local missing=() p
  for p in "${BUILD_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == *"install ok installed"* ]] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "build_pairs: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# newest tarball matching a glob in SOURCES (empty when none)
tarball() { local f; f=$(ls -1 "$SOURCES"/$1 2>/dev/null | sort -V | tail -1); echo "$f"; }

# unpack TARBALL into $CACHE/build/NAME (once); prints the tree
unpack() {
  local tb=$1 name=$2 dir=$CACHE/build/$2
  if [ ! -f "$dir/.unpacked" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    tar xf "$tb" -C "$dir" --strip-components=1
    touch "$dir/.unpacked"
  fi
  echo "$dir"
}

build_pg18() {
  local tb dir
  [ -x "$PG18_PREFIX/bin/postgres" ] && [ -f "$("$PG18_PREFIX/bin/pg_config" --pkglibdir)/dblink.so" ] && return 0
  tb=$(tarball 'postgresql-18*.tar.*')
  [ -n "$tb" ] || { echo "build_pairs: no postgresql-18 tarball in $SOURCES: PostgreSQL 18 not built"; return 1; }
  install_build_packages
  dir=$(unpack "$tb" "$(basename "$tb" | sed 's/\.tar\..*//')")
  echo "build_pairs: building PostgreSQL 18 from $(basename "$tb") into $PG18_PREFIX (about 4 minutes on 2 cores)"
  ( cd "$dir"
    [ -f config.status ] || ./configure --prefix="$PG18_PREFIX" --with-openssl --with-lz4 --with-zstd --with-icu
    make -j"$(nproc)" && make install && make -C contrib -j"$(nproc)" install ) >>"$log" 2>&1 ||
    { echo "build_pairs: PostgreSQL 18 build failed, log: $log"; return 1; }
}

# build_citus PG_CONFIG TARBALL_GLOB: build and install Citus into that PostgreSQL unless it has one
build_citus() {
  local pgc=$1 glob=$2 tb dir pgmajor
  [ -f "$("$pgc" --pkglibdir)/citus.so" ] && [ -f "$("$pgc" --sharedir)/extension/citus.control" ] && return 0
  tb=$(tarball "$glob")
  [ -n "$tb" ] || { echo "build_pairs: no $glob in $SOURCES: Citus for $("$pgc" --version) not built"; return 1; }
  install_build_packages
  pgmajor=$("$pgc" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
  dir=$(unpack "$tb" "$(basename "$tb" .tar.gz)-pg$pgmajor")
  # Citus 13.2 on PostgreSQL 15.20+: rename its own static have_createdb_privilege()
  if [ "$pgmajor" = 15 ] && ! grep -q citus_compat_have_createdb_privilege "$dir/src/include/pg_version_compat.h"; then
    perl -0pi -e 's/static inline bool\nhave_createdb_privilege\(void\)/#define have_createdb_privilege citus_compat_have_createdb_privilege\nstatic inline bool\nhave_createdb_privilege(void)/' \
      "$dir/src/include/pg_version_compat.h"
  fi
  echo "build_pairs: building Citus from $(basename "$tb") for PostgreSQL $pgmajor (about 4 minutes on 2 cores)"
  ( cd "$dir"
    [ -f config.status ] || ./configure PG_CONFIG="$pgc" --without-libcurl
    make -j"$(nproc)" && make install ) >>"$log" 2>&1 ||
    { echo "build_pairs: Citus build for PostgreSQL $pgmajor failed, log: $log"; return 1; }
}

rc=0
if [ -x "$PG15_CONFIG" ] && [ -f "$("$PG15_CONFIG" --includedir-server)/postgres.h" ]; then
  build_citus "$PG15_CONFIG" 'citus-13.2*.tar.gz' || rc=1
fi
if build_pg18; then
  build_citus "$PG18_PREFIX/bin/pg_config" 'citus-14*.tar.gz' || rc=1
else
  rc=1
fi
# the postgres OS user runs the test clusters and must read the tree
chmod -R a+rX "$PG18_PREFIX" 2>/dev/null || true
exit $rc
