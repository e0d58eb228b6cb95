#!/usr/bin/env python3
"""pyxs (Debian python3-pyxs, from the peer cache) doing the same sequential loop as
xenstore_raw.py. Prints JSON {"write_ops": n/s, "read_ops": n/s, "write_cpu_us": client CPU per write}.

usage: PYTHONPATH=<cache>/root/usr/lib/python3/dist-packages xenstore_pyxs.py SOCKET SECONDS
"""
import json
import resource
import sys
import time

from pyxs import Client


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rate(fn, seconds):
    n = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while True:
        for _ in range(100):
            fn()
        n += 100
        now = time.perf_counter()
        if now >= end:
            return n / (now - start)


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    key, value = b"/bench/pyxs/key", b"1048576"
    with Client(unix_socket_path=path) as c:
        rate(lambda: c.write(key, value), 0.2)  # warm-up
        c0, t0 = cpu_seconds(), time.perf_counter()
        w = rate(lambda: c.write(key, value), seconds)
        write_cpu_us = (cpu_seconds() - c0) / (w * (time.perf_counter() - t0)) * 1e6
        r = rate(lambda: c.read(key), seconds)
    print(json.dumps({"write_ops": w, "read_ops": r, "write_cpu_us": write_cpu_us}))


if __name__ == "__main__":
    main()
