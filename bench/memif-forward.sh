#!/usr/bin/env bash
# Forwarding rate of one dpvs worker over memif (64-byte frames), next to dpdk-testpmd's own
# io forwarding on the same path. One arm, so that the two CPUs of a small machine split into
# one for the traffic and one for the forwarder:
#
#   testpmd flowgen (CPU 0) --memif--> forwarder (CPU 1) --same memif--> testpmd flowgen
#
# forwarder = dpdk-testpmd --forward-mode=io on a memif server (the ceiling of the path), then
# dpvs (primary + one worker, release build, l2-reflect). Prints, for each, the generator's
# sent and received packets per second (median of its 1 s samples), and for dpvs the worker's
# own counters over the run. Bounded: DURATION seconds per run (default 10).
# Usage: bench/memif-forward.sh [DURATION]
DURATION=${1:-10}
PREFIXES=(bgen bfwd dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

TP=(dpdk-testpmd --no-pci --huge-dir /dev/hugepages --log-level='*:warning')
TPAPP=(--total-num-mbufs=16384 --nb-cores=1 --burst=32 -a --stats-period=1)

generator() {
    "${TP[@]}" --lcores=0@0,1@0 --file-prefix=bgen \
        --vdev="net_memif0,role=client,id=0,socket=/run/dpvs/bench0.sock,socket-abstract=no" \
        -- "${TPAPP[@]}" --forward-mode=flowgen --txpkts=64 > "$WORK/gen-$1.out" 2>&1 &
    local g=$!
    PIDS+=($g)
    sleep "$DURATION"
    kill -INT "$g"; sleep 2
}

median() { # median of the nonzero "<key>: N" samples in a testpmd log
    grep -o "$2: *[0-9]*" "$1" | awk '{print $2}' | awk '$1 > 0' | sort -n |
        awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'
}

echo "== ceiling: dpdk-testpmd io forwarding on a memif server, CPU 1"
"${TP[@]}" --lcores=0@1,1@1 --file-prefix=bfwd \
    --vdev="net_memif0,role=server,id=0,socket=/run/dpvs/bench0.sock,socket-abstract=no" \
    -- "${TPAPP[@]}" --forward-mode=io > "$WORK/fwd-io.out" 2>&1 &
FWD=$!; PIDS+=($FWD)
sleep 3
generator io
kill -INT "$FWD"; sleep 2

echo "== dpvs: primary + one worker (lcore 1 on CPU 1), l2-reflect"
rm -f /run/dpvs/bench0.sock
target/release/dpvs -c bench/memif-1worker.toml > "$WORK/dpvs.log" 2>&1 &
DPVS=$!; PIDS+=($DPVS)
sleep 3
before=$(snapshot)
generator dpvs
after=$(snapshot)
target/release/dpvsctl -i dpvs-bench stats
kill -TERM "$DPVS"; wait "$DPVS" || true
worker=$(rates "$before" "$after" rx_packets tx_packets)

mpps() { printf "%.2f" "$(echo "$1 / 1000000" | bc -l)"; }
printf '\n%-34s %10s %10s\n' "forwarder (64 B, memif, CPU 1)" "gen tx" "gen rx"
printf '%-34s %10.2f %10.2f  Mpps\n' "dpdk-testpmd io (ceiling)" \
    "$(mpps "$(median "$WORK/gen-io.out" Tx-pps)")" "$(mpps "$(median "$WORK/gen-io.out" Rx-pps)")"
printf '%-34s %10.2f %10.2f  Mpps\n' "dpvs worker (l2-reflect)" \
    "$(mpps "$(median "$WORK/gen-dpvs.out" Tx-pps)")" "$(mpps "$(median "$WORK/gen-dpvs.out" Rx-pps)")"
read -r wrx wtx wcyc <<< "$worker"
record memif-forward testpmd_io_rx "$(mpps "$(median "$WORK/gen-io.out" Rx-pps)")" Mpps
record memif-forward dpvs_l2reflect_rx "$(mpps "$(median "$WORK/gen-dpvs.out" Rx-pps)")" Mpps
record memif-forward dpvs_busy_cycles_per_packet "$wcyc" cycles
echo "dpvs worker counters over the run (incl. start/stop): rx $wrx Mpps, tx $wtx Mpps, $wcyc busy cycles/packet"
