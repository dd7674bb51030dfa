#!/usr/bin/env bash
# The benchmark suite in one command: forwarding ceiling vs one worker over memif, UDP Full-NAT
# on one lcore (one flow and 64 flows), start-up and restart-after-kill-9 times, configuration
# changes per second and their latency, the kernel peer (nftables full NAT), and loss across
# rolling restarts at fixed rates and new TCP connections per second (dpvs-gen), then the
# criterion micro-benchmarks (printed, not in the CSV). Each script prints its own report and
# appends its figures to one CSV file (default bench-results-<UTC time>.csv in the current
# directory). Bounded: about 8 minutes.
# Usage: bench/all.sh [CSV]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BENCH_CSV=$(realpath -m "${1:-bench-results-$(date -u +%Y%m%dT%H%M%SZ).csv}")
export BENCH_CSV
"$here/memif-forward.sh" 8
"$here/fnat-udp.sh" 8
"$here/fnat-udp.sh" 8 multi
"$here/restart.sh" 6
"$here/control.sh" 2000
"$here/nft-dnat.sh" 8
"$here/zero-loss.sh" 10 1000 3000
"$here/fnat-tcp-cps.sh" 200 500
"$here/fnat-udp-flows.sh" 3
# Criterion micro-benchmarks, short runs: parser and checksums, connection table at 1M entries,
# the whole per-lcore pipeline at 1 and 1M flows, scheduler picks and Maglev builds.
(cd "$here/.." && for b in "wire parse" "conn table" "workers pipeline" "sched pick"; do
    set -- $b
    cargo bench -q -p "$1" --bench "$2" -- --warm-up-time 1 --measurement-time 2 2>&1 | grep -E "time:|^[a-z_]+/" | grep -v "%" || true
done)
echo
echo "results: $BENCH_CSV"
cat "$BENCH_CSV"
