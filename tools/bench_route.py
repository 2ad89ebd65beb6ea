"""`semdns bench route QUERIES.jsonl`: routing accuracy and latency, with a baseline in the same run.

Each line of QUERIES.jsonl is `{"text": ..., "domain": ...}` (other keys ignored). The bench
- routes every query through the whole hierarchy: over UDP to `--server ADDR:PORT` (SRV query,
  EDNS text option when the text does not fit a name; the stage comes from the `explain` TXT,
  asked separately and not timed), or, with `--in-process`, through `routing.descend` directly;
- prints accuracy per top-level domain, a confusion table, the share decided by each stage and
  latency p50/p99 per stage (over UDP: from sending the query's bytes to receiving the answer's);
- prints, in the same run, a baseline: the same encoder and the same exemplars in a plain
  in-process nearest-exemplar router (no keywords, no stages, no hierarchy);
- with `--train CORPUS.jsonl` (the questions the heads were trained on), also a flat kNN-5 over the
  same encoder whose examples are that corpus, its leave-one-out accuracy on the corpus, and the
  heads' cross-validated accuracies (their `cv=`), side by side;
- prints the full-path (subdomain) accuracy of the questions labelled with a subdomain, and the
  coverage–accuracy curve of the top-level decision: at a `th.head` of t, the questions a head
  decided with confidence below t would stop at the apex (the general engine); coverage is the
  share routed on, accuracy that of those.
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
import dns.zone
import numpy as np

from codec import normalize, text_to_qname
from codec.edns_text import TEXT_OPTION, encode_text_option, hashed_qname
from codec.errors import CodecError
from codec.qname import Form
from nameserver.config import ServerConfig, parse_address
from routing.classifier import Classifier
from routing.descend import descend
from routing.embedder import MAX_TOKENS, QUERY_THREADS, load_embedder
from routing.index import Encoder, IndexCache, RoutingIndex
from routing.tokens import load_token_encoder
from tools.cmd_serve import token_count
from tools.progress import bar
from tools.routes_data import embed_all
from zones.catalog import ZoneCatalog
from zones.loader import load_directory

T = TypeVar("T")

DEFAULT_ZONES = Path(__file__).resolve().parents[1] / "zonefiles"
NONE = "(general)"


@dataclass(frozen=True)
class Query:
    text: str
    domain: str
    subdomain: str | None = None

    @property
    def path(self) -> str:
        return f"{self.domain}/{self.subdomain}" if self.subdomain else self.domain


@dataclass(frozen=True)
class Outcome:
    domain: str  # expected
    predicted: str  # top-level child label, or NONE
    stage: str  # the slowest stage used on the whole path (keyword < exemplar < head < embed < deep)
    millis: float  # whole hierarchy
    expected_path: str = ""  # domain[/subdomain]
    path: str = ""  # where the route ended, as labels under the apex (NONE: the apex)
    first_stage: str = ""  # the stage of the top-level decision
    confidence: float = 1.0  # the top-level decision's confidence


def load_queries(path: Path, limit: int | None = None) -> list[Query]:
    queries = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                queries.append(Query(row["text"], row["domain"], row.get("subdomain") or None))
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
        end = next((hop.decision.child for hop in reversed(hops) if hop.decision.child is not None), None)
        outcomes.append(Outcome(query.domain, _label_under(first.child if first else None, apex), stage, millis,
                                query.path, _path_under(end, apex), first.stage if first else "none",
                                first.confidence if first else 0.0))
    return outcomes


def _path_under(name: dns.name.Name | None, apex: dns.name.Name) -> str:
    if name is None or not name.is_subdomain(apex) or name == apex:
        return NONE
    return "/".join(label.decode().lower() for label in reversed(name.relativize(apex).labels))


def run_knn(queries: Sequence[Query], examples: np.ndarray, labels: Sequence[str], encoder: Encoder,
            k: int = 5) -> list[Outcome]:
    """Flat kNN-k (cosine, majority vote, ties to the larger summed similarity) over `examples`."""
    outcomes = []
    names = sorted(set(labels))
    owner = np.array([names.index(label) for label in labels])
    for query in queries:
        text = normalize(query.text)

        def route() -> str:
            sims = examples @ encoder.embed([text])[0]
            return names[_vote(sims, owner, len(names), k)]

        label, millis = _timed(route)
        outcomes.append(Outcome(query.domain, label, "embed", millis, query.path, label))
    return outcomes


def _vote(sims: np.ndarray, owner: np.ndarray, classes: int, k: int) -> int:
    top = np.argpartition(-sims, min(k, len(sims) - 1))[:k]
    votes = np.bincount(owner[top], minlength=classes).astype(np.float64)
    votes += 1e-3 * np.bincount(owner[top], weights=sims[top], minlength=classes)
    return int(np.argmax(votes))


def knn_leave_one_out(examples: np.ndarray, labels: Sequence[str], k: int = 5) -> float:
    """kNN-k accuracy on the examples themselves, each left out of its own vote."""
    names = sorted(set(labels))
    owner = np.array([names.index(label) for label in labels])
    hits = 0
    for start in range(0, len(examples), 256):
        sims = examples[start:start + 256] @ examples.T
        for row, line in enumerate(sims):
            line[start + row] = -np.inf
            hits += _vote(line, owner, len(names), k) == owner[start + row]
    return hits / max(1, len(examples))


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


STAGE_ORDER = ("none", "keyword", "fast", "exemplar", "head", "embed", "deep")  # fast before any MiniLM stage


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
        steps = _explained_steps(explain)
        first = steps[0] if steps else {}
        outcomes.append(Outcome(query.domain, _first_hop(reply, apex), _explained_stage(explain), millis,
                                query.path, _last_hop(reply, apex), first.get("stage", "none"),
                                float(first.get("confidence", "0") or 0)))
    return outcomes


def _last_hop(reply: dns.message.Message, apex: dns.name.Name) -> str:
    """Where the chain's last semantic CNAME points (`<text>.q.<node>`), as labels under the apex."""
    end: dns.name.Name | None = None
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.CNAME:
            labels = [label.lower() for label in rrset[0].target.labels]
            if b"q" in labels:
                end = dns.name.Name(rrset[0].target.labels[labels.index(b"q") + 1:])
    return _path_under(end, apex)


def _explained_steps(reply: dns.message.Message) -> list[dict[str, str]]:
    steps = []
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            for rdata in rrset:
                fields = dict(raw.decode("utf-8", "replace").partition("=")[::2] for raw in rdata.strings)
                if "hop" in fields:
                    steps.append(fields)
    return sorted(steps, key=lambda f: int(f["hop"]) if f["hop"].isdigit() else 0)


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
    labelled = [o for o in outcomes if "/" in o.expected_path]
    if labelled and any(o.path for o in labelled):
        full = sum(o.path == o.expected_path for o in labelled) / len(labelled)
        within = [o for o in labelled if o.predicted == o.domain]
        sub = sum(o.path == o.expected_path for o in within) / max(1, len(within))
        lines.append(f"subdomain: full-path accuracy {full:.4f} on {len(labelled)} questions with a subdomain "
                     f"label ({sub:.4f} of those routed to the right domain)")
    if any(o.first_stage == "head" for o in outcomes):
        lines.append("coverage-accuracy of the top level (th.head: share routed on / accuracy of those): " + "  ".join(
            f"{t:.1f}: {c:.3f}/{a:.4f}" for t, c, a in coverage(outcomes)))
    return "\n".join(lines)


def coverage(outcomes: Sequence[Outcome], thresholds: Sequence[float] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
             ) -> list[tuple[float, float, float]]:
    """Per th.head value t: (t, share routed on, top-level accuracy of those). A question stops
    when its top-level decision is the head's with a confidence under t (or it stopped already)."""
    rows = []
    for threshold in thresholds:
        routed = [o for o in outcomes if o.predicted != NONE
                  and not (o.first_stage == "head" and o.confidence < threshold)]
        accuracy = sum(o.domain == o.predicted for o in routed) / len(routed) if routed else float("nan")
        rows.append((threshold, len(routed) / max(1, len(outcomes)), accuracy))
    return rows


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

    def __init__(self, zones_dir: Path, variant: Literal["int8", "fp32"], fast: bool = True,
                 max_tokens: int = MAX_TOKENS) -> None:
        self.zones_dir, self.variant, self.fast, self.max_tokens = zones_dir, variant, fast, max_tokens
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
            semantic = SemanticOptions(encoder=self.variant, threads=QUERY_THREADS, fast=self.fast,
                                       max_tokens=self.max_tokens)
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
    encoder = load_embedder(args.variant, max_tokens=args.encoder_max_tokens)
    tokens = None if args.no_fast_heads else load_token_encoder()
    indexes, classifier = IndexCache(encoder, tokens), Classifier(tokens)
    _warm(catalog, indexes)
    apex_index = indexes.get(catalog.zones[apex], apex)
    if apex_index is None:
        raise SystemExit(f"{apex}: no routing profiles")
    known = {_path_under(child, apex) for zone, node in _route_nodes(catalog) if node != apex
             and (index := indexes.get(zone, node)) is not None for child in index.children}
    foreign = sum(1 for q in queries if q.subdomain and q.path not in known)
    queries = [q if not q.subdomain or q.path in known else Query(q.text, q.domain) for q in queries]
    if foreign:
        print(f"({foreign} subdomain labels name no child in these zones: those questions count for the "
              "top level only)")
    if args.in_process:
        title = "staged hierarchy (in-process)"
        outcomes = run_in_process(queries, catalog, apex, indexes, classifier, encoder, args)
    elif args.server:
        host, port = parse_address(args.server)
        title, outcomes = f"staged hierarchy over UDP ({args.server})", run_wire(queries, host, port, apex, args)
    else:
        with _OwnServer(Path(args.zones), args.variant, fast=not args.no_fast_heads,
                        max_tokens=args.encoder_max_tokens) as (host, port):
            title = f"staged hierarchy over UDP (own server {host}:{port})"
            outcomes = run_wire(queries, host, port, apex, args)
    stages = "MiniLM heads only (--no-fast-heads)" if args.no_fast_heads else "fast heads on"
    print(report(f"{title}, encoder {args.variant} reading {encoder.max_tokens} tokens, {stages}", outcomes))
    print()
    print(report(f"baseline: nearest exemplar (in-process), encoder {args.variant}",
                 run_baseline(queries, apex_index, encoder, args)))
    heads = []
    for zone, node in _route_nodes(catalog):
        index = indexes.get(zone, node)
        if index is not None and index.head is not None:
            heads.append((node, index.head))
    if heads:
        print()
        print("heads (cross-validated accuracy on their training questions, from their cv=): " + ", ".join(
            f"{node} {head.kind} {head.info.get('cv', '?')} ({head.info.get('rows', '?')} questions)"
            for node, head in heads))
    if args.train:
        train = load_queries(Path(args.train))
        examples = embed_all(encoder, [normalize(q.text) for q in train], cache_key=args.variant)
        labels = [q.domain for q in train]
        print(f"flat kNN-5 over the training corpus ({len(train)} questions): leave-one-out accuracy on the "
              f"corpus {knn_leave_one_out(examples, labels):.4f}")
        print()
        print(report(f"baseline: flat kNN-5, examples = the training corpus ({len(train)}), encoder {args.variant}",
                     run_knn(queries, examples, labels, encoder)))
    return 0


def _route_nodes(catalog: ZoneCatalog) -> list[tuple[dns.zone.Zone, dns.name.Name]]:
    from zones.profile import find_route_nodes

    return [(zone, node) for _, zone in sorted(catalog.zones.items()) for node in find_route_nodes(zone)]


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("route", help="routing accuracy, stages and latency (+ a baseline)")
    parser.add_argument("queries", help="JSONL with text and domain per line")
    parser.add_argument("--server", help="ADDR:PORT of a running semantic server (default: start one)")
    parser.add_argument("--in-process", action="store_true", help="route in-process, no DNS")
    parser.add_argument("--zones", default=str(DEFAULT_ZONES), help="zonefile directory (default: shipped)")
    parser.add_argument("--apex", default="semantic.root.", help="the zone the questions are asked at")
    parser.add_argument("--variant", choices=("fp32", "int8"), default="int8", help="encoder graph")
    parser.add_argument("--limit", type=int, help="only the first N queries")
    parser.add_argument("--encoder-max-tokens", type=token_count, default=MAX_TOKENS, metavar="N",
                        help=f"word pieces of a question the encoder reads at most, as `semdns serve "
                             f"--encoder-max-tokens` (default {MAX_TOKENS}; the in-process run and the bench's server)")
    parser.add_argument("--no-fast-heads", action="store_true",
                        help="route as `semdns serve --no-fast-heads` does (MiniLM for every question the "
                             "keywords leave)")
    parser.add_argument("--train", help="the training corpus (JSONL): adds a flat kNN-5 over it, same encoder")
    parser.set_defaults(func=run)
