"""`semdns bench attack`: plain SOA latency while a client floods the server with costly packets.

Starts its own server (`nameserver.build.build_server`, semantic routing on, in a child process)
on 127.0.0.1 over `--zones`. One socket sends the attack at a fixed rate; a second asks for the
apex SOA every 10 ms and times each answer. It measures a reference run without the attack, then
the attack run, and prints p50/p99/max of the SOA latency of each and how the attack packets were
answered. Kinds:

- `expanding`: hashed-name queries whose EDNS text option (zstd, ~150 octets) holds
  21,000 x U+FDFA, which NFKC expands 18-fold (issue 11 item 1; the server refuses it before
  normalising).
- `deep`: unique six-sentence questions no keyword decides, so each needs the encoder and the
  deep stage (issue 11 item 2; the encoder queue sheds what it cannot take in time). A third
  socket times unique keyword-decided questions alongside the SOA probe, and after the attack
  one new deep question shows whether the backlog is gone (its latency and stage).
- `repetitive`: unique 64,000-character questions that repeat two legal keywords (~120 octets
  each, EDNS form): routing reads a question's first 4,096 characters, and the keyword matcher's
  overlap check is linear (pairwise, one such packet held the event loop for 5.2 s).

The server runs without response rate limiting (`rrl_rate=0`): one client sends everything here,
and the bench measures what the packets cost the server, not RRL (`semdns bench amplification`).

`--resolver` attacks the cluster's recursive resolver instead (`semdns cluster up --semantic-cache`
on a free port, from this checkout or `--resolver-checkout DIR`): the probe asks it for an answer
it has cached (`_llm._tcp.legal.semantic.root.` SRV, recursion desired), the attack sends the new
questions through it (its own clients: no RRL).

Figures are for comparison within one run on one machine; the bench never asserts on time.
"""
from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import zstandard

from codec.edns_text import FLAG_ZSTD, TEXT_OPTION, hashed_qname
from routing.embedder import QUERY_THREADS
from tools.progress import Steps

PROBE_INTERVAL = 0.01
APEX = "semantic.root."


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("attack", help="SOA latency during a flood of costly packets")
    parser.add_argument("--kind", choices=("expanding", "deep", "repetitive"), default="expanding",
                        help="the attack packets")
    parser.add_argument("--zones", type=Path, default=Path("zonefiles"), help="zonefiles (default zonefiles)")
    parser.add_argument("--rate", type=float, default=300.0, help="attack packets a second (default 300)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run (default 10)")
    parser.add_argument("--encoder-threads", type=int, default=QUERY_THREADS,
                        help=f"the server's onnxruntime threads (default {QUERY_THREADS}, as semdns serve)")
    parser.add_argument("--resolver", action="store_true",
                        help="attack the cluster's recursive resolver (probing an answer it has cached) instead")
    parser.add_argument("--resolver-checkout", type=Path, default=None, metavar="DIR",
                        help="with --resolver: start the cluster from this checkout (its .venv), e.g. a reference")
    parser.set_defaults(func=run)


def expanding_packets(count: int) -> list[bytes]:
    """`count` different queries (no two alike: the wire cache answers none) carrying the text."""
    packer = zstandard.ZstdCompressor(write_content_size=True)
    packets = []
    for i in range(count):
        text = "\ufdfa" * 21000 + f" {i}"
        payload = bytes([FLAG_ZSTD]) + packer.compress(text.encode())
        option = dns.edns.GenericOption(dns.edns.OptionType.make(TEXT_OPTION), payload)
        query = dns.message.make_query(hashed_qname(f"attack {i}", APEX), "SRV", use_edns=0, options=[option])
        packets.append(query.to_wire())
    return packets


WORDS = ("river", "garden", "window", "theory", "signal", "harvest", "lantern", "meadow", "pattern", "engine",
         "marble", "velvet", "orbit", "canyon", "ribbon", "thunder", "pebble", "mosaic", "glacier", "compass")


def deep_question(i: int) -> str:
    """A unique, chatty six-sentence question without a domain's keywords."""
    words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(18)]
    sentences = [f"I keep thinking about the {words[k]} and the {words[k + 6]} near the {words[k + 12]}."
                 for k in range(5)]
    return " ".join(sentences) + f" What would you tell someone in situation {i}?"


def deep_packets(count: int) -> list[bytes]:
    """`count` unique deep questions as SRV queries (EDNS form: they are too long for a name)."""
    from sdk.route import question_query

    return [question_query(deep_question(i)).to_wire() for i in range(count)]


def repetitive_packets(count: int) -> list[bytes]:
    """`count` unique 64,000-character questions of two repeated keywords as SRV queries."""
    from sdk.route import question_query

    return [question_query("sued in court " * 4572 + f"case {i}").to_wire() for i in range(count)]


def keyword_query(i: int) -> dns.message.Message:
    """A unique question the keyword stage decides at every level (code, then debugging)."""
    from sdk.route import question_query

    return question_query(f"my python code throws a keyerror exception with a traceback number {i}").to_message()


def explain_stage(address: tuple[str, int], text: str) -> tuple[float, str]:
    """(ms, the stages of every hop) of one `explain` query for `text`."""
    from sdk.route import explain_query, question_form

    query = explain_query(question_form(text, APEX))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5.0)
        start = time.perf_counter()
        sock.sendto(query.to_wire(), address)
        reply = dns.message.from_wire(sock.recv(65535))
        took = (time.perf_counter() - start) * 1000
    stages = [part.decode().split("=", 1)[1] for rrset in reply.answer for rdata in rrset
              for part in rdata.strings if part.startswith(b"stage=")]
    return took, ",".join(stages) or dns.rcode.to_text(reply.rcode())


def _serve(zones: Path, threads: int, ready: "multiprocessing.Queue[tuple[str, int]]") -> None:
    """The child process: the server as `semdns serve --zones ZONES --listen 127.0.0.1:0` runs it."""
    import asyncio

    from nameserver.build import SemanticOptions, ServerOptions, build_server
    from nameserver.config import ServerConfig

    config = ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False, rrl_rate=0)
    runner = build_server(ServerOptions(config=config, semantic=SemanticOptions(threads=threads)))
    runner.load()

    async def serve() -> None:
        await runner.start()
        ready.put(runner.addresses[0])
        await runner.serve_forever()

    asyncio.run(serve())


def soa_query(_i: int) -> dns.message.Message:
    return dns.message.make_query(APEX, "SOA")


def probe(address: tuple[str, int], seconds: float,
          make: Callable[[int], dns.message.Message] = soa_query) -> list[float]:
    """Latencies (ms) of one query (`make(i)`) every PROBE_INTERVAL for `seconds`; a lost one
    counts 2000."""
    latencies: list[float] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            query = make(len(latencies))
            start = time.perf_counter()
            sock.sendto(query.to_wire(), address)
            try:
                while dns.message.from_wire(sock.recv(65535)).id != query.id:
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
            except TimeoutError:
                latencies.append(2000.0)
            time.sleep(max(0.0, PROBE_INTERVAL - (time.perf_counter() - start)))
    return latencies


def attack(address: tuple[str, int], packets: list[bytes], rate: float, stop: threading.Event,
           rcodes: dict[str, int]) -> int:
    """Send `packets` round-robin at `rate` a second until `stop`; count the answers' RCODEs."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        start = time.perf_counter()
        while not stop.is_set():
            due = start + sent / rate
            while True:
                try:
                    name = dns.rcode.to_text(dns.message.from_wire(sock.recv(65535)).rcode())
                    rcodes[name] = rcodes.get(name, 0) + 1
                except BlockingIOError:
                    break
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(packets[sent % len(packets)], address)
            sent += 1
        time.sleep(0.5)
        while True:
            try:
                name = dns.rcode.to_text(dns.message.from_wire(sock.recv(65535)).rcode())
                rcodes[name] = rcodes.get(name, 0) + 1
            except BlockingIOError:
                return sent


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"p50 {statistics.median(ordered):8.3f} ms   p99 {p99:8.3f} ms   max {ordered[-1]:8.3f} ms"
            f"   n={len(ordered)}")


def cached_route_query(_i: int) -> dns.message.Message:
    """What the resolver probe asks: an SRV it has cached (recursion desired)."""
    query = dns.message.make_query("_llm._tcp.legal.semantic.root.", "SRV")
    query.flags |= dns.flags.RD
    return query


def run_resolver(args: argparse.Namespace, packets: list[bytes]) -> int:
    """The attack on the cluster's resolver (see the module docstring)."""
    from tools.cmd_cluster import RESOLVER_ADDRESS, free_port_on

    checkout = (args.resolver_checkout or Path(__file__).resolve().parents[1]).resolve()
    python = checkout / ".venv" / "bin" / "python"
    port = free_port_on()  # free on every cluster address
    with tempfile.TemporaryDirectory(prefix="semdns-bench-attack-") as runtime:
        cluster = [str(python if python.exists() else sys.executable), "-m", "tools.cli", "cluster"]
        subprocess.run([*cluster, "up", "--port", str(port), "--runtime", runtime, "--zones",
                        str(checkout / "zonefiles"), "--semantic-cache"], cwd=checkout, check=True, capture_output=True)
        try:
            address = (RESOLVER_ADDRESS, port)
            print(f"resolver: {RESOLVER_ADDRESS}:{port} of the cluster of {checkout}; attack: {args.kind}, "
                  f"{args.rate:g} packets/s of {statistics.mean(map(len, packets)):.0f} octets, {args.seconds:g} s")
            probe(address, 1.0, cached_route_query)
            reference = probe(address, args.seconds, cached_route_query)
            stop = threading.Event()
            rcodes: dict[str, int] = {}
            sent: list[int] = []
            sender = threading.Thread(target=lambda: sent.append(attack(address, packets, args.rate, stop, rcodes)))
            sender.start()
            during = probe(address, args.seconds, cached_route_query)
            stop.set()
            sender.join()
        finally:
            subprocess.run([*cluster, "down", "--runtime", runtime], cwd=checkout, capture_output=True)
    print(f"cached answer without attack:    {summary(reference)}")
    print(f"cached answer during attack:     {summary(during)}")
    print(f"attack: {sent[0]} sent, answered {dict(sorted(rcodes.items()))}")
    return 0


def run(args: argparse.Namespace) -> int:
    count = max(1, int(args.rate * (args.seconds + 1)))
    if args.kind == "expanding":
        packets = expanding_packets(max(1, int(args.rate)))
    elif args.kind == "deep":
        packets = deep_packets(count)
    else:
        packets = repetitive_packets(count)
    if args.resolver:
        return run_resolver(args, packets)
    context = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue[tuple[str, int]] = context.Queue()
    server = context.Process(target=_serve, args=(args.zones, args.encoder_threads, ready), daemon=True)
    server.start()
    try:
        address = ready.get(timeout=120)
        print(f"server: 127.0.0.1:{address[1]}, zones {args.zones}; attack: {args.kind}, "
              f"{args.rate:g} packets/s of {statistics.mean(map(len, packets)):.0f} octets, {args.seconds:g} s")
        with Steps(args, desc="attack bench", total=3) as phases:
            phases("warm-up")
            probe(address, 1.0)
            phases("reference")
            reference = probe(address, args.seconds)
            keyword_reference = probe(address, min(args.seconds, 3.0), lambda i: keyword_query(10**6 + i))
            phases("under attack")
            stop = threading.Event()
            rcodes: dict[str, int] = {}
            result: list[int] = []
            keyword_during: list[float] = []
            sender = threading.Thread(target=lambda: result.append(attack(address, packets, args.rate, stop, rcodes)))
            keyword = threading.Thread(
                target=lambda: keyword_during.extend(probe(address, args.seconds, keyword_query)))
            sender.start()
            keyword.start()
            during = probe(address, args.seconds)
            stop.set()
            keyword.join()
            sender.join()
        print(f"SOA without attack:              {summary(reference)}")
        print(f"SOA during attack:               {summary(during)}")
        print(f"keyword question without attack: {summary(keyword_reference)}")
        print(f"keyword question during attack:  {summary(keyword_during)}")
        print(f"attack: {result[0]} sent, answered {dict(sorted(rcodes.items()))}")
        if args.kind == "deep":
            for delay in (0.0, 1.0):
                time.sleep(delay)
                took, stages = explain_stage(address, deep_question(10**7 + int(delay)))
                print(f"a new deep question {delay:.0f} s after the attack (+0.5 s drain): "
                      f"{took:.1f} ms, stages {stages}")
    finally:
        server.terminate()
        server.join(5)
    return 0
