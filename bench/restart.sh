#!/usr/bin/env bash
# Start-up and crash-recovery times of dpvs (release build), one-arm memif config:
#  - primary EAL init (dpvsctl status) and each worker's EAL init (worker log);
#  - worker restart after kill -9: from the death seen by the supervisor to the replacement's
#    first poll (dpvsctl worker list, last_restart_us), KILLS times, idle and then under
#    traffic from dpdk-testpmd flowgen (CPU 0);
#  - after each kill, the pool's free count must be back at its size.
# Usage: bench/restart.sh [KILLS]   (default 8; bounded: ~2.5 s per kill)
KILLS=${1:-8}
PREFIXES=(bgen dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
CTL="target/release/dpvsctl -i dpvs-bench"
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

DPVS_LOG=info target/release/dpvs -c bench/memif-1worker.toml > "$WORK/dpvs.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do $CTL worker list --json 2>/dev/null | grep -q '"running"' && break; sleep 0.1; done

kill_round() { # $1 = label, $2 = CSV metric suffix
    local times=()
    for i in $(seq "$KILLS"); do
        local w pid
        w=$($CTL worker list --json)
        pid=$(echo "$w" | jq_ 'd[0]["pid"]')
        local before
        before=$(echo "$w" | jq_ 'd[0]["restarts"]')
        kill -9 "$pid"
        for _ in $(seq 200); do
            w=$($CTL worker list --json)
            [ "$(echo "$w" | jq_ 'd[0]["restarts"]')" -gt "$before" ] &&
                [ "$(echo "$w" | jq_ 'd[0]["state"]')" = running ] &&
                [ "$(echo "$w" | jq_ 'd[0]["last_restart_us"]')" != 0 ] && break
            sleep 0.02
        done
        times+=("$(echo "$w" | jq_ 'd[0]["last_restart_us"]')")
        # Outlive the supervisor's crash-loop window (2 s), or the backoff is measured too.
        sleep 2.2
    done
    sleep 0.3
    local w
    w=$($CTL worker list --json)
    local sorted
    mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
    local med=$(( sorted[(${#sorted[@]} - 1) / 2] ))
    awk -v l="$1" -v lo="${sorted[0]}" -v med="$med" -v hi="${sorted[-1]}" -v n="${#sorted[@]}" \
        -v a="$(echo "$w" | jq_ 'd[0]["pool_avail"]')" -v s="$(echo "$w" | jq_ 'd[0]["pool_size"]')" \
        'BEGIN {printf "%-22s restart after kill -9 (ms): min %.1f  median %.1f  max %.1f  (n=%d); pool %s/%s\n", l, lo/1000, med/1000, hi/1000, n, a, s}'
    record restart "restart_median_${2}" "$(awk -v m="$med" 'BEGIN {printf "%.1f", m/1000}')" ms
}

eal=$($CTL status --json | jq_ 'd["eal_init_us"]/1000')
echo "primary EAL init: $eal ms"
record restart primary_eal_init "$eal" ms
kill_round "idle" idle
"dpdk-testpmd" --no-pci --huge-dir /dev/hugepages --log-level='*:warning' --lcores=0@0,1@0 --file-prefix=bgen \
    --vdev="net_memif0,role=client,id=0,socket=/run/dpvs/bench0.sock,socket-abstract=no" \
    -- --total-num-mbufs=16384 --nb-cores=1 --burst=32 -a --stats-period=1 --forward-mode=flowgen > "$WORK/gen.out" 2>&1 &
GEN=$!; PIDS+=($GEN)
sleep 2
kill_round "under 64 B traffic" traffic
kill -INT "$GEN"; sleep 2
echo "worker EAL init (ms), every start: $(grep 'attached' "$WORK/dpvs.log" | grep -o 'eal_init_us=[0-9]*' | cut -d= -f2 | awk '{printf "%.0f ", $1/1000}')"
{ grep -c "recovered the dead worker's buffers" "$WORK/dpvs.log" || true; } | xargs echo "kills that needed lost-buffer recovery:"
{ grep "recovered the dead worker's buffers" "$WORK/dpvs.log" || true; } | sed 's/.*restored/restored/' | sort | uniq -c | head -5
