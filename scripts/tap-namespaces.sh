# Sourced by scripts/demo.sh and bench/http-peers.sh: `tap_namespaces CLI SRV` moves the kernel
# sides of the embedded default's tap ports (dpvs-tap0, dpvs-tap1; they exist once the primary
# started its ports) into two new network namespaces: the client (198.18.0.1/24, MAC
# 02:00:00:00:01:01) and the real server (198.18.1.2/24, MAC 02:00:00:00:01:02, as the embedded
# default's static neighbour says).
tap_namespaces() {
    local cli=$1 srv=$2
    ip netns add "$cli"
    ip netns add "$srv"
    ip link set dpvs-tap0 netns "$cli"
    ip link set dpvs-tap1 netns "$srv"
    ip -n "$cli" link set dpvs-tap0 address 02:00:00:00:01:01
    ip -n "$srv" link set dpvs-tap1 address 02:00:00:00:01:02
    ip -n "$cli" addr add 198.18.0.1/24 dev dpvs-tap0
    ip -n "$srv" addr add 198.18.1.2/24 dev dpvs-tap1
    for ns in "$cli" "$srv"; do ip -n "$ns" link set lo up; done
    ip -n "$cli" link set dpvs-tap0 up
    ip -n "$srv" link set dpvs-tap1 up
}
