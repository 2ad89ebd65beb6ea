"""Resolution through a stock Unbound (in its own namespace) over the namespaced cluster, and what
it does when servers die (root): three zones (semantic.root. → legal. → contract.), each with
NS ns1 (primary), ns2 (ours), ns3 (Knot/NSD). A zone whose primary is killed (-9) still resolves
within FAILOVER seconds through its other name servers; a zone all of whose servers are killed
fails (SERVFAIL) while its parent keeps resolving. An engine registered by UPDATE and killed (-9)
leaves the primary's answers within the health monitor's documented 5 s, and the registration
survives a restart of the primary (its journal)."""
from __future__ import annotations

import struct
import sys
import time
from pathlib import Path
from typing import Iterator

import dns.edns
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest
from helpers.guards import require

from tools import cluster_isolated as isolated
from tools import cluster_netns as netns
from zones.tsig import load_keyring

pytestmark = [
    pytest.mark.external,
    pytest.mark.usefixtures("netns_capable"),
]

REPO = Path(__file__).resolve().parents[2]
ZONES = ["semantic.root.", "legal.semantic.root.", "contract.legal.semantic.root."]
ENGINE_PORT = 8199
UPDATE_LEASE = 2  # the EDNS option of draft-ietf-dnssd-update-lease
ENGINE_GONE = 5.0  # nameserver/update/health.py: failures * interval + timeout = 2 * 2 + 1 s
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


def engine_srv(state: isolated.State, primary: str) -> set[int]:
    """The ports of the SRV records the zone's primary answers at _llm._tcp.legal.semantic.root."""
    address = state.layout.node(primary).address

    def ask() -> set[int]:
        query = dns.message.make_query("_llm._tcp.legal.semantic.root.", "SRV")
        reply = dns.query.udp(query, address, port=53, timeout=1)
        return {rd.port for rrset in reply.answer for rd in rrset if rrset.rdtype == dns.rdatatype.SRV}

    return netns.call_in(state.layout.hub, ask)


def wait_until(predicate, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:g} s")


def test_a_killed_engine_leaves_the_answers_and_its_registration_survives_a_restart(
        cluster: isolated.State, tmp_path: Path) -> None:
    legal = cluster.zones[1]
    engine = cluster.layout.node("e0")
    (tmp_path / "health").write_text("ok\n")  # a stand-in engine: GET /health -> 200
    argv = [sys.executable, "-m", "http.server", str(ENGINE_PORT), "--bind", engine.address,
            "--directory", str(tmp_path)]
    process = isolated.start_on(cluster, "e0", "engine", argv)
    keyring = load_keyring(cluster.update_keys)
    name = dns.name.from_text(isolated.update_key_name(legal.zone))
    message = registration({name: keyring[name]}, name, engine.address)
    primary = cluster.layout.node(legal.primary).address
    wait_until(lambda: _registered(cluster, message, primary), 10, "the registration accepted")
    wait_until(lambda: ENGINE_PORT in engine_srv(cluster, legal.primary), 10, "the engine answered")
    process.kill()  # kill -9
    process.wait()
    took = wait_until(lambda: ENGINE_PORT not in engine_srv(cluster, legal.primary), ENGINE_GONE + 5,
                      "the dead engine left the answers")
    print(f"engine withdrawn {took:.2f} s after kill -9")
    assert took <= ENGINE_GONE, f"{took:.1f} s"
    process = isolated.start_on(cluster, "e0", "engine", argv)
    isolated.kill(cluster, legal.primary, "primary")
    isolated.restart(cluster, legal.primary, "primary")  # the registration comes back from the journal
    wait_until(lambda: ENGINE_PORT in engine_srv(cluster, legal.primary), 15, "the journaled engine answered")


def _registered(state: isolated.State, message: dns.message.Message, primary: str) -> bool:
    def send() -> int:
        return dns.query.tcp(message, primary, port=53, timeout=5).rcode()

    return netns.call_in(state.layout.hub, send) == dns.rcode.NOERROR


def registration(keyring: dict, keyname: dns.name.Name, address: str) -> dns.message.Message:
    """What an engine sends (DNS-SD form, 300 s lease), signed with the zone's update key."""
    service, domain = "_llm._tcp.legal.semantic.root.", "legal.semantic.root."
    instance, target = f"e0.{service}", f"e0.{domain}"
    update = dns.update.UpdateMessage(domain, keyring=keyring, keyname=keyname)
    for owner, rdtype, text in ((service, "SRV", f"0 0 {ENGINE_PORT} {target}"), (service, "PTR", instance),
                                (instance, "SRV", f"0 0 {ENGINE_PORT} {target}"),
                                (instance, "TXT", '"txtvers=1" "model=stand-in"'), (target, "A", address)):
        update.add(owner, 30, rdtype, text)
    update.use_edns(0, options=[dns.edns.GenericOption(UPDATE_LEASE, struct.pack("!I", 300))])
    return update


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
