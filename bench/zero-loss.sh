#!/usr/bin/env bash
# Loss across worker handovers at a fixed rate (issue 5's numbers): dpvs-gen (CPU 0) offers
# 64-byte UDP over memif to a Full-NAT service on one worker (CPU 1, release build,
# bench/fnat-1worker.toml) and counts what comes out of the other port. First the highest of
# RATES (kpps) that passes 3 s with no loss and no restart; then that rate for ROLLS rolling
# restarts of the worker: packets sent, received, lost, and the handover gaps. Each rate also
# prints the one-way latency through the balancer (dpvs-gen's samples: p50, p99, max).
# The primary and the generator run on CPU 0, the housekeeping CPU (HOUSEKEEPING=N to move
# it) where successors initialise and departing workers exit.
# With UPGRADE=1 each restart is a binary upgrade (`worker restart --all --rolling --binary`),
# alternately to two copies of the worker build.
# BASELINE=S adds S seconds of traffic after the restarts (ROLLS=0: the same measure with no
# restart). The generator runs at nice GEN_NICE (default -15): it shares CPU 0 with the
# primary (nice -10), the successors' set-up and the departing workers' exits, and at a lower
# priority its own descheduling showed as the balancer's latency (docs/measurements.md); it is
# the instrument, which on a real deployment runs on another host. GEN_NICE=0 shows the
# shared-CPU figures.
# Usage: [HOUSEKEEPING=N] [UPGRADE=1] [BASELINE=S] [GEN_NICE=N] bench/zero-loss.sh [ROLLS] [RATES...]
ROLLS=${1:-10}
shift || true
RATES=("${@:-250 500 1000 1500 2000 2500 3000}")
read -r -a RATES <<< "${RATES[*]}"
PREFIXES=(bzgen dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
HOUSEKEEPING=${HOUSEKEEPING:-0}
# This script's own processes (the shell, python, dpvsctl) stay off the worker's CPU, as on a
# server whose data CPUs are isolated.
taskset -pc "$HOUSEKEEPING" $$ > /dev/null
sed "s/^main_cpu = 0$/main_cpu = 0\nhousekeeping_cpu = $HOUSEKEEPING/" bench/fnat-1worker.toml > "$WORK/fnat.toml"
"$BIN"/dpvs -c "$WORK/fnat.toml" > "$WORK/dpvs.log" 2>&1 &
PIDS+=($!)
sleep 3
GEN+=(--file-prefix=bzgen --flows 64)
GEN=(nice -n "${GEN_NICE:--15}" "${GEN[@]}")
best=0
for kpps in "${RATES[@]}"; do
    r=$("${GEN[@]}" --rate $((kpps * 1000)) --count $((kpps * 3000)))
    sent=$(field "$r" sent); got=$(field "$r" received)
    lat=$(python3 -c "import json,sys; l=json.loads(sys.argv[1])['latency_us']; print(l['p50'], l['p99'], l['max'])" "$r")
    read -r p50 p99 max <<< "$lat"
    echo "no restart, $kpps kpps: sent $sent, received $got, lost $((sent - got)); latency (us) p50 $p50, p99 $p99, max $max"
    [ "$sent" -eq "$got" ] || break
    best=$kpps
    best_lat=("$p50" "$p99")
done
echo "highest rate with no loss and no restart: $best kpps"
record zero-loss no_restart_kpps "$best" kpps
[ "$best" -gt 0 ] || exit 0
record zero-loss latency_p50_at_best "${best_lat[0]}" us
record zero-loss latency_p99_at_best "${best_lat[1]}" us
"${GEN[@]}" --rate $((best * 1000)) > "$WORK/gen.out" &
G=$!; PIDS+=($G)
sleep 1
gaps=()
upgrade=()
if [ -n "${UPGRADE:-}" ]; then
    cp "$BIN"/dpvs-worker "$WORK/dpvs-worker-a"
    cp "$BIN"/dpvs-worker "$WORK/dpvs-worker-b"
fi
for ((i = 0; i < ROLLS; i++)); do
    [ -n "${UPGRADE:-}" ] && upgrade=(--binary "$WORK/dpvs-worker-$([ $((i % 2)) = 0 ] && echo a || echo b)")
    out=$("$BIN"/dpvsctl -i dpvs-bench worker restart --all --rolling "${upgrade[@]}")
    gaps+=("$(sed -n 's/.*polling gap \([0-9]*\) us.*/\1/p' <<< "$out")")
done
sleep $((1 + ${BASELINE:-0}))
kill -INT "$G"; wait "$G" || true
r=$(tail -1 "$WORK/gen.out")
"$BIN"/dpvsctl -i dpvs-bench stats
# The gaps as the workers recorded them in shared memory (last 126 per slot).
"$BIN"/dpvsctl -i dpvs-bench worker list
gap_summary=$("$BIN"/dpvsctl -i dpvs-bench worker list --json |
    python3 -c "import json,sys; g=json.load(sys.stdin)[0]['handover_gaps']; print(g['p50_us'], g['p99_us'], g['max_us'])")
read -r gap_p50 gap_p99 gap_max <<< "$gap_summary"
sent=$(field "$r" sent); got=$(field "$r" received)
lat=$(python3 -c "import json,sys; l=json.loads(sys.argv[1])['latency_us']; print(l['p50'], l['p99'], l['max'])" "$r")
what=restarts
[ -n "${UPGRADE:-}" ] && what=upgrades
echo "$ROLLS rolling $what at $best kpps: sent $sent, received $got, lost $((sent - got)); gaps (us): ${gaps[*]}" \
    "(recorded by the workers: p50 $gap_p50, p99 $gap_p99, max $gap_max); latency (us) p50, p99, max: $lat"
record zero-loss rolling_sent "$sent" packets
record zero-loss rolling_lost $((sent - got)) packets
if [[ "$gap_p99" =~ ^[0-9]+$ ]]; then record zero-loss gap_p99_us "$gap_p99" us; fi
