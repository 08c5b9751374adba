#!/usr/bin/env bash
# Builds the Debian packages for one PostgreSQL major (15 by default; PG_CONFIG picks another):
#   target/deb/postgresql-<major>-citus-autoscale_<version>_<arch>.deb   the extension, from `cargo pgrx
#       package` (a release build staged under target/release/citus_autoscale-pg<major>/), with a control file
#       (Depends: postgresql-<major>, libpq5 and the libc the library links against; Recommends:
#       citus-autoscale-provisioner; Suggests: postgresql-<major>-cron), md5sums and Installed-Size
#   target/deb/citus-autoscale-provisioner_<version>_<arch>.deb          the provisioner daemon, one package for
#       every major (/usr/bin/citus-autoscale-provisioner, its systemd unit, the example config
#       /etc/citus-autoscale/provisioner.toml as a conffile, whose local driver names this major's programs),
#       so that the packages of two majors install side by side (as during a major upgrade) The files go where Debian's postgresql-<major> looks
# (/usr/lib/postgresql/<major>/lib, /usr/share/postgresql/<major>/extension), whichever build of that major
# PG_CONFIG belongs to (PostgreSQL 18 is built from source for the tests here). Install it with `dpkg -i` or `apt install ./<file>`;
# no Rust toolchain is needed where it is installed.
#   scripts/package.sh               build, print the daemon's .deb path, then the extension's on the last line
#   SKIP_BUILD=1 scripts/package.sh  package what `cargo pgrx package` staged last time
# Maintainer: $DEBFULLNAME <$DEBEMAIL> when set, else the author of the last commit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
EXT=citus_autoscale
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
ARCH=$(dpkg --print-architecture)
PKG="postgresql-$PG_MAJOR-citus-autoscale"
STAGED="target/release/$EXT-pg$PG_MAJOR"
OUT_DIR=${OUT_DIR:-target/deb}
DEB="$OUT_DIR/${PKG}_${VERSION}_${ARCH}.deb"
DAEMON_PKG=citus-autoscale-provisioner
DAEMON_DEB="$OUT_DIR/${DAEMON_PKG}_${VERSION}_${ARCH}.deb"
[ -n "$VERSION" ] || { echo "package: no version in Cargo.toml" >&2; exit 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "package: cargo pgrx package (release build) for PostgreSQL $PG_MAJOR" >&2
  cargo pgrx package --pg-config "$PG_CONFIG" >&2
  echo "package: cargo build --release -p citus-autoscale-provisioner" >&2
  cargo build --release -p citus-autoscale-provisioner >&2
fi
DAEMON=target/release/citus-autoscale-provisioner
[ -x "$DAEMON" ] || { echo "package: $DAEMON missing: run without SKIP_BUILD=1" >&2; exit 1; }
# Debian's layout for this major
DEB_LIBDIR=/usr/lib/postgresql/$PG_MAJOR/lib
DEB_EXTDIR=/usr/share/postgresql/$PG_MAJOR/extension
LIB="$STAGED$("$PG_CONFIG" --pkglibdir)/$EXT.so"
EXTDIR="$STAGED$("$PG_CONFIG" --sharedir)/extension"
for f in "$LIB" "$EXTDIR/$EXT.control" "$EXTDIR/$EXT--$VERSION.sql"; do
  [ -f "$f" ] || { echo "package: $f missing: run without SKIP_BUILD=1" >&2; exit 1; }
done
grep -q "^default_version = '$VERSION'" "$EXTDIR/$EXT.control" ||
  { echo "package: $EXTDIR/$EXT.control is not version $VERSION" >&2; exit 1; }

ROOT=$(mktemp -d)
DROOT=$(mktemp -d)
trap 'rm -rf "$ROOT" "$DROOT"' EXIT
# only the files PostgreSQL loads: the library, the control file, the install and upgrade scripts
install -D -m 0644 "$LIB" "$ROOT$DEB_LIBDIR/$EXT.so"
for f in "$EXTDIR/$EXT.control" "$EXTDIR/$EXT"--*.sql; do
  install -D -m 0644 "$f" "$ROOT$DEB_EXTDIR/$(basename "$f")"
done
# upgrade scripts from sql/ (cargo pgrx package copies them too; this makes sure none is missing)
for f in sql/"$EXT"--*--*.sql; do
  [ -e "$f" ] || continue
  install -D -m 0644 "$f" "$ROOT$DEB_EXTDIR/$(basename "$f")"
done
strip --strip-unneeded "$ROOT$DEB_LIBDIR/$EXT.so"
# the provisioner daemon's package: its binary, a systemd unit (not enabled), an example config (a conffile)
install -D -m 0755 "$DAEMON" "$DROOT/usr/bin/citus-autoscale-provisioner"
strip --strip-unneeded "$DROOT/usr/bin/citus-autoscale-provisioner"
install -d "$DROOT/lib/systemd/system" "$DROOT/etc/citus-autoscale" "$DROOT/usr/share/doc/$DAEMON_PKG"
sed "s/@PG_MAJOR@/$PG_MAJOR/g" provisioner/citus-autoscale-provisioner.service \
  >"$DROOT/lib/systemd/system/citus-autoscale-provisioner.service"
sed "s/@PG_MAJOR@/$PG_MAJOR/g" provisioner/provisioner.example.toml >"$DROOT/etc/citus-autoscale/provisioner.toml"
chmod 0644 "$DROOT/lib/systemd/system/citus-autoscale-provisioner.service" "$DROOT/etc/citus-autoscale/provisioner.toml"
install -m 0644 docs/provisioner.md "$DROOT/usr/share/doc/$DAEMON_PKG/provisioner.md"
install -d "$ROOT/usr/share/doc/$PKG"
install -m 0644 README.md "$ROOT/usr/share/doc/$PKG/README.md"
[ -f dashboards/citus_autoscale.json ] && install -D -m 0644 dashboards/* -t "$ROOT/usr/share/doc/$PKG/dashboards/"
cat >"$ROOT/usr/share/doc/$PKG/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $EXT
License: Apache-2.0

Files: *
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF

# the newest glibc symbol version the library needs
GLIBC=$(objdump -T "$ROOT$DEB_LIBDIR/$EXT.so" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
        sort -uV | tail -1)
MAINTAINER=${DEBFULLNAME:+$DEBFULLNAME <${DEBEMAIL:-root@localhost}>}
MAINTAINER=${MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || echo "citus_autoscale maintainers <root@localhost>")}
INSTALLED_SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)

cp "$ROOT/usr/share/doc/$PKG/copyright" "$DROOT/usr/share/doc/$DAEMON_PKG/copyright"
DAEMON_GLIBC=$(objdump -T "$DROOT/usr/bin/citus-autoscale-provisioner" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
               sort -uV | tail -1)
mkdir -p "$ROOT/DEBIAN" "$DROOT/DEBIAN"
for r in "$ROOT" "$DROOT"; do
  (cd "$r" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$r/DEBIAN/md5sums"
done
echo /etc/citus-autoscale/provisioner.toml >"$DROOT/DEBIAN/conffiles"
cat >"$DROOT/DEBIAN/control" <<EOF
Package: $DAEMON_PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$DROOT" | cut -f1)
Depends: libc6 (>= $DAEMON_GLIBC)
Section: database
Priority: optional
Description: provisioner daemon for citus_autoscale
 Makes the nodes a citus_autoscale coordinator asks for and stops the ones it
 gives back: it claims the coordinator's provision requests (with a lease, so
 a restarted daemon resumes and a dead one is taken over) and fulfils them
 with the local driver (a PostgreSQL node with Citus on this host) or a
 command driver (your program: Terraform, a cloud CLI, kubectl).
EOF
cat >"$ROOT/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $INSTALLED_SIZE
Depends: postgresql-$PG_MAJOR, libpq5, libc6 (>= $GLIBC)
Recommends: $DAEMON_PKG (= $VERSION)
Suggests: postgresql-$PG_MAJOR-cron
Section: database
Priority: optional
Description: autoscaling for self-hosted Citus clusters (PostgreSQL $PG_MAJOR extension)
 citus_autoscale runs inside the Citus coordinator: it samples every node's load
 into history tables, decides with policies set in SQL (thresholds or target
 tracking, in observe or act mode), and acts: rebalances when nodes join or data
 is skewed, adds workers from a standby pool or asks a provisioner for one, and
 drains and removes workers when the load is gone. Every decision is recorded
 and can be explained (autoscale.explain, autoscale.backtest, autoscale.metrics).
 .
 Citus itself is not part of this package; without it the extension samples
 and decides for the local node. pg_cron can drive autoscale.tick() when the
 library is not in shared_preload_libraries.
EOF
chmod 0755 "$ROOT/DEBIAN" "$DROOT/DEBIAN"
find "$ROOT" "$DROOT" -type d -exec chmod 0755 {} +

mkdir -p "$OUT_DIR"
dpkg-deb --root-owner-group -Zxz --build "$DROOT" "$DAEMON_DEB" >&2
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >&2
echo "$DAEMON_DEB"
echo "$DEB"
