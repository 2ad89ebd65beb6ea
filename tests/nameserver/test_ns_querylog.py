"""The query log (issue 15 item 4) and the routing metrics, on an in-process server with the
semantic handler (keywords decide every step: a fake encoder compiles the indexes): one JSON line
per answered query with the routing decision of each hop, the question hashed unless asked for."""
from __future__ import annotations

import asyncio
import io
import json
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Sequence

import dns.asyncquery
import dns.message
import dns.rdatatype
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from codec import text_to_qname
from nameserver.build import ObserveOptions, ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.querylog import QueryLog
from nameserver.runner import ServerRunner

APEX = "sem.test."
ZONE = f"""$ORIGIN {APEX}
$TTL 300
@ IN SOA ns1 hostmaster 2026010100 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
_llm._tcp       IN SRV 10 10 8100 llm1
llm1            IN A   127.0.0.1
_route          IN TXT "v=semroute1" "route-ttl=300" "th.keyword=0.3"
law._route      IN TXT "v=semroute1" "desc=law" "kw=court,judge,jury"
med._route      IN TXT "v=semroute1" "desc=medicine" "kw=dose,symptom"
_llm._tcp.law   IN SRV 10 10 8110 llm1.law
llm1.law        IN A   127.0.0.1
_llm._tcp.med   IN SRV 10 10 8120 llm1.med
llm1.med        IN A   127.0.0.1
"""
QUESTION = "what does a jury decide"


class _FakeEncoder:
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 8), dtype=np.float32)


@asynccontextmanager
async def serving(tmp_path: Path, log_questions: bool = False) -> AsyncIterator[tuple[ServerRunner, Path]]:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "sem.test.zone").write_text(ZONE)
    log = tmp_path / "queries.jsonl"
    config = ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False, log_questions=log_questions)
    options = ServerOptions(config=config, observe=ObserveOptions(query_log=log, count=True))
    runner = build_server(options, encoder=_FakeEncoder())
    await runner.start()
    try:
        yield runner, log
    finally:
        await runner.stop()


async def ask(runner: ServerRunner, qname: str, rdtype: int) -> dns.message.Message:
    host, port = runner.addresses[0]
    return await dns.asyncquery.udp(dns.message.make_query(qname, rdtype), host, port=port, timeout=5)


def lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


async def test_a_semantic_answer_logs_its_hops_and_hides_the_question(tmp_path: Path) -> None:
    async with serving(tmp_path) as (runner, log):
        reply = await ask(runner, text_to_qname(QUESTION, APEX), dns.rdatatype.SRV)
        assert reply.answer
        await ask(runner, APEX, dns.rdatatype.SOA)
        metrics = runner.server.metrics
        assert metrics is not None
        text = metrics.render()
    first, second = lines(log)
    assert first["handler"] == "semantic" and first["qtype"] == "SRV" and first["rcode"] == "NOERROR"
    assert first["qname"].startswith("<question ") and first["qname"].endswith(".q.sem.test.")
    assert "jury" not in json.dumps(first)
    (hop,) = first["hops"]
    assert hop["zone"] == APEX and hop["child"] == "law.sem.test." and hop["stage"] == "keyword"
    assert hop["runner_up"] == "med.sem.test." and 0 < hop["confidence"] <= 1 and hop["ms"] >= 0
    assert first["size"] == len(reply.to_wire()) and first["ms"] >= hop["ms"]
    assert second["handler"] == "authority" and second["qname"] == APEX and "hops" not in second
    assert first["client"] == "127.0.0.1" and first["transport"] == "udp" and first["time"].endswith("Z")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("semdns_route_step_duration_seconds_count", (("stage", "keyword"),))] == 1
    assert samples[("semdns_query_duration_seconds_count", (("handler", "semantic"),))] == 1


async def test_the_question_is_logged_when_the_operator_asks(tmp_path: Path) -> None:
    async with serving(tmp_path, log_questions=True) as (runner, log):
        await ask(runner, text_to_qname(QUESTION, APEX), dns.rdatatype.TXT)
    (line,) = lines(log)
    assert line["qname"] == text_to_qname(QUESTION, APEX)


async def test_a_full_queue_drops_and_counts_and_never_blocks(tmp_path: Path) -> None:
    log = QueryLog(tmp_path / "q.jsonl", max_queue=3)
    wire = dns.message.make_query(APEX, "SOA").to_wire()
    reply = dns.message.make_response(dns.message.from_wire(wire)).to_wire()
    for _ in range(5):  # not started: nothing drains the queue
        log.answered(wire, (reply,), ("192.0.2.1", 53), "udp", "authority", (), 0.001)
    assert log.dropped == 2
    await log.start()
    await asyncio.sleep(0.05)  # the writer empties the queue
    log.answered(wire, (), ("192.0.2.1", 53), "tcp", "rejected", (), 0.001)
    await log.stop()  # writes what is still queued
    written = lines(tmp_path / "q.jsonl")
    assert log.written == len(written) == 4
    assert written[-1]["rcode"] == "none" and written[-1]["size"] == 0 and written[0]["rcode"] == "NOERROR"


async def test_the_log_can_go_to_standard_output(monkeypatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    log = QueryLog("-")
    await log.start()
    wire = dns.message.make_query(APEX, "SOA").to_wire()
    log.answered(wire, (), ("2001:db8::1", 53), "tcp", "rejected", (), 0.0005)
    await log.stop()
    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["client"] == "2001:db8::1" and line["qname"] == APEX and line["qtype"] == "SOA"
    assert not out.closed  # standard output is not ours to close
