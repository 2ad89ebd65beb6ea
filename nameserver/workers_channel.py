"""The channel between the main process and one worker of `semdns serve --workers N`: frames on a
Unix stream socket pair made at spawn. No I/O here but reading frames off an asyncio stream.

    frame = KIND (1 octet) + LENGTH (4 octets, big-endian) + PAYLOAD

    main -> worker   SETUP     a pickled `WorkerSetup` (the first frame, read before the event loop)
                     CATALOG   a pickled `workers_sync.CatalogUpdate` (the first one whole, then changes)
    worker -> main   READY     (empty) the worker's catalog is loaded and its UDP sockets are bound
                     FORWARD   a datagram only the main answers: listener index, client, wire
                     COUNTS    (at stop) queries answered by the worker and forwarded to the main

Only the two ends of a socket pair the main made can write on it: pickles are trusted here.
"""
from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nameserver.config import Address

if TYPE_CHECKING:
    from nameserver.build import ServerOptions

SETUP, CATALOG, READY, FORWARD, COUNTS = b"S", b"C", b"R", b"F", b"N"
HEADER = struct.Struct("!cI")
FORWARD_HEAD = struct.Struct("!BHB")  # listener index, client port, length of the client's address text
COUNTS_BODY = struct.Struct("!QQ")  # answered here, forwarded to the main
MAX_FRAME = 1 << 30  # a catalog of the shipped zones pickles to well under 1 % of this
OPCODE_BITS = 0x78  # the opcode in the header's third octet (QUERY: 0)


class ChannelError(Exception):
    """A frame broke the channel's format (then the channel is closed)."""


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker is started with: who it is, what it serves, where it listens."""

    index: int  # 1..N-1 (the main is 0)
    options: ServerOptions  # the main's, as `workers.worker_options` strips them
    addresses: tuple[Address, ...]  # the main's actual listeners (a port 0 resolved)
    log_level: int


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_FRAME:
        raise ChannelError(f"frame of {len(payload)} octets: at most {MAX_FRAME}")
    return HEADER.pack(kind, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """The next (kind, payload), or None when the other end closed the channel."""
    try:
        kind, length = HEADER.unpack(await reader.readexactly(HEADER.size))
        if length > MAX_FRAME:
            raise ChannelError(f"frame of {length} octets: at most {MAX_FRAME}")
        return kind, await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None


def read_setup(sock: socket.socket) -> WorkerSetup:
    """The SETUP frame, read with blocking calls before the worker's event loop runs."""
    kind, length = HEADER.unpack(_recv_exactly(sock, HEADER.size))
    if kind != SETUP or length > MAX_FRAME:
        raise ChannelError(f"expected the setup frame first, got {kind!r}")
    setup = pickle.loads(_recv_exactly(sock, length))
    if not isinstance(setup, WorkerSetup):
        raise ChannelError("the setup frame holds no WorkerSetup")
    return setup


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ChannelError("the main closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def needs_main(wire: bytes) -> bool:
    """True for a datagram a worker hands to the main: any opcode but QUERY (UPDATE, NOTIFY, ...),
    and a query with records in its authority section (IXFR carries the client's SOA there; it is
    answered from the main's zone history). Plain queries never have any."""
    return len(wire) >= 12 and bool(wire[2] & OPCODE_BITS or wire[8] or wire[9])


def forward_payload(listener: int, client: Address, wire: bytes) -> bytes:
    host = client[0].encode()
    return FORWARD_HEAD.pack(listener, client[1], len(host)) + host + wire


def parse_forward(payload: bytes) -> tuple[int, Address, bytes]:
    """(listener index, client, wire) of a FORWARD frame."""
    if len(payload) < FORWARD_HEAD.size:
        raise ChannelError("short forward frame")
    listener, port, host_length = FORWARD_HEAD.unpack_from(payload)
    start = FORWARD_HEAD.size
    host = payload[start : start + host_length].decode()
    return listener, (host, port), payload[start + host_length :]
