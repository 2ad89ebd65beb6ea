"""EDNS(0) (RFC 6891) negotiation, applied to replies when they are rendered.

- The client's advertised UDP size is honoured but clamped to our maximum (1232 by default) and
  never below 512; over TCP an answer may use the whole 64 KiB.
- Our reply advertises our own size, copies the DO bit, and answers version > 0 with BADVERS.
- Options the client sends are ignored (none are required of an authoritative server).
"""
from __future__ import annotations

from dataclasses import dataclass

import dns.flags
import dns.message

MIN_UDP = 512
MAX_TCP = 65535


@dataclass(frozen=True)
class Negotiation:
    """What the client's OPT record (or its absence) lets us answer."""

    present: bool
    version: int
    do: bool
    max_size: int  # the most bytes the reply may take on this transport

    @property
    def bad_version(self) -> bool:
        return self.present and self.version > 0


def negotiate(query: dns.message.Message, transport: str, max_udp: int) -> Negotiation:
    """Read the query's OPT record; `max_udp` is our configured ceiling for UDP replies."""
    present = query.edns >= 0
    if transport != "udp":
        max_size = MAX_TCP
    elif present:
        max_size = max(MIN_UDP, min(int(query.payload), max_udp))
    else:
        max_size = MIN_UDP
    do = present and bool(query.ednsflags & dns.flags.DO)
    return Negotiation(present=present, version=max(query.edns, 0), do=do, max_size=max_size)


_NEGOTIATIONS: dict[tuple[str, bool, int, int, int], Negotiation] = {}


def negotiate_plain(present: bool, payload: int, ttl: int, transport: str, max_udp: int) -> Negotiation:
    """`negotiate` for a query read from the wire: OPT present, its class (the UDP size) and TTL
    (extended RCODE, version, flags). Outcomes are shared (there are few of them)."""
    key = (transport, present, payload, ttl & 0x00FF8000, max_udp)
    known = _NEGOTIATIONS.get(key)
    if known is not None:
        return known
    if transport != "udp":
        max_size = MAX_TCP
    elif present:
        max_size = max(MIN_UDP, min(payload, max_udp))
    else:
        max_size = MIN_UDP
    version = (ttl >> 16) & 0xFF if present else 0
    do = present and bool(ttl & dns.flags.DO)
    negotiation = Negotiation(present=present, version=version, do=do, max_size=max_size)
    if len(_NEGOTIATIONS) < 4096:
        _NEGOTIATIONS[key] = negotiation
    return negotiation


def apply(reply: dns.message.Message, negotiation: Negotiation, max_udp: int) -> None:
    """Give `reply` the OPT record the negotiation calls for, keeping its RCODE and options."""
    rcode = reply.rcode()
    if not negotiation.present:
        reply.use_edns(False)
    else:
        flags = dns.flags.DO if negotiation.do else 0
        reply.use_edns(0, flags, max_udp, options=list(reply.options))
    reply.set_rcode(rcode)

