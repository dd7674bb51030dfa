#!/usr/bin/env bash
# The kernel peer: nftables full NAT of 64-byte UDP (DNAT 198.18.0.100:53 -> 198.18.1.2:8080,
# SNAT to 198.18.1.254, as bench/fnat-udp.sh configures dpvs) in a network namespace whose
# forwarding runs on CPU 1 (RPS on its input veth), fed over af_packet by dpvs-gen on CPU 0,
# the generator of the dpvs benchmarks, which counts what comes out on the other side.
#
#   dpvs-gen --af_packet--> bn-gen =veth= bn-in [ns: nft NAT, CPU 1] bn-out =veth= bn-sink --af_packet--> dpvs-gen
#
# Prints the rate the kernel delivered (received over the run), how busy CPU 1 was, the
# kernel's packets per second per core, and the one-way latency. Bounded: DURATION seconds
# (default 10).
# Usage: bench/nft-dnat.sh [DURATION]
DURATION=${1:-10}
PREFIXES=(bngen)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
NS=dpvs-bench-nft
ip netns del "$NS" 2>/dev/null || true
trap 'cleanup; ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns add "$NS"
ip link add bn-gen type veth peer name bn-in netns "$NS"
ip link add bn-sink type veth peer name bn-out netns "$NS"
ip link set bn-gen up
ip link set bn-sink up
ip -n "$NS" link set lo up
ip -n "$NS" addr add 198.18.0.254/24 dev bn-in
ip -n "$NS" addr add 198.18.1.254/24 dev bn-out
ip -n "$NS" link set bn-in up
ip -n "$NS" link set bn-out up
ip netns exec "$NS" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.bn-in.rp_filter=0
ip -n "$NS" neigh replace 198.18.1.2 lladdr "$(cat /sys/class/net/bn-sink/address)" dev bn-out nud permanent
ip netns exec "$NS" sh -c 'echo 2 > /sys/class/net/bn-in/queues/rx-0/rps_cpus'
ip netns exec "$NS" nft -f - <<'NFT'
table ip bench {
    chain pre {
        type nat hook prerouting priority dstnat;
        ip daddr 198.18.0.100 udp dport 53 dnat to 198.18.1.2:8080
    }
    chain post {
        type nat hook postrouting priority srcnat;
        ip daddr 198.18.1.2 snat to 198.18.1.254
    }
}
NFT
IN_MAC=$(ip netns exec "$NS" cat /sys/class/net/bn-in/address)

cpu1() { awk '/^cpu1 / {idle=$5+$6; t=0; for (i=2; i<=NF; i++) t+=$i; print t, idle}' /proc/stat; }
read -r t0 i0 <<< "$(cpu1)"
# The generator and sink the dpvs benchmarks use (dpvs-gen), over af_packet: flat out, one
# flow, until SIGINT.
target/release/dpvs-gen --file-prefix=bngen --cpu 0 --dst-mac "$IN_MAC" \
    --tx-vdev "net_af_packet0,iface=bn-gen" --rx-vdev "net_af_packet1,iface=bn-sink" \
    > "$WORK/gen.out" 2>&1 &
GEN=$!; PIDS+=($GEN)
sleep "$DURATION"
read -r t1 i1 <<< "$(cpu1)"
kill -INT "$GEN"; wait "$GEN" || true
r=$(tail -1 "$WORK/gen.out")
figures=$(python3 -c "
import json,sys
d=json.loads(sys.argv[1]); s=d['seconds']; l=d['latency_us']
print(d['sent']/s, d['received']/s, l['p50'], l['p99'])" "$r")
read -r offered delivered p50 p99 <<< "$figures"
busy=$(echo "scale=3; 1 - ($i1 - $i0) / ($t1 - $t0)" | bc -l)
per_core=$(echo "scale=2; $delivered / $busy / 1000000" | bc -l)
printf 'nftables full NAT, one core (CPU 1): offered %.2f Mpps, delivered %.2f Mpps, CPU 1 busy %.0f%%: %.2f Mpps per core; latency (us) p50 %s, p99 %s\n' \
    "$(echo "$offered / 1000000" | bc -l)" "$(echo "$delivered / 1000000" | bc -l)" "$(echo "$busy * 100" | bc -l)" "$per_core" "$p50" "$p99"
record nft-dnat delivered "$(printf '%.2f' "$(echo "$delivered / 1000000" | bc -l)")" Mpps
record nft-dnat per_core "$per_core" Mpps
