#!/usr/bin/env bash
# The main job on the embedded default config, no NIC needed: the primary and one worker
# forward at layer 2 between two tap ports whose kernel sides are moved into two network
# namespaces (a client at 198.18.0.1 and a server at 198.18.0.2). Shows ping and an HTTP
# transfer crossing the worker, and the counters; then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --bins -q

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

echo "== starting dpvs (embedded default: taps dpvs-tap0 / dpvs-tap1, worker on lcore 1)"
$BIN/dpvs > "$WORK/dpvs.log" 2>&1 &
DPVS_PID=$!
for _ in $(seq 100); do ip link show dpvs-tap1 >/dev/null 2>&1 && break; sleep 0.1; done
ip link show dpvs-tap1 >/dev/null 2>&1 || { cat "$WORK/dpvs.log"; exit 1; }

echo "== moving the taps' kernel sides into namespaces $CLI and $SRV"
ip netns add "$CLI"; ip netns add "$SRV"
ip link set dpvs-tap0 netns "$CLI"; ip link set dpvs-tap1 netns "$SRV"
ip -n "$CLI" link set dpvs-tap0 address 02:00:00:00:01:01
ip -n "$SRV" link set dpvs-tap1 address 02:00:00:00:01:02
ip -n "$CLI" addr add 198.18.0.1/24 dev dpvs-tap0
ip -n "$SRV" addr add 198.18.0.2/24 dev dpvs-tap1
for ns in "$CLI" "$SRV"; do ip -n "$ns" link set lo up; done
ip -n "$CLI" link set dpvs-tap0 up; ip -n "$SRV" link set dpvs-tap1 up

echo "== ping 198.18.0.1 -> 198.18.0.2 through the worker"
ip netns exec "$CLI" ping -c 3 -i 0.2 198.18.0.2

echo "== ping the balancer's own address 198.18.0.254 (owned by dpdk0: ARP and ICMP echo answered by the worker)"
ip netns exec "$CLI" ping -c 3 -i 0.2 198.18.0.254

echo "== HTTP: 50 MB from python http.server in $SRV, fetched with curl in $CLI"
head -c 50000000 /dev/urandom > "$WORK/blob"
ip netns exec "$SRV" python3 -m http.server 8080 --bind 198.18.0.2 --directory "$WORK" >/dev/null 2>&1 &
HTTP_PID=$!
for _ in $(seq 50); do ip netns exec "$CLI" curl -s -o /dev/null http://198.18.0.2:8080/ && break; sleep 0.1; done
ip netns exec "$CLI" curl -sS -o "$WORK/got" -w "HTTP %{http_code}: %{size_download} bytes at %{speed_download} B/s\n" \
    http://198.18.0.2:8080/blob
cmp -s "$WORK/blob" "$WORK/got" && echo "the file arrived intact"

echo "== dpvsctl status"; $BIN/dpvsctl status
echo "== dpvsctl worker list"; $BIN/dpvsctl worker list
echo "== dpvsctl stats"; $BIN/dpvsctl stats
echo "== stopping (workers first, then ports, then runtime files)"
