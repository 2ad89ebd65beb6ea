"""`semdns bench route`: the report, in-process and over UDP, on questions written for the test."""
from __future__ import annotations

import json

import dns.name
import pytest
from test_routing_classifier import QUESTIONS

from tools.bench_route import Outcome, load_queries, path_stage, report, run_baseline, run_in_process, run_wire

APEX = dns.name.from_text("semantic.root.")


def write_queries(tmp_path) -> list:
    path = tmp_path / "queries.jsonl"
    path.write_text("".join(json.dumps({"text": t, "domain": d, "extra": 1}) + "\n"
                            for d, texts in QUESTIONS.items() for t in texts[:1]))
    return load_queries(path)


def test_path_stage_is_the_slowest_step() -> None:
    assert path_stage(["keyword", "keyword"]) == "keyword"
    assert path_stage(["keyword", "embed"]) == "embed"
    assert path_stage(["deep", "keyword"]) == "deep"
    # a fast head's step needs no model: a path that also ran MiniLM counts as the MiniLM stage
    assert path_stage(["fast", "keyword"]) == "fast" and path_stage(["fast", "head"]) == "head"
    assert path_stage([]) == "none"


def test_report_tables() -> None:
    outcomes = [Outcome("legal", "legal", "keyword", 0.4), Outcome("legal", "finance", "embed", 5.0),
                Outcome("code", "code", "embed", 4.0)]
    text = report("t", outcomes)
    assert "accuracy (top level): 0.6667" in text
    assert "legal 0.500" in text and "code 1.000" in text
    assert text.count("\n") > 8 and "keyword" in text and "p99" in text


def test_in_process_and_baseline(tmp_path, shipped, indexes, classifier, encoder) -> None:
    queries = write_queries(tmp_path)
    outcomes = run_in_process(queries, shipped, APEX, indexes, classifier, encoder)
    assert [o.predicted for o in outcomes] == [q.domain for q in queries]
    assert all(o.stage in {"keyword", "exemplar", "head", "embed", "deep"} for o in outcomes)
    baseline = run_baseline(queries, indexes.get(shipped.zones[APEX], APEX), encoder)
    assert len(baseline) == len(queries) and all(o.stage == "embed" for o in baseline)


async def test_over_udp(tmp_path, shipped_server) -> None:
    import asyncio

    queries = write_queries(tmp_path)
    loop = asyncio.get_running_loop()
    outcomes = await loop.run_in_executor(None, run_wire, queries, shipped_server[0], shipped_server[1],
                                          dns.name.from_text("semantic.root."))
    assert [o.predicted for o in outcomes] == [q.domain for q in queries]
    assert all(o.stage in {"keyword", "exemplar", "head", "embed", "deep"} for o in outcomes)


@pytest.mark.model
def test_the_bench_reads_as_many_tokens_as_it_is_told(tmp_path, capsys) -> None:
    """`semdns bench route --encoder-max-tokens N` routes with an encoder that reads N word pieces,
    and says so in its title; a count out of range is refused as `semdns serve` refuses it."""
    from tools.cli import main

    write_queries(tmp_path)
    assert main(["bench", "route", str(tmp_path / "queries.jsonl"), "--in-process", "--encoder-max-tokens", "16",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "encoder int8 reading 16 tokens, fast heads on" in out and "accuracy (top level): " in out
    with pytest.raises(SystemExit):
        main(["bench", "route", str(tmp_path / "queries.jsonl"), "--in-process", "--encoder-max-tokens", "4"])
    assert "--encoder-max-tokens: 4: between 8 and 256" in capsys.readouterr().err
