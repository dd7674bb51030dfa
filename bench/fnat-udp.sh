#!/usr/bin/env bash
# Per-packet cost of UDP Full-NAT on one worker lcore (release build): dpdk-testpmd txonly
# offers 64-byte UDP to the VIP (one flow, or 64 with --txonly-multi-flow) faster than one
# lcore translates, so the worker runs saturated; its own counters give the translation rate
# and the busy TSC cycles per packet. (The sink shares CPU 0 with the generator and cannot
# take everything: tx drops are counted, they do not change the worker's work.)
# Usage: bench/fnat-udp.sh [DURATION] [multi]
DURATION=${1:-10}
MULTI=${2:-}
PREFIXES=(bgen bsink dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
TP=(dpdk-testpmd --no-pci --huge-dir /dev/hugepages --log-level='*:warning')
TPAPP=(--total-num-mbufs=16384 --nb-cores=1 --burst=32 -a --stats-period=1)
rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
target/release/dpvs -c bench/fnat-1worker.toml > "$WORK/dpvs.log" 2>&1 &
PIDS+=($!)
sleep 3
"${TP[@]}" --lcores=0@0,1@0 --file-prefix=bsink \
    --vdev="net_memif0,role=client,id=0,socket=/run/dpvs/bench1.sock,socket-abstract=no" \
    -- "${TPAPP[@]}" --forward-mode=rxonly > "$WORK/sink.out" 2>&1 &
PIDS+=($!)
sleep 2
flows=()
[ "$MULTI" = multi ] && flows=(--txonly-multi-flow)
before=$(snapshot)
"${TP[@]}" --lcores=0@0,1@0 --file-prefix=bgen \
    --vdev="net_memif0,role=client,id=0,socket=/run/dpvs/bench0.sock,socket-abstract=no" \
    -- "${TPAPP[@]}" --forward-mode=txonly --eth-peer=0,02:00:00:00:00:10 \
    --tx-ip=198.18.0.1,198.18.0.100 --tx-udp=5000,53 "${flows[@]}" > "$WORK/gen.out" 2>&1 &
GEN=$!; PIDS+=($GEN)
sleep "$DURATION"
after=$(snapshot)
kill -INT "$GEN"; sleep 1
target/release/dpvsctl -i dpvs-bench stats
read -r mpps cyc <<< "$(rates "$before" "$after" fnat_in)"
echo "UDP Full-NAT, one worker lcore: $mpps Mpps translated, $cyc busy cycles per packet"
nflows=1; [ "$MULTI" = multi ] && nflows=64
record fnat-udp "translated_${nflows}flow" "$mpps" Mpps
record fnat-udp "busy_cycles_per_packet_${nflows}flow" "$cyc" cycles
