"""Which key owns each name that dynamic UPDATEs created: the memory behind "its own records".

A name that holds no record becomes the property of the key whose UPDATE first adds one to it
(first come, first owned); it stays that key's until it holds no record again (the key deleted
them, or its lease expired). Names that hold records from the zonefiles are owned by nobody
(static: only a granted key changes them). Service names (`_llm._tcp.<domain>`) are shared and
never owned: a record there belongs to the key owning its target (`authorize`).

Owners are rebuilt at start from the journal, whose lines name the key. A line written before
lines had keys gives owner None: the first key allowed to touch that name takes it over.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.zone

from nameserver.update.registry import Record

SERVICE = (b"_llm", b"_tcp")


def is_service(name: dns.name.Name) -> bool:
    """`_llm._tcp.<domain>`: the shared service name of a domain's engines."""
    return len(name) > 2 and tuple(label.lower() for label in name.labels[:2]) == SERVICE


def has_data(zone: dns.zone.Zone | None, name: dns.name.Name) -> bool:
    node = None if zone is None else zone.nodes.get(name)
    return node is not None and len(node.rdatasets) > 0


@dataclass
class Owners:
    """name -> owning key (None: unknown, from an old journal line), per zone."""

    by_zone: dict[dns.name.Name, dict[dns.name.Name, dns.name.Name | None]] = field(default_factory=dict)

    def of(self, origin: dns.name.Name) -> dict[dns.name.Name, dns.name.Name | None]:
        return self.by_zone.get(origin, {})

    def note(self, origin: dns.name.Name, before: dns.zone.Zone, after: dns.zone.Zone,
             added: tuple[Record, ...], removed: tuple[Record, ...], key: dns.name.Name | None) -> None:
        """Record the names `key` created (added to while they held nothing) and release the names
        left empty. `key` None: a journal line without a key, or a withdrawal by the server."""
        table = self.by_zone.setdefault(origin, {})
        for name, _ttl, _rdata in added:
            if is_service(name):
                continue
            if name in table:
                if table[name] is None and key is not None:
                    table[name] = key
            elif not has_data(before, name):
                table[name] = key
        for name, _ttl, _rdata in removed:
            if name in table and not has_data(after, name):
                del table[name]

    def forget(self, origin: dns.name.Name) -> None:
        """Drop a zone's owners (before its journal is replayed anew after a reload)."""
        self.by_zone.pop(origin, None)
