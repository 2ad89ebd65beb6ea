"""Metrics (issue 15 item 3): the registry's text read back by `prometheus_client`'s own parser, and
the `/metrics` endpoint of a real `semdns serve` scraped after real queries, its counts matching
what was sent."""
from __future__ import annotations

import json
import re
import socket
import struct
import time
import urllib.request
from pathlib import Path

import dns.edns
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest
from helpers.server import REPO, ServerHandle, free_port, running_server
from helpers.shipped import shipped_serial
from helpers.testzones import write_test_zones
from prometheus_client.parser import text_string_to_metric_families

from nameserver import metrics
from nameserver.metrics import LATENCY_BUCKETS, ServerMetrics, qtype_of
from nameserver.metrics_http import parse_metrics_address
from zones.tsig import generate_key, load_keyring, write_key_file

ZONES = REPO / "zonefiles"
APEX = "semantic.root."
KEY = "engine.sem.test."


def families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """{sample name: [(labels, value)]} as `prometheus_client`'s parser reads the exposition."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def value(parsed: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(v for found, v in parsed.get(name, []) if labels.items() <= found.items())


def test_render_parses_with_an_independent_parser() -> None:
    metrics = ServerMetrics()
    reply = dns.message.make_response(dns.message.make_query(APEX, "SOA")).to_wire()
    for seconds in (0.00001, 0.0003, 0.02, 9.0):
        metrics.answered("udp", reply, int(dns.rdatatype.SOA), "authority", seconds)
    metrics.answered("tcp", None, 65280, "rejected", 0.0001)
    parsed = families(metrics.render())
    assert value(parsed, "semdns_queries_total", transport="udp", rcode="NOERROR", qtype="SOA") == 4
    assert value(parsed, "semdns_queries_total", transport="tcp", rcode="none", qtype="other") == 1
    buckets = {found["le"]: v for found, v in parsed["semdns_query_duration_seconds_bucket"]
               if found["handler"] == "authority"}
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert buckets["5e-05"] == 1 and buckets["0.0005"] == 2 and buckets["0.025"] == 3 and buckets["+Inf"] == 4
    assert value(parsed, "semdns_query_duration_seconds_count", handler="authority") == 4
    assert value(parsed, "semdns_query_duration_seconds_sum", handler="authority") == pytest.approx(9.02031)


def test_transfers_and_updates_are_told_apart_by_their_handlers() -> None:
    metrics = ServerMetrics()
    ok = dns.message.make_response(dns.message.make_query(APEX, "SOA")).to_wire()
    refused = bytearray(ok)
    refused[3] = (refused[3] & 0xF0) | 5
    metrics.answered("tcp", ok, int(dns.rdatatype.AXFR), "transfer", 0.01)
    metrics.answered("udp", ok, int(dns.rdatatype.IXFR), "transfer", 0.01)
    metrics.answered("udp", ok, int(dns.rdatatype.SOA), "update", 0.01)
    metrics.answered("udp", bytes(refused), int(dns.rdatatype.SOA), "update", 0.01)
    metrics.answered("udp", ok, int(dns.rdatatype.IXFR), "authority", 0.01)  # not a transfer: not counted
    parsed = families(metrics.render())
    assert value(parsed, "semdns_transfers_total", type="AXFR") == 1
    assert value(parsed, "semdns_transfers_total", type="IXFR") == 1
    assert value(parsed, "semdns_updates_total", outcome="accepted", rcode="NOERROR") == 1
    assert value(parsed, "semdns_updates_total", outcome="refused", rcode="REFUSED") == 1


def test_qtype_of_reads_the_question_and_refuses_pointers() -> None:
    wire = dns.message.make_query("a.b.example.", "TXT").to_wire()
    assert qtype_of(wire) == dns.rdatatype.TXT
    assert qtype_of(wire[:12] + b"\xc0\x0c\x00\x10\x00\x01") == -1
    assert qtype_of(wire[:-3]) == -1


@pytest.mark.parametrize("text, address", [
    ("9153", ("127.0.0.1", 9153)), (":9100", ("127.0.0.1", 9100)), ("0.0.0.0:9100", ("0.0.0.0", 9100)),
    ("[::1]:9100", ("::1", 9100)),
])
def test_metrics_address(text: str, address: tuple[str, int]) -> None:
    assert parse_metrics_address(text) == address


def scrape(server: ServerHandle) -> dict[str, list[tuple[dict[str, str], float]]]:
    url = next(line.split(" ", 1)[1] for line in server.stdout_lines if line.startswith("metrics: "))
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return families(response.read().decode())


def test_endpoint_counts_what_was_sent(tmp_path: Path) -> None:
    log = tmp_path / "queries.jsonl"
    args = ("--no-semantic", "--metrics", "127.0.0.1:0", "--query-log", str(log))
    with running_server(ZONES, args) as server:
        where = (server.host, server.port)
        host, port = where
        for _ in range(5):  # the same query: the first rendered, the next four from the wire cache
            dns.query.udp(dns.message.make_query(APEX, "SOA"), host, port=port, timeout=5)
        for _ in range(3):
            dns.query.tcp(dns.message.make_query(APEX, "NS"), host, port=port, timeout=5)
        for _ in range(2):
            dns.query.udp(dns.message.make_query("outside.example.", "A"), host, port=port, timeout=5)
        dns.query.udp(dns.message.make_query(APEX, 65280), host, port=port, timeout=5)  # private QTYPE: "other"
        axfr = list(dns.query.xfr(server.host, APEX, port=server.port, timeout=10))
        assert axfr
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:  # 5 octets: no header, dropped
            raw.sendto(b"\x00\x01\x02\x03\x04", where)
            raw.sendto(dns.message.make_query(APEX, "SOA").to_wire(), where)  # sent last: the drop is done
            raw.settimeout(5)
            raw.recv(2048)
        parsed = scrape(server)
    assert value(parsed, "semdns_queries_total", transport="udp", rcode="NOERROR", qtype="SOA") == 6
    assert value(parsed, "semdns_queries_total", transport="tcp", rcode="NOERROR", qtype="NS") == 3
    assert value(parsed, "semdns_queries_total", transport="udp", rcode="REFUSED", qtype="A") == 2
    assert value(parsed, "semdns_queries_total", qtype="other") == 1
    assert value(parsed, "semdns_queries_total", transport="tcp", qtype="AXFR") == 1
    assert value(parsed, "semdns_queries_total", rcode="none", qtype="none") == 1
    assert value(parsed, "semdns_queries_total") == 6 + 3 + 2 + 1 + 1 + 1
    assert value(parsed, "semdns_transfers_total", type="AXFR", rcode="NOERROR") == 1
    # SOA over UDP: rendered once, then 4 + 1 (the raw one) hits; NS over TCP: 2 hits; REFUSED is never cached
    assert value(parsed, "semdns_wire_cache_lookups_total", result="hit") == 7
    assert value(parsed, "semdns_query_duration_seconds_count", handler="wirecache") == 7
    assert value(parsed, "semdns_query_duration_seconds_count", handler="none") == 2
    assert value(parsed, "semdns_query_duration_seconds_count", handler="transfer") == 1
    assert value(parsed, "semdns_query_duration_seconds_count", handler="rejected") == 1
    answered = value(parsed, "semdns_query_duration_seconds_count")
    assert answered == value(parsed, "semdns_queries_total")
    assert value(parsed, "semdns_zone_serial", zone=APEX) == shipped_serial(APEX)
    assert value(parsed, "semdns_query_log_lines_total", outcome="dropped") == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # the server has stopped: all written
    assert len(lines) == answered
    axfr_line = next(line for line in lines if line["qtype"] == "AXFR")
    assert axfr_line["handler"] == "transfer" and axfr_line["messages"] == len(axfr)
    assert axfr_line["size"] == sum(len(m.to_wire()) for m in axfr)


def test_rate_limited_replies_are_counted() -> None:
    args = ("--no-semantic", "--metrics", "127.0.0.1:0", "--rrl-rate", "1", "--rrl-slip", "2")
    with running_server(ZONES, args, rate_limit=True) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            query = dns.message.make_query(APEX, "SOA").to_wire()
            for _ in range(10):
                raw.sendto(query, (server.host, server.port))
            raw.settimeout(0.5)
            received = 0
            try:
                while True:
                    raw.recv(2048)
                    received += 1
            except socket.timeout:
                pass
        parsed = scrape(server)
    dropped = value(parsed, "semdns_rrl_limited_total", action="drop")
    slipped = value(parsed, "semdns_rrl_limited_total", action="slip")
    assert dropped + slipped == 9 and slipped == 4  # one in the burst; every second limited one slips
    assert received == 1 + slipped


def test_the_grafana_dashboard_queries_exactly_our_metrics() -> None:
    ours = {value.name for value in vars(metrics).values() if isinstance(value, metrics.Family)}
    dashboard = json.loads((REPO / "docs" / "grafana" / "semantic-dns.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for expr in exprs for name in re.findall(r"semdns_\w+", expr)}
    assert used == ours


def test_updates_and_engine_health_of_a_running_server(tmp_path: Path) -> None:
    """A refused and an accepted UPDATE (a leased engine registration), counted; the engine, whose
    port answers nothing, goes from up to down as the health monitor probes it."""
    zones = write_test_zones(tmp_path / "zones")
    key_file = tmp_path / "keys.conf"
    write_key_file(key_file, generate_key(KEY))
    keyring = load_keyring(key_file)
    args = ("--no-semantic", "--metrics", "127.0.0.1:0", "--tsig-keys", str(key_file),
            "--health-interval", "0.2", "--health-failures", "2")
    with running_server(zones, args) as server:
        refused = dns.update.UpdateMessage("child.sem.test.", keyring=keyring, keyname=dns.name.from_text(KEY))
        refused.add("x.child.sem.test.", 60, "A", "192.0.2.9")  # the key may not update the child zone
        assert dns.query.tcp(refused, server.host, port=server.port, timeout=5).rcode() == dns.rcode.REFUSED
        update = dns.update.UpdateMessage("sem.test.", keyring=keyring, keyname=dns.name.from_text(KEY))
        update.add("_llm._tcp.sem.test.", 30, "SRV", f"0 0 {free_port()} llm-x.sem.test.")
        update.add("llm-x.sem.test.", 30, "A", "127.0.0.1")
        update.use_edns(0, options=[dns.edns.GenericOption(dns.edns.OptionType.make(2), struct.pack("!I", 60))])
        assert dns.query.tcp(update, server.host, port=server.port, timeout=5).rcode() == dns.rcode.NOERROR
        for _ in range(100):
            parsed = scrape(server)
            assert value(parsed, "semdns_engines", zone="sem.test.") == 1  # one registration, up or down
            if value(parsed, "semdns_engines", state="down") == 1:
                break
            time.sleep(0.1)
    assert value(parsed, "semdns_engines", zone="sem.test.", state="up") == 0
    assert value(parsed, "semdns_updates_total", outcome="accepted", rcode="NOERROR") == 1
    assert value(parsed, "semdns_updates_total", outcome="refused", rcode="REFUSED") == 1
    assert value(parsed, "semdns_catalog_generation") >= 1


def test_sources_read_their_owners_at_each_scrape() -> None:
    from nameserver.metrics import engines_source, semantic_cache_source
    from nameserver.resolver.semcache import SemanticStats

    class Cache:
        stats = SemanticStats(hits=3, misses=5, guarded=1, size=2)

    class Registration:
        def __init__(self, origin: str, hidden: bool) -> None:
            self.origin, self.hidden = dns.name.from_text(origin), hidden

    registrations = [Registration("a.test.", False), Registration("a.test.", True), Registration("b.test.", False)]
    metrics = ServerMetrics()
    metrics.add_source(semantic_cache_source(Cache()))
    metrics.add_source(engines_source(registrations))
    parsed = families(metrics.render())
    assert value(parsed, "semdns_semantic_cache_lookups_total", result="hit") == 3
    assert value(parsed, "semdns_semantic_cache_lookups_total", result="miss") == 5
    assert value(parsed, "semdns_engines", zone="a.test.", state="up") == 1
    assert value(parsed, "semdns_engines", zone="a.test.", state="down") == 1
    assert value(parsed, "semdns_engines", zone="b.test.", state="down") == 0
    registrations.pop()
    assert value(families(metrics.render()), "semdns_engines", zone="b.test.") == 0  # read again, not kept
