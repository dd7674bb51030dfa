#!/usr/bin/env bash
# Forwarding rate of one dpvs worker over memif (64-byte frames), next to dpdk-testpmd's own
# io forwarding on the same path:
#
#   testpmd txonly --memif--> [forwarder on CPU 1] --memif--> testpmd rxonly
#   (generator and sink share CPU 0)
#
# forwarder = dpvs (primary + one worker, release build), then dpdk-testpmd --forward-mode=io.
# Prints the sink's received packets per second (median of 1 s samples) for both.
# Bounded: DURATION seconds per run (default 10). Usage: bench/memif-forward.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
scripts/setup.sh
cargo build --release --bins -q
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for pre in bgen bsink bfwd dpvs-bench; do
        rm -rf "/var/run/dpdk/$pre"; rm -f /dev/hugepages/${pre}map_*
    done
    rm -rf "$WORK" /run/dpvs/bench0.sock /run/dpvs/bench1.sock
}
trap cleanup EXIT

TP=(dpdk-testpmd --no-pci --huge-dir /dev/hugepages --log-level='*:warning')
TPAPP=(--total-num-mbufs=16384 --nb-cores=1 --burst=32 -a --stats-period=1)

# Sink and generator: memif clients on CPU 0.
peers() {
    "${TP[@]}" --lcores=0@0,1@0 --file-prefix=bsink \
        --vdev="net_memif0,role=client,id=0,socket=/run/dpvs/bench1.sock,socket-abstract=no" \
        -- "${TPAPP[@]}" --forward-mode=rxonly > "$WORK/sink-$1.out" 2>&1 &
    PIDS+=($!)
    sleep 2
    "${TP[@]}" --lcores=0@0,1@0 --file-prefix=bgen \
        --vdev="net_memif0,role=client,id=0,socket=/run/dpvs/bench0.sock,socket-abstract=no" \
        -- "${TPAPP[@]}" --forward-mode=txonly --txpkts=64 > "$WORK/gen-$1.out" 2>&1 &
    PIDS+=($!)
    sleep "$DURATION"
    kill -INT "${PIDS[-1]}" "${PIDS[-2]}"; sleep 2
}

median_rx_pps() {
    grep -o "Rx-pps: *[0-9]*" "$1" | awk '{print $2}' | awk '$1 > 0' | sort -n |
        awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'
}

echo "== ceiling: dpdk-testpmd io forwarding (memif servers) on CPU 1"
"${TP[@]}" --lcores=0@1,1@1 --file-prefix=bfwd \
    --vdev="net_memif0,role=server,id=0,socket=/run/dpvs/bench0.sock,socket-abstract=no" \
    --vdev="net_memif1,role=server,id=0,socket=/run/dpvs/bench1.sock,socket-abstract=no" \
    -- "${TPAPP[@]}" --forward-mode=io > "$WORK/fwd-io.out" 2>&1 &
FWD=$!; PIDS+=($FWD)
sleep 3
peers io
kill -INT "$FWD"; sleep 2
CEIL=$(median_rx_pps "$WORK/sink-io.out")

echo "== dpvs: primary + one worker (lcore 1 on CPU 1)"
rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
target/release/dpvs -c bench/memif-1worker.toml > "$WORK/dpvs.log" 2>&1 &
DPVS=$!; PIDS+=($DPVS)
sleep 3
peers dpvs
target/release/dpvsctl -i dpvs-bench stats
kill -TERM "$DPVS"; wait "$DPVS" || true
RATE=$(median_rx_pps "$WORK/sink-dpvs.out")

printf '\n%-40s %12s\n' "forwarder (64-byte frames, memif)" "sink Mpps"
printf '%-40s %12.2f\n' "dpdk-testpmd io (ceiling)" "$(echo "$CEIL / 1000000" | bc -l)"
printf '%-40s %12.2f  (%.0f%% of the ceiling)\n' "dpvs worker, l2-pair" "$(echo "$RATE / 1000000" | bc -l)" \
    "$(echo "100 * $RATE / ($CEIL + 1)" | bc -l)"
