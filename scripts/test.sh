#!/usr/bin/env bash
# The whole test suite: set-up (packages, hugepages, hugetlbfs), build, then every test:
# unit, config corpus, layout, the DPDK safe layer on net_ring/net_null, multi-process over
# memif with dpdk-testpmd, and end to end over tap between network namespaces; fuzzing, briefly;
# then the benchmark suite's quick mode (every scenario briefly, release build: it checks that
# each produces its numbers). Tests and benchmarks clean up after themselves (file prefixes,
# namespaces, hugepage files).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --workspace --bins
# Test binaries run one after another; the process-level tests in one binary serialise
# themselves (2 CPUs, shared hugepages).
cargo test --workspace -- --test-threads=2
# Coverage-guided fuzzing, briefly: every target's corpus as regression input, then 5 s of
# fuzzing each (scripts/fuzz.sh; the nightly toolchain where the machine has one, cargo-fuzz
# installed on first use).
scripts/fuzz.sh --if-nightly 20
# The benchmark suite, briefly (bench/all.sh --quick): its table printed at the end, its CSV
# and charts kept in target/bench-quick/ (figures of a machine running tests: they show that
# every scenario runs, not how fast it can go).
mkdir -p target/bench-quick
bench/all.sh --quick target/bench-quick/quick.csv
# The Debian package: built, installed on this machine, checked from the installed paths,
# purged (scripts/package-check.sh).
scripts/package-check.sh
