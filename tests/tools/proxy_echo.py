#!/usr/bin/env python3
"""A real server for the PROXY protocol end-to-end test: on ADDR:PORT, reads a PROXY protocol
v1 line and an HTTP request from each connection and answers 200 with a body naming the
PROXY line and the peer the connection came from (the balancer's local address).

Usage: proxy_echo.py ADDR PORT. Runs until killed.
"""
import socket
import sys

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen()
while True:
    conn, peer = listener.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    first = data.split(b"\r\n")[0]
    body = first + b" from " + peer[0].encode()
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    conn.close()
