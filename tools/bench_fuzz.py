"""`semdns bench fuzz`: the long fuzzing run (issue 11 item 8) over real UDP and TCP sockets.

Starts `semdns serve` (the `--zones`, semantic routing unless `--no-semantic`, signed UPDATE with
the keys of `tools.fuzzcorpus.KEY_NAMES`, response rate limiting off) on a free port of 127.0.0.1
and sends it `--packets` packets drawn by `tools.fuzzcorpus.Corpus` (the generator the suite's
`tests/nameserver/test_ns_fuzz.py` uses): a share over TCP (`--tcp-share`, pipelined on a few
connections), the rest over UDP, each channel with at most `--window` packets unanswered. Every
packet gets its own ID; a reply is matched by ID and parsed with dnspython; a packet without a
reply after `--timeout` seconds is a drop (the server drops what it cannot answer: no header,
QR set, ...). At the end it measures the latency of the apex SOA over UDP (p50/p99; the target
is under 5 ms), stops the server and counts the tracebacks and "handler failed" lines it logged.
Prints the table; never asserts.

    semdns bench fuzz --packets 1000000
"""
from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import struct
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode

from tools.fuzzcorpus import APEX, KEY_NAMES, Corpus, with_id
from tools.progress import bar
from tools.subserver import serving
from zones.tsig import generate_key, load_keyring, write_key_file

LENGTH = struct.Struct("!H")
FAULTS = ("Traceback", "handler failed", "Exception in callback", "exception was never retrieved")


@dataclass
class Tally:
    """What the run sent and got back."""

    sent: int = 0
    replies: int = 0
    extra: int = 0  # further messages of a multi-message answer (AXFR over TCP)
    late: int = 0  # replies that came after their packet had counted as a drop
    drops: int = 0
    plain_drops: int = 0  # drops of packets dnspython reads as an ordinary query (overload, or a server bug)
    dropped_examples: list[str] = field(default_factory=list)  # hex of the first few such packets
    unparsable: int = 0
    no_id: int = 0  # packets shorter than an ID: nothing to match a reply to
    reconnects: int = 0
    rcodes: Counter[str] = field(default_factory=Counter)

    def reply(self, wire: bytes) -> None:
        try:
            message = dns.message.from_wire(wire, keyring=False)
        except dns.exception.DNSException:
            self.unparsable += 1
            return
        self.rcodes[dns.rcode.to_text(message.rcode())] += 1

    def dropped(self, wire: bytes) -> None:
        self.drops += 1
        try:
            message = dns.message.from_wire(wire, keyring=False)
        except dns.exception.DNSException:
            return
        if not message.flags & dns.flags.QR and message.opcode() == dns.opcode.QUERY:
            self.plain_drops += 1
            if len(self.dropped_examples) < 3:
                self.dropped_examples.append(wire.hex())


class Channel:
    """One socket's packets in flight, by ID."""

    def __init__(self, tally: Tally, window: int, timeout: float) -> None:
        self.tally = tally
        self.timeout = timeout
        self.slots = asyncio.Semaphore(window)
        self.pending: dict[int, tuple[float, bytes]] = {}  # ID: deadline, packet
        self._next = 0
        self._expired: set[int] = set()  # IDs counted as drops, until reused

    async def claim(self, wire: bytes) -> bytes:
        """`wire` with a free ID of this channel, once a slot of the window is free."""
        if len(wire) < 2:
            self.tally.no_id += 1
            return wire
        await self.slots.acquire()
        while self._next in self.pending:
            self._next = (self._next + 1) & 0xFFFF
        ident, self._next = self._next, (self._next + 1) & 0xFFFF
        self._expired.discard(ident)
        wire = with_id(wire, ident)
        self.pending[ident] = (time.monotonic() + self.timeout, wire)
        return wire

    def answered(self, wire: bytes) -> None:
        ident = int.from_bytes(wire[:2], "big") if len(wire) >= 2 else -1
        if self.pending.pop(ident, None) is not None:
            self.tally.replies += 1
            self.slots.release()
        elif ident in self._expired:
            self._expired.discard(ident)
            self.tally.late += 1
        else:
            self.tally.extra += 1
        self.tally.reply(wire)

    def expire(self) -> None:
        now = time.monotonic()
        for ident, (deadline, wire) in list(self.pending.items()):
            if deadline < now:
                del self.pending[ident]
                self._expired.add(ident)
                self.tally.dropped(wire)
                self.slots.release()


class UdpChannel(Channel, asyncio.DatagramProtocol):
    """A connected UDP socket."""

    def __init__(self, tally: Tally, window: int, timeout: float) -> None:
        super().__init__(tally, window, timeout)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.answered(data)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors on loopback (none expected); the packet counts as a drop when it expires."""

    def send(self, wire: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(wire)


class TcpChannel(Channel, asyncio.Protocol):
    """A TCP connection, reopened when the server closes it."""

    def __init__(self, tally: Tally, window: int, timeout: float, port: int) -> None:
        super().__init__(tally, window, timeout)
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    async def connect(self) -> None:
        await asyncio.get_running_loop().create_connection(lambda: self, "127.0.0.1", self.port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 2:
            (size,) = LENGTH.unpack_from(buffer)
            if len(buffer) < 2 + size:
                break
            message = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            self.answered(message)

    async def send(self, wire: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            self.tally.reconnects += 1
            await self.connect()
        assert self.transport is not None
        self.transport.write(LENGTH.pack(len(wire)) + wire)


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("fuzz", help="fuzzed packets over UDP and TCP; counts, faults, SOA latency")
    parser.add_argument("--zones", type=Path, default=Path("zonefiles"), help="zones to serve (default zonefiles)")
    parser.add_argument("--packets", type=int, default=100_000, help="packets to send (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    parser.add_argument("--tcp-share", type=float, default=0.3, help="share of packets sent over TCP (default 0.3)")
    parser.add_argument("--udp-sockets", type=int, default=4, help="UDP sockets (default 4)")
    parser.add_argument("--tcp-connections", type=int, default=4, help="TCP connections (default 4)")
    parser.add_argument("--window", type=int, default=16,
                        help="packets in flight per socket (default 16; many more overflow the server's buffers)")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds before a packet is a drop (default 1)")
    parser.add_argument("--soa-queries", type=int, default=2000, help="SOA queries timed after the run")
    parser.add_argument("--no-semantic", action="store_true", help="serve without semantic routing (no encoder)")
    parser.set_defaults(func=run)


async def fuzz(port: int, corpus: Corpus, args: argparse.Namespace, tally: Tally) -> float:
    """Send `args.packets` packets; returns the seconds it took (until the last reply or drop)."""
    loop = asyncio.get_running_loop()
    udp: list[UdpChannel] = []
    for _ in range(args.udp_sockets):
        _, datagrams = await loop.create_datagram_endpoint(lambda: UdpChannel(tally, args.window, args.timeout),
                                                           remote_addr=("127.0.0.1", port))
        udp.append(datagrams)
    tcp = [TcpChannel(tally, args.window, args.timeout, port) for _ in range(args.tcp_connections)]
    for stream in tcp:
        await stream.connect()
    channels: list[Channel] = [*udp, *tcp]
    rng = random.Random(args.seed)
    start = time.perf_counter()
    report_at = start + 10.0
    progress = bar(args=args, total=args.packets, desc="fuzz", unit="pkt")

    async def sweep() -> None:
        while True:
            await asyncio.sleep(0.05)
            for each in channels:
                each.expire()

    async def sender(own: list[UdpChannel] | list[TcpChannel], over_tcp: bool) -> None:
        nonlocal report_at
        index = 0
        while tally.sent < args.packets:
            if (rng.random() < args.tcp_share) != over_tcp:
                await asyncio.sleep(0)  # the other sender's packet
                continue
            tally.sent += 1
            progress.update()
            channel = own[index % len(own)]
            index += 1
            wire = await channel.claim(corpus.packet(rng))
            if isinstance(channel, TcpChannel):
                await channel.send(wire)
            else:
                channel.send(wire)
            if time.perf_counter() > report_at:
                report_at += 10.0
                took = time.perf_counter() - start
                print(f"  {took:6.0f} s  sent {tally.sent:9d}  replies {tally.replies:9d}  drops {tally.drops:7d}  "
                      f"{tally.sent / took:7.0f} packets/s", flush=True)

    sweeper = asyncio.create_task(sweep())
    try:
        await asyncio.gather(sender(udp, False), sender(tcp, True))
        while any(each.pending for each in channels):
            await asyncio.sleep(0.05)
    finally:
        progress.close()
        sweeper.cancel()
        for transport in [c.transport for c in udp] + [c.transport for c in tcp]:
            if transport is not None:
                transport.close()
    return time.perf_counter() - start


def soa_latency(port: int, count: int) -> tuple[list[float], int]:
    """Milliseconds of `count` sequential apex SOA queries over UDP, and how many were not NOERROR."""
    query = dns.message.make_query(APEX, "SOA")
    wrong = 0
    times = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.connect(("127.0.0.1", port))
        for ident in range(count):
            query.id = ident & 0xFFFF
            wire = query.to_wire()
            start = time.perf_counter()
            sock.send(wire)
            try:
                reply = sock.recv(65535)
            except TimeoutError:
                wrong += 1
                continue
            times.append((time.perf_counter() - start) * 1000)
            if dns.message.from_wire(reply).rcode() != dns.rcode.NOERROR:
                wrong += 1
    return times, wrong


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="semdns-fuzz-") as tmp:
        key_file = Path(tmp) / "keys.conf"
        write_key_file(key_file, "".join(generate_key(name) for name in KEY_NAMES))
        corpus = Corpus(load_keyring(key_file))
        log = Path(tmp) / "server.log"
        tally = Tally()
        semantic = not args.no_semantic
        print(f"fuzz: {args.packets} packets (seed {args.seed}), {args.tcp_share:.0%} over TCP, window {args.window}, "
              f"semantic {'on' if semantic else 'off'}, rrl off")
        extra = ("--tsig-keys", str(key_file), "--journal", str(Path(tmp) / "journal"))
        with serving(args.zones, log, extra, semantic) as (port, proc):
            seconds = asyncio.run(fuzz(port, corpus, args, tally))
            alive = proc.poll() is None
            times, wrong = soa_latency(port, args.soa_queries) if alive else ([], args.soa_queries)
        text = log.read_text(errors="replace")
    faults = {marker: text.count(marker) for marker in FAULTS}
    print(f"\npackets {tally.sent}  in {seconds:.1f} s  ({tally.sent / seconds:.0f}/s)")
    print(f"replies {tally.replies}  (+{tally.extra} further messages)  drops {tally.drops} "
          f"(of which answered after --timeout: {tally.late})  "
          f"no-id {tally.no_id}  unparsable {tally.unparsable}  tcp reconnects {tally.reconnects}")
    print(f"drops of packets dnspython reads as an ordinary query: {tally.plain_drops}"
          + "".join(f"\n  e.g. {example}" for example in tally.dropped_examples))
    print("rcodes  " + "  ".join(f"{name} {count}" for name, count in tally.rcodes.most_common()))
    print(f"SERVFAIL {tally.rcodes['SERVFAIL']}")
    print("server log  " + "  ".join(f"{marker!r} {count}" for marker, count in faults.items()))
    print(f"server alive after the run: {'yes' if alive else 'NO'}")
    print(f"apex SOA over UDP after: {len(times)} answered, {wrong} not NOERROR/lost, "
          f"p50 {percentile(times, 0.5):.2f} ms  p99 {percentile(times, 0.99):.2f} ms  "
          f"max {max(times, default=float('nan')):.2f} ms  (target p99 < 5 ms)")
    if faults["Traceback"]:
        first = text.index("Traceback")
        print("\nfirst traceback in the server log:\n" + text[max(0, text.rfind("\n", 0, first - 1)):][:3000])
    if times:
        print(f"(mean {statistics.fmean(times):.2f} ms)")
    return 0
