"""Issue 17 items 2 and 4: the SDK breakdown of `semdns bench resolve` is produced and adds up, and
the machine line names the CPU (behaviour only: no timing is asserted)."""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Iterator, Sequence

import pytest
from helpers.server import REPO, ServerHandle, running_server

from sdk.wire import Exchange
from tools import bench_resolve
from tools.bench_resolve_sdk import Breakdown, breakdown, encoder_floor, run_sdk, summarise, wire_time

LONG = " ".join(["Can my landlord keep the whole security deposit after the lease ends?"] * 6)


def exchange(started: float, seconds: float, transports: tuple[str, ...] = ("udp",), datagrams: int = 1,
             rdtype: str = "SRV") -> Exchange:
    return Exchange("x.q.semantic.root.", rdtype, False, transports, datagrams, 40, 200, seconds, "127.0.0.1:53",
                    started)


def test_wire_time_counts_overlapping_queries_once() -> None:
    assert wire_time([exchange(0.0, 0.010), exchange(0.002, 0.010), exchange(0.020, 0.005)]) == pytest.approx(0.017)


def test_breakdown_adds_up() -> None:
    rows = [breakdown("is a verbal contract binding?", [exchange(0, 0.01), exchange(0, 0.012)], 0.015, 0,
                      encoder=False),
            breakdown(LONG, [exchange(0, 0.02, ("udp", "tcp"), 2), exchange(0, 0.01),
                             exchange(0.03, 0.001, rdtype="PTR")], 0.04, 1, encoder=True)]
    assert [r.form for r in rows] == ["qname", "edns"]
    assert rows[1].transports == "udp+tcp" and rows[1].retries == 1 and rows[1].first_of_domain
    for row in rows:
        assert row.server + row.client == pytest.approx(row.total)
    summary = summarise(rows)
    assert summary["all"]["count"] == 2
    assert summary["form qname"]["count"] + summary["form edns"]["count"] == 2
    categories = [name for name in summary if name.startswith(("qname ", "edns "))]
    assert sum(summary[name]["count"] for name in categories) == 2
    assert summary["all"]["retries"] == 1 and summary["with a GC run"]["count"] == 1
    assert summary["a MiniLM stage decided"]["count"] == summary["no MiniLM stage"]["count"] == 1


@pytest.fixture(scope="module")
def shipped() -> Iterator[ServerHandle]:
    with running_server(REPO / "zonefiles") as server:
        yield server


@pytest.mark.parametrize("sequential", [False, True])
def test_run_sdk_on_a_server(shipped: ServerHandle, sequential: bool) -> None:
    texts = ["is a verbal contract binding?", LONG, "why does my java code throw a null pointer exception?"]
    rows: list[Breakdown] = run_sdk((shipped.host, shipped.port), texts, sequential=sequential)
    assert [r.form for r in rows] == ["qname", "edns", "qname"]
    for row in rows:
        assert row.transports == "udp" and row.retries == 0 and row.queries >= 2
        assert 0 < row.server <= row.total
    assert rows[0].encoder is False  # keywords at the apex, the fast head at legal (the shipped zones)


@pytest.mark.model
def test_encoder_floor_times_each_question_once() -> None:
    floor = encoder_floor(["is a verbal contract binding?", LONG, "why is the sky blue"], gap=0.0)
    assert floor["count"] == 3 and 0 < floor["p50_ms"] <= floor["p99_ms"]
    assert floor["variant"] == "int8" and floor["threads"] >= 1 and floor["max_tokens"] == 40


def test_the_bench_cluster_starts_with_or_without_the_semantic_cache(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    started: list[tuple[str, ...]] = []
    monkeypatch.setattr(bench_resolve, "_semdns", lambda *argv: started.append(argv) or 0)
    parser = argparse.ArgumentParser()
    bench_resolve.register(parser.add_subparsers())
    for flags, cached in (([], True), (["--no-semantic-cache"], False)):
        args = parser.parse_args(["resolve", *flags])
        assert bench_resolve._cluster_up(5300, tmp_path, not args.no_semantic_cache)
        assert ("--semantic-cache" in started[-1]) is cached


def test_each_single_also_is_this_checkout_with_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--sdk-single-also ARGS` (repeatable) serves this checkout once more with those `semdns serve`
    arguments, taking turns with the others; each gets its own summary."""
    served: list[tuple[Path, tuple[str, ...]]] = []

    @contextlib.contextmanager
    def serving(checkout: Path, scratch: Path, extra: tuple[str, ...] = ()) -> Iterator[tuple[str, int]]:
        served.append((checkout, extra))
        yield "127.0.0.1", 5300 + len(served)

    def alternating(servers: Sequence[tuple[str, int]], texts: Sequence[str], explain: bool) -> list[list[Breakdown]]:
        row = breakdown(texts[0], [exchange(0, 0.01)], 0.012, 0, encoder=False)
        return [[row] for _ in servers]

    monkeypatch.setattr(bench_resolve, "_serving", serving)
    monkeypatch.setattr(bench_resolve, "run_alternating", alternating)
    parser = argparse.ArgumentParser()
    bench_resolve.register(parser.add_subparsers())
    args = parser.parse_args(["resolve", "--sdk-only", "--sdk-single", "--sdk-limit", "1",
                              "--sdk-single-also", "--encoder-max-tokens 32",
                              "--sdk-single-also", "--encoder-max-tokens 32 --encoder-lone-threads 1"])
    summaries = bench_resolve._single_server(args)
    assert list(summaries) == ["single", "single_also_1", "single_also_2"]
    assert served == [(bench_resolve.REPO, ()), (bench_resolve.REPO, ("--encoder-max-tokens", "32")),
                      (bench_resolve.REPO, ("--encoder-max-tokens", "32", "--encoder-lone-threads", "1"))]
    assert all(summary["all"]["count"] == 1 for summary in summaries.values())
