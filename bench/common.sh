# Sourced by the bench scripts: set-up, a release build, a scratch directory, and a cleanup
# that stops every process the script recorded in PIDS and removes the DPDK files of the file
# prefixes in PREFIXES (set PREFIXES before sourcing). With BENCH_CSV set (bench/all.sh sets
# it), `record BENCH METRIC VALUE UNIT` appends one CSV row: time, host, bench, metric, value,
# unit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo build --release --bins -q
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
        <<< "$(target/release/dpvsctl -i dpvs-bench --shm-dir "${SHM_DIR:-/dev/shm}" stats --json)"
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
record() { # $1 bench, $2 metric, $3 value, $4 unit
    [ -n "${BENCH_CSV:-}" ] || return 0
    [ -s "$BENCH_CSV" ] || echo "time,host,bench,metric,value,unit" > "$BENCH_CSV"
    echo "$(date -u +%FT%TZ),$(hostname)/$(nproc)cpu,$1,$2,$3,$4" >> "$BENCH_CSV"
}
trap cleanup EXIT
