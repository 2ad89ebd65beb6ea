"""Signed DNS UPDATEs against a running `semdns serve` on the shipped zones, for policy tests.

    keys = write_keys(tmp / "keys.conf", "engine", "other", "admin")   # <name>.legal.semantic.root.
    reply = send(server, registration(keys["engine"], "llm-9001", 9001))
    assert reply.rcode() == dns.rcode.REFUSED and "..." in ede_text(reply)

`registration` builds what an engine sends (`engines/registration.py`, DNS-SD form) by hand, so
that the tests see the wire, not the engine's code.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dns.edns
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update

from helpers.server import ServerHandle
from zones.tsig import generate_key, load_keyring, write_key_file

ZONE = "legal.semantic.root."
ORIGIN = dns.name.from_text(ZONE)
UPDATE_LEASE = 2


@dataclass(frozen=True)
class Key:
    name: dns.name.Name
    keyring: dict[dns.name.Name, dns.tsig.Key]


def write_keys(path: Path, *labels: str) -> dict[str, Key]:
    """A key file with `<label>.legal.semantic.root.` for each label; the keys by label."""
    write_key_file(path, "".join(generate_key(f"{label}.{ZONE}") for label in labels))
    keyring = load_keyring(path)
    return {label: Key(dns.name.from_text(f"{label}.{ZONE}"), {dns.name.from_text(f"{label}.{ZONE}"):
                                                              keyring[dns.name.from_text(f"{label}.{ZONE}")]})
            for label in labels}


def update(key: Key, fill: Callable[[dns.update.UpdateMessage], object], zone: str = ZONE,
           lease: int | None = None) -> dns.update.UpdateMessage:
    """A signed UPDATE of `zone` (relative names are under it), with EDNS (for the EDE) and the lease."""
    message = dns.update.UpdateMessage(zone, keyring=key.keyring, keyname=key.name)
    fill(message)
    options = [] if lease is None else [dns.edns.GenericOption(UPDATE_LEASE, struct.pack("!I", lease))]
    message.use_edns(0, options=options)
    return message


def registration(key: Key, instance: str, port: int, address: str = "127.0.0.1", domain: str = ZONE,
                 delete: bool = False, lease: int | None = 60) -> dns.update.UpdateMessage:
    """What an engine sends to register (or, `delete`, to deregister) `instance` in `domain`."""
    service = f"_llm._tcp.{domain}"
    name = f"{instance}.{service}"
    target = f"{instance}.{domain}"
    rrs = [(service, "SRV", f"0 0 {port} {target}"), (service, "PTR", name), (name, "SRV", f"0 0 {port} {target}"),
           (name, "TXT", '"txtvers=1" "model=test"'), (target, "AAAA" if ":" in address else "A", address)]

    def fill(message: dns.update.UpdateMessage) -> None:
        for owner, rdtype, text in rrs:
            if delete:
                message.delete(owner, rdtype, text)
            else:
                message.add(owner, 30, rdtype, text)

    return update(key, fill, lease=None if delete else lease)


def send(server: ServerHandle, message: dns.message.Message) -> dns.message.Message:
    """Over TCP; dnspython verifies the signed answer with the request's key."""
    return dns.query.tcp(message, server.host, port=server.port, timeout=5)


def ede_text(reply: dns.message.Message) -> str:
    return " ".join(option.text or "" for option in reply.extended_errors())


def ask(server: ServerHandle, name: str, rdtype: str) -> list[str]:
    """The answer's records for `name`/`rdtype`, as text, sorted ([] for none)."""
    reply = dns.query.tcp(dns.message.make_query(name, rdtype), server.host, port=server.port, timeout=5)
    rrset = reply.get_rrset(reply.answer, dns.name.from_text(name), dns.rdataclass.IN,
                            dns.rdatatype.from_text(rdtype))
    return sorted(r.to_text() for r in rrset) if rrset is not None else []


def serial(server: ServerHandle, zone: str = ZONE) -> int:
    return int(ask(server, zone, "SOA")[0].split()[2])
