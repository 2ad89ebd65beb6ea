"""A semantic query resolved end to end by a stock Unbound (ARCHITECTURE §3): the stub zone sends
it to our server, which answers a CNAME chain down the hierarchy; Unbound follows every hop (with
QNAME minimisation on, its default) and the answer ends in the SRV (or TXT) records of an engine of
the `legal` domain. Shown with `dig` and with `nslookup`, as a user would run them."""
from __future__ import annotations

from typing import Iterator

import dns.name
import pytest
from helpers.dnswire import run_tool
from helpers.peers import PeerHandle, running_unbound
from helpers.server import REPO, ServerHandle, running_server

from codec.qname import text_to_qname

pytestmark = [pytest.mark.external, pytest.mark.model]

APEX = "semantic.root."
LEGAL = dns.name.from_text("legal.semantic.root.")
LEGAL_ENGINE_PORTS = {8110, 8111, 8112}  # legal, contract, litigation (hierarchy contract)
QUESTION = "is a verbal agreement legally binding"
QNAME = text_to_qname(QUESTION, APEX)
TEXT_LABELS = QNAME[: -len(".q." + APEX)]
DIG_WAIT = ("+tries=1", "+time=10")  # the first classification may load a model


@pytest.fixture(scope="module")
def ours() -> Iterator[ServerHandle]:
    with running_server(REPO / "zonefiles") as server:
        yield server


@pytest.fixture(scope="module")
def unbound(ours: ServerHandle) -> Iterator[PeerHandle]:
    with running_unbound(stub_zone=APEX, stub_addr=(ours.host, ours.port)) as peer:
        yield peer


def dig_answer(peer: PeerHandle, *args: str) -> tuple[str, list[list[str]], str]:
    """dig through the peer: (status, answer records split into fields, full output)."""
    out = run_tool("dig", f"@{peer.host}", "-p", str(peer.port), *DIG_WAIT, "+noall", "+comments", "+answer", *args)
    status = next((line.split("status: ")[1].split(",")[0] for line in out.splitlines() if "status: " in line), "")
    answer = [line.split() for line in out.splitlines() if line and not line.startswith(";")]
    return status, answer, out


def context(out: str, peer: PeerHandle, ours: ServerHandle) -> str:
    return f"{out}\n{peer.describe()}\n--- our server ---\n{ours.log()}"


def check_chain(answer: list[list[str]], final_type: str) -> str:
    """Check the answer is a CNAME chain from QNAME down to `final_type` records of one owner;
    return that owner. Each hop keeps the question's labels (`<text>.q.<child>.`) until the last
    one, which points at the engines of the chosen level (`_llm._tcp.<name>.`)."""
    cnames = [fields for fields in answer if fields[3] == "CNAME"]
    finals = [fields for fields in answer if fields[3] == final_type]
    assert cnames, "no CNAME in the answer section"
    assert len(cnames) + len(finals) == len(answer), "the answer holds records other than the chain"
    owner = QNAME
    for fields in cnames:
        assert fields[0].lower() == owner.lower(), f"chain broken at {fields}: expected owner {owner}"
        owner = fields[4]
        hop = dns.name.from_text(owner)
        if hop.labels[:2] != (b"_llm", b"_tcp"):
            assert owner.lower().startswith(TEXT_LABELS + ".q."), f"hop {owner} lost the question's labels"
    assert finals, f"the chain ends at {owner} without {final_type} records"
    assert {fields[0].lower() for fields in finals} == {owner.lower()}, f"{final_type} owners differ from {owner}"
    target = dns.name.from_text(owner)
    assert target.labels[:2] == (b"_llm", b"_tcp"), f"the chain ends at {owner}, not at engines"
    assert target.is_subdomain(LEGAL), f"routed to {owner}, not to a legal engine"
    return owner


def test_semantic_srv_through_unbound_with_dig(unbound: PeerHandle, ours: ServerHandle) -> None:
    status, answer, out = dig_answer(unbound, "SRV", QNAME)
    assert status == "NOERROR", context(out, unbound, ours)
    try:
        engines = check_chain(answer, "SRV")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{context(out, unbound, ours)}") from None
    srv = [fields for fields in answer if fields[3] == "SRV"]
    assert {int(fields[6]) for fields in srv} <= LEGAL_ENGINE_PORTS, out
    target = srv[0][7]
    assert target.lower() == "llm1." + engines.lower().removeprefix("_llm._tcp."), out

    status, answer, out = dig_answer(unbound, "A", target)
    assert (status, [fields[4] for fields in answer if fields[3] == "A"]) == ("NOERROR", ["127.0.0.1"]), out


def test_semantic_txt_through_unbound_ends_in_engine_attributes(unbound: PeerHandle, ours: ServerHandle) -> None:
    status, answer, out = dig_answer(unbound, "TXT", QNAME)
    assert status == "NOERROR", context(out, unbound, ours)
    try:
        check_chain(answer, "TXT")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{context(out, unbound, ours)}") from None
    txt = " ".join(" ".join(fields[4:]) for fields in answer if fields[3] == "TXT")
    assert '"txtvers=1"' in txt and '"api=' in txt, out


def test_semantic_name_has_no_address_through_unbound(unbound: PeerHandle, ours: ServerHandle) -> None:
    """A/AAAA under `q` are NODATA (never NXDOMAIN, never a CNAME): what QNAME minimisation meets.
    A question of its own: once a resolver has cached the CNAME of an SRV/TXT answer, it rightly
    answers every QTYPE at that name with the CNAME."""
    qname = text_to_qname("can an oral promise be enforced in court", APEX)
    for rdtype in ("A", "AAAA"):
        status, answer, out = dig_answer(unbound, rdtype, qname)
        assert (status, answer) == ("NOERROR", []), context(out, unbound, ours)


def test_semantic_srv_through_unbound_with_nslookup(unbound: PeerHandle, ours: ServerHandle) -> None:
    out = run_tool("nslookup", "-type=SRV", f"-port={unbound.port}", "-timeout=10", QNAME, unbound.host)
    lines = out.splitlines()
    hops = [line.split("canonical name = ")[1] for line in lines if "canonical name = " in line]
    services = [line.split("service = ")[1].split() for line in lines if "service = " in line]
    assert hops and services, context(out, unbound, ours)
    engines = dns.name.from_text(hops[-1])
    assert engines.labels[:2] == (b"_llm", b"_tcp") and engines.is_subdomain(LEGAL), context(out, unbound, ours)
    assert {int(port) for _, _, port, _ in services} <= LEGAL_ENGINE_PORTS, out
