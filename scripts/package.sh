#!/usr/bin/env bash
# Builds the Debian package dpvs_<version>_<arch>.deb into OUT (default target/debian) with
# Debian's own tools (dpkg-shlibdeps for the shared-library dependencies, dpkg-deb): the
# binaries in /usr/bin (dpvs-worker beside dpvs, where the primary looks for it), the man
# pages (scripts/man.sh, gzipped), dpvsctl's bash completion, the systemd units installed
# disabled (/lib/systemd/system), /etc/default/dpvs and /etc/dpvs/dpvs.toml (the embedded
# default, as conffiles), the README and sample configurations in /usr/share/doc/dpvs. It
# depends on Debian's DPDK 22.11 libraries and the PMD plugins the samples use, not a copy.
# Usage: scripts/package.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-target/debian}")
echo "== building the release binaries (cargo build --release)"
cargo build --release --bins
BIN=target/release
VERSION=$(cargo metadata --no-deps --format-version 1 |
    python3 -c "import json,sys; print(next(p['version'] for p in json.load(sys.stdin)['packages'] if p['name'] == 'primary'))")
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
BINS=(dpvs dpvs-worker dpvsctl ipvsadm dpip dpvs-exporter dpvs-health dpvs-gen)
install -d "$ROOT/usr/bin" "$ROOT/lib/systemd/system" "$ROOT/etc/default" "$ROOT/etc/dpvs" \
    "$ROOT/usr/share/doc/dpvs/examples" "$ROOT/usr/share/bash-completion/completions" "$ROOT/DEBIAN"
for b in "${BINS[@]}"; do install -m755 -s "$BIN/$b" "$ROOT/usr/bin/"; done
scripts/man.sh "$ROOT/usr/share/man" "$BIN" > /dev/null
gzip -9n "$ROOT"/usr/share/man/man*/*
"$BIN/dpvsctl" completions bash > "$ROOT/usr/share/bash-completion/completions/dpvsctl"
for u in dpvs.service dpvs-exporter.service dpvs-health.service; do
    sed -e 's#/usr/local/bin/#/usr/bin/#g' -e 's#/usr/local/share/doc/dpvs/#/usr/share/doc/dpvs/#g' \
        "dist/systemd/$u" > "$ROOT/lib/systemd/system/$u"
done
install -m644 dist/systemd/dpvs.default "$ROOT/etc/default/dpvs"
install -m644 conf/samples/tap-fnat.toml "$ROOT/etc/dpvs/dpvs.toml"
install -m644 README.md "$ROOT/usr/share/doc/dpvs/README.md"
install -m644 conf/samples/*.toml "$ROOT/usr/share/doc/dpvs/examples/"
# keepalived's and BIRD's samples and the scripts they call (VRRP and BGP, README "Operating it").
install -d "$ROOT/usr/share/dpvs"
install -m755 conf/keepalived/dpvs-vip.sh conf/bird/dpvs-bird-vip.sh "$ROOT/usr/share/dpvs/"
install -m644 conf/keepalived/keepalived.conf conf/bird/bird.conf "$ROOT/usr/share/doc/dpvs/examples/"
printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: dpvs\n\nFiles: *\nLicense: Apache-2.0\n On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.\n' \
    > "$ROOT/usr/share/doc/dpvs/copyright"
# The libraries the binaries link, as dpkg-shlibdeps names their packages.
mkdir -p "$STAGE/src/debian"
printf 'Source: dpvs\n\nPackage: dpvs\nArchitecture: any\n' > "$STAGE/src/debian/control"
shlibs=$(cd "$STAGE/src" && dpkg-shlibdeps -O "${BINS[@]/#/$ROOT/usr/bin/}" 2> /dev/null | sed -n 's/^shlibs:Depends=//p')
# The PMDs the EAL loads as plugins (no link dependency): tap, memif, ring and null ports.
pmds="librte-net-tap23, librte-net-memif23, librte-net-ring23, librte-net-null23, librte-mempool-ring23"
size=$(du -sk "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: dpvs
Version: $VERSION
Architecture: $ARCH
Maintainer: dpvs developers <dpvs@localhost>
Installed-Size: $size
Depends: $shlibs, $pmds
Recommends: dpdk-dev, dpdk
Suggests: prometheus, tshark, keepalived, bird2
Conflicts: ipvsadm
Section: net
Priority: optional
Description: Layer-4 load balancer on DPDK with restartable worker processes
 The feature set of DPVS (LVS on DPDK) as a multi-process system: a primary process owns the
 hugepages and the ports, worker processes forward on their lcores over shared memory, and
 any worker can be restarted, upgraded or can crash without losing traffic or connections.
 Full-NAT, direct routing, NAT and IP-in-IP; dpvsctl, and ipvsadm and dpip front-ends in
 DPVS's syntax; a Prometheus exporter; capture with stock dpdk-dumpcap.
 .
 Its ipvsadm replaces the kernel's (hence the conflict with package ipvsadm).
CONTROL
printf '/etc/default/dpvs\n/etc/dpvs/dpvs.toml\n' > "$ROOT/DEBIAN/conffiles"
mkdir -p "$OUT"
deb="$OUT/dpvs_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$deb" > /dev/null
echo "package: $deb ($(du -h "$deb" | cut -f1)); depends: $shlibs"
