#!/usr/bin/env bash
# The HTTP peers: requests per second through a Layer-4 balancer between a client namespace
# (wrk, CPU 0) and a real-server namespace (nginx on 198.18.1.2:8080, one worker, CPU 0, a
# 1 KiB file), for DURATION seconds each, keep-alive (4 connections) and a new connection per
# request (4 connections, "Connection: close"):
#   - HAProxy 2.6 in TCP mode in a namespace between two veth pairs (one thread, CPU 1);
#   - dpvs, the embedded default busy polling (Full-NAT 198.18.0.100:80 over two tap ports
#     whose kernel sides are the client's and the server's interfaces; the worker on CPU 1).
# Both balancers are on CPU 1 alone, the client and the server share CPU 0: the figures compare
# the balancers on the same machine in the same run, not their ceilings.
# Usage: bench/http-peers.sh [DURATION]
DURATION=${1:-5}
PREFIXES=(dpvs)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=scripts/tap-namespaces.sh
source scripts/tap-namespaces.sh
CLI=dpvs-bh-cli LB=dpvs-bh-lb SRV=dpvs-bh-srv
NGINX_PID="" HAPROXY_PID="" DPVS_PID=""
stop_all() {
    for p in $HAPROXY_PID $NGINX_PID; do kill "$p" 2>/dev/null || true; done
    if [ -n "$DPVS_PID" ]; then kill -TERM "$DPVS_PID" 2>/dev/null || true; wait "$DPVS_PID" 2>/dev/null || true; fi
    HAPROXY_PID="" NGINX_PID="" DPVS_PID=""
    for ns in "$CLI" "$LB" "$SRV"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap 'stop_all; cleanup' EXIT
stop_all
head -c 1024 /dev/urandom > "$WORK/1k"
cat > "$WORK/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK;
    proxy_temp_path $WORK;
    fastcgi_temp_path $WORK;
    uwsgi_temp_path $WORK;
    scgi_temp_path $WORK;
    keepalive_requests 1000000;
    server { listen 198.18.1.2:8080; root $WORK; }
}
NGINX
cat > "$WORK/haproxy.cfg" <<'HAPROXY'
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend vip
    bind 198.18.0.100:80
    default_backend reals
backend reals
    server rs1 198.18.1.2:8080
HAPROXY
start_nginx() {
    ip netns exec "$SRV" taskset -c 0 nginx -c "$WORK/nginx.conf" &
    NGINX_PID=$!
    for _ in $(seq 50); do ip netns exec "$SRV" curl -fs -o /dev/null http://198.18.1.2:8080/1k && return; sleep 0.1; done
    echo "nginx did not start: $(cat "$WORK/nginx-error.log")" >&2; exit 1
}
# requests per second of wrk through the VIP (extra wrk arguments: $@); fails on a non-2xx
# answer (socket errors are printed: a closing connection may count as one)
rps() {
    ip netns exec "$CLI" taskset -c 0 wrk -t 1 -c 4 -d "${DURATION}s" "$@" http://198.18.0.100/1k |
        awk '/Requests\/sec/ {print $2} /Socket errors/ {print "wrk: " $0 > "/dev/stderr"}
             /Non-2xx/ {print "wrk: " $0 > "/dev/stderr"; bad = 1} END {exit bad}'
}
measure() { # $1 balancer name
    local ka close
    ka=$(rps)
    close=$(rps -H "Connection: close")
    printf '%-8s keep-alive %10.0f requests/s   new connection per request %10.0f requests/s\n' "$1" "$ka" "$close"
    record http-peers "${1}_keepalive" "$ka" requests/s
    record http-peers "${1}_close" "$close" requests/s
}

# HAProxy between two veth pairs.
for ns in "$CLI" "$LB" "$SRV"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add bh-cli netns "$CLI" type veth peer name bh-lb0 netns "$LB"
ip link add bh-srv netns "$SRV" type veth peer name bh-lb1 netns "$LB"
ip -n "$CLI" addr add 198.18.0.1/24 dev bh-cli
ip -n "$LB" addr add 198.18.0.100/24 dev bh-lb0
ip -n "$LB" addr add 198.18.1.254/24 dev bh-lb1
ip -n "$SRV" addr add 198.18.1.2/24 dev bh-srv
for l in "$CLI bh-cli" "$LB bh-lb0" "$LB bh-lb1" "$SRV bh-srv"; do set -- $l; ip -n "$1" link set "$2" up; done
start_nginx
ip netns exec "$LB" taskset -c 1 haproxy -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
for _ in $(seq 50); do ip netns exec "$CLI" curl -fs -o /dev/null http://198.18.0.100/1k && break; sleep 0.1; done
ip netns exec "$CLI" curl -fs -o /dev/null http://198.18.0.100/1k || { echo "haproxy: $(cat "$WORK/haproxy.log")" >&2; exit 1; }
measure haproxy
stop_all

# dpvs: the embedded default, its taps' kernel sides in the client's and the server's namespaces.
rm -rf /var/run/dpdk/dpvs
# The embedded default, busy polling (its 20 us idle sleep is for sharing a small machine: here
# the worker has CPU 1 to itself, as HAProxy had).
sed 's/^idle_sleep_us = 20 /idle_sleep_us = 0  /' conf/samples/tap-fnat.toml > "$WORK/dpvs.toml"
grep -q '^idle_sleep_us = 0 ' "$WORK/dpvs.toml"
target/release/dpvs -c "$WORK/dpvs.toml" > "$WORK/dpvs.log" 2>&1 &
DPVS_PID=$!; PIDS+=($DPVS_PID)
for _ in $(seq 100); do ip link show dpvs-tap1 > /dev/null 2>&1 && break; sleep 0.1; done
tap_namespaces "$CLI" "$SRV"
start_nginx
for _ in $(seq 50); do ip netns exec "$CLI" curl -fs -o /dev/null http://198.18.0.100/1k && break; sleep 0.1; done
ip netns exec "$CLI" curl -fs -o /dev/null http://198.18.0.100/1k || { echo "dpvs: $(tail -5 "$WORK/dpvs.log")" >&2; exit 1; }
measure dpvs
