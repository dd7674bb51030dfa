#!/usr/bin/env python3
"""A UDP echo server for the end-to-end tests.

Usage: udp_echo.py ADDR PORT [NAME]. Runs until killed. Answers each datagram with its payload
and " from <peer address>" (with NAME, "NAME: " first); a datagram that starts with a PROXY protocol version 2 header (UDP
over IPv4) has it taken off, and the answer ends with " for <client address>:<port>" as the
header names them.
"""
import socket
import struct
import sys

SIGNATURE = b"\r\n\r\n\0\r\nQUIT\n"

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(65536)
    tail = ""
    if data[:12] == SIGNATURE and data[12] == 0x21 and data[13] == 0x12:
        client = socket.inet_ntoa(data[16:20])
        (port,) = struct.unpack("!H", data[24:26])
        tail = " for %s:%d" % (client, port)
        data = data[16 + struct.unpack("!H", data[14:16])[0]:]
    name = (sys.argv[3] + ": ").encode() if len(sys.argv) > 3 else b""
    s.sendto(name + data + (" from " + peer[0] + tail).encode(), peer)
