"""The SDK section of `semdns bench resolve`: questions routed through `sdk.Client.resolve` against
the cluster's resolver, each broken down into what it cost.

Per question: its form (QNAME, or EDNS when a name cannot carry it), the transports its queries
used (udp, udp+tcp after TC, tcp), how many queries and resends, the octets both ways, the
**server** time (wall time with at least one query on the wire: the resolver, the three levels
behind it and the loopback) and the **client** time (the rest: building, parsing, the SDK's own
work). Percentiles per category (form x transports, with/without resends, first question of a
domain or not), and the totals the categories add up to.

`sequential=True` is the reference: the code path of the SDK before issue 17 (every query alone
one round trip after another, TCP after TC, no record cache). `run_interleaved` alternates the two paths
question by question (on a shared 2-core box the load changes from one minute to the next; this
way both paths meet the same load); `semdns bench resolve --sdk-reference` does it on two fresh
clusters with the parity swapped, so each path answers every question once, cold.

The machine line (`tools.machine.describe_machine`, with the load average) is printed above the figures.
"""
from __future__ import annotations

import gc
import json
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import dns.exception

from sdk import Client, SdkError
from sdk.message import Reply
from sdk.route import Route, question_form
from sdk.steps import DnsRound
from sdk.wire import Exchange, udp_round

# the stages of `routing.classifier` that decide with a MiniLM vector (the others: keyword, fast,
# none; shed and degraded when the encoder or a server could not serve)
ENCODER_STAGES = frozenset({"exemplar", "head", "embed", "deep"})


@dataclass(frozen=True)
class Breakdown:
    form: str  # "qname" | "edns"
    transports: str  # "udp", "udp+tcp", "tcp" (the union over its queries)
    queries: int
    retries: int
    octets: int  # query + reply octets of every query
    total: float  # seconds in `resolve`
    server: float  # seconds with a query on the wire
    first_of_domain: bool  # the engines' records were not cached yet (a second round was needed)
    gc_runs: int  # garbage collections during the resolve
    tcp: int = 0  # queries that went over TCP (after TC, or too large for UDP)
    failed: str = ""  # the SDK error a resolve raised (a timeout, a server failure), else ""
    encoder: bool | None = None  # a MiniLM stage decided some level (from the explain; None: unknown)

    @property
    def client(self) -> float:
        return self.total - self.server

    @property
    def category(self) -> str:
        resent, failed = " resent" if self.retries else "", " failed" if self.failed else ""
        return f"{self.form} {self.transports}{resent}{failed}"


def wire_time(exchanges: Sequence[Exchange]) -> float:
    """Seconds during which at least one exchange was under way (queries of a round overlap)."""
    spans = sorted((e.started, e.started + e.seconds) for e in exchanges)
    total, end = 0.0, float("-inf")
    for start, stop in spans:
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def ran_encoder(route: Route) -> bool | None:
    """Whether a stage that needs a MiniLM vector decided some level of `route` (its explain
    hops); None when the route carries no explain."""
    stages = [hop.get("stage") for hop in route.hops]
    return any(stage in ENCODER_STAGES for stage in stages) if stages else None


def breakdown(text: str, exchanges: Sequence[Exchange], total: float, gc_runs: int, failed: str = "",
              encoder: bool | None = None) -> Breakdown:
    used = {t for e in exchanges for t in e.transports}
    transports = "+".join(t for t in ("udp", "tcp") if t in used) or "none"
    return Breakdown(
        form="edns" if question_form(text).option is not None else "qname", transports=transports,
        queries=len(exchanges), retries=sum(e.retries for e in exchanges),
        octets=sum(e.query_octets + e.reply_octets for e in exchanges), total=total,
        server=wire_time(exchanges), first_of_domain=len(exchanges) > 2 and any(e.rdtype == "PTR" for e in exchanges),
        gc_runs=gc_runs, tcp=sum("tcp" in e.transports for e in exchanges), failed=failed, encoder=encoder,
    )


class SequentialClient(Client):
    """The reference: the pre-issue-17 exchange (each query alone, one round trip after another,
    TCP after TC, no record cache), recording the same `Exchange`s."""

    def _exchange(self, queries: DnsRound) -> list[Reply]:
        server = self.servers[0]
        replies = []
        for query in queries:
            try:
                (reply,) = udp_round([query], server, self.timeout, retry=self.timeout, observer=self.observer)
            except dns.exception.Timeout:
                raise self._timeout_error(query, [f"{server[0]}:{server[1]} timed out"]) from None
            replies.append(reply)
        return replies


def load_questions(path: Path | None, fallback: Sequence[str], limit: int | None = None) -> list[str]:
    """Texts of a JSONL file (`{"text": ...}` per line), or `fallback`."""
    if path is None:
        texts = list(fallback)
    else:
        with open(path, encoding="utf-8") as handle:
            texts = [json.loads(line)["text"] for line in handle if line.strip()]
    return texts[:limit] if limit else texts


def run_sdk(server: tuple[str, int], texts: Sequence[str], sequential: bool = False,
            explain: bool = True) -> list[Breakdown]:
    """Resolve every text once through the SDK (a fresh client: its first questions are cold)."""
    return run_interleaved(server, texts, [sequential] * len(texts), explain)[sequential]


def run_interleaved(server: tuple[str, int], texts: Sequence[str], paths: Sequence[bool],
                    explain: bool = True) -> dict[bool, list[Breakdown]]:
    """Resolve `texts[i]` through the reference path when `paths[i]`, else through the SDK, one
    client each (questions of both paths interleave in time: both see the same load)."""
    seen: list[Exchange] = []
    clients = {flag: (SequentialClient if flag else Client)([server], timeout=5.0, observer=seen.append,
                                                             explain=explain) for flag in set(paths)}
    rows: dict[bool, list[Breakdown]] = {False: [], True: []}
    for text, flag in zip(texts, paths):
        seen.clear()
        rows[flag].append(_timed(clients[flag], text, seen))
    return rows


def run_alternating(servers: Sequence[tuple[str, int]], texts: Sequence[str],
                    explain: bool = True) -> list[list[Breakdown]]:
    """Resolve every text on each server (one cold client each), the servers taking turns to go
    first question by question, so that all meet the same load: the rows per server."""
    seen: list[Exchange] = []
    clients = [Client([server], timeout=5.0, observer=seen.append, explain=explain) for server in servers]
    rows: list[list[Breakdown]] = [[] for _ in servers]
    for n, text in enumerate(texts):
        for turn in range(len(servers)):
            which = (n + turn) % len(servers)
            seen.clear()
            rows[which].append(_timed(clients[which], text, seen))
    return rows


def _timed(client: Client, text: str, seen: list[Exchange]) -> Breakdown:
    collections = sum(s["collections"] for s in gc.get_stats())
    start = time.perf_counter()
    failed = ""
    encoder = None
    try:
        encoder = ran_encoder(client.resolve(text))
    except SdkError as error:  # counted (a timeout, a server failure), not fatal to the bench
        failed = type(error).__name__
    took = time.perf_counter() - start
    return breakdown(text, seen, took, sum(s["collections"] for s in gc.get_stats()) - collections, failed,
                     encoder)


def _ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def summarise(rows: Sequence[Breakdown]) -> dict:
    """Percentiles per category and over all; counts add up to the number of questions."""
    groups: dict[str, list[Breakdown]] = defaultdict(list)
    for row in rows:
        groups["all"].append(row)
        groups[f"form {row.form}"].append(row)
        groups[row.category].append(row)
        groups["first of its domain" if row.first_of_domain else "domain's records cached"].append(row)
        if row.gc_runs:
            groups["with a GC run"].append(row)
        if row.encoder is not None:
            groups["a MiniLM stage decided" if row.encoder else "no MiniLM stage"].append(row)
    out = {}
    for name, group in groups.items():
        totals = [r.total for r in group]
        out[name] = {
            "count": len(group), "p50_ms": _ms(totals, 0.5), "p99_ms": _ms(totals, 0.99),
            "server_p50_ms": _ms([r.server for r in group], 0.5), "server_p99_ms": _ms([r.server for r in group], 0.99),
            "client_p50_ms": _ms([r.client for r in group], 0.5), "client_p99_ms": _ms([r.client for r in group], 0.99),
            "queries": statistics.mean(r.queries for r in group), "retries": sum(r.retries for r in group),
            "tcp": sum(r.tcp for r in group), "failed": sum(bool(r.failed) for r in group),
            "octets": statistics.mean(r.octets for r in group),
        }
    return out


def encoder_floor(texts: Sequence[str], gap: float = 0.002) -> dict:
    """p50/p99 ms of the server's encoder alone (the default variant and threads, in this process)
    embedding each text once, `gap` seconds apart as questions arriving one by one: the floor
    under a cold route's time, measured in the same run."""
    from nameserver.build import SemanticOptions

    options = SemanticOptions()
    encoder = options.load_encoder()
    took = []
    for text in texts:
        time.sleep(gap)
        start = time.perf_counter()
        encoder.embed([text])
        took.append(time.perf_counter() - start)
    return {"count": len(took), "p50_ms": _ms(took, 0.5), "p99_ms": _ms(took, 0.99),
            "variant": options.encoder, "threads": options.threads, "lone_threads": options.lone_threads,
            "max_tokens": options.max_tokens}


def print_sdk(title: str, summary: dict) -> None:
    print(f"\n{title}")
    print(f"{'category':<30}{'count':>6}{'p50 ms':>9}{'p99 ms':>9}{'srv p50':>9}{'srv p99':>9}"
          f"{'cli p50':>9}{'cli p99':>9}{'queries':>8}{'resent':>7}{'tcp':>5}{'failed':>7}{'octets':>8}")
    for name, row in summary.items():
        print(f"{name:<30}{row['count']:>6}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
              f"{row['server_p50_ms']:>9.2f}{row['server_p99_ms']:>9.2f}{row['client_p50_ms']:>9.2f}"
              f"{row['client_p99_ms']:>9.2f}{row['queries']:>8.2f}{row['retries']:>7}{row['tcp']:>5}{row['failed']:>7}"
              f"{row['octets']:>8.0f}")
    print("(resolve fetches no pattern library: `ask` does, by TCP; `resent`: UDP resends after the retry timer; "
          "`tcp`: queries over TCP, after TC or too large for UDP;\n `failed`: resolves that raised, timeouts "
          "among them)")
