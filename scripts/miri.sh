#!/usr/bin/env bash
# Model check of the control mailbox's queue under Miri (nightly toolchain with the miri
# component): mailbox/tests/model.rs with several schedules. Not part of scripts/test.sh: it
# needs the nightly toolchain, which the test machines may not have.
# Usage: scripts/miri.sh [SEEDS]   (default 4; about a minute per seed on 2 vCPUs)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-4}
for seed in $(seq 1 "$SEEDS"); do
    echo "== seed $seed"
    MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-seed=$seed" cargo +nightly miri test -p mailbox --test model
done
