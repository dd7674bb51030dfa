#!/usr/bin/env python3
"""User-space IP-in-IP decapsulation for the tunnel-mode end-to-end test (the test kernel has
no ipip module): reads IPv4-in-IPv4 packets from a raw socket and writes each inner packet to a
TUN device, so that the local stack receives it as if a tunnel device had decapsulated it.

Usage: ipip_decap.py TUN_NAME. Prints "ready" once the device exists, then
"outer SRC -> DST" for the first packet. Runs until killed.
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
