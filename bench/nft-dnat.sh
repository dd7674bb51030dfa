#!/usr/bin/env bash
# The kernel peer: nftables full NAT of 64-byte UDP (DNAT 198.18.0.100:53 -> 198.18.1.2:8080,
# SNAT to 198.18.1.254, as bench/fnat-udp.sh configures dpvs) in a network namespace whose
# forwarding runs on CPU 1 (RPS on its input veth), fed by dpdk-testpmd txonly over af_packet
# on CPU 0; a second testpmd on CPU 0 counts what comes out.
#
#   testpmd txonly --af_packet--> bn-gen =veth= bn-in [ns: nft NAT, CPU 1] bn-out =veth= bn-sink --af_packet--> testpmd rxonly
#
# Prints the rate the kernel delivered (median of the sink's 1 s samples), how busy CPU 1 was,
# and so the kernel's packets per second per core. Bounded: DURATION seconds (default 10).
# Usage: bench/nft-dnat.sh [DURATION]
DURATION=${1:-10}
PREFIXES=(bngen bnsink)
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

TP=(dpdk-testpmd --no-pci --huge-dir /dev/hugepages --log-level='*:warning')
TPAPP=(--total-num-mbufs=16384 --nb-cores=1 --burst=32 -a --stats-period=1)
"${TP[@]}" --lcores=0@0,1@0 --file-prefix=bnsink --vdev="net_af_packet0,iface=bn-sink" \
    -- "${TPAPP[@]}" --forward-mode=rxonly > "$WORK/sink.out" 2>&1 &
PIDS+=($!)
sleep 2
cpu1() { awk '/^cpu1 / {idle=$5+$6; t=0; for (i=2; i<=NF; i++) t+=$i; print t, idle}' /proc/stat; }
read -r t0 i0 <<< "$(cpu1)"
"${TP[@]}" --lcores=0@0,1@0 --file-prefix=bngen --vdev="net_af_packet0,iface=bn-gen" \
    -- "${TPAPP[@]}" --forward-mode=txonly --eth-peer=0,"$IN_MAC" \
    --tx-ip=198.18.0.1,198.18.0.100 --tx-udp=5000,53 > "$WORK/gen.out" 2>&1 &
GEN=$!; PIDS+=($GEN)
sleep "$DURATION"
read -r t1 i1 <<< "$(cpu1)"
kill -INT "$GEN"; sleep 2
median() { # median of the nonzero "<key>: N" samples in a testpmd log
    grep -o "$2: *[0-9]*" "$1" | awk '{print $2}' | awk '$1 > 0' | sort -n |
        awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'
}
offered=$(median "$WORK/gen.out" Tx-pps)
delivered=$(median "$WORK/sink.out" Rx-pps)
busy=$(echo "scale=3; 1 - ($i1 - $i0) / ($t1 - $t0)" | bc -l)
per_core=$(echo "scale=2; $delivered / $busy / 1000000" | bc -l)
printf 'nftables full NAT, one core (CPU 1): offered %.2f Mpps, delivered %.2f Mpps, CPU 1 busy %.0f%%: %.2f Mpps per core\n' \
    "$(echo "$offered / 1000000" | bc -l)" "$(echo "$delivered / 1000000" | bc -l)" "$(echo "$busy * 100" | bc -l)" "$per_core"
record nft-dnat delivered "$(printf '%.2f' "$(echo "$delivered / 1000000" | bc -l)")" Mpps
record nft-dnat per_core "$per_core" Mpps
