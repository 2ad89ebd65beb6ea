"""Small typed helpers over dnspython names."""
from __future__ import annotations

import dns.name
import dns.zone


def name_wire(name: dns.name.Name) -> bytes:
    """`name` in uncompressed wire form. dnspython types `Name.to_wire()` as `bytes | None` (it
    returns None when it writes to a given file); without a file it always returns the bytes."""
    wire = name.to_wire()
    assert wire is not None
    return wire


def zone_origin(zone: dns.zone.Zone) -> dns.name.Name:
    """The origin of a zone. dnspython types `Zone.origin` as optional (a zone may be made before
    its origin is known); every zone this project loads, parses or transfers has one."""
    origin = zone.origin
    assert origin is not None, "a zone without an origin"
    return origin


def name_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """A case-insensitive dict key for `name`: its labels lowercased. Keyed by itself, a name costs
    ~4 us a lookup (dnspython hashes it byte by byte in Python and compares it with `fullcompare`);
    this costs ~0.8 us, and the hot lookups of a routed question make about twenty."""
    return tuple(label.lower() for label in name.labels)
