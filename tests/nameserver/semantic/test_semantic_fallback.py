"""The general-engine fallback: a chain that would end at a `_llm._tcp` without SRV records
goes to the nearest hosted ancestor's engines instead (issue 5 item 5).

Small zones written by the test; keywords decide every step (a fake encoder compiles the
indexes), and a real server answers on a free loopback port.

    sem.test.               engine 8100; children law (keywords court, judge), med (dose)
    law.sem.test.           hosted in sem.test; engine 8110; children trial (jury), appeal (appeal)
    trial.law.sem.test.     no engine at all
    appeal.law.sem.test.    engine 8112
    med.sem.test.           its own zone (delegated, hosted here too); no engine
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Sequence

import dns.asyncquery
import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import numpy as np
import pytest

from codec import text_to_qname
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.update.dynamic import DynamicZones
from routing.descend import general_engine
from zones.catalog import ZoneStore
from zones.loader import load_directory

APEX = "sem.test."
SOA = "@ IN SOA ns1 hostmaster 2026010100 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n"
APEX_ZONE = f"""$ORIGIN sem.test.
$TTL 300
{SOA}
_llm._tcp       IN SRV 10 10 8100 llm1
llm1            IN A   127.0.0.1
_route          IN TXT "v=semroute1" "route-ttl=300" "th.keyword=0.3"
law._route      IN TXT "v=semroute1" "desc=law" "kw=court,judge,jury,appeal"
med._route      IN TXT "v=semroute1" "desc=medicine" "kw=dose,symptom"
med             IN NS  ns1.med
ns1.med         IN A   127.0.0.1
_llm._tcp.law   IN SRV 10 10 8110 llm1.law
llm1.law        IN A   127.0.0.1
_route.law      IN TXT "v=semroute1" "route-ttl=120" "th.keyword=0.3"
trial._route.law  IN TXT "v=semroute1" "desc=trials" "kw=jury"
appeal._route.law IN TXT "v=semroute1" "desc=appeals" "kw=appeal"
_llm._tcp.appeal.law IN SRV 10 10 8112 llm1.appeal.law
llm1.appeal.law IN A   127.0.0.1
"""
MED_ZONE = f"""$ORIGIN med.sem.test.
$TTL 300
{SOA}
"""
JURY = "what does a jury decide"  # sem -> law -> trial (no engine)
APPEAL = "how do I appeal"  # sem -> law -> appeal (engine 8112)
DOSE = "what dose is safe"  # sem -> med (own zone, no engine)


class _FakeEncoder:
    """Compiles the indexes without the model (keywords decide every question here)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 8), dtype=np.float32)


def write_zones(directory: Path, apex: str = APEX_ZONE) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "sem.test.zone").write_text(apex)
    (directory / "med.sem.test.zone").write_text(MED_ZONE)
    return directory


def load(directory: Path):
    catalog, problems = load_directory(directory)
    assert not [p for p in problems if p.is_error], problems
    return catalog


@asynccontextmanager
async def serving(zones: Path) -> AsyncIterator[tuple[tuple[str, int], ZoneStore]]:
    """(address, store) of a running server with the semantic handler over `zones`."""
    store = ZoneStore()
    store.swap(load(zones))
    config = ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False, wire_cache=False)
    runner = build_server(ServerOptions(config=config), store=store, encoder=_FakeEncoder())
    await runner.start()
    try:
        yield runner.addresses[0], store
    finally:
        await runner.stop()


@pytest.fixture
async def served(tmp_path: Path):
    """(address, store) of a server with the semantic handler over the test zones."""
    async with serving(write_zones(tmp_path / "zones")) as running:
        yield running


async def ask(address, text: str, rdtype: int, form: str = "q") -> dns.message.Message:
    query = dns.message.make_query(text_to_qname(text, APEX, form), rdtype, use_edns=0)
    return await dns.asyncquery.udp(query, address[0], port=address[1], timeout=10)


def cnames(reply: dns.message.Message) -> list[tuple[str, int]]:
    return [(str(r[0].target), r.ttl) for r in reply.answer if r.rdtype == dns.rdatatype.CNAME]


def srv_ports(reply: dns.message.Message) -> list[int]:
    return sorted(rd.port for r in reply.answer if r.rdtype == dns.rdatatype.SRV for rd in r)


def explain_records(reply: dns.message.Message) -> list[dict[str, str]]:
    return [dict(s.decode().split("=", 1) for s in rd.strings) for rd in reply.answer[0]]


def ede_texts(reply: dns.message.Message) -> list[str]:
    return [o.text for o in reply.options if o.otype == dns.edns.OptionType.EDE]


async def test_subdomain_without_srv_falls_back_to_its_parent(served) -> None:
    address, _ = served
    reply = await ask(address, JURY, dns.rdatatype.SRV)
    chain = cnames(reply)
    assert [target for target, _ in chain][:2] == [
        text_to_qname(JURY, "law.sem.test."), text_to_qname(JURY, "trial.law.sem.test.")]
    assert chain[-1] == ("_llm._tcp.law.sem.test.", 60)  # the zone's negative TTL caps the fallback
    assert srv_ports(reply) == [8110]
    assert any(str(r.name) == "llm1.law.sem.test." for r in reply.additional)
    assert "fallback to _llm._tcp.law.sem.test." in ede_texts(reply)[0]


async def test_a_chain_link_at_a_child_with_no_records_is_answered_not_nxdomain(served) -> None:
    """A resolver follows our CNAMEs and asks the link under trial.law itself: that node holds no
    record at all (no engine, no profiles; e.g. its last engine's lease ended), but its parent's
    profiles route to it, so its `q` names stay semantic: the parent's engines, never NXDOMAIN."""
    address, _ = served
    link = dns.message.make_query(text_to_qname(JURY, "trial.law.sem.test."), dns.rdatatype.SRV, use_edns=0)
    reply = await dns.asyncquery.udp(link, address[0], port=address[1], timeout=10)
    assert reply.rcode() == dns.rcode.NOERROR
    assert cnames(reply)[-1][0] == "_llm._tcp.law.sem.test." and srv_ports(reply) == [8110]


async def test_subdomain_with_srv_keeps_its_own_engine(served) -> None:
    address, _ = served
    reply = await ask(address, APPEAL, dns.rdatatype.SRV)
    assert cnames(reply)[-1] == ("_llm._tcp.appeal.law.sem.test.", 120)
    assert srv_ports(reply) == [8112]
    assert ede_texts(reply) == []
    explained = await ask(address, APPEAL, dns.rdatatype.TXT, "explain")
    assert not any("fallback" in record for record in explain_records(explained))


async def test_explain_records_the_fallback(served) -> None:
    address, _ = served
    reply = await ask(address, JURY, dns.rdatatype.TXT, "explain")
    records = sorted(explain_records(reply), key=lambda r: int(r["hop"]))
    assert [r["choice"] for r in records] == ["law.sem.test.", "trial.law.sem.test."]
    assert records[-1]["fallback"] == "_llm._tcp.law.sem.test."
    assert "fallback" not in records[0]


async def test_txt_and_cname_queries_fall_back_too(served) -> None:
    address, _ = served
    txt = await ask(address, DOSE, dns.rdatatype.TXT)
    assert cnames(txt)[-1][0] == "_llm._tcp.sem.test."  # med has no engine: the apex's
    cname = await ask(address, DOSE, dns.rdatatype.CNAME)
    assert [target for target, _ in cnames(cname)] == [text_to_qname(DOSE, "med.sem.test.")]


async def test_engines_hidden_by_health_fall_back_until_they_recover(served) -> None:
    """A registered engine that the health monitor hides leaves its name without SRV."""
    address, store = served
    dynamic = DynamicZones(store, keyring={})
    origin = dns.name.from_text(APEX)
    owner = dns.name.from_text("_llm._tcp.trial.law.sem.test.")
    srv = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SRV, "0 0 9000 llm-9000.trial.law.sem.test.")
    dynamic.apply(origin, [dns.rrset.from_rdata(owner, 30, srv)], lease=60)
    assert srv_ports(await ask(address, JURY, dns.rdatatype.SRV)) == [9000]
    (registration,) = list(dynamic.registry)
    dynamic.set_visible(origin, registration.srv_records, False)
    hidden = await ask(address, JURY, dns.rdatatype.SRV)
    assert cnames(hidden)[-1][0] == "_llm._tcp.law.sem.test." and srv_ports(hidden) == [8110]
    dynamic.set_visible(origin, registration.srv_records, True)
    assert srv_ports(await ask(address, JURY, dns.rdatatype.SRV)) == [9000]


async def test_no_engine_anywhere_keeps_the_plain_answer(tmp_path: Path) -> None:
    bare = "\n".join(line for line in APEX_ZONE.splitlines() if " SRV " not in line)
    async with serving(write_zones(tmp_path / "zones", bare)) as (address, _store):
        reply = await ask(address, JURY, dns.rdatatype.SRV)
        assert cnames(reply)[-1] == ("_llm._tcp.trial.law.sem.test.", 120)
        assert srv_ports(reply) == [] and ede_texts(reply) == []


@pytest.mark.parametrize("node, expected", [
    ("appeal.law.sem.test.", "appeal.law.sem.test."),  # its own engines
    ("trial.law.sem.test.", "law.sem.test."),  # the parent's
    ("deep.trial.law.sem.test.", "law.sem.test."),  # skips every level without engines
    ("med.sem.test.", "sem.test."),  # from a child zone up into the parent zone
    ("x.other.test.", None),  # outside every hosted zone
])
def test_general_engine_walks_up_the_hosted_levels(tmp_path: Path, node: str, expected: str | None) -> None:
    catalog = load(write_zones(tmp_path / "zones"))
    found = general_engine(catalog, dns.name.from_text(node))
    assert (str(found) if found is not None else None) == expected


def test_general_engine_skips_a_level_another_server_holds(tmp_path: Path) -> None:
    """Without med's zone here, med.sem.test. lies beyond a cut; its descendants still reach
    the apex's engines (the delegated level's engines cannot be seen from here)."""
    zones = write_zones(tmp_path / "zones")
    (zones / "med.sem.test.zone").write_text(MED_ZONE.replace("$TTL 300", "$TTL 300\n_llm._tcp IN SRV 1 1 8120 ns1"))
    catalog = load(zones)
    assert str(general_engine(catalog, dns.name.from_text("x.med.sem.test."))) == "med.sem.test."
    (zones / "med.sem.test.zone").unlink()
    catalog = load(zones)
    assert str(general_engine(catalog, dns.name.from_text("x.med.sem.test."))) == "sem.test."
