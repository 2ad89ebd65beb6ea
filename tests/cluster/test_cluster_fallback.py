"""A semantic question through a stock Unbound falls back to the parent's general engine when the
child's only engine dies (root; issue 16): the namespaced cluster with `semantic` primaries and
secondaries of ours (semantic.root. -> legal.semantic.root., which hosts litigation), whose NS sets
then leave out Knot/NSD (they cannot synthesise the CNAMEs). Litigation's zonefile engine is
deleted by signed UPDATE and a stand-in engine (GET /health -> 200, on host e0) registers there
instead; a litigation question asked through Unbound names it. Killed (-9), within FALLBACK seconds
the answer names legal's engine (`_llm._tcp.legal.semantic.root.`, EDE 0 at the primary) from both
of legal's name servers: the primary's health monitor hides the SRV, and our secondary gets the
zone without it by IXFR (a service name without SRV is only a warning to its zone loader)."""
from __future__ import annotations

import itertools
import struct
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import dns.edns
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest
from helpers.guards import require

from codec import text_qnames
from tools import cluster_isolated as isolated
from tools import cluster_netns as netns
from zones.tsig import load_keyring

pytestmark = [
    pytest.mark.external,
    pytest.mark.usefixtures("netns_capable"),
]

REPO = Path(__file__).resolve().parents[2]
ZONES = ["semantic.root.", "legal.semantic.root."]
DOMAIN = "legal.semantic.root."
CHILD = f"litigation.{DOMAIN}"
ENGINE_PORT = 8199
UPDATE_LEASE = 2
QUESTION = "Can I sue my neighbor in small claims court"  # semantic.root -> legal -> litigation
LEASE = 300  # seconds: an engine's default; it does not run out during the test
# The primary hides a dead engine after 2 failed probes 2 s apart + 1 s timeout (5 s,
# nameserver/update/health.py); hiding bumps the serial but sends no NOTIFY, so our secondary (ns2)
# gets it at its agent's next SOA check (AGENT_REFRESH) + one IXFR and reload (2 s allowed).
# Unbound caches nothing that matters: every poll asks a question it has not seen (a fresh name),
# whose chain now ends at _llm._tcp.legal. (a name whose SRV it may hold: legal's engine).
FALLBACK = 5.0 + isolated.AGENT_REFRESH + 2.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[isolated.State]:
    state = isolated.up(REPO / "zonefiles", tmp_path_factory.mktemp("fallback"), only=ZONES, say=lambda _t: None,
                        resolver=True, semantic=True)
    try:
        yield state
    finally:
        assert isolated.down(state) == []


_fresh = itertools.count()


def ask(state: isolated.State, server: str | None = None) -> tuple[set[str], set[int]]:
    """A fresh wording of the litigation question, SRV, through Unbound (or at legal's `server`):
    the SRV targets and ports answered."""
    qname = text_qnames(f"{QUESTION} number {next(_fresh)}", "semantic.root." if server is None else DOMAIN)["q"]
    if server is None:
        reply = isolated.resolve(state, qname, "SRV", timeout=5)
    else:
        reply = netns.call_in(state.layout.hub, lambda: dns.query.udp(
            dns.message.make_query(qname, "SRV", use_edns=0), server, port=53, timeout=5))
    if reply is None or reply.rcode() != dns.rcode.NOERROR:
        return {f"rcode {dns.rcode.to_text(reply.rcode()) if reply is not None else None}"}, set()
    srv = [rd for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SRV for rd in rrset]
    return {rd.target.to_text() for rd in srv}, {rd.port for rd in srv}


def wait_until(probe: Callable[[], object], want: Callable[[object], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    seen = None
    while time.monotonic() - start < timeout:
        seen = probe()
        if want(seen):
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:g} s: last {seen}")


def signed(state: isolated.State) -> dns.update.UpdateMessage:
    keyring = load_keyring(state.update_keys)
    name = dns.name.from_text(isolated.update_key_name(DOMAIN))
    return dns.update.UpdateMessage(DOMAIN, keyring={name: keyring[name]}, keyname=name)


def send(state: isolated.State, message: dns.message.Message) -> int:
    primary = state.layout.node(state.zones[1].primary).address
    return netns.call_in(state.layout.hub, lambda: dns.query.tcp(message, primary, port=53, timeout=5).rcode())


def test_a_dead_child_engine_falls_back_to_the_parents_general_engine(cluster: isolated.State,
                                                                      tmp_path: Path) -> None:
    require("external")
    service = f"_llm._tcp.{CHILD}"
    engine = cluster.layout.node("e0")
    # litigation's zonefile engine goes: the registered one will be its only engine
    gone = signed(cluster)
    gone.delete(service, "SRV", f"10 10 8112 llm1.{CHILD}")
    gone.delete(service, "TXT")
    gone.delete(f"llm1.{CHILD}", "A")
    assert send(cluster, gone) == dns.rcode.NOERROR
    (tmp_path / "health").write_text("ok\n")
    process = isolated.start_on(cluster, "e0", "engine", [
        sys.executable, "-m", "http.server", str(ENGINE_PORT), "--bind", engine.address, "--directory", str(tmp_path)])
    register = signed(cluster)
    instance, target = f"e0.{service}", f"e0.{CHILD}"
    for owner, rdtype, text in ((service, "SRV", f"0 0 {ENGINE_PORT} {target}"), (service, "PTR", instance),
                                (instance, "SRV", f"0 0 {ENGINE_PORT} {target}"),
                                (instance, "TXT", '"txtvers=1" "model=stand-in"'), (target, "A", engine.address)):
        register.add(owner, 30, rdtype, text)
    register.use_edns(0, options=[dns.edns.GenericOption(UPDATE_LEASE, struct.pack("!I", LEASE))])
    wait_until(lambda: send(cluster, register), lambda rcode: rcode == dns.rcode.NOERROR, 10,
               "the registration accepted")
    primary = cluster.layout.node(cluster.zones[1].primary).address
    secondary = cluster.layout.node(cluster.zones[1].ours).address
    mine = ({target}, {ENGINE_PORT})
    wait_until(lambda: ask(cluster, primary), lambda seen: seen == mine, 10, "the primary answered the engine")
    # both name servers first: Unbound would keep a stale SRV of litigation for its TTL (300 s)
    wait_until(lambda: ask(cluster, secondary), lambda seen: seen == mine, 10, "ours answered the engine")
    wait_until(lambda: ask(cluster), lambda seen: seen == mine, 10, "Unbound answered the child's engine")
    process.kill()  # kill -9
    process.wait()
    killed = time.monotonic()
    general = ({f"llm1.{DOMAIN}"}, {8110})  # legal's general engine (its zonefile's)
    at_primary = wait_until(lambda: ask(cluster, primary), lambda seen: seen == general, FALLBACK + 10,
                            "the primary answered the parent's engine")
    # Unbound asks either name server of legal: both, and five fresh questions through Unbound in a row
    wait_until(lambda: [ask(cluster, secondary), *(ask(cluster) for _ in range(5))],
               lambda seen: all(s == general for s in seen), FALLBACK + 10, "Unbound answered the parent's engine")
    took = time.monotonic() - killed
    print(f"after kill -9: the primary falls back in {at_primary:.2f} s, both name servers and Unbound in "
          f"{took:.2f} s (bound {FALLBACK:g} s)")
    assert took <= FALLBACK, f"{took:.1f} s"
    assert ask(cluster, primary) == general and ask(cluster, secondary) == general
    reply = netns.call_in(cluster.layout.hub, lambda: dns.query.udp(dns.message.make_query(
        text_qnames(QUESTION, DOMAIN)["q"], "SRV", use_edns=0), primary, port=53, timeout=5))
    (ede,) = reply.options  # EDE 0 (ARCHITECTURE §7.4)
    assert isinstance(ede, dns.edns.EDEOption) and ede.code == dns.edns.EDECode.OTHER
    assert ede.text == f"no engine at _llm._tcp.{CHILD}: fallback to _llm._tcp.{DOMAIN}", ede.text
