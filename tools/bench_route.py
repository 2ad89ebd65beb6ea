"""`semdns bench route QUERIES.jsonl`: routing accuracy and latency, with a baseline in the same run.

Each line of QUERIES.jsonl is `{"text": ..., "domain": ...}` (other keys ignored). The bench
- routes every query through the whole hierarchy: over UDP to `--server ADDR:PORT` (SRV query,
  EDNS text option when the text does not fit a name; the stage comes from the `explain` TXT,
  asked separately and not timed), or, with `--in-process`, through `routing.descend` directly;
- prints accuracy per top-level domain, a confusion table, the share decided by each stage and
  latency p50/p99 per stage (over UDP: from sending the query's bytes to receiving the answer's);
- prints, in the same run, a baseline: the same encoder and the same exemplars in a plain
  in-process nearest-exemplar router (no keywords, no stages, no hierarchy).
Without `--server` and `--in-process` it starts its own server on the shipped zones (loopback,
free port) and stops it at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence, TypeVar

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import numpy as np

from codec import normalize, text_to_qname
from codec.edns_text import TEXT_OPTION, encode_text_option, hashed_qname
from codec.errors import CodecError
from codec.qname import Form
from nameserver.config import ServerConfig, parse_address
from routing.classifier import Classifier
from routing.descend import descend
from routing.embedder import QUERY_THREADS, load_embedder
from routing.index import Encoder, IndexCache, RoutingIndex
from tools.progress import bar
from zones.catalog import ZoneCatalog
from zones.loader import load_directory

T = TypeVar("T")

DEFAULT_ZONES = Path(__file__).resolve().parents[1] / "zonefiles"
NONE = "(general)"


@dataclass(frozen=True)
class Query:
    text: str
    domain: str


@dataclass(frozen=True)
class Outcome:
    domain: str  # expected
    predicted: str  # top-level child label, or NONE
    stage: str  # the slowest stage used on the whole path (keyword < embed < deep)
    millis: float  # whole hierarchy


def load_queries(path: Path, limit: int | None = None) -> list[Query]:
    queries = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                queries.append(Query(row["text"], row["domain"]))
    return queries[:limit] if limit else queries


def _label_under(name: dns.name.Name | None, apex: dns.name.Name) -> str:
    if name is None or not name.is_subdomain(apex) or name == apex:
        return NONE
    return name.relativize(apex).labels[-1].decode()


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000.0


def run_in_process(queries: Sequence[Query], catalog: ZoneCatalog, apex: dns.name.Name,
                   indexes: IndexCache, classifier: Classifier, encoder: Encoder,
                   progress: argparse.Namespace | None = None) -> list[Outcome]:
    outcomes = []
    for query in bar(queries, args=progress, desc="route (in-process)", unit="q"):
        text = normalize(query.text)
        hops, millis = _timed(lambda: descend(catalog, indexes, classifier, text, apex, encoder))
        first = hops[0].decision if hops else None
        stage = path_stage([hop.decision.stage for hop in hops])
        outcomes.append(Outcome(query.domain, _label_under(first.child if first else None, apex), stage, millis))
    return outcomes


def run_baseline(queries: Sequence[Query], index: RoutingIndex, encoder,
                 progress: argparse.Namespace | None = None) -> list[Outcome]:
    """Nearest exemplar, same encoder and exemplars: the plain router the stages must beat."""
    outcomes = []
    for query in bar(queries, args=progress, desc="baseline", unit="q"):
        text = normalize(query.text)

        def route() -> int:
            vector = encoder.embed([text])[0]
            return int(index.owners[int(np.argmax(index.exemplars @ vector))])

        owner, millis = _timed(route)
        outcomes.append(Outcome(query.domain, _label_under(index.children[owner], index.node), "embed", millis))
    return outcomes


def _semantic_query(text: str, apex: dns.name.Name, form: Form, rdtype: int) -> dns.message.Message:
    zone = apex.to_text()
    try:
        qname = text_to_qname(text, zone, form)
        options: list[dns.edns.Option] = []
    except CodecError:
        qname = hashed_qname(text, zone, form)
        options = [dns.edns.GenericOption(dns.edns.OptionType.make(TEXT_OPTION), encode_text_option(text))]
    rdatatype = dns.rdatatype.RdataType.make(rdtype)
    return dns.message.make_query(qname, rdatatype, use_edns=0, payload=1232, options=options)


def _ask(message: dns.message.Message, host: str, port: int) -> tuple[dns.message.Message, float]:
    """The reply, and the milliseconds from sending the query's bytes to having the answer's
    bytes (the server's latency: building the query and parsing the reply with dnspython are
    client costs, ~1 ms for a CNAME chain, and are not counted); TCP when the UDP answer is
    truncated (then the TCP exchange is counted too)."""
    wire = message.to_wire()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5.0)
        sock.connect((host, port))
        start = time.perf_counter()
        sock.send(wire)
        data = sock.recv(65535)
        while data[:2] != wire[:2]:  # a stray datagram: not our answer
            data = sock.recv(65535)
        millis = (time.perf_counter() - start) * 1000.0
    reply = dns.message.from_wire(data)
    if reply.flags & dns.flags.TC:
        start = time.perf_counter()
        reply = dns.query.tcp(message, host, port=port, timeout=5.0)
        millis += (time.perf_counter() - start) * 1000.0
    return reply, millis


def _first_hop(reply: dns.message.Message, apex: dns.name.Name) -> str:
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.CNAME:
            target = rrset[0].target
            labels = [label.lower() for label in target.labels]
            if b"q" in labels:
                zone = dns.name.Name(target.labels[labels.index(b"q") + 1:])
                return _label_under(zone, apex)
            return NONE
    return NONE


STAGE_ORDER = ("none", "keyword", "embed", "deep")


def path_stage(stages: Iterable[str]) -> str:
    """The slowest stage of a path: a question is keyword-decided only if every step was."""
    return max(stages, key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER),
               default="none")


def _explained_stage(reply: dns.message.Message) -> str:
    stages = []
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            for rdata in rrset:
                fields = dict(raw.decode("utf-8", "replace").partition("=")[::2] for raw in rdata.strings)
                if "stage" in fields:
                    stages.append(fields["stage"])
    return path_stage(stages) if stages else "unknown"


def run_wire(queries: Sequence[Query], host: str, port: int, apex: dns.name.Name,
             progress: argparse.Namespace | None = None) -> list[Outcome]:
    outcomes = []
    for query in bar(queries, args=progress, desc="route (UDP)", unit="q"):
        message = _semantic_query(query.text, apex, "q", dns.rdatatype.SRV)
        reply, millis = _ask(message, host, port)
        explain, _ = _ask(_semantic_query(query.text, apex, "explain", dns.rdatatype.TXT), host, port)
        outcomes.append(Outcome(query.domain, _first_hop(reply, apex), _explained_stage(explain), millis))
    return outcomes


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def _recall(outcomes: Sequence[Outcome], domain: str) -> float:
    """The share of `domain`'s questions routed to `domain`."""
    hits = sum(o.predicted == domain for o in outcomes if o.domain == domain)
    return hits / max(1, sum(o.domain == domain for o in outcomes))


def report(title: str, outcomes: Sequence[Outcome]) -> str:
    domains = sorted({o.domain for o in outcomes})
    columns = domains + sorted({o.predicted for o in outcomes} - set(domains))
    lines = [f"== {title}: {len(outcomes)} queries"]
    correct = sum(o.domain == o.predicted for o in outcomes)
    lines.append(f"accuracy (top level): {correct / len(outcomes):.4f}")
    lines.append("per domain: " + "  ".join(f"{d} {_recall(outcomes, d):.3f}" for d in domains))
    width = max(len(c) for c in columns + ["expected"]) + 1
    lines.append("confusion (rows expected, columns routed):")
    lines.append("expected".ljust(width) + "".join(c[:9].rjust(10) for c in columns))
    counts = collections.Counter((o.domain, o.predicted) for o in outcomes)
    for d in domains:
        lines.append(d.ljust(width) + "".join(str(counts[(d, c)]).rjust(10) for c in columns))
    lines.append("path stage  share   accuracy   p50 ms   p99 ms   (slowest stage on the path)")
    by_stage: dict[str, list[Outcome]] = collections.defaultdict(list)
    for o in outcomes:
        by_stage[o.stage].append(o)
    for stage, items in sorted(by_stage.items()) + [("all", list(outcomes))]:
        millis = [o.millis for o in items]
        acc = sum(o.domain == o.predicted for o in items) / len(items)
        lines.append(f"{stage:<10} {len(items) / len(outcomes):6.3f} {acc:10.4f} {_percentile(millis, 50):8.2f} "
                     f"{_percentile(millis, 99):8.2f}")
    return "\n".join(lines)


def _load(zones_dir: Path) -> ZoneCatalog:
    catalog, problems = load_directory(zones_dir)
    errors = [str(p) for p in problems if p.is_error]
    if errors:
        raise SystemExit("\n".join(errors))
    return catalog


def _warm(catalog: ZoneCatalog, indexes: IndexCache) -> None:
    from zones.profile import find_route_nodes

    for zone in catalog.zones.values():
        for node in find_route_nodes(zone):
            indexes.get(zone, node)


class _OwnServer:
    """A semantic server on the shipped zones, on 127.0.0.1 with a free port, in its own thread."""

    def __init__(self, zones_dir: Path, variant: Literal["int8", "fp32"]) -> None:
        self.zones_dir, self.variant = zones_dir, variant
        self.address: tuple[str, int] | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> tuple[str, int]:
        self._thread.start()
        self._ready.wait()
        if self._error is not None or self.address is None:
            raise SystemExit(f"could not start a server: {self._error}")
        return self.address

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from nameserver.build import SemanticOptions, ServerOptions, build_server

        try:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            config = ServerConfig(zones_dir=self.zones_dir, listen=(("127.0.0.1", 0),), uvloop=False,
                                  rrl_rate=0)  # the bench's one client asks faster than rate limiting allows
            semantic = SemanticOptions(encoder=self.variant, threads=QUERY_THREADS)
            runner = build_server(ServerOptions(config=config, semantic=semantic))
            await runner.start()
            self.address = runner.addresses[0]
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.stop()


def run(args: argparse.Namespace) -> int:
    queries = load_queries(Path(args.queries), args.limit)
    apex = dns.name.from_text(args.apex)
    catalog = _load(Path(args.zones))
    encoder = load_embedder(args.variant)
    indexes, classifier = IndexCache(encoder), Classifier()
    _warm(catalog, indexes)
    apex_index = indexes.get(catalog.zones[apex], apex)
    if apex_index is None:
        raise SystemExit(f"{apex}: no routing profiles")
    if args.in_process:
        title = "staged hierarchy (in-process)"
        outcomes = run_in_process(queries, catalog, apex, indexes, classifier, encoder, args)
    elif args.server:
        host, port = parse_address(args.server)
        title, outcomes = f"staged hierarchy over UDP ({args.server})", run_wire(queries, host, port, apex, args)
    else:
        with _OwnServer(Path(args.zones), args.variant) as (host, port):
            title = f"staged hierarchy over UDP (own server {host}:{port})"
            outcomes = run_wire(queries, host, port, apex, args)
    print(report(f"{title}, encoder {args.variant}", outcomes))
    print()
    print(report(f"baseline: nearest exemplar (in-process), encoder {args.variant}",
                 run_baseline(queries, apex_index, encoder, args)))
    return 0


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("route", help="routing accuracy, stages and latency (+ a baseline)")
    parser.add_argument("queries", help="JSONL with text and domain per line")
    parser.add_argument("--server", help="ADDR:PORT of a running semantic server (default: start one)")
    parser.add_argument("--in-process", action="store_true", help="route in-process, no DNS")
    parser.add_argument("--zones", default=str(DEFAULT_ZONES), help="zonefile directory (default: shipped)")
    parser.add_argument("--apex", default="semantic.root.", help="the zone the questions are asked at")
    parser.add_argument("--variant", choices=("fp32", "int8"), default="int8", help="encoder graph")
    parser.add_argument("--limit", type=int, help="only the first N queries")
    parser.set_defaults(func=run)
