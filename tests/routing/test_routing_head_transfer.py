"""A head is zone data: AXFR carries it to a secondary, which routes the same. The primary is our
server; the secondary is the transferred zone written out as a master file and served by our
server in turn (a second AXFR from it gives the same zone), then routed with the same stand-in
encoder (no model)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterator

import dns.asyncquery
import dns.message
import dns.query
import dns.zone
import numpy as np
import pytest
from helpers.server import ServerHandle, running_server
from test_routing_head import ORIGIN, PROFILES, BagOfWords, corpus

from routing.classifier import Classifier, classify
from routing.index import IndexCache
from routing.train import Candidate, train_head
from zones.check import check_zone
from zones.loader import load_directory, load_zone

QUESTIONS = ["the boat under the bridge", "fuel for the car on the road", "rain and water and engine",
             "a wheel in the river", "my tyre", "fish"]


@pytest.fixture(scope="module")
def primary_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, labels = corpus(seed=3)
    fit = train_head(BagOfWords().embed(texts), np.zeros((len(texts), 2)), labels, ("alpha", "beta"), folds=3,
                     candidates=(Candidate("mlp", 1e-3, 16),))
    zones = tmp_path_factory.mktemp("primary")
    (zones / "heads").mkdir()
    (zones / "heads" / "example.test.heads").write_text(fit.head.to_zone_fragment(ORIGIN))
    (zones / "example.test.zone").write_text(PROFILES.format(settings='"th.head=0.7"')
                                             + "$INCLUDE heads/example.test.heads example.test.\n")
    return zones


@pytest.fixture(scope="module")
def primary(primary_dir: Path) -> Iterator[ServerHandle]:
    with running_server(primary_dir, ["--no-semantic", "--axfr-allow", "127.0.0.1/32"]) as handle:
        yield handle


def axfr(server: ServerHandle) -> dns.zone.Zone:
    received = dns.zone.Zone(ORIGIN, relativize=False)
    dns.query.inbound_xfr(server.host, received, port=server.port, timeout=10)
    return received


def decisions(zones: Path) -> list[tuple]:
    catalog, problems = load_directory(zones)
    assert not [p for p in problems if p.is_error]
    index = IndexCache(BagOfWords()).get(catalog.zones[ORIGIN], ORIGIN)
    assert index is not None and index.head is not None
    found = [classify(Classifier(), index, q, BagOfWords()) for q in QUESTIONS]
    return [(d.child, d.stage, d.confidence, d.candidates, d.stopped) for d in found]


def test_secondary_routes_the_same(primary_dir: Path, primary: ServerHandle, tmp_path: Path) -> None:
    received = axfr(primary)
    secondary_dir = tmp_path / "secondary"
    secondary_dir.mkdir()
    (secondary_dir / "example.test.zone").write_text(f"$ORIGIN {ORIGIN}\n" + received.to_text(relativize=False))
    assert [p for p in check_zone(load_zone(secondary_dir / "example.test.zone")) if p.is_error] == []
    expected = decisions(primary_dir)
    assert decisions(secondary_dir) == expected
    assert any(d[0] is None for d in expected) or any(d[1] == "head" for d in expected)
    with running_server(secondary_dir, ["--no-semantic", "--axfr-allow", "127.0.0.1/32"]) as secondary:
        assert axfr(secondary) == received


def soa_serial(server: ServerHandle) -> int:
    reply = dns.query.udp(dns.message.make_query(ORIGIN, "SOA"), server.host, port=server.port, timeout=5)
    return int(reply.answer[0][0].serial)


def test_tampered_head_is_refused_and_the_old_zone_keeps_serving(primary_dir: Path, tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    shutil.copytree(primary_dir, zones)
    heads = zones / "heads" / "example.test.heads"
    text = heads.read_text()
    at = text.index('"c=0"') + 14
    tampered = text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]
    with running_server(zones, ["--no-semantic"]) as server:
        assert soa_serial(server) == 2026112301
        heads.write_text(tampered)
        zonefile = zones / "example.test.zone"
        zonefile.write_text(zonefile.read_text().replace("2026112301", "2026112302"))
        problems = [p for p in load_directory(zones)[1] if p.is_error]
        assert problems and problems[0].file.endswith("example.test.heads") and problems[0].line > 0
        assert "sha256" in problems[0].message or "base64" in problems[0].message
        server.reload()
        time.sleep(1.0)
        assert soa_serial(server) == 2026112301  # the previous zone keeps serving


async def test_explain_says_where_a_head_stopped(primary_dir: Path, tmp_path: Path) -> None:
    """Served with th.head=0.99: a mixed question stops at the node, and `explain` says why."""
    from codec import text_to_qname
    from nameserver.build import ServerOptions, build_server
    from nameserver.config import ServerConfig
    from zones.catalog import ZoneStore

    zones = tmp_path / "zones"
    shutil.copytree(primary_dir, zones)
    zonefile = zones / "example.test.zone"
    zonefile.write_text(zonefile.read_text().replace('"th.head=0.7"', '"th.head=0.99"'))
    catalog, problems = load_directory(zones)
    assert not [p for p in problems if p.is_error]
    store = ZoneStore()
    store.swap(catalog)
    config = ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False, wire_cache=False)
    runner = build_server(ServerOptions(config=config), store=store, encoder=BagOfWords())
    await runner.start()
    try:
        host, port = runner.addresses[0]
        name = text_to_qname("water and fuel on the road by the river", "example.test.", "explain")
        query = dns.message.make_query(name, "TXT", use_edns=0, payload=1232)
        reply = await dns.asyncquery.udp(query, host, port=port, timeout=10)
    finally:
        await runner.stop()
    [record] = [dict(s.decode().split("=", 1) for s in rdata.strings) for rdata in reply.answer[0]]
    assert record["stage"] == "head" and record["choice"] == "general"
    assert record["stopped"].startswith("confidence ") and record["stopped"].endswith(" < 0.99")
    assert record["runner-up"].split(":")[0] in {"alpha.example.test.", "beta.example.test."}
