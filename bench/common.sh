# Sourced by the bench scripts: set-up, a release build, a scratch directory, and a cleanup
# that stops every process the script recorded in PIDS and removes the DPDK files of the file
# prefixes in PREFIXES (set PREFIXES before sourcing). With BENCH_CSV set (bench/all.sh sets
# it), `record BENCH METRIC VALUE UNIT` appends one CSV row: time, host, bench, metric, value,
# unit. With BIN set (a directory of release binaries, such as a build with line tables for
# perf), the scripts that honour it run those instead of building target/release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
if [ -z "${BIN:-}" ]; then
    echo "building the release binaries (cargo build --release: minutes the first time)" >&2
    cargo build --release --bins
fi
BIN=${BIN:-target/release}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    # Last started first, so the traffic peers leave before the memif server they use.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -INT "${PIDS[i]}" 2>/dev/null || true
        sleep 0.5
    done
    sleep 1
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for pre in "${PREFIXES[@]}"; do
        rm -rf "/var/run/dpdk/$pre" "/var/run/dpdk/$pre.lock"
        rm -f /dev/hugepages/"${pre}"map_*
    done
    [ -n "${BENCH_KEEP:-}" ] && cp -r "$WORK/." "$BENCH_KEEP/"
    rm -rf "$WORK" /run/dpvs/bench0.sock /run/dpvs/bench1.sock
}
# Worker counters of the dpvs-bench instance, for `rates`: one JSON line, `dpvsctl stats`
# totals with the time of the snapshot added.
snapshot() {
    python3 -c "import json,sys,time; d=json.load(sys.stdin)['total']; d['t']=time.time(); print(json.dumps(d))" \
        <<< "$("$BIN"/dpvsctl -i dpvs-bench --shm-dir "${SHM_DIR:-/dev/shm}" stats --json)"
}
# rates BEFORE AFTER COUNTER...: each counter's rate between two snapshots in Mpps (2
# decimals), then the busy TSC cycles per received packet; space-separated.
rates() {
    python3 -c "
import json,sys
b=json.loads(sys.argv[1]); a=json.loads(sys.argv[2]); dt=a['t']-b['t']
d=lambda k: a[k]-b[k]
print(*[f'{d(k)/dt/1e6:.2f}' for k in sys.argv[3:]], f\"{d('busy_cycles')/max(d('rx_packets'),1):.0f}\")
" "$@"
}
# per_burst BEFORE AFTER: packets received per non-empty rx burst between two snapshots (a
# round's fixed costs, such as polling empty queues, are shared by that many packets).
per_burst() {
    python3 -c "
import json,sys
b=json.loads(sys.argv[1]); a=json.loads(sys.argv[2])
print(f\"{(a['rx_packets']-b['rx_packets'])/max(a['rx_bursts']-b['rx_bursts'],1):.1f}\")
" "$@"
}
# fnat_conf OUT [tcp]: bench/fnat-1worker.toml's service with 32 local addresses (a flow or
# connection holds its local port while its entry lives, and one address has 64 511 ports),
# as a TCP service with "tcp".
# With SERVICES=N set, the file also has N more TCP services (scale_services).
fnat_conf() {
    local laddrs proto=udp
    [ "${2:-}" = tcp ] && proto=tcp
    laddrs=$(for i in $(seq 200 231); do printf '"198.18.1.%s", ' "$i"; done)
    {
        sed -e "s/protocol = \"udp\"/protocol = \"$proto\"/" \
            -e "s/local_addresses = \\[\"198.18.1.254\"\\]/local_addresses = [${laddrs%, }]/" bench/fnat-1worker.toml
        for i in $(seq 200 231); do printf '[[addresses]]\nport = "dpdk1"\naddress = "198.18.1.%s/24"\n' "$i"; done
        scale_services "${SERVICES:-0}"
    } > "$1"
}
# scale_services N: `[limits]` for N more services, and N TCP services to append to a bench
# configuration: VIPs 198.18.2.1 and up as /32 addresses of dpdk0, 250 ports each, one local
# address (198.18.1.254) and 3 or 4 real servers each on dpdk1's network. Nothing for N = 0.
scale_services() {
    [ "$1" -gt 0 ] || return 0
    python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
vips = (n + 249) // 250
out = [f"[limits]\nservices = {n + 1}\nreals = {4 * n + 1}\naddresses = {vips + 64}\n"]
for v in range(vips):
    out.append(f'[[addresses]]\nport = "dpdk0"\naddress = "198.18.{2 + v // 250}.{1 + v % 250}/32"\n')
for i in range(n):
    v, p = divmod(i, 250)
    out.append(f'[[services]]\nvip = "198.18.{2 + v // 250}.{1 + v % 250}"\nport = {1000 + p}\nprotocol = "tcp"\n'
               f'local_addresses = ["198.18.1.254"]\n')
    for r in range(4 if i % 4 < 2 else 3):
        out.append(f'[[services.reals]]\naddress = "198.18.1.{10 + (i + r) % 200}"\nport = {80 + r}\n')
print("".join(out))
PY
}
# GEN: dpvs-gen on CPU 0 towards the bench instance's two memif ports (sends to dpdk0, plays
# the real servers on dpdk1); add --file-prefix and the traffic's options. Its memif rings
# have 4096 slots (rsize=12; the default is 1024): the generator's one lcore sends and
# receives, and when it is descheduled for a millisecond at 500 kpps the balancer's side of a
# 1024-slot ring fills (seen: 32 packets counted DROP-TXFULL by the worker, in about one run
# of three, with no restart at all).
GEN=("$BIN"/dpvs-gen --cpu 0 --dst-mac 02:00:00:00:00:10
    --tx-vdev "net_memif0,role=client,id=0,socket=/run/dpvs/bench0.sock,socket-abstract=no,rsize=12"
    --rx-vdev "net_memif1,role=client,id=0,socket=/run/dpvs/bench1.sock,socket-abstract=no,rsize=12")
# field JSON KEY: one value of a JSON object (dpvs-gen's report).
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
# conns FIELD: the bench instance's connection-table counter FIELD (active, created, full...)
# summed over its lcores.
conns() {
    "$BIN"/dpvsctl -i dpvs-bench --shm-dir "${SHM_DIR:-/dev/shm}" stats --json |
        python3 -c "import json,sys; print(sum(c[sys.argv[1]] for c in json.load(sys.stdin)['connections']))" "$1"
}
record() { # $1 bench, $2 metric, $3 value, $4 unit
    [ -n "${BENCH_CSV:-}" ] || return 0
    [ -s "$BENCH_CSV" ] || echo "time,host,bench,metric,value,unit" > "$BENCH_CSV"
    echo "$(date -u +%FT%TZ),$(hostname)/$(nproc)cpu,$1,$2,$3,$4" >> "$BENCH_CSV"
}
trap cleanup EXIT
