"""`semdns stats --metrics URL`: a compact table from a server's metrics endpoint.

Scrapes `URL` twice, `--interval` seconds apart, and prints what happened in between: queries a
second (by transport), RCODEs, the wire and semantic cache hit rates, p50/p99 latency per chain
handler and per classifier stage (from the histograms' buckets, interpolated as Prometheus'
`histogram_quantile` does), RRL drops and slips, query-log drops; then the gauges (engines up and
down, zones and serials). `--watch` refreshes the table every interval, like `top`, until Ctrl-C.

The text format is read here (a few lines: the server writes it, `nameserver/metrics.py`), so the
command needs no Prometheus package.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Iterable

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]
_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)')
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')
CLEAR = "\x1b[H\x1b[2J"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stats", help="a table of a running server's metrics (qps, rcodes, p50/p99)")
    parser.add_argument("--metrics", required=True, metavar="URL",
                        help="the server's metrics endpoint (`semdns serve --metrics`), e.g. "
                             "http://127.0.0.1:9153/metrics (a bare ADDR:PORT gets http:// and /metrics)")
    parser.add_argument("--interval", type=float, default=2.0, metavar="S",
                        help="seconds between scrapes (default 2)")
    parser.add_argument("--watch", action="store_true", help="refresh every interval until Ctrl-C")
    parser.set_defaults(func=run)


def parse(text: str) -> Samples:
    """{(sample name, sorted labels): value} of an exposition text (comments and blank lines skipped)."""
    samples: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = tuple(sorted((m["key"], _unescape(m["value"])) for m in _LABEL.finditer(match["labels"] or "")))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def total(samples: Samples, name: str, **where: str) -> float:
    """The sum of the samples of `name` whose labels include `where`."""
    wanted = set(where.items())
    return sum(v for (n, labels), v in samples.items() if n == name and wanted <= set(labels))


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """The samples of `name` summed per value of `label`."""
    out: dict[str, float] = {}
    for (n, labels), v in samples.items():
        if n == name:
            key = dict(labels).get(label)
            if key is not None:
                out[key] = out.get(key, 0.0) + v
    return out


def delta(after: Samples, before: Samples) -> Samples:
    """What the counters and histograms gained between two scrapes (a counter that went down: the
    server restarted, so its whole value)."""
    out: Samples = {}
    for key, value in after.items():
        old = before.get(key, 0.0)
        out[key] = value - old if value >= old else value
    return out


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The `q` quantile of a histogram from its cumulative (upper bound, count) buckets, linearly
    interpolated within the bucket (Prometheus' `histogram_quantile`); None without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower  # in the open bucket: the highest finite bound, as Prometheus answers
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return ordered[-1][0]


def quantiles(samples: Samples, name: str, label: str) -> dict[str, tuple[float, float | None, float | None]]:
    """{label value: (observations, p50, p99)} of the histogram `name` split by `label`."""
    groups: dict[str, list[tuple[float, float]]] = {}
    for (n, labels), v in samples.items():
        if n == f"{name}_bucket":
            found = dict(labels)
            groups.setdefault(found.get(label, ""), []).append((float(found["le"]), v))
    out = {}
    for key, buckets in sorted(groups.items()):
        count = max(c for _b, c in buckets)
        out[key] = (count, quantile(0.5, buckets), quantile(0.99, buckets))
    return out


@dataclass(frozen=True)
class Snapshot:
    samples: Samples
    at: float


def scrape(url: str, timeout: float = 5.0) -> Snapshot:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode("utf-8", "replace")
    return Snapshot(parse(text), time.monotonic())


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3f}"


def _rate(hit: float, miss: float) -> str:
    return "-" if hit + miss <= 0 else f"{hit / (hit + miss):.1%}"


def table(before: Snapshot, after: Snapshot) -> str:
    """The report of what happened between two scrapes (gauges as of the second)."""
    seconds = max(after.at - before.at, 1e-9)
    d, now = delta(after.samples, before.samples), after.samples
    queries = total(d, "semdns_queries_total")
    lines = [f"over {seconds:.1f} s: {queries / seconds:.1f} queries/s ({int(queries)} queries)"]
    transports = by_label(d, "semdns_queries_total", "transport")
    if transports:
        lines.append("  transport  " + "  ".join(f"{k} {v / seconds:.1f}/s" for k, v in sorted(transports.items())))
    rcodes = by_label(d, "semdns_queries_total", "rcode")
    if rcodes and queries:
        lines.append("  rcode      " + "  ".join(
            f"{k} {int(v)} ({v / queries:.0%})" for k, v in sorted(rcodes.items(), key=lambda kv: -kv[1]) if v))
    hits = total(d, "semdns_wire_cache_lookups_total", result="hit")
    misses = total(d, "semdns_wire_cache_lookups_total", result="miss")
    lines.append(f"  wire cache hit rate {_rate(hits, misses)} ({int(hits)} of {int(hits + misses)})")
    if any(n == "semdns_semantic_cache_lookups_total" for n, _l in now):
        hits = total(d, "semdns_semantic_cache_lookups_total", result="hit")
        misses = total(d, "semdns_semantic_cache_lookups_total", result="miss")
        lines.append(f"  semantic cache hit rate {_rate(hits, misses)} ({int(hits)} of {int(hits + misses)})")
    dropped = total(d, "semdns_rrl_limited_total", action="drop")
    slipped = total(d, "semdns_rrl_limited_total", action="slip")
    log_drops = total(d, "semdns_query_log_lines_total", outcome="dropped")
    lines.append(f"  rrl dropped {int(dropped)}  slipped {int(slipped)}   query log dropped {int(log_drops)}")
    for title, name, label in (("handler", "semdns_query_duration_seconds", "handler"),
                               ("route stage", "semdns_route_step_duration_seconds", "stage")):
        rows = {k: v for k, v in quantiles(d, name, label).items() if v[0]}
        if rows:
            lines.append(f"  {title:<12}{'count':>9}{'p50 ms':>10}{'p99 ms':>10}")
            lines += [f"  {k:<12}{int(c):>9}{_ms(p50):>10}{_ms(p99):>10}" for k, (c, p50, p99) in rows.items()]
    if any(n == "semdns_engines" for n, _l in now):
        up, down = total(now, "semdns_engines", state="up"), total(now, "semdns_engines", state="down")
        lines.append(f"  engines up {int(up)}  down {int(down)}")
    serials = by_label(now, "semdns_zone_serial", "zone")
    if serials:
        width = max(len(zone) for zone in serials) + 2
        lines.append(f"  {'zone':<{width}}serial")
        lines += [f"  {zone:<{width}}{int(serial)}" for zone, serial in sorted(serials.items())]
    return "\n".join(lines)


def normalise_url(text: str) -> str:
    url = text if "://" in text else f"http://{text}"
    return url if urllib.parse.urlsplit(url).path not in ("", "/") else url.rstrip("/") + "/metrics"


def run(args: argparse.Namespace) -> int:
    url = normalise_url(args.metrics)
    if args.interval <= 0:
        print("semdns stats: --interval must be above 0", file=sys.stderr)
        return 2
    try:
        before = scrape(url)
        while True:
            time.sleep(args.interval)
            after = scrape(url)
            report = table(before, after)
            if not args.watch:
                print(report, flush=True)
                return 0
            # a terminal: redraw in place, like top; a pipe or a file: one report after the other
            print(CLEAR + report if sys.stdout.isatty() else report + "\n", flush=True)
            before = after
    except (urllib.error.URLError, OSError) as exc:
        print(f"semdns stats: {url}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
