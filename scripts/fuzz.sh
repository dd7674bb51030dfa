#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer, AddressSanitizer, the nightly toolchain) of
# the frame parser (wire_classify), the whole per-lcore pipeline on frames in both directions
# against services of every mode (pipeline), the configuration file (conf_toml) and the
# mailbox's requests with the changes they carry (mailbox_request); fuzz/fuzz_targets/ says what
# each asserts. Each target first runs its corpus (fuzz/corpus/<target>: seeds from
# fuzz/seeds.py, plus what earlier runs found) as regression input, then fuzzes.
# Usage: scripts/fuzz.sh [--if-nightly] [SECONDS] [TARGET...]   (SECONDS in all, shared by
#   the targets; default 60). A crash stops it (exit 1) with its input in
#   fuzz/artifacts/<target>/. Without a nightly toolchain it fails, or with --if-nightly (the
#   test suite's call: a machine may have no nightly and fetch none) says so and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
IF_NIGHTLY=
if [ "${1:-}" = --if-nightly ]; then IF_NIGHTLY=1; shift; fi
TOTAL=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(wire_classify pipeline conf_toml mailbox_request)
if ! rustup toolchain list | grep -q '^nightly'; then
    if [ -n "$IF_NIGHTLY" ]; then
        echo "fuzz: NOT RUN: this machine has no nightly toolchain (cargo fuzz needs one)" >&2
        exit 0
    fi
    echo "fuzz: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! command -v cargo-fuzz > /dev/null; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
python3 fuzz/seeds.py fuzz/corpus
PER=$((TOTAL / ${#TARGETS[@]}))
[ "$PER" -ge 1 ] || PER=1
cd fuzz
for t in "${TARGETS[@]}"; do
    cargo +nightly fuzz build --release "$t"
done
total=0
for t in "${TARGETS[@]}"; do
    log=$(mktemp)
    if ! cargo +nightly fuzz run --release "$t" "corpus/$t" -- \
        -max_total_time="$PER" -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $t failed; its input is in fuzz/artifacts/$t/" >&2
        rm -f "$log"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz: $t: ${runs:-0} executions in ${PER} s, ${cov:-cov: ?}, corpus $(ls "corpus/$t" | wc -l) inputs"
    total=$((total + ${runs:-0}))
    rm -f "$log"
done
echo "fuzz: ${total} executions in all, no crash"
