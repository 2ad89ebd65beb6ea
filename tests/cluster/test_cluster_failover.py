"""Resolution through a stock Unbound (in its own namespace) over the namespaced cluster, and what
it does when servers die (root): three zones (semantic.root. → legal. → contract.), each with
NS ns1 (primary), ns2 (ours), ns3 (Knot/NSD). A zone whose primary is killed (-9) still resolves
within FAILOVER seconds through its other name servers; a zone all of whose servers are killed
fails (SERVFAIL) while its parent keeps resolving."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import dns.rcode
import dns.rdatatype
import pytest
from helpers.guards import require

from tools import cluster_isolated as isolated

pytestmark = [
    pytest.mark.external,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2"),
]

REPO = Path(__file__).resolve().parents[2]
ZONES = ["semantic.root.", "legal.semantic.root.", "contract.legal.semantic.root."]
FAILOVER = 3.0  # README: a dead name server costs a resolution at most this (Unbound's timeouts, then the next NS)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[isolated.State]:
    state = isolated.up(REPO / "zonefiles", tmp_path_factory.mktemp("failover"), only=ZONES, say=lambda _t: None,
                        resolver=True)
    try:
        yield state
    finally:
        assert isolated.down(state) == []


def timed(state: isolated.State, name: str, rdtype: str) -> tuple[int | None, float]:
    start = time.monotonic()
    reply = isolated.resolve(state, name, rdtype, timeout=FAILOVER + 5)
    return (reply.rcode() if reply is not None else None), time.monotonic() - start


def test_unbound_resolves_down_the_delegations(cluster: isolated.State) -> None:
    require("external")
    reply = isolated.resolve(cluster, "_llm._tcp.contract.legal.semantic.root.", "SRV")
    assert reply is not None and reply.rcode() == dns.rcode.NOERROR
    assert reply.answer and reply.answer[0].rdtype == dns.rdatatype.SRV
    ns = isolated.resolve(cluster, "legal.semantic.root.", "NS")
    assert ns is not None and {rd.target.to_text() for rd in ns.answer[0]} == {
        f"ns{i}.legal.semantic.root." for i in (1, 2, 3)}


def test_a_dead_primary_fails_over_to_the_secondaries(cluster: isolated.State) -> None:
    legal = cluster.zones[1]
    isolated.kill(cluster, legal.primary, "primary")
    # names Unbound has not cached yet: each must come from legal's ns2/ns3
    for name, rdtype in (("_llm._tcp.litigation.legal.semantic.root.", "SRV"), ("llm1.legal.semantic.root.", "A")):
        rcode, took = timed(cluster, name, rdtype)
        assert rcode == dns.rcode.NOERROR, (name, rcode)
        assert took <= FAILOVER, f"{name}: {took:.2f} s"


def test_a_child_zone_with_every_server_dead_fails_but_its_parent_resolves(cluster: isolated.State) -> None:
    contract = cluster.zones[2]
    for node, role in ((contract.primary, "primary"), (contract.ours, "secondary"), (contract.ours, "agent"),
                       (contract.third, contract.third_kind)):
        isolated.kill(cluster, node, role)
    rcode, took = timed(cluster, "llm1.contract.legal.semantic.root.", "A")
    assert rcode in (dns.rcode.SERVFAIL, None), rcode
    rcode, took = timed(cluster, "_llm._tcp.legal.semantic.root.", "TXT")
    assert rcode == dns.rcode.NOERROR and took <= FAILOVER
