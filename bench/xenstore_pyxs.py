#!/usr/bin/env python3
"""pyxs (Debian python3-pyxs, from the peer cache) doing the same sequential loop as
xenstore_raw.py. Prints JSON {"write_ops": n/s, "read_ops": n/s}.

usage: PYTHONPATH=<cache>/root/usr/lib/python3/dist-packages xenstore_pyxs.py SOCKET SECONDS
"""
import json
import sys
import time

from pyxs import Client


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
        w = rate(lambda: c.write(key, value), seconds)
        r = rate(lambda: c.read(key), seconds)
    print(json.dumps({"write_ops": w, "read_ops": r}))


if __name__ == "__main__":
    main()
