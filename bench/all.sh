#!/usr/bin/env bash
# The benchmark suite in one command: forwarding ceiling vs one worker over memif, UDP Full-NAT
# on one lcore (one flow and 64 flows; 1, 1k and 1M flows; direct routing and NAT with 1 and
# 1M flows; two worker lcores), start-up and restart-after-kill-9 times, configuration
# changes per second and their latency, the peers (nftables full NAT; HAProxy against dpvs over
# tap for HTTP requests per second), and loss across
# rolling restarts at fixed rates and across kill -9 of a worker (with and without a hot
# standby), packet capture by dpdk-dumpcap at 100 kpps, new TCP connections per second (whole short connections,
# and connections reset at once) and 1M TCP connections held
# with data on them (dpvs-gen), then the
# criterion micro-benchmarks (printed, not in the CSV). Each script prints its own report and
# appends its figures to one CSV file (default bench-results-<UTC time>.csv in the current
# directory); at the end `dpvs-bench-report` prints them as a table and charts every packet
# rate beside the ceiling and the kernel peer in <CSV without .csv>/rates.png. Bounded: about
# 8 minutes (8.0 on a 2-vCPU VM, 2026-11-26, fifth session, release build already made).
# With --quick (what CI runs): every scenario briefly, at one small setting, then a check
# that each produced its numbers, none zero but a loss (no figure is judged beyond that: the
# machine running CI is not a benchmark machine); about 3.5 minutes after the release build.
# Usage: bench/all.sh [--quick] [CSV]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
QUICK=
if [ "${1:-}" = "--quick" ]; then
    QUICK=1
    shift
fi
BENCH_CSV=$(realpath -m "${1:-bench-results-$(date -u +%Y%m%dT%H%M%SZ).csv}")
export BENCH_CSV
if [ -n "$QUICK" ]; then
    rm -f "$BENCH_CSV"
    "$here/memif-forward.sh" 4
    "$here/fnat-udp.sh" 2
    "$here/fnat-udp.sh" 2 multi
    "$here/restart.sh" 1
    "$here/control.sh" 100
    "$here/nft-dnat.sh" 4
    "$here/http-peers.sh" 1
    "$here/zero-loss.sh" 1 100
    STANDBY=1 "$here/crash-loss.sh" 1 100
    "$here/fnat-tcp-cps.sh" 50
    "$here/fnat-tcp-held.sh" 20000 100 1
    LCORES=2 "$here/fnat-udp-flows.sh" 1 1000
    "$here/fnat-udp-flows.sh" 1 1 1000
    FORWARD=dr "$here/fnat-udp-flows.sh" 1 1
    FORWARD=nat "$here/fnat-udp-flows.sh" 1 1
    "$here/capture.sh" 100 1 1
    # Each criterion benchmark briefly (10 samples, half a second): its estimate printed.
    (cd "$here/.." && for b in "wire parse" "conn table" "workers pipeline" "workers redirect" "sched pick"; do
        set -- $b
        cargo bench -q -p "$1" --bench "$2" -- --warm-up-time 0.2 --measurement-time 0.5 --sample-size 10 2>&1 |
            grep -E "time:|^[a-z_0-9]+/" | grep -v "%" || true
    done)
    # Every scenario wrote its figures, each a number.
    python3 - "$BENCH_CSV" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
want = ["memif-forward", "fnat-udp", "restart", "control", "nft-dnat", "http-peers", "zero-loss",
        "crash-loss", "fnat-tcp-cps", "fnat-tcp-held", "fnat-udp-flows", "dr-udp-flows", "nat-udp-flows",
        "capture"]
bad = [b for b in want if not any(r["bench"] == b for r in rows)]
bad += [m for m in ["translated_1000flows_2lcores", "held", "completed_at_50k"] if not any(r["metric"] == m for r in rows)]
# A figure of zero means the scenario moved nothing (only a loss, or a latency under 1 us,
# may be zero).
for r in rows:
    try:
        ok = (float(r["value"]) > 0 or r["metric"] == "rolling_lost" or r["metric"].startswith("latency")
              or r["metric"].startswith("lost_per_kill") or r["metric"].startswith("lost_")
              or r["metric"].startswith("handed_over") or r["metric"].startswith("gap"))
    except ValueError:
        ok = False
    if not ok:
        bad.append(f"{r['bench']} {r['metric']}={r['value']!r}")
if bad:
    sys.exit(f"bench --quick: missing or not a number: {', '.join(bad)}")
print(f"bench --quick: {len(rows)} figures from {len(want)} scenarios")
PY
    "$here/../target/release/dpvs-bench-report" "$BENCH_CSV" --out "${BENCH_CSV%.csv}"
    echo "results: $BENCH_CSV, charts in ${BENCH_CSV%.csv}/"
    exit 0
fi
"$here/memif-forward.sh" 8
"$here/fnat-udp.sh" 8
"$here/fnat-udp.sh" 8 multi
"$here/restart.sh" 6
"$here/control.sh" 2000
"$here/nft-dnat.sh" 8
"$here/http-peers.sh" 5
"$here/zero-loss.sh" 10 1000 3000
STANDBY=1 "$here/crash-loss.sh" 10 500
"$here/crash-loss.sh" 4 500
"$here/fnat-tcp-cps.sh" 200 500
TCP=close "$here/fnat-tcp-cps.sh" 500
"$here/fnat-tcp-held.sh" 1000000 400 4
CEILING=1 "$here/fnat-udp-flows.sh" 3
FORWARD=dr "$here/fnat-udp-flows.sh" 3 1 1000000
FORWARD=nat "$here/fnat-udp-flows.sh" 3 1 1000000
# Two worker lcores (on a machine with fewer than 3 CPUs they share CPU 0 with the generator,
# and the script says so).
LCORES=2 "$here/fnat-udp-flows.sh" 3 1 1000000
"$here/capture.sh" 100 3 2
# Criterion micro-benchmarks, short runs: parser and checksums, connection table at 1M entries,
# the whole per-lcore pipeline at 1 and 1M flows, what a redirect between lcores costs,
# scheduler picks and Maglev builds.
(cd "$here/.." && for b in "wire parse" "conn table" "workers pipeline" "workers redirect" "sched pick"; do
    set -- $b
    cargo bench -q -p "$1" --bench "$2" -- --warm-up-time 1 --measurement-time 2 2>&1 | grep -E "time:|^[a-z_]+/" | grep -v "%" || true
done)
echo
"$here/../target/release/dpvs-bench-report" "$BENCH_CSV" --out "${BENCH_CSV%.csv}"
echo "results: $BENCH_CSV"
