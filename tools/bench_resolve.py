"""`semdns bench resolve`: the recursive resolver over the distributed hierarchy.

Starts `semdns cluster up --semantic-cache` on a free port (or uses a running cluster with
`--port P --no-start`), then measures:

- **stream**: a replayed query stream through the resolver (127.0.0.10): questions drawn with Zipf
  repeats from a generated corpus, a share of them paraphrased. Each query is classed by what the
  resolver did: *cache hit* (the exact question was asked before), *semantic hit* (a new question
  answered with a CNAME straight to a cached route) or *full* resolution. p50/p99 and hit rates.
- **cold**: full resolutions from the hints with an empty cache (a fresh in-process resolver per
  question) against the cluster's servers: the three-level path root -> domain -> subdomain.
- **cached qps**: the server core + recursion handler in this process, one core, answering an
  already cached question in a tight loop (no sockets: the cost of the cached path itself), with
  the wire cache (as served) and without it (RRset cache, parse and render every time).

The corpus is generated here (templates x fillers); no external data. Never asserts on time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from codec.qname import text_to_qname
from nameserver.chain import build_chain
from nameserver.config import ServerConfig
from nameserver.resolver import Hints, Recursor, ResolverConfig
from nameserver.resolver.handler import RecursionHandler, whole_seconds
from nameserver.rrcache import RRsetCache
from nameserver.server import DnsServer
from zones.catalog import ZoneStore

REPO = Path(__file__).resolve().parents[1]
RESOLVER = "127.0.0.10"
ZONE = "semantic.root."

# (question, paraphrase) templates per domain; {x} takes a filler. Our own wording.
TEMPLATES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Is a verbal agreement to sell my {x} binding?", "If I agreed out loud to sell my {x}, is that binding?",
     ("car", "bike", "house", "boat", "piano", "laptop")),
    ("Can my landlord keep the deposit for a broken {x}?", "Is my landlord allowed to keep my deposit over a broken {x}?",
     ("window", "door", "oven", "fridge", "heater")),
    ("What are the side effects of taking {x} every day?", "Which side effects come from daily {x}?",
     ("ibuprofen", "aspirin", "melatonin", "caffeine", "antihistamines")),
    ("Why does my {x} code throw a null pointer exception?", "My {x} program crashes with a null pointer exception, why?",
     ("java", "kotlin", "android", "spring")),
    ("How do I pay less tax on my {x} income?", "What are legal ways to reduce the tax on {x} income?",
     ("freelance", "rental", "dividend", "pension")),
    ("Write a short poem about {x} at night", "Compose a brief night-time poem about {x}",
     ("rain", "the sea", "a city", "snow", "the moon")),
    ("Why is {x} important for cell biology?", "What role does {x} play in the biology of cells?",
     ("mitochondria", "dna", "ribosomes", "the membrane")),
)


@dataclass(frozen=True)
class Item:
    text: str
    base: int  # index of the base question (a paraphrase shares its base's index)
    paraphrase: bool


def corpus() -> tuple[list[str], list[str]]:
    questions, paraphrases = [], []
    for ask, para, fillers in TEMPLATES:
        for filler in fillers:
            questions.append(ask.format(x=filler))
            paraphrases.append(para.format(x=filler))
    return questions, paraphrases


def stream(n: int, zipf: float, paraphrase_rate: float, rng: random.Random) -> list[Item]:
    questions, paraphrases = corpus()
    weights = [1.0 / (rank + 1) ** zipf for rank in range(len(questions))]
    order = list(range(len(questions)))
    rng.shuffle(order)
    items = []
    for _ in range(n):
        base = order[rng.choices(range(len(order)), weights)[0]]
        use_para = rng.random() < paraphrase_rate
        items.append(Item(paraphrases[base] if use_para else questions[base], base, use_para))
    return items


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("resolve", help="recursive resolution over the distributed hierarchy")
    parser.add_argument("--queries", type=int, default=1500, help="queries in the replayed stream")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of question repeats")
    parser.add_argument("--paraphrase", type=float, default=0.3, help="share of queries that are paraphrased")
    parser.add_argument("--cold", type=int, default=40, help="cold full resolutions")
    parser.add_argument("--qps-seconds", type=float, default=2.0, help="length of the cached-path loop")
    parser.add_argument("--port", type=int, help="port of a running cluster (with --no-start)")
    parser.add_argument("--no-start", action="store_true", help="use a cluster that is already up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=run)


def _semdns(*args: str) -> int:
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], cwd=REPO).returncode


def _free_port() -> int:
    """A port free for UDP and TCP on every cluster address (127.0.0.1-10)."""
    addresses = [f"127.0.0.{i}" for i in range(1, 11)]
    for _ in range(50):
        port = random.randint(20000, 60000)
        socks = []
        try:
            for host in addresses:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit("semdns bench resolve: no port free on 127.0.0.1-10")


def _ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(args: argparse.Namespace) -> int:
    runtime = Path(tempfile.mkdtemp(prefix="semdns-bench-"))
    started = not args.no_start
    port = args.port or _free_port()
    if args.no_start and not args.port:
        print("semdns bench resolve: --no-start needs --port", file=sys.stderr)
        return 2
    if started and _semdns("cluster", "up", "--port", str(port), "--runtime", str(runtime),
                           "--zones", str(REPO / "zonefiles"), "--semantic-cache") != 0:
        return 1
    try:
        figures = {"stream": replay(port, args), "cold": asyncio.run(cold(port, args)),
                   "cached_path": asyncio.run(cached_qps(port, args.qps_seconds))}
    finally:
        if started:
            _semdns("cluster", "down", "--runtime", str(runtime))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
    return 0


def _query(text: str) -> dns.message.Message:
    query = dns.message.make_query(text_to_qname(text, ZONE), dns.rdatatype.SRV, use_edns=0)
    query.flags |= dns.flags.RD
    return query


def replay(port: int, args: argparse.Namespace) -> dict:
    items = stream(args.queries, args.zipf, args.paraphrase, random.Random(args.seed))
    seen: set[str] = set()
    latencies: dict[str, list[float]] = {"cache": [], "semantic": [], "full": [], "failed": []}
    for item in items:
        query = _query(item.text)
        start = time.perf_counter()
        reply = dns.query.udp(query, RESOLVER, timeout=10.0, port=port)
        took = time.perf_counter() - start
        if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
            kind = "failed"
        elif item.text in seen:
            kind = "cache"
        elif reply.answer[0].rdtype == dns.rdatatype.CNAME and reply.answer[0][0].target.labels[0] == b"_llm":
            kind = "semantic"
        else:
            kind = "full"
        seen.add(item.text)
        latencies[kind].append(took)
    total = len(items)
    return {
        kind: {"count": len(v), "rate": len(v) / total, "p50_ms": _ms(v, 0.5), "p99_ms": _ms(v, 0.99)}
        for kind, v in latencies.items()
    }


async def cold(port: int, args: argparse.Namespace) -> dict:
    questions, _ = corpus()
    rng = random.Random(args.seed)
    latencies, levels = [], []
    for _ in range(args.cold):
        text = rng.choice(questions)
        recursor = Recursor(Hints.single(ZONE, "127.0.0.1"), config=ResolverConfig(port=port, total_timeout=10.0))
        name = dns.name.from_text(text_to_qname(text, ZONE))
        start = time.perf_counter()
        result = await recursor.resolve(name, dns.rdatatype.SRV)
        latencies.append(time.perf_counter() - start)
        levels.append(result.queries)
    return {"count": len(latencies), "p50_ms": _ms(latencies, 0.5), "p99_ms": _ms(latencies, 0.99),
            "median_queries": statistics.median(levels) if levels else 0}


async def cached_qps(port: int, seconds: float) -> dict:
    """A cached question answered by the server core + recursion handler, one core, no sockets.

    `wire cache`: as the transports drive it (`DnsServer.respond`): the rendered answer is reused
    within the second its TTLs hold; `rrset cache`: the same without the wire cache (every query
    parsed, resolved from the RRset cache and rendered). Same question, same run.
    """
    questions, _ = corpus()
    wire = _query(questions[0]).to_wire()
    figures = {}
    for label, wire_cache in (("wire cache", True), ("rrset cache", False)):
        recursor = Recursor(Hints.single(ZONE, "127.0.0.1"), config=ResolverConfig(port=port, total_timeout=10.0),
                            cache=RRsetCache(clock=whole_seconds))
        store = ZoneStore()
        config = ServerConfig(wire_cache=wire_cache)
        server = DnsServer(store, build_chain(store, config, [RecursionHandler(recursor, cache_answers=True)]), config)
        await server.handle(wire, ("127.0.0.1", 1), "udp")  # warm: one full resolution
        figures[label] = await _loop(server, wire, seconds)
    return figures


async def _loop(server: DnsServer, wire: bytes, seconds: float) -> dict:
    samples = []
    count = 0
    client = ("127.0.0.1", 1)
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        replies = server.respond(wire, client, "udp")
        if type(replies) is not tuple:
            await replies
        samples.append(time.perf_counter() - t0)
        count += 1
    elapsed = time.perf_counter() - start
    return {"qps": count / elapsed, "p50_ms": _ms(samples, 0.5), "p99_ms": _ms(samples, 0.99)}


def print_table(figures: dict) -> None:
    print(f"{'path':<26}{'count':>7}{'rate':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, row in figures["stream"].items():
        print(f"{'stream ' + kind:<26}{row['count']:>7}{row['rate']:>8.1%}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}")
    cold_row = figures["cold"]
    print(f"{'cold full (3 levels)':<26}{cold_row['count']:>7}{'':>8}{cold_row['p50_ms']:>9.2f}{cold_row['p99_ms']:>9.2f}"
          f"   median {cold_row['median_queries']} queries")
    for label, cached in figures["cached_path"].items():
        print(f"{'cached path, ' + label:<26}{'':>7}{'':>8}{cached['p50_ms']:>9.3f}{cached['p99_ms']:>9.3f}"
              f"   {cached['qps']:,.0f} qps on one core, in-process")
