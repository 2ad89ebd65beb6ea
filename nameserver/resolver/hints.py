"""Root hints: where iterative resolution starts.

A hints file is zonefile-style text: NS records for the apex the resolver treats as its root, and
A/AAAA records for those name servers. Both the Internet's `named.root` (apex `.`) and a private
hierarchy's hints (apex `semantic.root.`) read the same way::

    semantic.root.        3600 IN NS ns1.semantic.root.
    ns1.semantic.root.    3600 IN A  127.0.0.1
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.rdatatype
import dns.zonefile

from nameserver.resolver.errors import HintsError


@dataclass(frozen=True)
class NameServer:
    """One name server of a zone: its name and the addresses known for it (maybe none yet)."""

    name: dns.name.Name
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hints:
    """The resolver's root: the apex and its name servers (with addresses)."""

    apex: dns.name.Name
    servers: tuple[NameServer, ...]

    @classmethod
    def from_text(cls, text: str, where: str = "<hints>") -> "Hints":
        try:
            rrsets = dns.zonefile.read_rrsets(text, origin=dns.name.root, relativize=False, rdclass=None)
        except dns.exception.DNSException as exc:
            raise HintsError(f"{where}: not zonefile-style NS + A records: {exc}") from exc
        ns_sets = [rr for rr in rrsets if rr.rdtype == dns.rdatatype.NS]
        apexes = {rr.name for rr in ns_sets}
        if len(apexes) != 1:
            found = ", ".join(sorted(str(a) for a in apexes)) or "none"
            raise HintsError(f"{where}: expected NS records for exactly one apex, found {found}")
        addresses: dict[dns.name.Name, list[str]] = {}
        for rr in rrsets:
            if rr.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                addresses.setdefault(rr.name, []).extend(rd.address for rd in rr)
        servers = tuple(
            NameServer(rd.target, tuple(addresses.get(rd.target, ()))) for rr in ns_sets for rd in rr
        )
        if not any(s.addresses for s in servers):
            raise HintsError(f"{where}: no A/AAAA record for any of the apex's name servers")
        return cls(apex=ns_sets[0].name, servers=servers)

    @classmethod
    def from_file(cls, path: str | Path) -> "Hints":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise HintsError(f"cannot read root hints {path}: {exc.strerror}") from exc
        return cls.from_text(text, str(path))

    @classmethod
    def single(cls, apex: str, address: str, ns_name: str | None = None) -> "Hints":
        """Hints for one server, e.g. ``Hints.single("semantic.root.", "127.0.0.1")``."""
        zone = dns.name.from_text(apex)
        name = dns.name.from_text(ns_name) if ns_name else dns.name.from_text("ns1", zone)
        return cls(apex=zone, servers=(NameServer(name, (address,)),))
