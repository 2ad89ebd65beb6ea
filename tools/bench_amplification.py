"""`semdns bench amplification`: octets out over octets in for a flood of identical UDP queries
from one prefix, with response rate limiting on (the defaults) and off (`--rrl-rate 0`).

What a reflection attack gets from us: one server per setting, serving `--zones` without semantic
routing (the largest answers are plain zone data); for each kind of query (the shipped zones'
largest answers: `_route` TXT, `_codec` TXT, ANY at a zone apex) a Python sender paces `--qps`
identical queries a second for `--seconds` from `--sources` addresses of 127.0.0.0/24 (one /24:
one prefix) and counts the DNS octets it sent and got back, full and truncated replies. With
`dnsperf` installed the same queries also go through `dnsperf -Q` at `--dnsperf-qps`, which a
Python sender cannot reach. Prints the amplification (octets out / octets in) of each run and the
rate reached; never asserts on it (the issue's target: at most 3x under 10^4 q/s from one prefix).
"""
from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dns.flags
import dns.message

from tools.progress import bar

READY = re.compile(r"^ready: listening on \S+:(\d+)")
KINDS: tuple[tuple[str, str], ...] = (
    ("tax._route.finance.semantic.root.", "TXT"),
    ("_codec.finance.semantic.root.", "TXT"),
    ("finance.semantic.root.", "ANY"),
)
SETTINGS: tuple[tuple[str, tuple[str, ...]], ...] = (("rrl on (defaults)", ()), ("rrl off", ("--rrl-rate", "0")))
DNSPERF_SIZES = re.compile(r"Average packet size:\s+request (\d+), response (\d+)")
DNSPERF_COUNT = re.compile(r"Queries (sent|completed):\s+(\d+)")


@dataclass(frozen=True)
class Flood:
    """What one run sent and got back (DNS octets, no IP/UDP headers)."""

    sent: int
    octets_in: int
    full: int
    truncated: int
    octets_out: int
    seconds: float

    @property
    def amplification(self) -> float:
        return self.octets_out / self.octets_in if self.octets_in else float("nan")


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("amplification", help="octets out / in under a UDP flood, RRL on and off")
    parser.add_argument("--zones", type=Path, default=Path("zonefiles"), help="zones to serve (default zonefiles)")
    parser.add_argument("--qps", type=int, default=5000, help="queries a second of the Python sender (default 5000)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each flood (default 3)")
    parser.add_argument("--sources", type=int, default=4, help="source addresses 127.0.0.1.. (one /24; default 4)")
    parser.add_argument("--dnsperf-qps", type=int, default=10_000, help="rate of the dnsperf run (default 10000)")
    parser.add_argument("--no-dnsperf", action="store_true", help="skip dnsperf even when installed")
    parser.set_defaults(func=run)


@contextmanager
def serving(zones: Path, extra: tuple[str, ...]) -> Iterator[int]:
    """`semdns serve --no-semantic` on a free port of 127.0.0.1 with `extra` flags; yields the port."""
    argv = [sys.executable, "-m", "tools.cli", "serve", "--zones", str(zones), "--no-semantic",
            "--listen", "127.0.0.1:0", *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = READY.match(line)
            if match:
                yield int(match[1])
                return
        raise RuntimeError(f"semdns serve exited ({proc.wait()}) before it was ready")
    finally:
        proc.terminate()
        proc.wait(10)


def flood(port: int, qname: str, rdtype: str, qps: int, seconds: float, sources: int) -> Flood:
    """Pace `qps` identical queries a second for `seconds` from `sources` addresses, then wait for stragglers."""
    sockets = []
    for index in range(sources):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((f"127.0.0.{index + 1}", 0))
        sock.setblocking(False)
        sockets.append(sock)
    query = dns.message.make_query(qname, rdtype, use_edns=0, payload=1232)
    wires = []
    for ident in range(1024):  # the same question under many IDs, as a flood sends it
        query.id = ident
        wires.append(query.to_wire())
    sent = octets_in = full = truncated = octets_out = 0

    def drain() -> None:
        nonlocal full, truncated, octets_out
        for sock in sockets:
            while True:
                try:
                    reply = sock.recv(65535)
                except BlockingIOError:
                    break
                octets_out += len(reply)
                if int.from_bytes(reply[2:4], "big") & dns.flags.TC:
                    truncated += 1
                else:
                    full += 1

    start = time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(elapsed * qps)
            while sent < due:
                wire = wires[sent % len(wires)]
                try:
                    sockets[sent % sources].sendto(wire, ("127.0.0.1", port))
                except BlockingIOError:
                    break
                sent += 1
                octets_in += len(wire)
            drain()
            time.sleep(0.0005)
        took = time.perf_counter() - start
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            drain()
            time.sleep(0.01)
    finally:
        for sock in sockets:
            sock.close()
    return Flood(sent, octets_in, full, truncated, octets_out, took)


def dnsperf(port: int, qname: str, rdtype: str, qps: int, seconds: float) -> str:
    """One `dnsperf -Q` run: its rate and amplification (from its average packet sizes)."""
    with tempfile.NamedTemporaryFile("w", suffix=".queries") as queries:
        queries.write(f"{qname} {rdtype}\n")
        queries.flush()
        out = subprocess.run(
            ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries.name, "-l", str(seconds),
             "-Q", str(qps), "-c", "1", "-t", "1", "-q", str(2 * qps), "-e"],
            capture_output=True, text=True, check=False,
        ).stdout
    counts = dict(DNSPERF_COUNT.findall(out))
    sizes = DNSPERF_SIZES.search(out)
    if not counts or sizes is None:
        return "dnsperf: no result"
    sent, completed = int(counts["sent"]), int(counts["completed"])
    request, response = int(sizes[1]), int(sizes[2])
    ratio = completed * response / (sent * request) if sent and request else float("nan")
    return f"dnsperf {sent / seconds:8.0f} q/s  answered {completed:7d}/{sent:<7d} amplification {ratio:5.2f}x"


def run(args: argparse.Namespace) -> int:
    use_dnsperf = not args.no_dnsperf and shutil.which("dnsperf") is not None
    print(f"flood: {args.qps} q/s for {args.seconds:g} s from {args.sources} address(es) of 127.0.0.0/24; "
          f"DNS octets (no IP/UDP headers)")
    for setting, extra in SETTINGS:
        with serving(args.zones, extra) as port:
            print(f"\n{setting}")
            print(f"{'query':44} {'q/s':>7} {'full':>7} {'TC':>7} {'dropped':>8} {'in':>9} {'out':>10} {'ampl.':>7}")
            for qname, rdtype in bar(KINDS, args=args, desc=setting, unit="kind", leave=False):
                time.sleep(1.5)  # the previous kind's buckets, if shared, refill
                result = flood(port, qname, rdtype, args.qps, args.seconds, args.sources)
                dropped = result.sent - result.full - result.truncated
                print(f"{qname + ' ' + rdtype:44} {result.sent / result.seconds:7.0f} {result.full:7d} "
                      f"{result.truncated:7d} {dropped:8d} {result.octets_in:9d} {result.octets_out:10d} "
                      f"{result.amplification:6.2f}x")
                if use_dnsperf:
                    time.sleep(1.5)
                    print(f"{'':44} {dnsperf(port, qname, rdtype, args.dnsperf_qps, args.seconds)}")
    return 0
