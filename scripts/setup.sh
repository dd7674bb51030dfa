#!/usr/bin/env bash
# Everything a fresh Debian 12 machine (as root) needs to build and run dpvs without a NIC:
# DPDK 22.11 and the tools the tests and the demo use, hugepages, and a hugetlbfs mount.
# Idempotent; sourced or run by demo.sh and test.sh.
set -euo pipefail

PKGS=(libdpdk-dev dpdk dpdk-dev pkg-config clang libclang-dev gcc ethtool iproute2 iputils-ping curl wrk python3 procps nftables fonts-dejavu-core tshark systemd)
# The HTTP peers of the benchmarks (bench/http-peers.sh), Prometheus (its promtool checks
# dpvs-exporter's output), keepalived and BIRD (the VRRP and BGP tests): installed without
# starting their services (the tests and benchmarks run their own instances in namespaces).
PEERS=(haproxy nginx prometheus keepalived bird2)
HUGEPAGES=${DPVS_HUGEPAGES:-512}   # 2 MiB pages: 1 GiB

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (hugepages, hugetlbfs, network namespaces)" >&2
    exit 1
fi

# apt_install [--no-services] PACKAGE...: apt-get installs those not installed yet (updating the
# package lists once if the first try fails); with --no-services their services are not
# started (invoke-rc.d asks policy-rc.d first: 101 = do not start).
apt_install() {
    local quiet="" policy="" rc=0 missing=() p
    if [ "$1" = --no-services ]; then quiet=1; shift; fi
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "setup: installing ${missing[*]}${quiet:+ (their services not started)}"
    if [ -n "$quiet" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
        # Removed however this script ends (it runs as a process of its own).
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}" >/dev/null ||
        { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null &&
          apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}" >/dev/null; } ||
        rc=$?
    [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || { echo "setup: could not install ${missing[*]}" >&2; exit "$rc"; }
}
apt_install "${PKGS[@]}"
apt_install --no-services "${PEERS[@]}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found: install Rust 1.89 or newer (https://rustup.rs), then rerun" >&2
    exit 1
fi

have=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
if [ "$have" -lt "$HUGEPAGES" ]; then
    echo "$HUGEPAGES" > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
    have=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
    [ "$have" -ge 256 ] || { echo "setup: only $have hugepages could be reserved" >&2; exit 1; }
fi
mkdir -p /dev/hugepages
if ! grep -q " /dev/hugepages hugetlbfs " /proc/mounts; then
    mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
fi
mkdir -p /run/dpvs
