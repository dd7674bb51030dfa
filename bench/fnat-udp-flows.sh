#!/usr/bin/env bash
# UDP Full-NAT on one worker lcore (release build, CPU 1) with 1, 1k and 1M flows: dpvs-gen
# (CPU 0) offers 64-byte UDP flat out over memif to bench/fnat-1worker.toml's service, each
# flow its own source address and port, for DURATION seconds per flow count. Prints the rate
# the worker translated and its busy cycles per packet, from its own counters (a fresh instance
# per flow count: 1M flows fill an empty table first).
# With SHM_DIR set, the instance's shared memory (and its connection shards) go there, for
# example a tmpfs mounted with huge=always. With FORWARD=dr or nat the real server is reached
# by direct routing or NAT instead (same topology: the real server is on dpdk1's network).
# Usage: [SHM_DIR=DIR] [FORWARD=fnat|dr|nat] bench/fnat-udp-flows.sh [DURATION] [FLOWS...]
DURATION=${1:-5}
shift || true
FLOWS=("${@:-1 1000 1000000}")
read -r -a FLOWS <<< "${FLOWS[*]}"
PREFIXES=(bfgen dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
# 32 local addresses: a flow holds its local port while its entry lives (UDP: 300 s), and one
# address has 64 511 ports.
{
    laddrs=$(for i in $(seq 200 231); do printf '"198.18.1.%s", ' "$i"; done)
    sed -e "s/local_addresses = \\[\"198.18.1.254\"\\]/local_addresses = [${laddrs%, }]/" bench/fnat-1worker.toml
    for i in $(seq 200 231); do printf '[[addresses]]\nport = "dpdk1"\naddress = "198.18.1.%s/24"\n' "$i"; done
} > "$WORK/fnat.toml"
FORWARD=${FORWARD:-fnat}
case "$FORWARD" in
    fnat) label="Full-NAT" ;;
    dr | nat)
        # Direct routing keeps the virtual port: the real server listens on 53.
        label=$([ "$FORWARD" = dr ] && echo "direct routing" || echo "NAT")
        sed -i -e 's/^port = 5353$/port = 53/' -e "s/^\[\[services.reals\]\]$/[[services.reals]]\nforward = \"$FORWARD\"/" "$WORK/fnat.toml"
        ;;
    *) echo "FORWARD must be fnat, dr or nat, not $FORWARD" >&2; exit 2 ;;
esac
if [ -n "${SHM_DIR:-}" ]; then sed -i "s|^name = \"dpvs-bench\"|name = \"dpvs-bench\"\nshm_dir = \"$SHM_DIR\"|" "$WORK/fnat.toml"; fi
for n in "${FLOWS[@]}"; do
    rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
    target/release/dpvs -c "$WORK/fnat.toml" > "$WORK/dpvs-$n.log" 2>&1 &
    D=$!; PIDS+=($D)
    sleep 3
    target/release/dpvs-gen --file-prefix=bfgen --cpu 0 --flows "$n" --dst-mac 02:00:00:00:00:10 \
        --tx-vdev "net_memif0,role=client,id=0,socket=/run/dpvs/bench0.sock,socket-abstract=no" \
        --rx-vdev "net_memif1,role=client,id=0,socket=/run/dpvs/bench1.sock,socket-abstract=no" \
        > "$WORK/gen-$n.out" &
    G=$!; PIDS+=($G)
    # Measure after the table holds every flow (1M flows at a few Mpps: under a second).
    sleep 2
    before=$(snapshot)
    sleep "$DURATION"
    after=$(snapshot)
    kill -INT "$G"; wait "$G" || true
    read -r mpps cyc <<< "$(rates "$before" "$after" fnat_in)"
    flows_now=$(target/release/dpvsctl -i dpvs-bench --shm-dir "${SHM_DIR:-/dev/shm}" stats --json | python3 -c "import json,sys; print(sum(c['active'] for c in json.load(sys.stdin)['connections']))")
    echo "UDP $label, one worker lcore, $n flows ($flows_now connections): $mpps Mpps translated, $cyc busy cycles per packet"
    record "$FORWARD-udp-flows" "translated_${n}flows" "$mpps" Mpps
    record "$FORWARD-udp-flows" "busy_cycles_per_packet_${n}flows" "$cyc" cycles
    kill -TERM "$D"; wait "$D" || true
done
