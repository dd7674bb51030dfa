#!/bin/sh
# dpvs-health's --vip-hook for BIRD 2: keeps the static routes BIRD announces, one per virtual
# address that has a real server alive, in two files that bird.conf includes
# (dpvs-vips4.conf, dpvs-vips6.conf), and has BIRD read its configuration again.
#
# Usage: dpvs-bird-vip.sh [-s BIRD_SOCKET] [-d DIR] up|down VIP
#   BIRD_SOCKET  birdc's control socket (default /run/bird/bird.ctl)
#   DIR          where the route files are (default /run/dpvs)
# dpvs-health --vip-hook "/usr/share/dpvs/dpvs-bird-vip.sh -s /run/bird/bird.ctl"
set -eu
socket=/run/bird/bird.ctl
dir=/run/dpvs
while [ $# -gt 0 ]; do
    case $1 in
        -s) socket=$2; shift 2 ;;
        -d) dir=$2; shift 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 2 ] || { [ "$1" != up ] && [ "$1" != down ]; }; then
    echo "usage: dpvs-bird-vip.sh [-s BIRD_SOCKET] [-d DIR] up|down VIP" >&2
    exit 2
fi
state=$1 vip=$2
case $vip in
    *:*) file=$dir/dpvs-vips6.conf route="route $vip/128 blackhole;" ;;
    *) file=$dir/dpvs-vips4.conf route="route $vip/32 blackhole;" ;;
esac
mkdir -p "$dir"
touch "$dir/dpvs-vips4.conf" "$dir/dpvs-vips6.conf"
# The file without this address's line, then with it if up; replaced in one rename.
new=$(mktemp "$file.XXXXXX")
grep -vxF "$route" "$file" > "$new" || true
if [ "$state" = up ]; then echo "$route" >> "$new"; fi
chmod 644 "$new"
mv "$new" "$file"
birdc -s "$socket" configure > /dev/null
