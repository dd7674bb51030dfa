#!/usr/bin/env bash
# New TCP connections per second through Full-NAT on one worker lcore (release build, CPU 1):
# dpvs-gen (CPU 0) sends SYNs of new connections (each from its own source address and port)
# at fixed rates, plays the real server (SYN-ACK) and closes each established connection with
# a RST. For each rate of RATES (thousands per second, 2 s each): SYNs sent, connections
# established (SYN-ACK back at the client), connections the worker created.
# Usage: bench/fnat-tcp-cps.sh [RATES...]
RATES=("${@:-100 200 400 600}")
read -r -a RATES <<< "${RATES[*]}"
PREFIXES=(bcgen dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
fnat_conf "$WORK/fnat-tcp.toml" tcp
for k in "${RATES[@]}"; do
    n=$((k * 2000))
    # A fresh instance per rate: every SYN a new connection, in an empty table (an entry whose
    # handshake was reset lives on for its state's timeout).
    rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
    target/release/dpvs -c "$WORK/fnat-tcp.toml" > "$WORK/dpvs-$k.log" 2>&1 &
    D=$!; PIDS+=($D)
    sleep 3
    c0=$(conns created); before=$(snapshot)
    r=$("${GEN[@]}" --file-prefix=bcgen --tcp close --flows "$n" --rate $((k * 1000)) --count "$n")
    after=$(snapshot); c1=$(conns created)
    read -r _ cyc <<< "$(rates "$before" "$after" rx_packets)"
    sent=$(field "$r" sent); est=$(field "$r" received)
    echo "$k k/s offered: $sent SYNs, $est established, $((c1 - c0)) created by the worker, $cyc busy cycles per packet (3 packets a connection)"
    record fnat-tcp-cps "established_at_${k}k" "$est" connections
    kill -TERM "$D"; wait "$D" || true
done
