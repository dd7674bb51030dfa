#!/usr/bin/env python3
"""User-space IP-in-IP decapsulation for the tunnel-mode end-to-end tests (the test kernel has
no ipip or ip6_tunnel module): reads IPv4-in-IPv4 (or, with "6", IPv6-in-IPv6) packets from a
raw socket and writes each inner packet to a TUN device, so that the local stack receives it
as if a tunnel device had decapsulated it.

Usage: ipip_decap.py TUN_NAME [6]. Prints "ready" once the device exists, then
"outer SRC -> DST" (IPv6: "outer from SRC") for the first packet. Runs until killed.
"""
import fcntl
import os
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", sys.argv[1].encode(), IFF_TUN | IFF_NO_PI))
v6 = len(sys.argv) > 2 and sys.argv[2] == "6"
if v6:
    # An IPv6 raw socket delivers the payload after the outer header: the inner packet.
    raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
    print("ready", flush=True)
    first = True
    while True:
        packet, peer = raw.recvfrom(65535)
        if first:
            print(f"outer from {peer[0]}", flush=True)
            first = False
        os.write(tun, packet)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
print("ready", flush=True)
first = True
while True:
    packet = raw.recv(65535)
    header_len = (packet[0] & 0x0F) * 4
    if first:
        print(f"outer {socket.inet_ntoa(packet[12:16])} -> {socket.inet_ntoa(packet[16:20])}", flush=True)
        first = False
    os.write(tun, packet[header_len:])
