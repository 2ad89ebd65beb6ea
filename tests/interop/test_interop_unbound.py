"""A stock Unbound, with a stub zone for `semantic.root.` pointing at our server, resolves the
shipped hierarchy's static data: what `dig @unbound` shows is what our server serves."""
from __future__ import annotations

from typing import Iterator

import pytest
from helpers.dnswire import dig, run_tool
from helpers.peers import PeerHandle, running_unbound, soa_serial
from helpers.server import REPO, ServerHandle, running_server

pytestmark = [pytest.mark.external, pytest.mark.model]

APEX = "semantic.root."


@pytest.fixture(scope="module")
def ours() -> Iterator[ServerHandle]:
    with running_server(REPO / "zonefiles") as server:
        yield server


@pytest.fixture(scope="module")
def unbound(ours: ServerHandle) -> Iterator[PeerHandle]:
    with running_unbound(stub_zone=APEX, stub_addr=(ours.host, ours.port)) as peer:
        yield peer


def dig_answer(peer: PeerHandle, ours: ServerHandle, *args: str) -> tuple[str, list[str]]:
    """dig through Unbound; return (status, answer lines) and fail with both servers' logs."""
    out = dig(peer.host, peer.port, "+noall", "+comments", "+answer", *args)
    status = next((line.split("status: ")[1].split(",")[0] for line in out.splitlines() if "status: " in line), None)
    assert status is not None, f"dig got no answer from unbound:\n{out}\n{peer.describe()}\n{ours.log()}"
    answer = [line for line in out.splitlines() if line and not line.startswith(";")]
    return status, answer


def records(answer: list[str], rdtype: str) -> list[list[str]]:
    """Answer lines of one type, split into fields (owner, ttl, class, type, rdata...)."""
    return [line.split() for line in answer if line.split()[3:4] == [rdtype]]


def test_soa_of_the_apex_through_unbound(unbound: PeerHandle, ours: ServerHandle) -> None:
    status, answer = dig_answer(unbound, ours, "SOA", "semantic.root")
    assert status == "NOERROR", f"{answer}\n{unbound.log()}"
    soa = records(answer, "SOA")
    assert len(soa) == 1, answer
    owner, _, _, _, mname, rname, serial, *_ = soa[0]
    assert (owner, mname, rname) == (APEX, "ns1.semantic.root.", "hostmaster.semantic.root.")
    assert int(serial) == soa_serial((ours.host, ours.port), APEX), ours.log()


def test_engine_srv_through_unbound_with_resolvable_target(unbound: PeerHandle, ours: ServerHandle) -> None:
    status, answer = dig_answer(unbound, ours, "SRV", "_llm._tcp.legal.semantic.root")
    assert status == "NOERROR", f"{answer}\n{unbound.log()}"
    srv = records(answer, "SRV")
    assert [fields[0] for fields in srv] == ["_llm._tcp.legal.semantic.root."], answer
    port, target = srv[0][6:8]
    assert (int(port), target) == (8110, "llm1.legal.semantic.root."), answer

    status, answer = dig_answer(unbound, ours, "A", target)
    assert status == "NOERROR", f"{answer}\n{unbound.log()}"
    assert [fields[4] for fields in records(answer, "A")] == ["127.0.0.1"], answer


def test_engine_txt_attributes_through_unbound(unbound: PeerHandle, ours: ServerHandle) -> None:
    status, answer = dig_answer(unbound, ours, "TXT", "_llm._tcp.legal.semantic.root")
    assert status == "NOERROR", f"{answer}\n{unbound.log()}"
    (txt,) = records(answer, "TXT")
    assert '"api=openai-v1"' in txt and '"txtvers=1"' in txt, answer


@pytest.mark.parametrize(
    ("name", "port"),
    [
        ("_llm._tcp.contract.legal.semantic.root", 8111),  # its own zone, delegated from legal
        ("_llm._tcp.litigation.legal.semantic.root", 8112),  # hosted inside the legal zone
        ("_llm._tcp.diagnosis.medical.semantic.root", 8121),
        ("_llm._tcp.semantic.root", 8100),
    ],
)
def test_engines_across_the_hierarchy_through_unbound(
    unbound: PeerHandle, ours: ServerHandle, name: str, port: int
) -> None:
    status, answer = dig_answer(unbound, ours, "SRV", name)
    assert status == "NOERROR", f"{answer}\n{unbound.log()}"
    assert [(f[0], int(f[6])) for f in records(answer, "SRV")] == [(name + ".", port)], answer


def test_missing_name_is_nxdomain_through_unbound(unbound: PeerHandle, ours: ServerHandle) -> None:
    status, answer = dig_answer(unbound, ours, "A", "no-such-name.legal.semantic.root")
    assert (status, answer) == ("NXDOMAIN", []), unbound.log()


def test_nslookup_srv_through_unbound(unbound: PeerHandle, ours: ServerHandle) -> None:
    out = run_tool(
        "nslookup", "-type=SRV", f"-port={unbound.port}", "_llm._tcp.legal.semantic.root", unbound.host
    )
    assert "_llm._tcp.legal.semantic.root\tservice = 10 10 8110 llm1.legal.semantic.root." in out, (
        out + "\n" + unbound.log()
    )
