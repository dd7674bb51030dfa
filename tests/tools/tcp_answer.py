#!/usr/bin/env python3
"""A TCP server for the end-to-end tests, answering each connection once and closing it.

Usage: tcp_answer.py ADDR PORT MODE (ADDR IPv4 or IPv6). Runs until killed. MODE:
- echo: sends back b"kernel:" and the first bytes received (the exception-path test);
- count: reads until the client shuts its side down, answers how many bytes came (uploads);
- proxy: reads a PROXY protocol v1 line and an HTTP request, answers 200 with a body naming
  the PROXY line and the peer the connection came from (the PROXY protocol test);
- proxy2: the same with a PROXY protocol v2 header, named in the body as
  "PROXY2 <client> <vip> <client port> <vip port>" (TCP over IPv4 or IPv6 only).
"""
import ipaddress
import socket
import struct
import sys

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy2_line(data):
    """The PROXY v2 header at the start of data, as a line, and what follows it."""
    if data[:12] != V2_SIGNATURE or data[12] != 0x21:
        return b"not a PROXY v2 header", data
    family, length = data[13], struct.unpack("!H", data[14:16])[0]
    body, rest = data[16:16 + length], data[16 + length:]
    if family == 0x11:
        src, dst, ports = body[:4], body[4:8], body[8:12]
    elif family == 0x21:
        src, dst, ports = body[:16], body[16:32], body[32:36]
    else:
        return b"PROXY2 family %d" % family, rest
    sport, dport = struct.unpack("!HH", ports)
    names = [str(ipaddress.ip_address(a)) for a in (src, dst)]
    return ("PROXY2 %s %s %d %d" % (names[0], names[1], sport, dport)).encode(), rest

listener = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen()
mode = sys.argv[3]
while True:
    conn, peer = listener.accept()
    if mode == "echo":
        conn.sendall(b"kernel:" + conn.recv(4096))
    elif mode == "count":
        n = 0
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            n += len(chunk)
        conn.sendall(str(n).encode())
    else:
        data = b""
        while b"\r\n\r\n" not in data[16:]:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        if mode == "proxy2":
            line, _ = proxy2_line(data)
        else:
            line = data.split(b"\r\n")[0]
        body = line + b" from " + peer[0].encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    conn.close()
