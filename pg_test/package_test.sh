#!/usr/bin/env bash
# The Debian package, installed as a user would: `dpkg -i` of the .deb scripts/package.sh built
# (PATH without any Rust toolchain), a throwaway instance of $PGBIN's PostgreSQL (own directory and port,
# citus_autoscale preloaded) runs CREATE EXTENSION and one autoscale.sample(); then `dpkg -r`
# removes every file it installed. Whatever citus_autoscale files were in the system PostgreSQL
# before (a `cargo pgrx install` dev build) are put back at the end, however the test ends.
# A PostgreSQL that is not Debian's package (18, built from source for the tests here) gets the package
# with dpkg --force-depends, and the instance finds its files through dynamic_library_path and
# extension_control_path (PostgreSQL 18+), as it would find them in Debian's postgresql-18.
#   pg_test/package_test.sh [path/to.deb]     (default: the .deb of this version in target/deb/)
# Run as root, under the lock the other PostgreSQL tests take.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
. pg_test/lib.sh   # PGBIN: the pair under test (default Debian's 15)
PG_MAJOR=$("$PGBIN/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
PKG=postgresql-$PG_MAJOR-citus-autoscale
DEB=$(realpath "${1:-target/deb/${PKG}_${VERSION}_$(dpkg --print-architecture).deb}")
# the provisioner daemon's package, built beside it
DAEMON_PKG=citus-autoscale-provisioner
DAEMON_DEB=$(dirname "$DEB")/${DAEMON_PKG}_${VERSION}_$(dpkg --print-architecture).deb
[ -f "$DAEMON_DEB" ] || { echo "package_test: $DAEMON_DEB missing (scripts/package.sh builds both)" >&2; exit 1; }
export PATH=/usr/sbin:/usr/bin:/sbin:/bin   # no cargo, no rustc: the package must stand alone
CLUSTER_DIR=/tmp/citus_autoscale_pkgtest
BASE_PORT=9790
# where the package puts its files: Debian's layout for this major
LIBDIR=/usr/lib/postgresql/$PG_MAJOR/lib
SHAREDIR=/usr/share/postgresql/$PG_MAJOR/extension
debian_server=yes
[ "$("$PGBIN/pg_config" --pkglibdir)" = "$LIBDIR" ] || debian_server=no
DPKG_FLAGS=()
if ! dpkg-query -W -f='${Status}' "postgresql-$PG_MAJOR" 2>/dev/null | grep -q "install ok installed"; then
  echo "postgresql-$PG_MAJOR is not installed as a Debian package here: dpkg -i --force-depends"
  DPKG_FLAGS=(--force-depends)
fi

echo "# the Debian package: dpkg -i, CREATE EXTENSION, one sample, dpkg -r"
[ -f "$DEB" ] || fail "$DEB missing: build it with scripts/package.sh"
if command -v cargo >/dev/null 2>&1 || command -v rustc >/dev/null 2>&1; then fail "a Rust toolchain is in PATH"; fi
for p in "$PKG" "$DAEMON_PKG"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    fail "$p is already installed; remove it first (dpkg -r $p)"
  fi
done

# keep the files a dev build put there, restore them however the test ends
BACKUP=$(mktemp -d)
cp -a "$LIBDIR"/citus_autoscale.so "$SHAREDIR"/citus_autoscale.control "$SHAREDIR"/citus_autoscale--*.sql "$BACKUP"/ 2>/dev/null || true
restore() {
  stop_all
  if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "install ok installed"; then dpkg -r "$PKG" >/dev/null 2>&1 || true; fi
  if dpkg-query -W -f='${Status}' "$DAEMON_PKG" 2>/dev/null | grep -q "install ok installed"; then dpkg -P "$DAEMON_PKG" >/dev/null 2>&1 || true; fi
  local f
  for f in "$BACKUP"/*; do
    [ -e "$f" ] || continue
    case "$f" in *.so) cp -a "$f" "$LIBDIR"/ ;; *) cp -a "$f" "$SHAREDIR"/ ;; esac
  done
  rm -rf "$BACKUP"
  echo "restored the citus_autoscale files that were installed before the test"
}
trap restore EXIT

# --- the package's metadata
field() { dpkg-deb -f "$DEB" "$1"; }
assert_eq "$(field Package)" "$PKG" "Package"
assert_eq "$(field Version)" "$VERSION" "Version is Cargo.toml's"
assert_eq "$(field Architecture)" "$(dpkg --print-architecture)" "Architecture"
assert_contains "$(field Depends)" "postgresql-$PG_MAJOR" "Depends on postgresql-$PG_MAJOR"
assert_contains "$(field Depends)" "libpq5" "Depends on libpq5 (the sample's own connections)"
assert_eq "$(field Suggests)" "postgresql-$PG_MAJOR-cron" "Suggests postgresql-$PG_MAJOR-cron"
assert_eq "$(field Recommends)" "$DAEMON_PKG (= $VERSION)" "Recommends the provisioner daemon's package"
[[ "$(field Maintainer)" =~ ^[^\<]+\ \<[^@\>]+@[^\>]+\>$ ]] || fail "Maintainer is not 'Name <email>': $(field Maintainer)"
echo "ok: Maintainer $(field Maintainer)"
size=$(field Installed-Size)
[[ "$size" =~ ^[0-9]+$ ]] && [ "$size" -gt 100 ] || fail "Installed-Size: $size"
echo "ok: Installed-Size ${size} KiB"
assert_contains "$(field Description)" "Citus" "Description"
files=$(dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$')
for f in "$LIBDIR/citus_autoscale.so" "$SHAREDIR/citus_autoscale.control" "$SHAREDIR/citus_autoscale--$VERSION.sql"; do
  assert_contains "$files" "$f" "the package has $f"
done
for f in sql/citus_autoscale--*--*.sql; do
  assert_contains "$files" "$SHAREDIR/$(basename "$f")" "the package has upgrade script $(basename "$f")"
done
# the provisioner daemon, a package of its own (the same file in two majors' packages could not be installed
# side by side): binary, systemd unit (User=postgres), example config as a conffile
DAEMON_CONF=/etc/citus-autoscale/provisioner.toml
DAEMON_UNIT=/lib/systemd/system/citus-autoscale-provisioner.service
daemon_files=$(dpkg-deb -c "$DAEMON_DEB" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$')
for f in /usr/bin/citus-autoscale-provisioner "$DAEMON_UNIT" "$DAEMON_CONF"; do
  assert_contains "$daemon_files" "$f" "the daemon's package has $f"
  assert_not_contains "$files" "$f" "the extension's package does not"
done
assert_eq "$(dpkg-deb -f "$DAEMON_DEB" Package)" "$DAEMON_PKG" "the daemon's package is $DAEMON_PKG"
assert_eq "$(dpkg-deb -f "$DAEMON_DEB" Version)" "$VERSION" "of version $VERSION"
assert_eq "$(dpkg-deb -I "$DAEMON_DEB" conffiles)" "$DAEMON_CONF" "the daemon's config is a conffile"

# --- install
dpkg -i "$DAEMON_DEB" >/dev/null 2>&1 || dpkg -i "$DAEMON_DEB"
assert_contains "$(dpkg-query -W -f='${Status} ${Version}' "$DAEMON_PKG")" "install ok installed $VERSION" "dpkg -i installed the daemon"
dpkg -i ${DPKG_FLAGS[@]+"${DPKG_FLAGS[@]}"} "$DEB" >/dev/null 2>&1 || dpkg -i ${DPKG_FLAGS[@]+"${DPKG_FLAGS[@]}"} "$DEB"
assert_contains "$(dpkg-query -W -f='${Status} ${Version}' "$PKG")" "install ok installed $VERSION" "dpkg -i installed it"
owned=$( (dpkg -L "$PKG"; dpkg -L "$DAEMON_PKG") | while read -r f; do [ -f "$f" ] && echo "$f"; done)
for f in $owned; do [ -f "$f" ] || fail "$f not installed"; done
echo "ok: $(echo "$owned" | wc -l) files installed"
if ldd "$LIBDIR/citus_autoscale.so" | grep -q "not found"; then fail "unresolved libraries: $(ldd "$LIBDIR/citus_autoscale.so")"; fi
echo "ok: every library citus_autoscale.so links against is there"
assert_contains "$(/usr/bin/citus-autoscale-provisioner --help)" "--config" "the daemon runs (--help)"
assert_contains "$(cat "$DAEMON_UNIT")" "User=postgres" "the systemd unit runs the daemon as postgres"
assert_contains "$(cat "$DAEMON_UNIT")" "ExecStart=/usr/bin/citus-autoscale-provisioner --config $DAEMON_CONF" "the unit starts it with the config"
assert_contains "$(cat "$DAEMON_CONF")" "/usr/lib/postgresql/$PG_MAJOR/bin" "the example config names this major's programs"

# --- a throwaway instance: preloaded, CREATE EXTENSION, one sample
init_node 0 citus_autoscale
if [ "$debian_server" = no ]; then
  cat >>"$(node_dir 0)/postgresql.conf" <<CONF
dynamic_library_path = '$LIBDIR:\$libdir'
extension_control_path = '/usr/share/postgresql/$PG_MAJOR:\$system'
CONF
fi
start_node 0
assert_eq "$(q 0 "SELECT default_version FROM pg_available_extensions WHERE name = 'citus_autoscale'")" "$VERSION" \
  "PostgreSQL sees version $VERSION"
q 0 "CREATE EXTENSION citus_autoscale" >/dev/null
assert_eq "$(q 0 "SELECT extversion FROM pg_extension WHERE extname = 'citus_autoscale'")" "$VERSION" "CREATE EXTENSION citus_autoscale"
sample=$(q 0 "SELECT autoscale.sample()")
assert_eq "$(q 0 "SELECT ('$sample'::jsonb ->> 'nodes')")" 1 "autoscale.sample() sampled this node: $sample"
assert_true "$(q 0 "SELECT reachable AND connections > 0 FROM autoscale.node_samples WHERE sample_id = ('$sample'::jsonb ->> 'sample_id')::bigint")" \
  "the sample is in autoscale.node_samples"
# the library the server runs is the package's (for a server built here, through dynamic_library_path)
wpid=$(q 0 "SELECT pid FROM pg_stat_activity WHERE backend_type = 'citus_autoscale launcher'")
mapped=$(grep -o '/[^ ]*citus_autoscale\.so' "/proc/$wpid/maps" | sort -u)
assert_eq "$mapped" "$LIBDIR/citus_autoscale.so" "the server runs the package's library"
wait_for 0 "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'citus_autoscale'" 20 ||
  fail "the preloaded library started no background worker"
echo "ok: the background worker runs"
for from in $(ls sql/citus_autoscale--*--"$VERSION".sql 2>/dev/null | sed -E 's/.*--(.*)--.*/\1/'); do
  assert_true "$(q 0 "SELECT path IS NOT NULL FROM pg_extension_update_paths('citus_autoscale') WHERE source = '$from' AND target = '$VERSION'")" \
    "ALTER EXTENSION citus_autoscale UPDATE has a path from $from"
done
stop_node 0

# --- remove
dpkg -r ${DPKG_FLAGS[@]+"${DPKG_FLAGS[@]}"} "$PKG" >/dev/null
dpkg -r "$DAEMON_PKG" >/dev/null
status=$(dpkg-query -W -f='${Status}' "$PKG" 2>&1 || true)
[[ "$status" != *"install ok installed"* ]] || fail "still installed after dpkg -r: $status"
echo "ok: dpkg -r removed the package ($status)"
for f in $owned; do [ "$f" = "$DAEMON_CONF" ] || [ ! -e "$f" ] || fail "$f still there after dpkg -r"; done
echo "ok: every file of the package is gone (but the conffile)"
[ -f "$DAEMON_CONF" ] || fail "$DAEMON_CONF removed by dpkg -r (a conffile stays until a purge)"
dpkg -P ${DPKG_FLAGS[@]+"${DPKG_FLAGS[@]}"} "$PKG" >/dev/null
dpkg -P "$DAEMON_PKG" >/dev/null
[ ! -e "$DAEMON_CONF" ] || fail "$DAEMON_CONF still there after dpkg -P"
echo "ok: dpkg -P removed the conffile $DAEMON_CONF"
[ ! -d "/usr/share/doc/$PKG" ] || fail "/usr/share/doc/$PKG still there"
echo "ok: package test passed"
