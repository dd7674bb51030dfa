#!/bin/sh
# keepalived's notify script for dpvs: gives a port the virtual addresses when this balancer
# becomes MASTER (the workers announce each with a gratuitous ARP or an unsolicited neighbour
# advertisement) and takes them away in every other state, so that only the master answers ARP
# for them. The services stay configured on both balancers: a takeover is one change.
#
# Usage: dpvs-vip.sh [-c CONFIG] [-d DPIP] add|del PORT ADDR[/LEN]...
#   CONFIG  the instance's configuration (default: $DPVS_CONFIG, else /etc/dpvs/dpvs.toml)
#   DPIP    the dpip binary (default: dpip on the PATH)
#   ADDR    an IPv4 or IPv6 address; without /LEN, a host address (/32, /128)
# Idempotent: adding an address the port has, or removing one it has not, is no error.
# keepalived.conf: notify_master "/usr/share/dpvs/dpvs-vip.sh add dpdk0 198.18.0.100"
#                  notify_backup, notify_fault, notify_stop: the same with del.
set -u
config=${DPVS_CONFIG:-/etc/dpvs/dpvs.toml}
dpip=dpip
while [ $# -gt 0 ]; do
    case $1 in
        -c) config=$2; shift 2 ;;
        -d) dpip=$2; shift 2 ;;
        *) break ;;
    esac
done
if [ $# -lt 3 ] || { [ "$1" != add ] && [ "$1" != del ]; }; then
    echo "usage: dpvs-vip.sh [-c CONFIG] [-d DPIP] add|del PORT ADDR[/LEN]..." >&2
    exit 2
fi
op=$1 port=$2
shift 2
# keepalived starts notify scripts without waiting for the one before: one at a time, so that
# a quick MASTER -> BACKUP -> MASTER does not interleave their dpip calls.
lockdir=/run/lock
[ -d "$lockdir" ] || lockdir=${TMPDIR:-/tmp}
exec 9>> "$lockdir/dpvs-vip.lock"
flock 9
status=0
for a in "$@"; do
    case $a in
        */*) ;;
        *:*) a=$a/128 ;;
        *) a=$a/32 ;;
    esac
    if out=$(DPVS_CONFIG=$config "$dpip" addr "$op" "$a" dev "$port" 2>&1); then
        logger -t dpvs-vip "dpip addr $op $a dev $port" 2>/dev/null || true
        continue
    fi
    case $out in
        *"is already assigned"* | *"no address"*) continue ;;
    esac
    echo "dpvs-vip: dpip addr $op $a dev $port: $out" >&2
    status=1
done
exit $status
