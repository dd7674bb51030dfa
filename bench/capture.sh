#!/usr/bin/env bash
# Packet capture's cost (issue 19): dpvs-gen (CPU 0) offers KPPS kpps of 64-byte UDP in 1000
# flows to bench/fnat-1worker.toml's Full-NAT service on one worker (CPU 1, release build) for
# DURATION seconds a phase, ROUNDS times two phases alternating on one instance: without a
# capture, then with Debian's dpdk-dumpcap (CPU 0) capturing both sides of the client port
# (net_memif0: what the worker receives from the client and sends back; snap length 128) into
# a file. Per phase: packets sent and received by the generator (lost = the difference), the
# worker's drops, its busy cycles per packet, and for a capture the packets dumpcap wrote and
# the ones it missed (its ring full: the capture's loss, not the traffic's).
# Usage: bench/capture.sh [KPPS] [DURATION] [ROUNDS]
KPPS=${1:-100}
DURATION=${2:-5}
ROUNDS=${3:-2}
PREFIXES=(bcapgen dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
taskset -pc 0 $$ > /dev/null
rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
fnat_conf "$WORK/fnat.toml"
"$BIN"/dpvs -c "$WORK/fnat.toml" > "$WORK/dpvs.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
    "$BIN"/dpvsctl -i dpvs-bench worker list --json 2> /dev/null | grep -q '"running"' && break
    sleep 0.1
done
# drops SNAPSHOT: every drop counter of a `snapshot`, summed.
drops() {
    python3 -c "
import json,sys
d=json.loads(sys.argv[1]); print(sum(v for k,v in d.items() if k.startswith('drop_') and isinstance(v,int)))" "$1"
}
for ((round = 1; round <= ROUNDS; round++)); do
    for phase in none dumpcap; do
        D=""
        if [ "$phase" = dumpcap ]; then
            n0=$(grep -c "capturing the queue" "$WORK/dpvs.log" || true)
            taskset -c 0 dpdk-dumpcap --file-prefix=dpvs-bench -i net_memif0 -s 128 -w "$WORK/capture.pcapng" \
                > /dev/null 2> "$WORK/dumpcap.err" &
            D=$!; PIDS+=($D)
            for _ in $(seq 100); do
                [ "$(grep -c "capturing the queue" "$WORK/dpvs.log" || true)" -ge $((n0 + 2)) ] && break
                sleep 0.1
            done
            sleep 0.5
        fi
        before=$(snapshot)
        r=$("${GEN[@]}" --file-prefix=bcapgen --flows 1000 --rate $((KPPS * 1000)) --count $((KPPS * 1000 * DURATION)) | tail -1)
        sleep 0.2
        after=$(snapshot)
        read -r _ cyc <<< "$(rates "$before" "$after" rx_packets)"
        sent=$(field "$r" sent); got=$(field "$r" received)
        dropped=$(( $(drops "$after") - $(drops "$before") ))
        written=""
        if [ -n "$D" ]; then
            kill -INT "$D"; wait "$D" || true
            # dumpcap's own report: "Packets received/dropped on interface 'net_memif0': R/D (..%)"
            # The library's statistics count from the instance's start: this capture's share.
            seen=$(grep -o "interface 'net_memif0': [0-9]*/[0-9]*" "$WORK/dumpcap.err" | tail -1 | cut -d' ' -f3)
            got_cap=$(( ${seen%/*} - ${cap_got:-0} )); missed=$(( ${seen#*/} - ${cap_missed:-0} ))
            cap_got=${seen%/*}; cap_missed=${seen#*/}
            written=", dumpcap received $got_cap, missed $missed"
            rm -f "$WORK/capture.pcapng"
        fi
        echo "round $round, capture $phase, $KPPS kpps for ${DURATION} s: sent $sent, received $got, lost $((sent - got)), worker drops $dropped, $cyc busy cycles per packet$written"
        record capture "busy_cycles_per_packet_$phase" "$cyc" cycles
        record capture "lost_$phase" $((sent - got)) packets
    done
done
