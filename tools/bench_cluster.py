"""`semdns bench cluster`: N semantic-dns instances behind dnsdist (`tools/cluster_front.py`).

Starts the largest N of `--instances` (default 1,2,4) `semdns serve` processes on loopback (the
shipped zones, semantic routing, `--encoder-threads 1` each), then for each N a dnsdist front over
the first N, and drives it for `--seconds` with `--concurrency` outstanding UDP queries, every one a
different semantic question (`<text>.q.semantic.root SRV`: no cache anywhere answers it). Reports
qps, p50/p99 ms, errors, and per instance its memory (RSS) and threads: the classifier tier's cost.
The reference row is one instance asked directly (no dnsdist). The load generator shares the
machine's cores with the servers: on 2 cores, N > 2 measures contention, not scale-out.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from codec.qname import text_to_qname
from tools.bench_resolve import corpus
from tools.cluster_front import running_front, wait_answering

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
ZONE = "semantic.root."
START_TIMEOUT = 300.0


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("cluster", help="N semdns instances behind dnsdist: qps, p50/p99, memory")
    parser.add_argument("--instances", default="1,2,4", help="the values of N (default 1,2,4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per N (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="outstanding queries (default 16)")
    parser.add_argument("--zones", type=Path, default=REPO / "zonefiles")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=run)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def questions() -> list[str]:
    base = corpus()[0]
    return [f"{text} case {i}" for i in range(100_000) for text in base]


def _query(text: str) -> bytes:
    return dns.message.make_query(text_to_qname(text, ZONE), dns.rdatatype.SRV, use_edns=0).to_wire()


def answers(port: int) -> bool:
    query = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    try:
        return dns.query.udp(query, HOST, port=port, timeout=0.5).rcode() == dns.rcode.NOERROR
    except (dns.exception.DNSException, OSError):
        return False


class Load(asyncio.DatagramProtocol):
    """`concurrency` outstanding queries on one socket; latency per answered id."""

    def __init__(self, texts: list[str], concurrency: int, seconds: float) -> None:
        self.texts = iter(texts)
        self.concurrency = concurrency
        self.end = time.monotonic() + seconds
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.errors = 0
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None
        self.next_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for _ in range(self.concurrency):
            self._send()

    def _send(self) -> None:
        if time.monotonic() >= self.end:
            if not self.sent and not self.done.done():
                self.done.set_result(None)
            return
        self.next_id = (self.next_id + 1) & 0xFFFF
        wire = bytearray(_query(next(self.texts)))
        wire[0:2] = self.next_id.to_bytes(2, "big")
        self.sent[self.next_id] = time.monotonic()
        assert self.transport is not None
        self.transport.sendto(bytes(wire))

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        qid = int.from_bytes(data[0:2], "big")
        started = self.sent.pop(qid, None)
        if started is None:
            return
        if len(data) < 4 or data[3] & 0x0F != dns.rcode.NOERROR:
            self.errors += 1
        else:
            self.latencies.append((time.monotonic() - started) * 1000)
        self._send()

    async def expire(self, timeout: float = 2.0) -> None:
        """Count queries outstanding longer than `timeout` as errors and replace them."""
        while not self.done.done():
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for qid, started in list(self.sent.items()):
                if now - started > timeout:
                    del self.sent[qid]
                    self.errors += 1
                    self._send()


async def drive(port: int, texts: list[str], concurrency: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    transport, load = await loop.create_datagram_endpoint(
        lambda: Load(texts, concurrency, seconds), remote_addr=(HOST, port))
    reaper = asyncio.create_task(load.expire())
    try:
        await asyncio.wait_for(load.done, seconds + 10)
    except asyncio.TimeoutError:
        pass
    reaper.cancel()
    transport.close()
    elapsed = time.monotonic() - start
    lat = sorted(load.latencies)
    return {"answered": len(lat), "errors": load.errors, "qps": len(lat) / elapsed,
            "p50_ms": statistics.median(lat) if lat else None,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None}


def process_cost(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"])}


def run(args: argparse.Namespace) -> int:
    counts = sorted({int(n) for n in args.instances.split(",")})
    work = Path(tempfile.mkdtemp(prefix="semdns-bench-cluster-"))
    ports = [free_port() for _ in range(max(counts))]
    servers = []
    try:
        for i, port in enumerate(ports):
            log = open(work / f"serve-{i}.log", "wb")
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "tools.cli", "serve", "--zones", str(args.zones), "--listen", f"{HOST}:{port}",
                 "--encoder-threads", "1", "--rrl-exempt", "127.0.0.0/8"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO))
        for server, port in zip(servers, ports):
            wait_answering(functools.partial(answers, port), server, START_TIMEOUT)
        print(f"bench cluster: {len(servers)} instances up ({os.cpu_count()} cores); {args.seconds:g} s per row, "
              f"{args.concurrency} outstanding", file=sys.stderr)
        texts = iter(questions())
        rows = []
        batch = [next(texts) for _ in range(int(args.seconds * 3000))]
        rows.append({"front": "direct", "n": 1, **asyncio.run(drive(ports[0], batch, args.concurrency,
                                                                    args.seconds))})
        for n in counts:
            front_port = free_port()
            with running_front((HOST, front_port), [(HOST, p) for p in ports[:n]], work) as front:
                wait_answering(lambda: answers(front_port), front)
                time.sleep(1.5)  # let every backend pass its first health check (dnsdist starts them up)
                batch = [next(texts) for _ in range(int(args.seconds * 3000))]
                rows.append({"front": "dnsdist", "n": n,
                             **asyncio.run(drive(front_port, batch, args.concurrency, args.seconds))})
        costs = [process_cost(s.pid) for s in servers]
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    figures = {"cores": os.cpu_count(), "rows": rows, "per_instance": costs, "encoder_threads": 1}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
    return 0


def print_table(figures: dict) -> None:
    print(f"{'front':8} {'N':>2} {'qps':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for row in figures["rows"]:
        p50 = f"{row['p50_ms']:.1f}" if row["p50_ms"] is not None else "-"
        p99 = f"{row['p99_ms']:.1f}" if row["p99_ms"] is not None else "-"
        print(f"{row['front']:8} {row['n']:>2} {row['qps']:>8.0f} {p50:>8} {p99:>8} {row['errors']:>7}")
    rss = [c["rss_mb"] for c in figures["per_instance"]]
    threads = [c["threads"] for c in figures["per_instance"]]
    print(f"per instance: RSS {statistics.median(rss):.0f} MB (median of {len(rss)}), "
          f"{statistics.median(threads):.0f} threads, encoder threads {figures['encoder_threads']}; "
          f"cores {figures['cores']}")
