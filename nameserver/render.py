"""Fast rendering of a `Reply` from pre-rendered RRsets, byte for byte what dnspython would send.

dnspython renders a reply in tens of microseconds, mostly in per-name objects. Here every RRset is
cut once into pieces (`Pieces`): its owner as a list of (lower-cased suffix, label) pairs, and per
record the fixed bytes (type, class, TTL, and the RDATA with its length when the RDATA holds no
compressible name) or the RDATA split around the names dnspython compresses (it tells us which:
we render each RDATA once with a spy as the compression table). Assembling a reply then replays
dnspython's compression (RFC 1035 §4.1.4) over those pieces with a dict keyed by lower-cased wire
suffixes: the same pointers, the same case, the same truncation rule (TC=1 and the question only
when the whole reply and its OPT record exceed the negotiated size).

`PieceCache` keeps the pieces of RRsets by identity (holding them, so an id is never reused while
its entry lives), bounded, and emptied when the zone catalog changes. Records made for one reply
come in wire form (`Reply.aliases`, `Reply.texts`) and never enter it. The OPT record carries the
reply's options (e.g. Extended DNS Errors) as dnspython writes them.
"""
from __future__ import annotations

import io
from typing import Any, Union

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from common.names import name_wire
from nameserver.edns import Negotiation
from nameserver.request import Alias, Reply, Texts
from nameserver.wire import HEADER, MAX_POINTER, QUESTION_START, RR_FIXED, TC, opt_to_wire, reply_flags

NameParts = tuple[tuple[bytes, bytes], ...]  # (lower-cased wire of the suffix, length octet + label)
RdataParts = tuple[Union[bytes, NameParts], ...]
Record = Union[bytes, tuple[bytes, RdataParts]]  # fixed tail, or (type/class/TTL, RDATA pieces)
Pieces = tuple[NameParts, tuple[Record, ...]]


def name_parts(name: dns.name.Name) -> NameParts:
    """The suffixes of an absolute name, longest first, without the root."""
    labels = name.labels
    wire = name_wire(name)
    parts = []
    offset = 0
    for label in labels[:-1]:
        parts.append((wire[offset:].lower(), wire[offset : offset + len(label) + 1]))
        offset += len(label) + 1
    return tuple(parts)


def wire_name_parts(wire: bytes, start: int, end: int) -> NameParts:
    """`name_parts` of an uncompressed name at wire[start:end] (end just past its root label)."""
    parts = []
    offset = start
    while offset < end - 1:
        size = wire[offset] + 1
        parts.append((wire[offset:end].lower(), wire[offset : offset + size]))
        offset += size
    return tuple(parts)


class _Spy(dict):
    """A compression table that never compresses and notes where each name was written."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[int, dns.name.Name]] = []

    def get(self, key: Any, default: Any = None) -> Any:
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        self.marks.append((value, key))


def rdata_parts(rdata: Any) -> RdataParts:
    """The RDATA as literal bytes and the names dnspython compresses in it."""
    if rdata.rdtype == dns.rdatatype.CNAME:
        return (name_parts(rdata.target),)  # one compressible name and nothing else (RFC 1035 §3.3.1)
    out = io.BytesIO()
    spy = _Spy()
    rdata.to_wire(out, spy, None)
    data = out.getvalue()
    parts: list[bytes | NameParts] = []
    last = 0
    for position, name in spy.marks:
        if position < last:
            continue  # a suffix of the name just taken
        parts.append(data[last:position])
        parts.append(name_parts(name))
        last = position + len(name_wire(name))
    parts.append(data[last:])
    return tuple(p for p in parts if p != b"")


def rrset_pieces(rrset: dns.rrset.RRset) -> Pieces:
    """An RRset cut into pieces (records in the RRset's order, as `want_shuffle=False` renders)."""
    fixed = RR_FIXED.pack(rrset.rdtype, rrset.rdclass, rrset.ttl)
    records: list[Record] = []
    if len(rrset) == 0:
        records.append(RR_FIXED.pack(rrset.rdtype, rrset.rdclass, 0) + b"\x00\x00")
    for rdata in rrset:
        parts = rdata_parts(rdata)
        if all(type(p) is bytes for p in parts):
            body = b"".join(parts)  # type: ignore[arg-type]
            records.append(fixed + len(body).to_bytes(2, "big") + body)
        else:
            records.append((fixed, parts))
    return name_parts(rrset.name), tuple(records)


class PieceCache:
    """Pieces of RRsets by identity, for one zone catalog at a time, at most `max_entries`."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[int, tuple[dns.rrset.RRset, Pieces]] = {}
        self._owner: Any = None

    def pieces(self, rrset: dns.rrset.RRset) -> Pieces:
        entry = self._entries.get(id(rrset))
        if entry is not None and entry[0] is rrset:
            return entry[1]
        pieces = rrset_pieces(rrset)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[id(rrset)] = (rrset, pieces)
        return pieces

    def belong_to(self, catalog: Any) -> None:
        """Forget everything when the catalog changes (its RRsets are gone)."""
        if catalog is not self._owner:
            self._entries.clear()
            self._owner = catalog


def _put_name(out: bytearray, table: dict[bytes, int], parts: NameParts) -> None:
    for key, label in parts:
        position = table.get(key)
        if position is not None:
            out += (0xC000 | position).to_bytes(2, "big")
            return
        here = len(out)
        if here <= MAX_POINTER:
            table[key] = here
        out += label
    out.append(0)


def _put_rrsets(
    out: bytearray, table: dict[bytes, int], rrsets: tuple[dns.rrset.RRset, ...], cache: PieceCache,
) -> int:
    """Append the records of `rrsets`, their pieces from `cache`."""
    count = 0
    for rrset in rrsets:
        owner, records = cache.pieces(rrset)
        for record in records:
            _put_name(out, table, owner)
            if isinstance(record, bytes):
                out += record
            else:
                fixed, parts = record
                out += fixed
                at = len(out)
                out += b"\x00\x00"
                for part in parts:
                    if isinstance(part, bytes):
                        out += part
                    else:
                        _put_name(out, table, part)
                out[at : at + 2] = (len(out) - at - 2).to_bytes(2, "big")
            count += 1
    return count


def _put_aliases(out: bytearray, table: dict[bytes, int], aliases: tuple[Alias, ...]) -> int:
    """Append CNAME records given in wire form (`Alias`), compressed as dnspython compresses them."""
    for owner, target, ttl in aliases:
        _put_name(out, table, wire_name_parts(owner, 0, len(owner)))
        out += RR_FIXED.pack(dns.rdatatype.CNAME, dns.rdataclass.IN, ttl)
        at = len(out)
        out += b"\x00\x00"
        _put_name(out, table, wire_name_parts(target, 0, len(target)))
        out[at : at + 2] = (len(out) - at - 2).to_bytes(2, "big")
    return len(aliases)


def _put_texts(out: bytearray, table: dict[bytes, int], texts: tuple[Texts, ...]) -> int:
    """Append TXT records given as character-strings (`Texts`), owners compressed as dnspython does."""
    count = 0
    for owner, ttl, records in texts:
        parts = wire_name_parts(owner, 0, len(owner))
        for strings in records:
            _put_name(out, table, parts)
            body = b"".join(bytes((len(s),)) + s for s in strings)
            out += RR_FIXED.pack(dns.rdatatype.TXT, dns.rdataclass.IN, ttl) + len(body).to_bytes(2, "big") + body
            count += 1
    return count


def render_reply(
    wire: bytes, qname_end: int, query_flags: int, reply: Reply, negotiation: Negotiation, max_udp: int,
    cache: PieceCache,
) -> bytes:
    """The reply to the plain query `wire` (its QNAME ends at `qname_end`), as dnspython renders
    `reply.to_message(request)` after `edns.apply` with `to_wire(max_size=..., want_shuffle=False)`."""
    flags = reply_flags(query_flags) | reply.flags | reply.rcode
    question = wire[QUESTION_START : qname_end + 4]
    opt = opt_to_wire(reply.options, max_udp, negotiation.do) if negotiation.present else b""
    out = bytearray(QUESTION_START)
    out += question
    table = {key: qname_end - len(key) for key, _label in wire_name_parts(wire, QUESTION_START, qname_end)}
    answers = _put_aliases(out, table, reply.aliases) if reply.aliases else 0
    answers += _put_texts(out, table, reply.texts) if reply.texts else 0
    answers += _put_rrsets(out, table, reply.answer, cache)
    authorities = _put_rrsets(out, table, reply.authority, cache)
    additionals = _put_rrsets(out, table, reply.additional, cache)
    extra = 1 if opt else 0
    if len(out) + len(opt) > negotiation.max_size:
        return HEADER.pack(wire[:2], flags | TC, 1, 0, 0, extra) + question + opt
    out[:QUESTION_START] = HEADER.pack(wire[:2], flags, 1, answers, authorities, additionals + extra)
    out += opt
    return bytes(out)
