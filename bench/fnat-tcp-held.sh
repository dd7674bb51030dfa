#!/usr/bin/env bash
# Concurrent TCP connections held by one Full-NAT worker lcore (release build, CPU 1), and its
# forwarding rate while it holds them. dpvs-gen (CPU 0) opens CONNS connections at RATE
# thousand a second (SYN, SYN-ACK from its real-server side, the client's ACK) and leaves them
# established; then, as a second run over the same flows, it sends 64-byte data segments on
# them flat out for DURATION seconds. Prints the connections established and held, the shared
# memory their table takes (per connection of its capacity), and the data
# segments translated per second with their busy cycles per packet; no connection may be
# created by the data.
# Usage: bench/fnat-tcp-held.sh [CONNS] [RATE] [DURATION]
CONNS=${1:-1000000}
RATE=${2:-400}
DURATION=${3:-4}
PREFIXES=(bhgen dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
fnat_conf "$WORK/fnat-tcp.toml" tcp
rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
target/release/dpvs -c "$WORK/fnat-tcp.toml" > "$WORK/dpvs.log" 2>&1 &
D=$!; PIDS+=($D)
sleep 3
t0=$(date +%s.%N)
r=$("${GEN[@]}" --file-prefix=bhgen --tcp hold --flows "$CONNS" --count "$CONNS" --rate $((RATE * 1000)))
t1=$(date +%s.%N)
est=$(field "$r" received)
held=$(conns active); created=$(conns created); full=$(conns full)
# The table is laid out in full at start (its shard files): memory per connection of capacity.
cap=$(conns capacity)
shard=$(du -cb /dev/shm/dpvs-bench.shm.conn* | tail -1 | cut -f1)
per_conn=$((shard / cap))
echo "TCP Full-NAT, one worker lcore: $est of $CONNS connections established in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s" \
    "($created created, $full refused: table full); $held held;" \
    "the table's shared memory: $((shard >> 20)) MiB for $cap connections, $per_conn bytes each"
# Data on the held connections: translated, none created, none dropped for want of one.
before=$(snapshot)
"${GEN[@]}" --file-prefix=bhgen --tcp data --flows "$CONNS" > "$WORK/gen-data.out" &
G=$!; PIDS+=($G)
sleep "$DURATION"
kill -INT "$G"; wait "$G" || true
after=$(snapshot)
read -r mpps no_conn cyc <<< "$(rates "$before" "$after" fnat_in drop_no_conn)"
created2=$(conns created); held2=$(conns active)
echo "data segments on the $held held connections: $mpps Mpps translated, $cyc busy cycles per packet;" \
    "$((created2 - created)) connections created by the data, $no_conn Mpps dropped for want of one; $held2 held after"
record fnat-tcp-held "established" "$est" connections
record fnat-tcp-held "held" "$held" connections
record fnat-tcp-held "shm_bytes_per_connection" "$per_conn" bytes
record fnat-tcp-held "data_translated_${CONNS}conns" "$mpps" Mpps
record fnat-tcp-held "busy_cycles_per_packet_${CONNS}conns" "$cyc" cycles
[ "$((created2 - created))" -eq 0 ] || { echo "the data segments created connections: they were not held" >&2; exit 1; }
kill -TERM "$D"; wait "$D" || true
