#!/usr/bin/env bash
# UDP Full-NAT on one worker lcore (release build, CPU 1) with 1, 1k and 1M flows: dpvs-gen
# (CPU 0) offers 64-byte UDP flat out over memif to bench/fnat-1worker.toml's service, each
# flow its own source address and port, for DURATION seconds per flow count. Prints the rate
# the worker translated and its busy cycles per packet, from its own counters (a fresh instance
# per flow count: 1M flows fill an empty table first).
# With SHM_DIR set, the instance's shared memory (and its connection shards) go there, for
# example a tmpfs mounted with huge=always. With FORWARD=dr or nat the real server is reached
# by direct routing or NAT instead (same topology: the real server is on dpdk1's network).
# With LCORES=N (N > 1) N worker lcores share the service (one group, each polling its own
# queue of both ports; dpvs-gen sends flow f on queue f % N as RSS would, so the lcore that
# receives a flow is not always its owner and hands it over on a redirect ring): worker lcore
# i on CPU 1 + i, the generator (and the idle primary) on CPU 0. With fewer CPUs than N + 1
# the lcores wrap around onto CPU 0 and the figures say so: CPUs shared by busy pollers
# measure the scheduler, not the balancer.
# Usage: [SHM_DIR=DIR] [FORWARD=fnat|dr|nat] [LCORES=N] bench/fnat-udp-flows.sh [DURATION] [FLOWS...]
DURATION=${1:-5}
shift || true
FLOWS=("${@:-1 1000 1000000}")
read -r -a FLOWS <<< "${FLOWS[*]}"
PREFIXES=(bfgen dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
fnat_conf "$WORK/fnat.toml"
FORWARD=${FORWARD:-fnat}
case "$FORWARD" in
    fnat) label="Full-NAT" ;;
    dr | nat)
        # Direct routing keeps the virtual port: the real server listens on 53.
        label=$([ "$FORWARD" = dr ] && echo "direct routing" || echo "NAT")
        sed -i -e 's/^port = 5353$/port = 53/' -e "s/^\[\[services.reals\]\]$/[[services.reals]]\nforward = \"$FORWARD\"/" "$WORK/fnat.toml"
        ;;
    *) echo "FORWARD must be fnat, dr or nat, not $FORWARD" >&2; exit 2 ;;
esac
LCORES=${LCORES:-1}
lcores_label="one worker lcore"
if [ "$LCORES" -gt 1 ]; then
    cpus=$(nproc)
    extra=""
    for ((i = 1; i < LCORES; i++)); do
        extra+="\n[[groups.lcores]]\nid = $((i + 1))\ncpu = $(((1 + i) % cpus))\nrx = [\"dpdk0:$i\", \"dpdk1:$i\"]"
    done
    sed -i -e "s|^rx = \[\"dpdk0:0\", \"dpdk1:0\"\]\$|&$extra|" \
        -e "s|mac=02:00:00:00:00:1[01]\"\$|&\nqueues = $LCORES|" "$WORK/fnat.toml"
    GEN+=(--queues "$LCORES")
    lcores_label="$LCORES worker lcores"
    if [ "$cpus" -le "$LCORES" ]; then
        lcores_label+=" (OVERSUBSCRIBED: $LCORES lcores and the generator on $cpus CPUs)"
    fi
fi
if [ -n "${SHM_DIR:-}" ]; then sed -i "s|^name = \"dpvs-bench\"|name = \"dpvs-bench\"\nshm_dir = \"$SHM_DIR\"|" "$WORK/fnat.toml"; fi
for n in "${FLOWS[@]}"; do
    rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
    target/release/dpvs -c "$WORK/fnat.toml" > "$WORK/dpvs-$n.log" 2>&1 &
    D=$!; PIDS+=($D)
    sleep 3
    "${GEN[@]}" --file-prefix=bfgen --flows "$n" > "$WORK/gen-$n.out" &
    G=$!; PIDS+=($G)
    # Measure after the table holds every flow (1M flows at a few Mpps: under a second).
    sleep 2
    before=$(snapshot)
    sleep "$DURATION"
    after=$(snapshot)
    kill -INT "$G"; wait "$G" || true
    read -r mpps redirected cyc <<< "$(rates "$before" "$after" fnat_in redirected)"
    flows_now=$(conns active)
    handed=$([ "$LCORES" -gt 1 ] && echo " ($redirected Mpps handed over between lcores)" || true)
    echo "UDP $label, $lcores_label, $n flows ($flows_now connections): $mpps Mpps translated$handed," \
        "$cyc busy cycles per packet"
    suffix=$([ "$LCORES" -gt 1 ] && echo "_${LCORES}lcores" || true)
    record "$FORWARD-udp-flows" "translated_${n}flows$suffix" "$mpps" Mpps
    record "$FORWARD-udp-flows" "busy_cycles_per_packet_${n}flows$suffix" "$cyc" cycles
    kill -TERM "$D"; wait "$D" || true
done
