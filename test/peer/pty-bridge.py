#!/usr/bin/env python3
"""A stand-in for /dev/xen/xenbus in tests: a raw-mode pseudo-terminal whose other end is
bridged, byte for byte, to a real xenstored unix socket. The slave side is a character device,
so the client picks its xenbus-device transport for it. Prints the slave's path, then bridges
until either side closes.

usage: pty-bridge.py XENSTORED_SOCKET
"""
import os
import pty
import select
import socket
import sys
import tty


def main():
    master, slave = pty.openpty()
    tty.setraw(slave)  # no echo, no line discipline, no flow-control bytes
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sys.argv[1])
    print(os.ttyname(slave), flush=True)
    while True:
        ready, _, _ = select.select([master, sock], [], [])
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the device side is gone
                return
            if not data:
                return
            sock.sendall(data)
        if sock in ready:
            data = sock.recv(65536)
            if not data:
                return
            view = memoryview(data)
            while view:
                n = os.write(master, view)
                view = view[n:]


if __name__ == "__main__":
    main()
