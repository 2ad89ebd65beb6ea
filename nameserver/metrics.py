"""The server's Prometheus metrics, with no I/O: counters and histograms in, exposition text out.

    metrics = ServerMetrics()
    metrics.answered("udp", reply, qtype, "authority", 0.00012, hops=())   # the hot path, per query
    text = metrics.render()                                                 # what /metrics serves

Hand-written rather than `prometheus_client`: the UDP path answers ~20k queries a second on one
core, and one answered query costs here one dict lookup, one `bisect` and two additions (about a
microsecond), against a lock and a label lookup per child metric there. The text
follows the exposition format 0.0.4 (`# HELP`, `# TYPE`, cumulative `_bucket{le=...}`, `_sum`,
`_count`); the test reads it with `prometheus_client`'s own parser.

What is counted where:
- on the hot path (`answered`): queries by transport, RCODE and QTYPE; their latency (bytes in to
  reply ready) by the chain handler that answered (`wirecache` for wire cache hits, `none` when no
  handler took the query, `rejected` for a packet the chain never saw, `edns` for BADVERS); one
  latency per routing step by the classifier stage that decided it; zone transfers and UPDATEs,
  told apart by the answering handler (`transfer` and QTYPE AXFR/IXFR, `update`), so that their
  handlers stay untouched.
- read from their owners at scrape time (`Source`s: nothing to keep in step): wire cache and
  semantic cache hits and misses, RRL drops and slips, engines up and down (the health
  monitor's registrations), zone serials, query-log lines and drops.

Label values come from fixed sets (a QTYPE outside `QTYPES` is `other`; RCODEs are the 16 of the
header), so no client can grow the number of series.
"""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import dns.rcode
import dns.rdatatype

from zones.reload import zone_serial

if TYPE_CHECKING:
    from nameserver.querylog import QueryLog
    from nameserver.resolver.semcache import SemanticCache
    from nameserver.rrl import RateLimiter
    from nameserver.update.registry import Registration
    from nameserver.wirecache import WireCache
    from routing.descend import Hop
    from zones.catalog import ZoneStore

# seconds: a wire cache hit takes ~10 us, an authoritative answer ~50 us, an embedded question
# a few ms, a deep or shed one up to the encoder deadline, a recursive one up to seconds
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)
PREFIX = "semdns"
QTYPES = frozenset({
    "A", "AAAA", "NS", "SOA", "CNAME", "PTR", "MX", "TXT", "SRV", "NAPTR", "DS", "DNSKEY", "SVCB", "HTTPS",
    "CAA", "URI", "ANY", "AXFR", "IXFR",
})
KNOWN_QTYPES = frozenset({*(int(dns.rdatatype.from_text(t)) for t in QTYPES), -1})
OTHER_QTYPE = -2
QTYPE_LABELS: dict[int, str] = {int(dns.rdatatype.from_text(t)): t for t in QTYPES}
QTYPE_LABELS[-1] = "none"  # no question could be read
QTYPE_LABELS[OTHER_QTYPE] = "other"
RCODE_LABELS: dict[int, str] = {i: dns.rcode.to_text(dns.rcode.Rcode.make(i)) if i in set(dns.rcode.Rcode) else str(i)
                                for i in range(16)}
RCODE_LABELS[-1] = "none"  # no reply at all (a dropped packet)
AXFR, IXFR = int(dns.rdatatype.AXFR), int(dns.rdatatype.IXFR)
QUESTION_START = 12

Sample = tuple[str, dict[str, str], float]  # (metric name with suffix, labels, value)
Source = Callable[[], Iterable[tuple["Family", Sample]]]


class Family:
    """One metric's name, type and help text."""

    __slots__ = ("name", "kind", "help")

    def __init__(self, name: str, kind: str, help: str) -> None:
        self.name = f"{PREFIX}_{name}"
        self.kind = kind
        self.help = help

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def sample(self, value: float, suffix: str = "", **labels: str) -> tuple["Family", Sample]:
        return self, (self.name + suffix, labels, value)


class Histogram:
    """Fixed buckets; `counts[i]` holds the observations in bucket i alone (the last: above every
    bound), made cumulative when rendered."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def add(self, cell: Sequence[float]) -> None:
        """Add a cell of `ServerMetrics` (bucket counts, then the sum of the values)."""
        for index, count in enumerate(cell[:-1]):
            self.counts[index] += int(count)
        self.total += cell[-1]

    def samples(self, family: Family, **labels: str) -> Iterator[tuple[Family, Sample]]:
        cumulative = 0
        for bound, count in zip(self.bounds, self.counts):
            cumulative += count
            yield family.sample(cumulative, "_bucket", **labels, le=_number(bound))
        cumulative += self.counts[-1]
        yield family.sample(cumulative, "_bucket", **labels, le="+Inf")
        yield family.sample(self.total, "_sum", **labels)
        yield family.sample(cumulative, "_count", **labels)


QUERIES = Family("queries_total", "counter",
                 "Queries answered (or dropped: rcode none), by transport, RCODE and QTYPE.")
LATENCY = Family("query_duration_seconds", "histogram",
                 "Seconds from a query's bytes to its reply, by the chain handler that answered.")
ROUTE_STEP = Family("route_step_duration_seconds", "histogram",
                    "Seconds of one routing step (one node of the hierarchy), by the classifier stage that decided it.")
TRANSFERS = Family("transfers_total", "counter", "Zone transfer queries answered, by type (AXFR, IXFR) and RCODE.")
UPDATES = Family("updates_total", "counter",
                 "DNS UPDATEs answered, by outcome (accepted: NOERROR; refused: any other RCODE) and RCODE.")


class ServerMetrics:
    """The counters of one server (one `DnsServer`) and the `Source`s read at scrape time.

    The hot path touches one cell per query: a list of bucket counts and the sum of seconds, kept
    per (transport, RCODE, QTYPE, handler); the families (queries by transport, RCODE and QTYPE;
    latency by handler; transfers; UPDATEs) are sums over the cells, made when rendered."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(buckets)
        self.cells: dict[tuple[str, int, int, str], list[float]] = {}
        self.route_steps: dict[str, Histogram] = {}
        self.sources: list[Source] = []

    def answered(self, transport: str, reply: bytes | None, qtype: int, handler: str, seconds: float,
                 hops: Sequence[Hop] = ()) -> None:
        """Count one query: its first reply (None: dropped), its QTYPE (-1: unknown), the chain
        handler that answered, the seconds it took, its routing steps (`routing.descend.Hop`)."""
        key = (transport, reply[3] & 0x0F if reply is not None and len(reply) > 3 else -1,
               qtype if qtype in KNOWN_QTYPES else OTHER_QTYPE, handler)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = [0.0] * (len(self.bounds) + 2)
        cell[bisect.bisect_left(self.bounds, seconds)] += 1
        cell[-1] += seconds
        if hops:
            self._route(hops)

    def hit(self, transport: str, reply: bytes, qtype: int, seconds: float) -> None:
        """`answered` for a wire cache hit (a whole reply, no routing steps), with less to check."""
        key = (transport, reply[3] & 0x0F, qtype if qtype in KNOWN_QTYPES else OTHER_QTYPE, "wirecache")
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = [0.0] * (len(self.bounds) + 2)
        cell[bisect.bisect_left(self.bounds, seconds)] += 1
        cell[-1] += seconds

    def _route(self, hops: Sequence[Hop]) -> None:
        steps = self.route_steps
        for hop in hops:
            stage = hop.decision.stage
            histogram = steps.get(stage)
            if histogram is None:
                histogram = steps[stage] = Histogram(self.bounds)
            histogram.observe(hop.seconds)

    def add_source(self, source: Source) -> None:
        """Read `source` at every scrape (the owners' own counters and gauges)."""
        self.sources.append(source)

    def samples(self) -> Iterator[tuple[Family, Sample]]:
        queries: dict[tuple[str, str, str], int] = {}
        latency: dict[str, Histogram] = {}
        transfers: dict[tuple[str, str], int] = {}
        updates: dict[str, int] = {}
        for (transport, rcode_value, qtype, handler), cell in self.cells.items():
            # the extended RCODE BADVERS (16) sits in the OPT record: the `edns` slot's answers
            rcode = "BADVERS" if handler == "edns" else RCODE_LABELS[rcode_value]
            count = int(sum(cell[:-1]))
            key = (transport, rcode, QTYPE_LABELS[qtype])
            queries[key] = queries.get(key, 0) + count
            histogram = latency.get(handler)
            if histogram is None:
                histogram = latency[handler] = Histogram(self.bounds)
            histogram.add(cell)
            if handler == "transfer" and qtype in (AXFR, IXFR):
                transfers[(QTYPE_LABELS[qtype], rcode)] = transfers.get((QTYPE_LABELS[qtype], rcode), 0) + count
            elif handler == "update":
                updates[rcode] = updates.get(rcode, 0) + count
        for (transport, rcode, qtype_label), count in sorted(queries.items()):
            yield QUERIES.sample(count, transport=transport, rcode=rcode, qtype=qtype_label)
        for handler, histogram in sorted(latency.items()):
            yield from histogram.samples(LATENCY, handler=handler)
        for stage, histogram in sorted(self.route_steps.items()):
            yield from histogram.samples(ROUTE_STEP, stage=stage)
        for (kind, rcode), count in sorted(transfers.items()):
            yield TRANSFERS.sample(count, type=kind, rcode=rcode)
        for rcode, count in sorted(updates.items()):
            yield UPDATES.sample(count, outcome="accepted" if rcode == "NOERROR" else "refused", rcode=rcode)
        for source in self.sources:
            yield from source()

    def render(self) -> str:
        """The exposition text (format 0.0.4): every family once, with its HELP and TYPE lines;
        a family without samples yet (nothing counted) is left out."""
        families: dict[str, tuple[Family, list[Sample]]] = {}
        for family, sample in self.samples():
            families.setdefault(family.name, (family, []))[1].append(sample)
        lines: list[str] = []
        for family, samples in families.values():
            lines += family.header()
            lines += [f"{name}{_labels(labels)} {_number(value)}" for name, labels, value in samples]
        return "\n".join(lines) + "\n"


def qtype_of(wire: bytes) -> int:
    """The QTYPE of a message's first question read from its wire (a reply echoes the query's),
    or -1 when its QNAME is not plain labels (`wire.question_end`)."""
    offset, size = QUESTION_START, len(wire)
    while offset < size:
        length = wire[offset]
        if length == 0:
            return int.from_bytes(wire[offset + 1:offset + 3]) if offset + 3 <= size else -1
        if length > 63:
            return -1
        offset += length + 1
    return -1


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


# --- read at scrape time from the parts that own the numbers ---------------------------------
WIRE_CACHE = Family("wire_cache_lookups_total", "counter",
                    "Wire cache lookups of plain queries, by result (hit, miss).")
WIRE_CACHE_ENTRIES = Family("wire_cache_entries", "gauge", "Answers held by the wire cache.")
SEMANTIC_CACHE = Family("semantic_cache_lookups_total", "counter",
                        "Resolver semantic cache lookups, by result (hit, miss; guarded: a miss whose close "
                        "neighbour the guard refused, counted in miss too).")
RRL = Family("rrl_limited_total", "counter", "UDP replies response rate limiting held back, by action (drop, slip).")
ENGINES = Family("engines", "gauge", "Registered engines (leased UPDATE registrations), by zone and health (up, down).")
ZONE_SERIAL = Family("zone_serial", "gauge", "The SOA serial of each zone served.")
GENERATION = Family("catalog_generation", "gauge", "The zone catalog's generation (rises with every reload or UPDATE).")
QUERY_LOG = Family("query_log_lines_total", "counter",
                   "Query log lines, by outcome (written; dropped: the queue was full).")


def wire_cache_source(cache: WireCache) -> Source:
    """Hits and misses of a `nameserver.wirecache.WireCache`."""
    def read() -> Iterator[tuple[Family, Sample]]:
        yield WIRE_CACHE.sample(cache.hits, result="hit")
        yield WIRE_CACHE.sample(cache.misses, result="miss")
        yield WIRE_CACHE_ENTRIES.sample(len(cache))
    return read


def semantic_cache_source(cache: SemanticCache) -> Source:
    """Hits, misses and guarded misses of a `nameserver.resolver.semcache.SemanticCache`."""
    def read() -> Iterator[tuple[Family, Sample]]:
        stats = cache.stats
        yield SEMANTIC_CACHE.sample(stats.hits, result="hit")
        yield SEMANTIC_CACHE.sample(stats.misses, result="miss")
        yield SEMANTIC_CACHE.sample(stats.guarded, result="guarded")
    return read


def rrl_source(limiter: RateLimiter) -> Source:
    """Drops and slips of a `nameserver.rrl.RateLimiter`."""
    def read() -> Iterator[tuple[Family, Sample]]:
        yield RRL.sample(limiter.dropped, action="drop")
        yield RRL.sample(limiter.slipped, action="slip")
    return read


def engines_source(registry: Iterable[Registration]) -> Source:
    """Registrations of a `nameserver.update.registry.Registry`, up (shown) or down (hidden by the
    health monitor), per zone; every zone with a registration has both series."""
    def read() -> Iterator[tuple[Family, Sample]]:
        counts: dict[str, list[int]] = {}
        for registration in registry:
            zone = counts.setdefault(str(registration.origin), [0, 0])
            zone[1 if registration.hidden else 0] += 1
        for zone_name, (up, down) in sorted(counts.items()):
            yield ENGINES.sample(up, zone=zone_name, state="up")
            yield ENGINES.sample(down, zone=zone_name, state="down")
    return read


def zones_source(store: ZoneStore) -> Source:
    """Serials of the zones of a `zones.catalog.ZoneStore`'s current catalog, and its generation."""
    def read() -> Iterator[tuple[Family, Sample]]:
        catalog = store.current
        yield GENERATION.sample(catalog.generation)
        for origin, zone in sorted(catalog.zones.items()):
            serial = zone_serial(zone)
            if serial is not None:
                yield ZONE_SERIAL.sample(serial, zone=origin.to_text())
    return read


def query_log_source(query_log: QueryLog) -> Source:
    """Lines written and dropped by a `nameserver.querylog.QueryLog`."""
    def read() -> Iterator[tuple[Family, Sample]]:
        yield QUERY_LOG.sample(query_log.written, outcome="written")
        yield QUERY_LOG.sample(query_log.dropped, outcome="dropped")
    return read
