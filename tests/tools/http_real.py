#!/usr/bin/env python3
"""An HTTP real server for the health-check tests, which can stop taking connections while the
ones it has go on.

Usage: http_real.py ADDR PORT DIR. Runs until killed. GET /health answers "ok"; GET /whoami
answers ADDR; GET /<file> sends DIR/<file> slowly (64 KiB every 50 ms), so that a download
outlives a health check's verdict. Every answer carries "X-Real: ADDR". SIGUSR1 closes the
listening socket (new connections are refused; transfers under way go on); SIGUSR2 listens
again.
"""
import os
import signal
import socket
import sys
import threading
import time

ADDR, PORT, DIR = sys.argv[1], int(sys.argv[2]), sys.argv[3]
state = {"listener": None}
lock = threading.Lock()


def listen():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ADDR, PORT))
    s.listen(64)
    return s


def answer(c):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ")[1].decode()
        if path == "/health":
            body, slow = b"ok\n", False
        elif path == "/whoami":
            body, slow = ADDR.encode() + b"\n", False
        else:
            try:
                with open(os.path.join(DIR, os.path.basename(path)), "rb") as f:
                    body, slow = f.read(), True
            except OSError:
                c.sendall(b"HTTP/1.0 404 Not Found\r\nX-Real: %s\r\nContent-Length: 0\r\n\r\n" % ADDR.encode())
                return
        c.sendall(b"HTTP/1.0 200 OK\r\nX-Real: %s\r\nContent-Length: %d\r\n\r\n" % (ADDR.encode(), len(body)))
        step = 65536 if slow else len(body)
        for i in range(0, len(body), step):
            c.sendall(body[i:i + step])
            if slow:
                time.sleep(0.05)
    except OSError:
        pass
    finally:
        c.close()


def serve():
    while True:
        with lock:
            s = state["listener"]
        if s is None:
            time.sleep(0.01)
            continue
        try:
            c, _ = s.accept()
        except OSError:
            continue
        threading.Thread(target=answer, args=(c,), daemon=True).start()


def stop(*_):
    with lock:
        s, state["listener"] = state["listener"], None
    if s is not None:
        s.shutdown(socket.SHUT_RDWR)
        s.close()


def start(*_):
    with lock:
        if state["listener"] is None:
            state["listener"] = listen()


state["listener"] = listen()
signal.signal(signal.SIGUSR1, stop)
signal.signal(signal.SIGUSR2, start)
serve()
