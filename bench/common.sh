# Sourced by the bench scripts: set-up, a release build, a scratch directory, and a cleanup
# that stops every process the script recorded in PIDS and removes the DPDK files of the file
# prefixes in PREFIXES (set PREFIXES before sourcing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo build --release --bins -q
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for pre in "${PREFIXES[@]}"; do
        rm -rf "/var/run/dpdk/$pre" "/var/run/dpdk/$pre.lock"
        rm -f /dev/hugepages/"${pre}"map_*
    done
    rm -rf "$WORK" /run/dpvs/bench0.sock
}
trap cleanup EXIT
