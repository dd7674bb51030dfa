#!/usr/bin/env bash
# Installs the Debian package (scripts/package.sh) on this machine and checks it from the
# installed paths, then purges it: apt-get resolves its dependencies; the binaries are on
# PATH, `man dpvsctl` and `man 5 dpvs.toml` find their pages, the units pass systemd-analyze
# verify (and are not enabled), `dpvs --check` accepts /etc/dpvs/dpvs.toml, and the primary
# started from /usr/bin with it runs its worker, answers dpvsctl and ipvsadm, does what the
# demo shows (a client namespace pings the VIP and downloads 1 MB through it from a real
# server namespace, intact), and stops cleanly on SIGTERM. Refuses to run if a dpvs package is installed already (it would remove it).
# Usage: scripts/package-check.sh [DEB]
set -euo pipefail
cd "$(dirname "$0")/.."
if dpkg-query -W -f='${Status}' dpvs 2> /dev/null | grep -q "ok installed"; then
    echo "package-check: a dpvs package is installed already; not touching it" >&2
    exit 1
fi
DEB=${1:-}
if [ -z "$DEB" ]; then
    scripts/package.sh
    DEB=$(ls -t target/debian/dpvs_*.deb | head -1)
fi
DEB=$(realpath "$DEB")
PID="" HTTP=""
CLI=dpvs-pkg-cli SRV=dpvs-pkg-srv
# shellcheck source=scripts/tap-namespaces.sh
source scripts/tap-namespaces.sh
finish() {
    [ -n "$HTTP" ] && kill "$HTTP" 2> /dev/null || true
    [ -n "$PID" ] && kill -TERM "$PID" 2> /dev/null && wait "$PID" 2> /dev/null || true
    ip netns del "$CLI" 2> /dev/null || true
    ip netns del "$SRV" 2> /dev/null || true
    dpkg --purge dpvs > /dev/null 2>&1 || true
    rm -rf /var/run/dpdk/dpvs /var/run/dpdk/dpvs.lock /dev/shm/dpvs.shm /dev/hugepages/dpvsmap_* "$LOG" "$WWW"
}
LOG=$(mktemp)
WWW=$(mktemp -d)
trap finish EXIT
echo "== installing $DEB"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "$DEB" > "$LOG" 2>&1 ||
    { cat "$LOG"; exit 1; }
for b in dpvs dpvs-worker dpvsctl ipvsadm dpip dpvs-exporter dpvs-health dpvs-gen; do
    [ "$(command -v "$b")" = "/usr/bin/$b" ] || { echo "$b is not /usr/bin/$b" >&2; exit 1; }
done
man -w dpvsctl > /dev/null && man -w dpvsctl-top > /dev/null && man -w 5 dpvs.toml > /dev/null
[ -x /usr/share/dpvs/dpvs-vip.sh ] && [ -x /usr/share/dpvs/dpvs-bird-vip.sh ] &&
    [ -f /usr/share/doc/dpvs/examples/keepalived.conf ] && [ -f /usr/share/doc/dpvs/examples/bird.conf ] ||
    { echo "the keepalived and BIRD samples are not installed" >&2; exit 1; }
systemd-analyze verify /lib/systemd/system/dpvs.service /lib/systemd/system/dpvs-exporter.service /lib/systemd/system/dpvs-health.service
if command -v systemctl > /dev/null && [ -d /run/systemd/system ]; then
    [ "$(systemctl is-enabled dpvs.service 2>&1 || true)" = disabled ] || { echo "dpvs.service is enabled" >&2; exit 1; }
fi
. /etc/default/dpvs
dpvs -c "$DPVS_CONFIG" --check > /dev/null
echo "== starting /usr/bin/dpvs -c $DPVS_CONFIG"
dpvs -c "$DPVS_CONFIG" > "$LOG" 2>&1 &
PID=$!
for _ in $(seq 100); do dpvsctl -c "$DPVS_CONFIG" worker list 2> /dev/null | grep -q running && break; sleep 0.1; done
dpvsctl -c "$DPVS_CONFIG" worker list | grep -q running || { cat "$LOG"; exit 1; }
DPVS_CONFIG=$DPVS_CONFIG ipvsadm -ln | grep -q "TCP  198.18.0.100:80 rr"
echo "== the demo's checks: ping and a download through the VIP between two namespaces"
tap_namespaces "$CLI" "$SRV"
ip netns exec "$CLI" ping -c 2 -i 0.2 -W 2 198.18.0.100 > /dev/null
head -c 1000000 /dev/urandom > "$WWW/blob"
ip netns exec "$SRV" python3 -m http.server 8080 --bind 198.18.1.2 --directory "$WWW" > /dev/null 2>&1 &
HTTP=$!
for _ in $(seq 50); do ip netns exec "$SRV" curl -s -o /dev/null http://198.18.1.2:8080/ && break; sleep 0.1; done
ip netns exec "$CLI" curl -sS --max-time 10 -o "$WWW/got" http://198.18.0.100/blob
cmp "$WWW/blob" "$WWW/got"
kill -TERM "$PID"
status=0
wait "$PID" || status=$?
PID=""
[ "$status" -eq 0 ] || { echo "dpvs exited $status" >&2; cat "$LOG"; exit 1; }
echo "== the package installs, its binaries, man pages and units work from the installed paths, and it purges"
