#!/usr/bin/env bash
# Configuration changes through the mailbox (release build, one busy-polling worker on CPU 1,
# bench/fnat-1worker.toml, no traffic):
#  - one dpvsctl batch of N changes (real server add/del pairs): changes per second, and per
#    change the primary's time from its arrival to every worker forwarding with the generation
#    that carries it (Applied.took_us): p50, p99;
#  - 8 dpvsctl batches of N/8 changes at once: the same, with group commit.
# With SERVICES=S the instance starts with S more TCP services (VIPs 198.18.2.0/23 and up as
# /32 addresses, 250 ports each, 3 or 4 real servers each on dpdk1's network), and the script
# also times single `ipvsadm -a` / `-d` processes end to end, `ipvsadm -Sn`, `-C` then `-R`,
# and 16 dpvsctl batches of 1000 changes at once (S >= 4000: 16 VIPs of 250 services).
# Usage: [SERVICES=S] bench/control.sh [N]   (default 2000; bounded: a few seconds, plus the
# start-up at S services)
N=${1:-2000}
PREFIXES=(dpvs-bench)
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
CTL="$BIN/dpvsctl -i dpvs-bench"
CONF=bench/fnat-1worker.toml
SERVICES=${SERVICES:-0}
if [ "$SERVICES" -gt 0 ]; then
    CONF="$WORK/scale.toml"
    { cat bench/fnat-1worker.toml; scale_services "$SERVICES"; } > "$CONF"
fi

"$BIN"/dpvs -c "$CONF" > "$WORK/dpvs.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1200); do $CTL worker list --json 2>/dev/null | grep -q '"running"' && break; sleep 0.1; done
if [ "$SERVICES" -gt 0 ]; then
    echo "started with $(($($CTL service list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'))) services"
    # Memory: each process's private heap (RssAnon) and the shared memory it touched (RssShmem).
    mem() { awk '/^RssAnon|^RssShmem/ {printf "%s %.1f MiB ", $1, $2 / 1024}' "/proc/$1/status"; }
    worker=$($CTL worker list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])')
    echo "memory at $SERVICES services: primary $(mem "${PIDS[0]}"); worker $(mem "$worker")"
    # One ipvsadm process per change, end to end (wall clock, ms), 20 adds then 20 deletes.
    times=()
    for op in -a -d; do
        for i in $(seq 20); do
            t0=$(date +%s%N)
            DPVS_INSTANCE=dpvs-bench "$BIN"/ipvsadm $op -t 198.18.2.1:1000 -r 198.18.1.$((100 + i)):8080 \
                $([ "$op" = -a ] && echo -b) > /dev/null
            times+=($((($(date +%s%N) - t0) / 1000)))
        done
    done
    python3 -c "
import sys; t = sorted(int(x) for x in sys.argv[1:])
print(f'one ipvsadm -a/-d process at $SERVICES services, end to end: p50 {t[len(t)//2]/1000:.1f} ms, max {t[-1]/1000:.1f} ms ({len(t)} changes)')
" "${times[@]}"
    # Save every rule, clear them, restore them (one generation), and save again: the same.
    IPVSADM=(env DPVS_INSTANCE=dpvs-bench "$BIN"/ipvsadm)
    ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
    t0=$(date +%s%N); "${IPVSADM[@]}" -Sn > "$WORK/rules"; save_ms=$(ms "$t0")
    "${IPVSADM[@]}" -C
    t0=$(date +%s%N); "${IPVSADM[@]}" -R < "$WORK/rules"; restore_ms=$(ms "$t0")
    "${IPVSADM[@]}" -Sn > "$WORK/rules2"
    same=$(cmp -s "$WORK/rules" "$WORK/rules2" && echo "the same rules" || echo "DIFFERENT rules")
    echo "ipvsadm -Sn: $(wc -l < "$WORK/rules") lines in $save_ms ms; -C then -R of them: $restore_ms ms ($same after)"
fi

script() { # $1 first port, $2 count: real add/del pairs on udp 198.18.0.100:53
    for ((i = 0; i < $2; i += 2)); do
        echo "real add udp 198.18.0.100:53 198.18.1.2:$(($1 + i))"
        echo "real del udp 198.18.0.100:53 198.18.1.2:$(($1 + i))"
    done
}
report() { # $1 label, $2 CSV metric prefix, $3 start, $4 end (s), $5.. JSON outputs
    python3 - "$@" <<'PY'
import json, sys
label, metric, files = sys.argv[1], sys.argv[2], sys.argv[5:]
secs = float(sys.argv[4]) - float(sys.argv[3])
took, dec = [], json.JSONDecoder()
for f in files:
    text, i = open(f).read(), 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        took.append(obj["Applied"]["took_us"])
took.sort()
q = lambda p: took[min(len(took) - 1, int(p * len(took)))]
print(f"{label}: {len(took)} changes in {secs:.2f} s = {len(took)/secs:.0f} changes/s; "
      f"arrival -> every worker on the new generation: p50 {q(0.5)} us, p99 {q(0.99)} us")
print(f"CSV {metric}_per_s {len(took)/secs:.0f} changes/s")
print(f"CSV {metric}_p50 {q(0.5)} us")
print(f"CSV {metric}_p99 {q(0.99)} us")
PY
}
csv() { while read -r tag m v u; do [ "$tag" = CSV ] && record control "$m" "$v" "$u"; echo "$tag $m $v $u" | grep -v '^CSV' || true; done; }

$CTL service add udp 198.18.0.100:53 > /dev/null 2>&1 || true
script 20000 "$N" > "$WORK/one"
t0=$(date +%s.%N)
$CTL batch "$WORK/one" --json > "$WORK/one.json"
t1=$(date +%s.%N)
report "one client" serial "$t0" "$t1" "$WORK/one.json" | tee "$WORK/r1" | grep -v '^CSV'
grep '^CSV' "$WORK/r1" | csv

for k in $(seq 0 7); do script $((30000 + k * N)) $((N / 8)) > "$WORK/c$k"; done
t0=$(date +%s.%N)
pids=()
for k in $(seq 0 7); do $CTL batch "$WORK/c$k" --json > "$WORK/c$k.json" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
t1=$(date +%s.%N)
report "8 clients" parallel "$t0" "$t1" "$WORK"/c?.json | tee "$WORK/r8" | grep -v '^CSV'
grep '^CSV' "$WORK/r8" | csv
# At scale: 16 processes of 1000 changes each at once, each on the services of its own VIP
# (per service: a real server added, its weight edited, removed, another added).
if [ "$SERVICES" -ge 4000 ]; then
    for k in $(seq 0 15); do
        v="198.18.2.$((k + 1))"
        for ((j = 0; j < 250; j++)); do
            at="tcp $v:$((1000 + j))" rs="198.18.1.$((100 + k))"
            echo "real add $at $rs:$((5000 + j)) -w 1"
            echo "real edit $at $rs:$((5000 + j)) -w 2"
            echo "real del $at $rs:$((5000 + j))"
            echo "real add $at $rs:$((6000 + j)) -w 3"
        done > "$WORK/s$k"
    done
    t0=$(date +%s.%N)
    pids=()
    for k in $(seq 0 15); do $CTL batch "$WORK/s$k" --json > "$WORK/s$k.json" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p"; done
    t1=$(date +%s.%N)
    report "16 clients x 1000 at $SERVICES services" scale16 "$t0" "$t1" "$WORK"/s*.json | tee "$WORK/r16" | grep -v '^CSV'
    grep '^CSV' "$WORK/r16" | csv
fi
echo "generations: $($CTL status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"])')"
# At scale, a worker too slow to apply a generation is replaced as hung: its restarts show it.
if [ "$SERVICES" -gt 0 ]; then
    echo "worker restarts during the run: $($CTL worker list --json | python3 -c 'import json,sys; print(sum(w["restarts"] for w in json.load(sys.stdin)))')"
fi
