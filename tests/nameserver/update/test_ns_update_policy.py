"""The update policy over the wire (issue 12): with only an engine's key, UPDATE could rewrite the
`contract` NS, add a `tort` delegation, repoint the static `_llm._tcp.legal` SRV, rewrite
`_route` profiles and replace the `_codec` header. Now an engine key registers and removes its
own engines only; the rest is REFUSED (EDE 18 saying why) and changes nothing; a granted key
does it. A real `semdns serve` on the shipped zones, dnspython UPDATEs signed with TSIG."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import dns.rcode
import dns.update
import pytest
from helpers.server import ServerHandle, running_server
from helpers.shipped import ZONEFILES
from helpers.updates import ZONE, Key, ask, ede_text, registration, send, serial, update, write_keys

SERVICE = f"_llm._tcp.{ZONE}"
STATIC_SRV = ["10 10 8110 llm1.legal.semantic.root."]


KEY_FILE = "keys.conf"


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def keys(key_dir: Path) -> dict[str, Key]:
    return write_keys(key_dir / KEY_FILE, "engine", "other", "capped", "admin")


def serve(tmp: Path, key_dir: Path, policy: str) -> Iterator[ServerHandle]:
    (tmp / "policy.conf").write_text(policy)
    flags = ["--no-semantic", "--tsig-keys", str(key_dir / KEY_FILE), "--journal", str(tmp / "journal"),
             "--update-policy", str(tmp / "policy.conf")]
    with running_server(ZONEFILES, flags) as server:
        yield server


@pytest.fixture(scope="module")
def server(keys: dict[str, Key], key_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """The engine rule for every key (`admin` is granted nothing here), 12 records per key."""
    yield from serve(tmp_path_factory.mktemp("engine-rule"), key_dir, "limit per-key 12;\n")


@pytest.fixture
def granted(keys: dict[str, Key], key_dir: Path, tmp_path: Path) -> Iterator[ServerHandle]:
    """`admin` granted the whole legal zone."""
    yield from serve(tmp_path, key_dir, f"grant admin.{ZONE} zone {ZONE};\n")


def refused_unchanged(server: ServerHandle, message: dns.update.UpdateMessage, says: str) -> None:
    before = serial(server)
    reply = send(server, message)
    assert reply.rcode() == dns.rcode.REFUSED, dns.rcode.to_text(reply.rcode())
    assert says in ede_text(reply), ede_text(reply)
    assert serial(server) == before


def test_engine_key_registers_and_removes_its_engine(server: ServerHandle, keys: dict[str, Key]) -> None:
    """The default policy lets an engine do what `engines/registration.py` does (the demo)."""
    assert send(server, registration(keys["engine"], "llm-9001", 9001)).rcode() == dns.rcode.NOERROR
    assert "0 0 9001 llm-9001.legal.semantic.root." in ask(server, SERVICE, "SRV")
    assert ask(server, f"llm-9001.{ZONE}", "A") == ["127.0.0.1"]
    # a renewal (the same UPDATE again) is accepted too
    assert send(server, registration(keys["engine"], "llm-9001", 9001)).rcode() == dns.rcode.NOERROR
    assert send(server, registration(keys["engine"], "llm-9001", 9001, delete=True)).rcode() == dns.rcode.NOERROR
    assert ask(server, SERVICE, "SRV") == STATIC_SRV
    assert ask(server, f"llm-9001.{ZONE}", "A") == []
    # deregistering again (say after the lease expired) deletes nothing: NOERROR, no serial rise
    before = serial(server)
    assert send(server, registration(keys["engine"], "llm-9001", 9001, delete=True)).rcode() == dns.rcode.NOERROR
    assert serial(server) == before


Fill = Callable[[dns.update.UpdateMessage], object]
ENGINE_REFUSALS: list[tuple[str, Fill, str]] = [
    ("contract NS", lambda u: u.replace("contract", 300, "NS", "ns.evil.example."), "NS records (delegations)"),
    ("tort delegation", lambda u: u.add("tort", 300, "NS", "ns.evil.example."), "NS records (delegations)"),
    ("glue under a cut", lambda u: u.add("ns1.contract", 300, "A", "192.0.2.66"), "below the delegation contract"),
    ("DS", lambda u: u.add("contract", 300, "DS", "12345 8 2 " + "00" * 32), "DS records (delegations)"),
    ("static SRV replaced", lambda u: u.replace("_llm._tcp", 300, "SRV", "0 0 9999 evil.example."),
     "deleting every SRV at the service name"),
    ("static SRV target's address", lambda u: u.replace("llm1", 300, "A", "192.0.2.66"),
     "holds records this key did not add"),
    ("SRV to a static target", lambda u: u.add("_llm._tcp", 300, "SRV", "0 0 9999 llm1"),
     "its target: llm1.legal.semantic.root. holds records this key did not add"),
    ("service TXT", lambda u: u.add("_llm._tcp", 300, "TXT", '"model=evil"'), "only SRV and PTR"),
    ("_route profile", lambda u: u.replace("litigation._route", 300, "TXT", '"v=semroute1" "keywords=evil"'),
     "routing profiles (_route) need a granted key"),
    ("_codec header", lambda u: u.replace("_codec", 300, "TXT", '"v=semcodec2"'),
     "the pattern library (_codec) need a granted key"),
    ("made-up host name", lambda u: u.add("www", 300, "A", "192.0.2.80"), "www.legal.semantic.root. is not this key's"),
    ("CNAME at an instance", lambda u: u.add("x._llm._tcp", 300, "CNAME", "evil.example."), "may add SRV TXT only"),
]


@pytest.mark.parametrize(("what", "fill", "says"), ENGINE_REFUSALS, ids=[r[0] for r in ENGINE_REFUSALS])
def test_engine_key_is_refused_beyond_its_engines(server: ServerHandle, keys: dict[str, Key], what: str,
                                                  fill: Fill, says: str) -> None:
    refused_unchanged(server, update(keys["engine"], fill), says)
    assert ask(server, SERVICE, "SRV") == STATIC_SRV
    assert ask(server, f"contract.{ZONE}", "NS") == [f"ns1.contract.{ZONE}"]
    assert ask(server, f"llm1.{ZONE}", "A") == ["127.0.0.1"]


def test_a_refused_record_refuses_the_whole_update(server: ServerHandle, keys: dict[str, Key]) -> None:
    message = registration(keys["engine"], "llm-9002", 9002)
    message.add(dns.name.from_text(f"litigation._route.{ZONE}"), 300, "TXT", '"v=semroute1"')
    refused_unchanged(server, message, "routing profiles (_route)")
    assert ask(server, SERVICE, "SRV") == STATIC_SRV  # the registration part did not apply either


def test_another_keys_engine_is_out_of_reach(server: ServerHandle, keys: dict[str, Key]) -> None:
    theirs = f"llm-9101._llm._tcp.{ZONE}"
    target = f"llm-9101.{ZONE}"
    assert send(server, registration(keys["other"], "llm-9101", 9101)).rcode() == dns.rcode.NOERROR
    engine = keys["engine"]
    refused_unchanged(server, update(engine, lambda u: u.delete(theirs, "SRV")), "belongs to key other.legal")
    refused_unchanged(server, update(engine, lambda u: u.add(theirs, 30, "TXT", '"model=evil"')), "belongs to key")
    refused_unchanged(server, update(engine, lambda u: u.replace(target, 30, "A", "127.0.0.66")), "belongs to key")
    refused_unchanged(server, update(engine, lambda u: u.delete(SERVICE, "PTR", theirs)), "belongs to key")
    refused_unchanged(server, update(engine, lambda u: u.add(SERVICE, 30, "SRV", f"0 0 1 {target}")),
                      "belongs to key")
    # taking over its instance name by registering the same instance with this key
    refused_unchanged(server, registration(engine, "llm-9101", 9102), "belongs to key other.legal")
    assert send(server, registration(keys["other"], "llm-9101", 9101, delete=True)).rcode() == dns.rcode.NOERROR
    assert ask(server, SERVICE, "SRV") == STATIC_SRV


def test_engine_replaces_its_own_records(server: ServerHandle, keys: dict[str, Key]) -> None:
    """The replace idiom (delete an RRset, add one) on the key's own names: its target, which
    holds only that A RRset, and its instance SRV."""
    engine = keys["engine"]
    instance, target = f"llm-9003._llm._tcp.{ZONE}", f"llm-9003.{ZONE}"
    assert send(server, registration(engine, "llm-9003", 9003)).rcode() == dns.rcode.NOERROR
    assert send(server, update(engine, lambda u: u.replace(target, 30, "A", "127.0.0.3"))).rcode() == 0
    assert ask(server, target, "A") == ["127.0.0.3"]
    assert send(server, update(engine, lambda u: u.replace(instance, 30, "SRV", f"5 5 9004 {target}"))).rcode() == 0
    assert ask(server, instance, "SRV") == [f"5 5 9004 {target}"]
    # still its own after the replace: another key may not touch it, this key may remove it all
    refused_unchanged(server, update(keys["other"], lambda u: u.delete(target)), "belongs to key engine.legal")
    cleanup = update(engine, lambda u: (u.delete(instance), u.delete(target),
                                        u.delete(SERVICE, "SRV", f"0 0 9003 {target}"),
                                        u.delete(SERVICE, "PTR", instance)))
    assert send(server, cleanup).rcode() == dns.rcode.NOERROR
    assert ask(server, SERVICE, "SRV") == STATIC_SRV and ask(server, target, "A") == []


def test_records_over_the_per_key_cap_are_refused(server: ServerHandle, keys: dict[str, Key]) -> None:
    capped = keys["capped"]
    for port in (9201, 9202):  # 5 records each: 10 of 12
        assert send(server, registration(capped, f"llm-{port}", port)).rcode() == dns.rcode.NOERROR
    refused_unchanged(server, registration(capped, "llm-9203", 9203), "would hold 15 records in legal.semantic.root. "
                      "(limit per-key 12)")
    assert ask(server, f"llm-9203.{ZONE}", "A") == []
    for port in (9201, 9202):  # removing always works
        assert send(server, registration(capped, f"llm-{port}", port, delete=True)).rcode() == dns.rcode.NOERROR
    assert send(server, registration(capped, "llm-9203", 9203)).rcode() == dns.rcode.NOERROR
    assert send(server, registration(capped, "llm-9203", 9203, delete=True)).rcode() == dns.rcode.NOERROR


def test_a_key_without_a_grant_cannot_update_another_zone(server: ServerHandle, keys: dict[str, Key]) -> None:
    message = update(keys["engine"], lambda u: u.add("x", 300, "TXT", '"hello"'), zone="contract.legal.semantic.root.")
    reply = send(server, message)
    assert reply.rcode() == dns.rcode.REFUSED and "may not update contract.legal.semantic.root." in ede_text(reply)


def test_granted_key_does_what_the_engine_key_may_not(granted: ServerHandle, keys: dict[str, Key]) -> None:
    admin = keys["admin"]
    for what, fill, _says in ENGINE_REFUSALS:
        if what in ("static SRV replaced", "static SRV target's address", "DS", "glue under a cut"):
            continue  # checked below with their effects
        refused_unchanged(granted, update(keys["engine"], fill), "")  # the engine key still may not
        reply = send(granted, update(admin, fill))
        assert reply.rcode() == dns.rcode.NOERROR, (what, dns.rcode.to_text(reply.rcode()), ede_text(reply))
    assert ask(granted, f"litigation._route.{ZONE}", "TXT") == ['"v=semroute1" "keywords=evil"']
    assert ask(granted, f"_codec.{ZONE}", "TXT") == ['"v=semcodec2"']
    # the replace idiom at a name holding only that RRset (llm1: one A), and the static SRV
    assert send(granted, update(admin, lambda u: u.replace("llm1", 300, "A", "127.0.0.9"))).rcode() == 0
    assert ask(granted, f"llm1.{ZONE}", "A") == ["127.0.0.9"]
    assert send(granted, update(admin, lambda u: u.replace("_llm._tcp", 300, "SRV", "0 0 9999 llm1"))).rcode() == 0
    assert ask(granted, SERVICE, "SRV") == ["0 0 9999 llm1.legal.semantic.root."]
    # the SOA and the apex NS stay out of reach of every key
    reply = send(granted, update(admin, lambda u: u.add("@", 300, "NS", "ns.evil.example.")))
    assert reply.rcode() == dns.rcode.REFUSED
