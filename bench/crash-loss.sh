#!/usr/bin/env bash
# Loss across kill -9 of a worker under load (issue 15): dpvs-gen (CPU 0) offers KPPS kpps of
# 64-byte UDP in 64 flows to a Full-NAT service on one worker (CPU 1, release build,
# bench/fnat-1worker.toml), and the worker is killed KILLS times, each once it has run
# 2.2 s (past the supervisor's crash-loop window) and, with STANDBY=1 (the group's
# `hot_standby = true`), once its standby is ready. Prints per kill the restart time (death
# seen -> first poll of the replacement), then packets sent, received, lost (in all and per
# kill), the connections the worker created (64 flows: 64 if no connection was re-created),
# where the lost packets were counted, and the pool's free buffers once the traffic stopped.
# The primary, the generator and this script run on CPU 0, the housekeeping CPU.
# Usage: [STANDBY=1] bench/crash-loss.sh [KILLS] [KPPS]
KILLS=${1:-10}
KPPS=${2:-500}
PREFIXES=(bcgen dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
taskset -pc 0 $$ > /dev/null
rm -f /run/dpvs/bench0.sock /run/dpvs/bench1.sock
CTL=("$BIN"/dpvsctl -i dpvs-bench)
standby=""
[ -n "${STANDBY:-}" ] && standby='\nhot_standby = true'
sed -e "s/^main_cpu = 0$/main_cpu = 0\nhousekeeping_cpu = 0/" -e "s/^name = \"fnat\"$/name = \"fnat\"$standby/" \
    bench/fnat-1worker.toml > "$WORK/fnat.toml"
"$BIN"/dpvs -c "$WORK/fnat.toml" > "$WORK/dpvs.log" 2>&1 &
PIDS+=($!)
sleep 3
worker() { # the worker's field $1, from dpvsctl worker list --json
    "${CTL[@]}" worker list --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0][sys.argv[1]])" "$1"
}
"${GEN[@]}" --file-prefix=bcgen --flows 64 --rate $((KPPS * 1000)) > "$WORK/gen.out" &
G=$!; PIDS+=($G)
times=()
for ((i = 0; i < KILLS; i++)); do
    sleep 2.2
    if [ -n "${STANDBY:-}" ]; then
        for _ in $(seq 100); do [ "$(worker standby_ready)" = True ] && break; sleep 0.05; done
    fi
    pid=$(worker pid); before=$(worker restarts)
    kill -9 "$pid"
    for _ in $(seq 500); do
        [ "$(worker restarts)" -gt "$before" ] && [ "$(worker state)" = running ] &&
            [ "$(worker last_restart_us)" != 0 ] && [ "$(worker pid)" != "$pid" ] && break
        sleep 0.01
    done
    times+=("$(worker last_restart_us)")
done
sleep 1
kill -INT "$G"; wait "$G" || true
sleep 1
r=$(tail -1 "$WORK/gen.out")
"${CTL[@]}" stats
"${CTL[@]}" worker list
echo "the worker's CPUs: $(taskset -pc "$(worker pid)")"
sent=$(field "$r" sent); got=$(field "$r" received)
created=$(conns created)
mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
med=${sorted[$(((${#sorted[@]} - 1) / 2))]}
echo "restart after kill -9 (us): ${times[*]}"
echo "$KILLS kills at $KPPS kpps${STANDBY:+ (hot standby)}: sent $sent, received $got, lost $((sent - got))" \
    "($(( (sent - got) / KILLS )) a kill); restart (us) min ${sorted[0]}, median $med, max ${sorted[-1]};" \
    "connections created $created (64 flows); pool $(worker pool_avail)/$(worker pool_size)"
tag=${STANDBY:+_standby}
record crash-loss "lost_per_kill$tag" $(( (sent - got) / KILLS )) packets
record crash-loss "restart_median$tag" "$med" us
record crash-loss "connections_created$tag" "$created" connections
