"""`semdns bench resolve`: the recursive resolver over the distributed hierarchy.

Starts `semdns cluster up --semantic-cache` on a free port (`--no-semantic-cache`: as `cluster up`
starts it by default; or uses a running cluster with `--port P --no-start`), then measures:

- **sdk** (first, while the resolver's cache is cold): questions (`--questions FILE.jsonl`, else the
  generated corpus) through `sdk.Client.resolve`, each broken down by form, transports, queries,
  resends, octets, server vs client time (`tools/bench_resolve_sdk.py`); `--sdk-reference` also runs
  the pre-issue-17 SDK path (one query at a time), alternating with the new one question by
  question, on two fresh clusters with the parity swapped: each path answers every question once.
  `--sdk-only` stops after it. `--sdk-single` also runs the same questions against ONE server
  holding every shipped zone (`semdns serve --zones zonefiles`, the README's main command: the
  chain is followed inside that server, no resolver), with the same breakdown; `--sdk-single-no-fast`
  adds a second such server with `--no-fast-heads` (every question the keywords leave goes to
  MiniLM), the two taking turns question by question. The CPU model, flags and load head the output.
- **stream**: a replayed query stream through the resolver (127.0.0.10): questions drawn with Zipf
  repeats from a generated corpus, a share of them paraphrased. Each query is classed by what the
  resolver did: *cache hit* (the exact question was asked before), *semantic hit* (a new question
  answered with a CNAME straight to a cached route) or *full* resolution. p50/p99 and hit rates.
  Timed with a lean client (one connected UDP socket, the query rendered before and the reply
  parsed after the clock), so the figures are the resolver's and the loopback's, not dnspython's.
- **client overhead**, same run: a cached resolver answer and a plain authoritative answer (both
  wire-cache hits on their servers), each timed with the lean client and with `dns.query.udp`.
- **cold**: full resolutions from the hints with an empty cache (a fresh in-process resolver per
  question) against the cluster's servers: the three-level path root -> domain -> subdomain.
- **cached qps**: the server core + recursion handler in this process, one core, answering an
  already cached question in a tight loop (no sockets: the cost of the cached path itself), with
  the wire cache (as served) and without it (RRset cache, parse and render every time); and over
  real UDP: the resolver process pinned to core 0 (`taskset`), dnsperf on core 1 asking the cached
  questions (as `semdns bench dns` does), when dnsperf and two cores are there.

The corpus is generated here (templates x fillers); no external data. Never asserts on time.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from codec.qname import text_to_qname
from nameserver.build import RecursionOptions, ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.resolver import Hints, Recursor, ResolverConfig
from nameserver.resolver.handler import whole_seconds
from nameserver.resolver.rrcache import RRsetCache
from nameserver.server import DnsServer
from tools.bench_dns import pin
from tools.bench_resolve_sdk import (
    Breakdown,
    encoder_floor,
    load_questions,
    print_sdk,
    run_alternating,
    run_interleaved,
    summarise,
)
from tools.cmd_cluster import STATE, default_runtime, free_port_on, read_state
from tools.machine import describe_machine
from tools.progress import bar

REPO = Path(__file__).resolve().parents[1]
RESOLVER = "127.0.0.10"
SINGLE = "127.0.0.1"  # --sdk-single: one server holding every shipped zone
SINGLE_TITLES = {
    "sdk_single_reference": "SDK resolve against one server of the reference checkout (--sdk-single-reference), "
                            "taking turns with this one",
    "sdk_single": "SDK resolve against one server holding every zone (semdns serve --zones zonefiles; no resolver)",
    "sdk_single_reference_warm": "... the reference checkout's server again, warm (its wire cache answers)",
    "sdk_single_warm": "... the one server again, warm (its wire cache answers)",
    "sdk_single_no_fast": "SDK resolve against one server with --no-fast-heads (MiniLM for every question the "
                          "keywords leave), taking turns with the one above",
    "sdk_single_no_fast_warm": "... the --no-fast-heads server again, warm",
}
ZONE = "semantic.root."

# (question, paraphrase) templates per domain; {x} takes a filler. Our own wording.
TEMPLATES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Is a verbal agreement to sell my {x} binding?", "If I agreed out loud to sell my {x}, is that binding?",
     ("car", "bike", "house", "boat", "piano", "laptop")),
    ("Can my landlord keep the deposit for a broken {x}?",
     "Is my landlord allowed to keep my deposit over a broken {x}?",
     ("window", "door", "oven", "fridge", "heater")),
    ("What are the side effects of taking {x} every day?", "Which side effects come from daily {x}?",
     ("ibuprofen", "aspirin", "melatonin", "caffeine", "antihistamines")),
    ("Why does my {x} code throw a null pointer exception?",
     "My {x} program crashes with a null pointer exception, why?",
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
    parser.add_argument("--runtime", type=Path, default=default_runtime(),
                        help="state directory of the running cluster (with --no-start; finds the resolver's pid)")
    parser.add_argument("--clients", type=int, default=4, help="dnsperf -c (cached path over UDP)")
    parser.add_argument("--outstanding", type=int, default=100, help="dnsperf -q (cached path over UDP)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--questions", type=Path, help="JSONL of {\"text\": ...} for the SDK section (default: corpus)")
    parser.add_argument("--sdk-limit", type=int, help="at most this many SDK questions")
    parser.add_argument("--sdk-only", action="store_true", help="measure the SDK section only")
    parser.add_argument("--sdk-warm", action="store_true",
                        help="then ask the SDK questions again (cache hits: a fast client meets the resolver's RRL)")
    parser.add_argument("--sdk-no-explain", action="store_true",
                        help="SDK section without the explain query (the SRV alone: the floor of a route)")
    parser.add_argument("--sdk-single", action="store_true",
                        help="also run the SDK against one server holding every shipped zone (no resolver)")
    parser.add_argument("--sdk-single-reference", type=Path, metavar="CHECKOUT",
                        help="with --sdk-single: also serve from this checkout (e.g. a worktree of main), "
                             "the two servers taking turns question by question")
    parser.add_argument("--sdk-single-no-fast", action="store_true",
                        help="with --sdk-single: also serve this checkout with --no-fast-heads, the two servers "
                             "taking turns question by question")
    parser.add_argument("--sdk-single-also", action="append", default=[], metavar="ARGS",
                        help="with --sdk-single: also serve this checkout with these `semdns serve` arguments "
                             "(one quoted string, e.g. \"--encoder-max-tokens 32\"; repeatable), the servers "
                             "taking turns question by question")
    parser.add_argument("--sdk-reference", action="store_true",
                        help="also run the pre-issue-17 SDK path (sequential queries), interleaved, on two clusters")
    parser.add_argument("--no-semantic-cache", action="store_true",
                        help="start the cluster as `semdns cluster up` does by default: its resolver without a "
                             "semantic route cache embeds nothing, and the servers' fast heads decide")
    parser.set_defaults(func=run)


def _semdns(*args: str) -> int:
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], cwd=REPO).returncode


def _free_port() -> int:
    try:
        return free_port_on()
    except RuntimeError as exc:
        raise SystemExit(f"semdns bench resolve: {exc}") from exc


def _ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _cluster_up(port: int, runtime: Path, semantic_cache: bool = True) -> bool:
    cache = ("--semantic-cache",) if semantic_cache else ()
    return _semdns("cluster", "up", "--port", str(port), "--runtime", str(runtime),
                   "--zones", str(REPO / "zonefiles"), *cache) == 0


def _sdk_texts(args: argparse.Namespace) -> list[str]:
    questions, paraphrases = corpus()
    return load_questions(args.questions, questions + paraphrases, args.sdk_limit)


def _sdk(port: int, args: argparse.Namespace, parity: int | None = None) -> dict[bool, list[Breakdown]]:
    """The SDK section's rows by path (True: the reference); with `parity`, the two paths alternate
    question by question (the reference on the questions of that parity)."""
    texts = _sdk_texts(args)
    paths = [False] * len(texts) if parity is None else [i % 2 == parity for i in range(len(texts))]
    return run_interleaved((RESOLVER, port), texts, paths, explain=not args.sdk_no_explain)


def _single_server(args: argparse.Namespace) -> dict[str, dict]:
    """The SDK section against one `semdns serve --zones zonefiles` on 127.0.0.1 (cold, then
    warm with `--sdk-warm`); with `--sdk-single-reference CHECKOUT`, that checkout's server too, with
    `--sdk-single-no-fast` this checkout's with `--no-fast-heads`, with each `--sdk-single-also ARGS`
    this checkout's with those arguments: all up at the same time, taking
    turns question by question. The summaries by name."""
    texts = _sdk_texts(args)
    servers: dict[str, tuple[Path, tuple[str, ...]]] = {"single": (REPO, ())}
    if args.sdk_single_reference is not None:
        servers["single_reference"] = (args.sdk_single_reference.resolve(), ())
    if args.sdk_single_no_fast:
        servers["single_no_fast"] = (REPO, ("--no-fast-heads",))
    for n, extra in enumerate(args.sdk_single_also, 1):
        servers[f"single_also_{n}"] = (REPO, tuple(shlex.split(extra)))
    explain = not args.sdk_no_explain
    with tempfile.TemporaryDirectory(prefix="semdns-bench-single-") as scratch, contextlib.ExitStack() as stack:
        addresses = [stack.enter_context(_serving(path, Path(scratch) / name, extra))
                     for name, (path, extra) in servers.items()]
        out = dict(zip(servers, map(summarise, run_alternating(addresses, texts, explain))))
        if args.sdk_warm:
            warm = run_alternating(addresses, texts, explain)
            out.update({f"{name}_warm": summarise(rows) for name, rows in zip(servers, warm)})
    return out


@contextlib.contextmanager
def _serving(checkout: Path, scratch: Path, extra: tuple[str, ...] = ()) -> Iterator[tuple[str, int]]:
    """`semdns serve --zones zonefiles [extra]` of `checkout` (its own .venv when it has one) on a free
    port, loopback exempt from its RRL as in the cluster (a fast local client meets the limit: resends)."""
    port = _free_port()
    python = checkout / ".venv" / "bin" / "python"
    scratch.mkdir()
    log = scratch / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(python) if python.exists() else sys.executable, "-m", "tools.cli", "serve",
             "--zones", str(checkout / "zonefiles"), "--listen", f"{SINGLE}:{port}", "--rrl-exempt", "127.0.0.0/8",
             *extra],
            stdout=out, stderr=subprocess.STDOUT, cwd=checkout,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})  # leaves another checkout as it was
    try:
        _wait_for(log, process)
        yield SINGLE, port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_for(log: Path, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while "ready: listening on" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"semdns bench resolve: the single server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def run(args: argparse.Namespace) -> int:
    machine = f"{describe_machine()}; load {os.getloadavg()[0]:.2f}"
    if not args.json:
        print(machine, flush=True)
    started = not args.no_start
    if args.no_start and not args.port:
        print("semdns bench resolve: --no-start needs --port", file=sys.stderr)
        return 2
    if args.no_start and args.sdk_reference:
        print("semdns bench resolve: --sdk-reference starts its own clusters (drop --no-start)", file=sys.stderr)
        return 2
    runtime = Path(tempfile.mkdtemp(prefix="semdns-bench-"))
    port = args.port or _free_port()
    figures: dict = {"machine": machine}
    rows: dict[bool, list[Breakdown]] = {False: [], True: []}
    if args.sdk_reference:  # first pass: the reference on the even questions, on its own cluster
        reference = Path(tempfile.mkdtemp(prefix="semdns-bench-ref-"))
        if not _cluster_up(port, reference, not args.no_semantic_cache):
            return 1
        try:
            for path, found in _sdk(port, args, parity=0).items():
                rows[path] += found
        finally:
            _semdns("cluster", "down", "--runtime", str(reference))
    if started and not _cluster_up(port, runtime, not args.no_semantic_cache):
        return 1
    runtime_dir = runtime if started else args.runtime
    try:
        for path, found in _sdk(port, args, parity=1 if args.sdk_reference else None).items():
            rows[path] += found
        figures["sdk"] = summarise(rows[False])
        if args.sdk_warm:
            texts = _sdk_texts(args)
            warm = run_interleaved((RESOLVER, port), texts, [False] * len(texts), explain=not args.sdk_no_explain)
            figures["sdk_warm"] = summarise(warm[False])
        if args.sdk_reference:
            figures["sdk_reference"] = summarise(rows[True])
        if args.sdk_single:
            figures.update({f"sdk_{name}": summary for name, summary in _single_server(args).items()})
            figures["sdk_encoder_floor"] = encoder_floor(_sdk_texts(args))
        if not args.sdk_only:
            figures.update({"stream": replay(port, args), "client": client_overhead(port),
                            "cold": asyncio.run(cold(port, args)),
                            "cached_path": asyncio.run(cached_qps(port, args.qps_seconds)),
                            "cached_udp": udp_qps(port, resolver_pid(runtime_dir), args)})
    finally:
        if started:
            _semdns("cluster", "down", "--runtime", str(runtime))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        if "sdk_reference" in figures:
            print_sdk("SDK resolve, reference (pre-issue-17 path: one query at a time, no record cache)",
                      figures["sdk_reference"])
        print_sdk("SDK resolve (rounds: SRV + explain together; engines' records cached)", figures["sdk"])
        if "sdk_warm" in figures:
            print_sdk("SDK resolve again, warm (the resolver's cache answers)",
                      figures["sdk_warm"])
        also = {}
        for n, extra in enumerate(args.sdk_single_also, 1):
            also[f"sdk_single_also_{n}"] = f"SDK resolve against one server with {extra}, taking turns with the others"
            also[f"sdk_single_also_{n}_warm"] = f"... the server with {extra} again, warm"
        for key, title in {**SINGLE_TITLES, **also}.items():
            if key in figures:
                print_sdk(title, figures[key])
        if "sdk_encoder_floor" in figures:
            floor = figures["sdk_encoder_floor"]
            print(f"\nthe encoder alone, the same questions one by one (this process, {floor['variant']}, "
                  f"{floor['threads']} thread(s), {floor['lone_threads']} for a long text, "
                  f"{floor['max_tokens']} tokens at most): "
                  f"p50 {floor['p50_ms']:.2f} ms, p99 {floor['p99_ms']:.2f} ms "
                  "(the floor under a cold route)")
        if not args.sdk_only:
            print_table(figures)
    return 0


def _query(text: str) -> dns.message.Message:
    query = dns.message.make_query(text_to_qname(text, ZONE), dns.rdatatype.SRV, use_edns=0)
    query.flags |= dns.flags.RD
    return query


class UdpClient:
    """A lean stub client: one connected UDP socket; `ask` times only send -> the matching reply."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((host, port))
        self.sock.settimeout(timeout)

    def ask(self, wire: bytes) -> tuple[bytes, float]:
        """(the reply with the query's ID, seconds from send to its arrival); stale replies skipped."""
        sock = self.sock
        start = time.perf_counter()
        sock.send(wire)
        while True:
            reply = sock.recv(65535)
            if reply[:2] == wire[:2]:
                return reply, time.perf_counter() - start

    def close(self) -> None:
        self.sock.close()


def replay(port: int, args: argparse.Namespace) -> dict:
    items = stream(args.queries, args.zipf, args.paraphrase, random.Random(args.seed))
    seen: set[str] = set()
    latencies: dict[str, list[float]] = {"cache": [], "semantic": [], "full": [], "failed": []}
    client = UdpClient(RESOLVER, port)
    try:
        timed = [(item, *client.ask(_query(item.text).to_wire()))
                 for item in bar(items, args=args, desc="replay", unit="q")]
    finally:
        client.close()
    for item, wire, took in timed:
        reply = dns.message.from_wire(wire)
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


def client_overhead(port: int, count: int = 300) -> dict:
    """p50/p99 of answers the servers hold in their wire caches, through each client: a cached
    question at the resolver and a plain SRV at the apex's authoritative server."""
    questions, _ = corpus()
    targets = {
        "resolver hit": (RESOLVER, lambda: _query(questions[0])),
        "authority": ("127.0.0.1", lambda: dns.message.make_query("_llm._tcp." + ZONE, dns.rdatatype.SRV, use_edns=0)),
    }
    figures = {}
    for label, (host, make) in targets.items():
        client = UdpClient(host, port)
        try:
            client.ask(make().to_wire())  # warm: the server caches the answer
            lean = [client.ask(make().to_wire())[1] for _ in range(count)]
        finally:
            client.close()
        stock = []
        for _ in range(count):
            query = make()
            start = time.perf_counter()
            dns.query.udp(query, host, timeout=10.0, port=port)
            stock.append(time.perf_counter() - start)
        figures[label] = {
            "socket": {"p50_ms": _ms(lean, 0.5), "p99_ms": _ms(lean, 0.99)},
            "dns.query.udp": {"p50_ms": _ms(stock, 0.5), "p99_ms": _ms(stock, 0.99)},
        }
    return figures


async def cold(port: int, args: argparse.Namespace) -> dict:
    questions, _ = corpus()
    rng = random.Random(args.seed)
    latencies, levels = [], []
    for _ in bar(range(args.cold), args=args, desc="cold", unit="q"):
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
        options = ServerOptions(config=ServerConfig(wire_cache=wire_cache), semantic=None, recursion=RecursionOptions())
        server = build_server(options, recursor=recursor).server
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
        if not isinstance(replies, tuple):
            await replies
        samples.append(time.perf_counter() - t0)
        count += 1
    elapsed = time.perf_counter() - start
    return {"qps": count / elapsed, "p50_ms": _ms(samples, 0.5), "p99_ms": _ms(samples, 0.99)}


def resolver_pid(runtime: Path) -> int | None:
    """The pid of the cluster's recursive resolver, from its state file (None: not found)."""
    state = runtime / STATE
    if not state.exists():
        return None
    return next((m.pid for m in read_state(state) if m.role == "resolver"), None)


def _affinity(pid: int, cores: str) -> None:
    subprocess.run(["taskset", "-a", "-p", "-c", cores, str(pid)], capture_output=True, check=True)


def udp_qps(port: int, pid: int | None, args: argparse.Namespace) -> dict | None:
    """Cached questions over real UDP: the resolver (every thread) pinned to core 0, dnsperf on
    core 1 (warmed for a second, then `--qps-seconds`, at least 2). None without dnsperf, taskset,
    two cores or the resolver's pid."""
    if pid is None or not shutil.which("dnsperf") or not pin(1):
        return None
    questions, _ = corpus()
    with tempfile.NamedTemporaryFile("w", suffix=".queries", delete=False) as out:
        out.write("".join(f"{text_to_qname(text, ZONE)} SRV\n" for text in questions))
    names = Path(out.name)
    before = subprocess.run(["taskset", "-p", "-c", str(pid)], capture_output=True, text=True, check=True).stdout
    _affinity(pid, "0")
    try:
        _dnsperf(port, names, 1.0, args)
        qps, lost, latency = _dnsperf(port, names, max(args.qps_seconds, 2.0), args)
    finally:
        _affinity(pid, before.rsplit(":", 1)[1].strip())
        names.unlink()
    return {"qps": qps, "lost_pct": lost, "avg_ms": latency, "names": len(questions)}


def _dnsperf(port: int, names: Path, seconds: float, args: argparse.Namespace) -> tuple[float, float, float]:
    out = subprocess.run(
        [*pin(1), "dnsperf", "-s", RESOLVER, "-p", str(port), "-d", str(names), "-l", f"{seconds:g}",
         "-c", str(args.clients), "-q", str(args.outstanding), "-t", "2"],
        capture_output=True, text=True, check=False,
    ).stdout
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out)
    latency = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    if qps is None:
        raise RuntimeError(f"dnsperf gave no figures:\n{out}")
    return float(qps[1]), float(lost[1]) if lost else 0.0, float(latency[1]) * 1000 if latency else float("nan")


def print_table(figures: dict) -> None:
    print()
    print(f"{'path':<26}{'count':>7}{'rate':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, row in figures["stream"].items():
        print(f"{'stream ' + kind:<26}{row['count']:>7}{row['rate']:>8.1%}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}")
    cold_row = figures["cold"]
    print(f"{'cold full (3 levels)':<26}{cold_row['count']:>7}{'':>8}"
          f"{cold_row['p50_ms']:>9.2f}{cold_row['p99_ms']:>9.2f}"
          f"   median {cold_row['median_queries']} queries")
    for label, cached in figures["cached_path"].items():
        print(f"{'cached path, ' + label:<26}{'':>7}{'':>8}{cached['p50_ms']:>9.3f}{cached['p99_ms']:>9.3f}"
              f"   {cached['qps']:,.0f} qps on one core, in-process")
    udp = figures["cached_udp"]
    if udp is None:
        print(f"{'cached path, udp':<26}   not measured (needs dnsperf, taskset, two cores, the resolver's pid)")
    else:
        print(f"{'cached path, udp':<26}{'':>7}{'':>8}{'':>9}{'':>9}   "
              f"{udp['qps']:,.0f} qps, resolver pinned to core 0, "
              f"dnsperf on core 1 ({udp['names']} names, avg {udp['avg_ms']:.2f} ms, lost {udp['lost_pct']:g}%)")
    for label, clients in figures["client"].items():
        for client, row in clients.items():
            print(f"{'client: ' + label:<26}{'':>7}{'':>8}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}   via {client}")
