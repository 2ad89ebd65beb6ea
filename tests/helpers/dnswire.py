"""Raw DNS exchanges over loopback sockets, and `dig`/`nslookup` runners, for tests."""
from __future__ import annotations

import socket
import struct
import subprocess

TIMEOUT = 5.0


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_exchange(host: str, port: int, wire: bytes, source: str | None = None, timeout: float = TIMEOUT) -> bytes:
    """Send one datagram and return the reply (socket.timeout if none comes)."""
    with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        if source is not None:
            sock.bind((source, 0))
        sock.sendto(wire, (host, port))
        return sock.recv(65535)


def udp_silent(host: str, port: int, wire: bytes, wait: float = 0.5) -> bool:
    """True when the server sends nothing back within `wait` seconds."""
    try:
        udp_exchange(host, port, wire, timeout=wait)
    except socket.timeout:
        return True
    return False


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def tcp_connect(host: str, port: int, source: str | None = None, timeout: float = TIMEOUT) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if source is not None:
        sock.bind((source, 0))
    sock.connect((host, port))
    return sock


def tcp_send(sock: socket.socket, *wires: bytes) -> None:
    sock.sendall(b"".join(struct.pack("!H", len(w)) + w for w in wires))


def tcp_read(sock: socket.socket) -> bytes:
    (size,) = struct.unpack("!H", _read_exact(sock, 2))
    return _read_exact(sock, size)


def tcp_exchange(host: str, port: int, wire: bytes, source: str | None = None) -> bytes:
    with tcp_connect(host, port, source) as sock:
        tcp_send(sock, wire)
        return tcp_read(sock)


def run_tool(*argv: str, timeout: float = 20.0) -> str:
    """Run `dig`/`nslookup`/... and return stdout (stderr appended); no check of the exit code."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    return done.stdout + done.stderr


def dig(host: str, port: int, *args: str) -> str:
    return run_tool("dig", f"@{host}", "-p", str(port), "+tries=1", "+time=3", *args)
