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
# queue of both ports, whose emulated RSS dpvs-gen applies: each flow goes on the queue the
# port's RSS gives, so the lcore that receives a flow owns it, and its local ports bring the
# replies back to it; the handed-over rate should read 0.00, and STEER=modulo sends flow f on
# queue f % N instead, a peer that ignores the RSS): worker lcore i on CPU 1 + i, the
# generator (GEN_LCORES lcores, default 1, on CPUs 0, 1, ...) and the idle primary on CPU 0.
# With fewer CPUs than N + 1 the lcores wrap around onto CPU 0 and the figures say so: CPUs
# shared by busy pollers measure the scheduler, not the balancer.
# With PERF_OUT=FILE the workers are sampled by perf during each measurement (FILE.<flows>);
# pair it with BIN=DIR, a release build with line tables:
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=/tmp/prof cargo build --release --bins
#   BIN=/tmp/prof/release PERF_OUT=/tmp/fnat.perf bench/fnat-udp-flows.sh 3 1
# With CEILING=1 the same generator first drives dpdk-testpmd's io forwarding between the same
# two memif server ports (CPU 1; no translation, no table): the path's ceiling with this
# generator, which each flow count's rate is then given as a percentage of (the generator's
# received rate against the ceiling's, same sitting).
# With SERVICES=N the instance also carries N TCP services that get no traffic
# (common.sh's scale_services): the cost of a large configuration to the packet path.
# With SCRAPE=MS a dpvs-exporter (CPU 0) serves the instance and curl scrapes it every MS
# milliseconds during each measurement: the scrape's cost to the worker (compare busy cycles per
# packet with and without, same sitting) and its own time (p50 and max, and its size).
# With FAMILY=6 the service, its addresses and the real server are IPv6 (VIP 2001:db8::100,
# local addresses 2001:db8:1::200-231, real server 2001:db8:1::2) and dpvs-gen sends IPv6 (84-
# byte frames: the same 22 bytes of UDP payload as the 64-byte IPv4 ones); with FAMILY=nat64
# the VIP and the clients are IPv6 and the local addresses and real server IPv4 (NAT64).
# SIZE=N sends N-byte frames instead (IPv4 at 84 bytes compares with IPv6 frame for frame:
# memif copies every frame, and 84 bytes take a second cache line).
# Usage: [SHM_DIR=DIR] [FORWARD=fnat|dr|nat] [FAMILY=4|6|nat64] [LCORES=N] [SERVICES=N] [SCRAPE=MS] bench/fnat-udp-flows.sh [DURATION] [FLOWS...]
DURATION=${1:-5}
shift || true
FLOWS=("${@:-1 1000 1000000}")
read -r -a FLOWS <<< "${FLOWS[*]}"
PREFIXES=(bfgen bfwd dpvs-bench)
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
FAMILY=${FAMILY:-4}
family_key=""
case "$FAMILY" in
    4) ;;
    6 | nat64)
        if [ "${SERVICES:-0}" -gt 0 ]; then echo "SERVICES are IPv4: FAMILY=$FAMILY takes none" >&2; exit 2; fi
        if [ "$FAMILY" = nat64 ] && [ "$FORWARD" != fnat ]; then echo "NAT64 is Full-NAT only" >&2; exit 2; fi
        python3 - "$WORK/fnat.toml" "$FAMILY" <<'PY'
import re, sys
path, family = sys.argv[1], sys.argv[2]
s = open(path).read()
s = s.replace('address = "198.18.0.100/24"', 'address = "2001:db8::100/64"').replace('vip = "198.18.0.100"', 'vip = "2001:db8::100"')
if family == "6":
    s = re.sub(r'"198\.18\.1\.(\d+)/24"', r'"2001:db8:1::\1/64"', s)
    s = re.sub(r'"198\.18\.1\.(\d+)"', r'"2001:db8:1::\1"', s)
open(path, "w").write(s)
PY
        GEN+=(--src 2001:db8:c::1 --dst "[2001:db8::100]:53" --size "${SIZE:-84}")
        if [ "$FAMILY" = 6 ]; then label="IPv6 $label"; family_key="-ipv6"; else label="NAT64"; family_key="-nat64"; fi
        ;;
    *) echo "FAMILY must be 4, 6 or nat64, not $FAMILY" >&2; exit 2 ;;
esac
# SIZE=N: frames of N bytes (IPv4's 64 and IPv6's 84 by default; given above for IPv6).
if [ -n "${SIZE:-}" ] && [ "$FAMILY" = 4 ]; then GEN+=(--size "$SIZE"); fi
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
    GEN_LCORES=${GEN_LCORES:-1}
    gen_cpus=$(seq -s, 0 $((GEN_LCORES - 1)))
    # The generator's CPUs in place of GEN's `--cpu 0`.
    for i in "${!GEN[@]}"; do [ "${GEN[i]}" = --cpu ] && GEN[i + 1]=$gen_cpus; done
    GEN+=(--queues "$LCORES" --lcores "$GEN_LCORES" --steer "${STEER:-rss}")
    lcores_label="$LCORES worker lcores"
    if [ "$cpus" -le "$LCORES" ]; then
        lcores_label+=" (OVERSUBSCRIBED: $LCORES lcores and the generator on $cpus CPUs)"
    fi
fi
ceiling=""
if [ -n "${CEILING:-}" ]; then
    rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
    q=$LCORES
    dpdk-testpmd --no-pci --huge-dir /dev/hugepages --log-level='*:warning' --lcores=0@1,1@1 --file-prefix=bfwd \
        --vdev="net_memif0,role=server,id=0,socket=/run/dpvs/bench0.sock,socket-abstract=no" \
        --vdev="net_memif1,role=server,id=0,socket=/run/dpvs/bench1.sock,socket-abstract=no" \
        -- --total-num-mbufs=16384 --nb-cores=1 --burst=32 --rxq="$q" --txq="$q" -a --stats-period=1 --forward-mode=io \
        > "$WORK/ceiling-fwd.out" 2>&1 &
    F=$!; PIDS+=($F)
    sleep 3
    "${GEN[@]}" --file-prefix=bfgen --flows 1 > "$WORK/ceiling-gen.out" &
    G=$!; PIDS+=($G)
    sleep $((DURATION + 2))
    kill -INT "$G"; wait "$G" || true
    kill -INT "$F"; wait "$F" || true
    r=$(tail -1 "$WORK/ceiling-gen.out")
    ceiling=$(python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(f\"{r['received']/r['seconds']/1e6:.2f}\")" "$r")
    echo "Ceiling: dpvs-gen through dpdk-testpmd io forwarding (same memif ports, CPU 1): $ceiling Mpps received"
    record "$FORWARD$family_key-udp-flows" "ceiling_testpmd_io" "$ceiling" Mpps
fi
if [ -n "${SHM_DIR:-}" ]; then sed -i "s|^name = \"dpvs-bench\"|name = \"dpvs-bench\"\nshm_dir = \"$SHM_DIR\"|" "$WORK/fnat.toml"; fi
for n in "${FLOWS[@]}"; do
    rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
    "$BIN"/dpvs -c "$WORK/fnat.toml" > "$WORK/dpvs-$n.log" 2>&1 &
    D=$!; PIDS+=($D)
    sleep 3
    # A large configuration (SERVICES) takes seconds to parse: wait for the workers.
    for _ in $(seq 600); do
        "$BIN"/dpvsctl -i dpvs-bench --shm-dir "${SHM_DIR:-/dev/shm}" worker list --json 2> /dev/null |
            grep -q '"running"' && break
        sleep 0.1
    done
    if [ -n "${SCRAPE:-}" ]; then
        "$BIN"/dpvs-exporter -i dpvs-bench --shm-dir "${SHM_DIR:-/dev/shm}" --listen 127.0.0.1:19469 \
            > "$WORK/exporter-$n.log" 2>&1 &
        X=$!; PIDS+=($X)
    fi
    "${GEN[@]}" --file-prefix=bfgen --flows "$n" > "$WORK/gen-$n.out" &
    G=$!; PIDS+=($G)
    # Measure after the table holds every flow (1M flows at a few Mpps: under a second).
    sleep 2
    before=$(snapshot)
    if [ -n "${SCRAPE:-}" ]; then
        # Bounded: DURATION seconds of scrapes, one every SCRAPE ms.
        interval=$(python3 -c "print($SCRAPE / 1000)")
        (
            for ((k = 0; k < DURATION * 1000 / SCRAPE; k++)); do
                curl -s -o "$WORK/scrape-$n.txt" -w '%{time_total}\n' http://127.0.0.1:19469/metrics
                sleep "$interval"
            done
        ) > "$WORK/scrapes-$n" &
        S=$!
    fi
    if [ -n "${PERF_OUT:-}" ]; then
        # Sample the worker(s) for the measurement's duration (cpu-clock: no PMU in a VM).
        pids=$("$BIN"/dpvsctl -i dpvs-bench --shm-dir "${SHM_DIR:-/dev/shm}" worker list --json |
            python3 -c "import json,sys; print(','.join(str(w['pid']) for w in json.load(sys.stdin)))")
        perf record -e cpu-clock -F 20000 -p "$pids" -o "$PERF_OUT.$n" -- sleep "$DURATION" 2> /dev/null
    else
        sleep "$DURATION"
    fi
    after=$(snapshot)
    kill -INT "$G"; wait "$G" || true
    read -r mpps redirected cyc <<< "$(rates "$before" "$after" fnat_in redirected)"
    burst=$(per_burst "$before" "$after")
    flows_now=$(conns active)
    handed=""
    if [ "$LCORES" -gt 1 ]; then
        read -r h_nat h_pers h_miss h_norss _ <<< "$(rates "$before" "$after" handed_nat handed_persistent handed_rss_mismatch handed_no_rss)"
        handed=" ($redirected Mpps handed over between lcores: NAT $h_nat, persistent $h_pers, RSS mismatch $h_miss, no RSS $h_norss)"
    fi
    share=""
    if [ -n "$ceiling" ]; then
        r=$(tail -1 "$WORK/gen-$n.out")
        share=$(python3 -c "import json,sys; r=json.loads(sys.argv[1]); c=float(sys.argv[2]); g=r['received']/r['seconds']/1e6; print(f'{g:.2f} Mpps at the generator, {100*g/c:.0f}% of the ceiling')" "$r" "$ceiling")
        share=" [$share]"
    fi
    echo "UDP $label, $lcores_label, $n flows ($flows_now connections): $mpps Mpps translated$handed," \
        "$cyc busy cycles per packet ($burst packets per rx burst)$share"
    if [ -n "${SCRAPE:-}" ]; then
        wait "$S" || true
        python3 - "$WORK/scrapes-$n" "$WORK/scrape-$n.txt" <<'PY'
import sys
t = sorted(float(x) * 1000 for x in open(sys.argv[1]) if x.strip())
body = open(sys.argv[2]).read()
print(f"scrapes during the measurement: {len(t)}, p50 {t[len(t) // 2]:.1f} ms, max {t[-1]:.1f} ms "
      f"({len(body)} bytes, {sum(1 for l in body.splitlines() if l and not l.startswith('#'))} samples)")
PY
        kill -TERM "$X"; wait "$X" || true
    fi
    suffix=$([ "$LCORES" -gt 1 ] && echo "_${LCORES}lcores" || true)
    record "$FORWARD$family_key-udp-flows" "translated_${n}flows$suffix" "$mpps" Mpps
    record "$FORWARD$family_key-udp-flows" "busy_cycles_per_packet_${n}flows$suffix" "$cyc" cycles
    if [ "$LCORES" -gt 1 ]; then record "$FORWARD$family_key-udp-flows" "handed_over_${n}flows$suffix" "$redirected" Mpps; fi
    kill -TERM "$D"; wait "$D" || true
done
