#!/usr/bin/env python3
"""A TCP echo server for the exception-path end-to-end test: on ADDR:PORT, sends each
connection's bytes back, prefixed with b"kernel:", until it closes.

Usage: echo_server.py ADDR PORT. Runs until killed.
"""
import socket
import sys

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen()
while True:
    conn, _ = listener.accept()
    data = conn.recv(4096)
    conn.sendall(b"kernel:" + data)
    conn.close()
