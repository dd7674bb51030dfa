#!/usr/bin/env bash
# New TCP connections per second through Full-NAT on one worker lcore (release build, CPU 1):
# dpvs-gen (CPU 0) sends SYNs of new connections (each from its own source address and port)
# at fixed rates and plays the real server. With TCP=request (the default) each connection
# is a whole short one: the handshake's ACK carries a request, the real server answers with a
# response and its FIN, the client sends its FIN, the real server the last ACK (six packets
# through the worker). With TCP=close the client closes each established connection with a
# RST (three packets). For each rate of RATES (thousands per second, 2 s each): SYNs sent,
# connections established (SYN-ACK back at the client), completed (request: the last ACK
# back at the client), created by the worker.
# Usage: [TCP=request|close] bench/fnat-tcp-cps.sh [RATES...]
RATES=("${@:-100 200 400 600}")
read -r -a RATES <<< "${RATES[*]}"
PREFIXES=(bcgen dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
fnat_conf "$WORK/fnat-tcp.toml" tcp
MODE=${TCP:-request}
case "$MODE" in
    request) per=6 ;;
    close) per=3 ;;
    *) echo "TCP must be request or close, not $MODE" >&2; exit 2 ;;
esac
for k in "${RATES[@]}"; do
    n=$((k * 2000))
    # A fresh instance per rate: every SYN a new connection, in an empty table (an entry whose
    # handshake was reset lives on for its state's timeout).
    rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
    target/release/dpvs -c "$WORK/fnat-tcp.toml" > "$WORK/dpvs-$k.log" 2>&1 &
    D=$!; PIDS+=($D)
    sleep 3
    c0=$(conns created); before=$(snapshot)
    r=$("${GEN[@]}" --file-prefix=bcgen --tcp "$MODE" --flows "$n" --rate $((k * 1000)) --count "$n")
    after=$(snapshot); c1=$(conns created)
    read -r _ cyc <<< "$(rates "$before" "$after" rx_packets)"
    sent=$(field "$r" sent); est=$(field "$r" established); done_=$(field "$r" received)
    if [ "$MODE" = request ]; then
        echo "$k k/s offered: $sent SYNs, $est established, $done_ completed (request, response, FINs), $((c1 - c0)) created by the worker, $cyc busy cycles per packet ($per packets a connection)"
        record fnat-tcp-cps "completed_at_${k}k" "$done_" connections
    else
        echo "$k k/s offered: $sent SYNs, $est established and reset, $((c1 - c0)) created by the worker, $cyc busy cycles per packet ($per packets a connection)"
    fi
    record fnat-tcp-cps "established_at_${k}k" "$est" connections
    kill -TERM "$D"; wait "$D" || true
done
