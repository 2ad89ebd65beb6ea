"""The listening sockets, made in one place: `ServerRunner` binds its UDP listeners here, and so
do the worker processes of `semdns serve --workers N` (`nameserver.workers_child`).

    sock = udp_socket("127.0.0.1", 0, reuse_port=False)        # a free port
    sock = udp_socket("127.0.0.1", 5353, reuse_port=True)      # one of several on the same port

`reuse_port` sets SO_REUSEPORT: every process (of the same user) that binds the same address and
port with it gets its own socket, and the kernel spreads the incoming datagrams over them by a hash
of the client's address and port. Only `--workers` above 1 asks for it: one server alone keeps the
port to itself, as before.
"""
from __future__ import annotations

import socket


def udp_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound, non-blocking UDP socket on `host`:`port` (IPv6 when `host` has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:  # IPv6 only, as asyncio makes our TCP listeners: 0.0.0.0 and :: both bind
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setblocking(False)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
