"""Resolve dnspython's IN-only rdata classes before any untrusted record is parsed.

dnspython looks an rdata class up on first use and caches it per (class, type). For a type whose
class exists only under IN (A, AAAA, SRV, SVCB, HTTPS, NAPTR, ...), a record of class ANY (any
message may carry one: an UPDATE prerequisite, a hostile reply) caches `GenericRdata` under
(ANY, type), and dnspython consults that entry for every later IN record of the type it had not
met yet: from then on the zone line `www AAAA 2001:db8::1` fails to load ("generic rdata does
not start with \\#") and an A record read off the wire has no `.address`. One packet before the
first record of such a type poisons the process. Resolving each of them for IN once, first,
leaves nothing for that packet to change. The modules that parse zone text or DNS messages call
`resolve_in_classes()` when they are imported.
"""
from __future__ import annotations

import functools

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN


@functools.cache
def resolve_in_classes() -> tuple[type[dns.rdata.Rdata], ...]:
    """The IN rdata classes of the types only IN defines, cached in dnspython (idempotent)."""
    return tuple(dns.rdata.get_rdata_class(dns.rdataclass.IN, dns.rdatatype.from_text(name.replace("_", "-")))
                 for name in dns.rdtypes.IN.__all__)
