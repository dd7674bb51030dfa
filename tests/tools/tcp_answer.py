#!/usr/bin/env python3
"""A TCP server for the end-to-end tests, answering each connection once and closing it.

Usage: tcp_answer.py ADDR PORT MODE (ADDR IPv4 or IPv6). Runs until killed. MODE:
- echo: sends back b"kernel:" and the first bytes received (the exception-path test);
- count: reads until the client shuts its side down, answers how many bytes came (uploads);
- proxy: reads a PROXY protocol v1 line and an HTTP request, answers 200 with a body naming
  the PROXY line and the peer the connection came from (the PROXY protocol test).
"""
import socket
import sys

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
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        body = data.split(b"\r\n")[0] + b" from " + peer[0].encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    conn.close()
