#!/usr/bin/env python3
"""Baseline for `npm run bench -- xenstore`: the leanest sequential xenstore client in Python.

One unix socket, one request in flight, hand-built xsd_sockmsg frames (type, req_id, tx_id,
len as little-endian uint32). Prints JSON {"write_ops": n/s, "read_ops": n/s, "write_cpu_us": client CPU per write}.

usage: xenstore_raw.py SOCKET SECONDS
"""
import json
import resource
import socket
import struct
import sys
import time

XS_READ, XS_WRITE, XS_ERROR = 2, 11, 16
HDR = struct.Struct("<IIII")


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError("xenstored closed the socket")
        buf += part
    return bytes(buf)


def call(sock, rid, op, payload):
    sock.sendall(HDR.pack(op, rid, 0, len(payload)) + payload)
    typ, _, _, length = HDR.unpack(recv_exact(sock, HDR.size))
    body = recv_exact(sock, length) if length else b""
    if typ == XS_ERROR:
        raise RuntimeError(body.rstrip(b"\0").decode())
    return body


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rate(sock, op, payload, seconds):
    rid, n = 0, 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while True:
        for _ in range(100):
            rid += 1
            call(sock, rid, op, payload)
        n += 100
        now = time.perf_counter()
        if now >= end:
            return n / (now - start)


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    key = b"/bench/raw/key"
    write = key + b"\0" + b"1048576"
    rate(sock, XS_WRITE, write, 0.2)  # warm-up
    c0, t0 = cpu_seconds(), time.perf_counter()
    w = rate(sock, XS_WRITE, write, seconds)
    write_cpu_us = (cpu_seconds() - c0) / (w * (time.perf_counter() - t0)) * 1e6
    r = rate(sock, XS_READ, key + b"\0", seconds)
    print(json.dumps({"write_ops": w, "read_ops": r, "write_cpu_us": write_cpu_us}))


if __name__ == "__main__":
    main()
