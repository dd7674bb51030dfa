#!/usr/bin/env bash
# The main job on the embedded default config (conf/samples/tap-fnat.toml), no NIC needed:
# the primary and one worker run a Full-NAT service over two tap ports whose kernel sides are
# moved into two network namespaces: a client (198.18.0.1) and a real server (198.18.1.2,
# python http.server on port 8080). The client pings the VIP 198.18.0.100 and downloads 50 MB
# from http://198.18.0.100/ through the worker; the real server sees the connection come from
# the local address 198.18.1.254. Changes a weight at run time, shows ipvsadm -ln and the
# counters, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tap-namespaces.sh
source scripts/tap-namespaces.sh
scripts/setup.sh
echo "== building the release binaries (cargo build --release: a few minutes the first time, seconds after)"
cargo build --release --bins

BIN=target/release
CLI=dpvs-demo-cli SRV=dpvs-demo-srv
WORK=$(mktemp -d)
DPVS_PID="" HTTP_PID=""
cleanup() {
    [ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null || true
    if [ -n "$DPVS_PID" ]; then
        kill -TERM "$DPVS_PID" 2>/dev/null || true
        wait "$DPVS_PID" 2>/dev/null || true
    fi
    ip netns del "$CLI" 2>/dev/null || true
    ip netns del "$SRV" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting dpvs (embedded default: Full-NAT 198.18.0.100:80 -> 198.18.1.2:8080 over taps dpvs-tap0/dpvs-tap1)"
$BIN/dpvs > "$WORK/dpvs.log" 2>&1 &
DPVS_PID=$!
for _ in $(seq 100); do ip link show dpvs-tap1 >/dev/null 2>&1 && break; sleep 0.1; done
ip link show dpvs-tap1 >/dev/null 2>&1 || { cat "$WORK/dpvs.log"; exit 1; }

echo "== moving the taps' kernel sides into namespaces $CLI (client) and $SRV (real server)"
tap_namespaces "$CLI" "$SRV"

echo "== the client pings the VIP (ARP and ICMP echo answered by the worker)"
ip netns exec "$CLI" ping -c 3 -i 0.2 198.18.0.100

echo "== the real server: python http.server on 198.18.1.2:8080 (no route to the client needed)"
head -c 50000000 /dev/urandom > "$WORK/blob"
ip netns exec "$SRV" python3 -m http.server 8080 --bind 198.18.1.2 --directory "$WORK" \
    >/dev/null 2>"$WORK/access.log" &
HTTP_PID=$!
for _ in $(seq 50); do ip netns exec "$SRV" curl -s -o /dev/null http://198.18.1.2:8080/ && break; sleep 0.1; done

echo "== the client downloads 50 MB from the VIP through the worker"
ip netns exec "$CLI" curl -sS -o "$WORK/got" -w "HTTP %{http_code}: %{size_download} bytes at %{speed_download} B/s\n" \
    http://198.18.0.100/blob
cmp -s "$WORK/blob" "$WORK/got" && echo "the file arrived intact"
echo "the real server's access log (Full-NAT: the client appears as the local address):"
grep "blob" "$WORK/access.log" | tail -1

echo "== a change at run time: the real server's weight to 3, as one configuration generation"
$BIN/dpvsctl real edit tcp 198.18.0.100:80 198.18.1.2:8080 -w 3
echo "== ipvsadm -ln (the same table through the ipvsadm front-end)"; $BIN/ipvsadm -ln
echo "== dpvsctl status"; $BIN/dpvsctl status
echo "== dpvsctl worker list"; $BIN/dpvsctl worker list
echo "== dpvsctl stats"; $BIN/dpvsctl stats
echo "== stopping (SIGTERM: workers first, then ports, then runtime files)"
kill -TERM "$DPVS_PID"
status=0
wait "$DPVS_PID" || status=$?
DPVS_PID=""
left=()
[ -e /dev/shm/dpvs.shm ] && left+=(/dev/shm/dpvs.shm)
[ -e /var/run/dpdk/dpvs ] && left+=(/var/run/dpdk/dpvs)
compgen -G "/dev/hugepages/dpvsmap_*" > /dev/null && left+=("/dev/hugepages/dpvsmap_*")
ip netns exec "$CLI" ip link show dpvs-tap0 > /dev/null 2>&1 && left+=(dpvs-tap0)
if [ "$status" -eq 0 ] && [ ${#left[@]} -eq 0 ]; then
    echo "== stopped cleanly: dpvs exited 0, no shared memory, DPDK runtime files, hugepage files or taps left"
else
    echo "== dpvs exited $status; left behind: ${left[*]:-nothing}" >&2
    exit 1
fi
