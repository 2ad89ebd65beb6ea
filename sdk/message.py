"""The SDK's DNS messages as bytes: the queries a resolution sends, the replies it reads
(RFC 1035 §4.1, RFC 6891 §6). No sockets (`sdk/wire.py` moves the bytes).

dnspython reads any message into objects: every name and record an immutable object, every
RRset hashing each record it adds. A resolution reads two small replies of a known shape (a
CNAME chain, an SRV RRset, TXT strings, addresses) per question, and that reading was half of
the SDK's time a question, so the SDK writes and reads these messages itself:

- `Query`: one question with RD and an OPT record (payload 1232, the semantic text option when
  the question travels in the EDNS form); `to_wire()`, `is_response(reply)`, and `to_message()`
  for a caller that wants dnspython's object (the tools);
- `read_reply(wire) -> Reply`: header, question, the three sections as `Record`s (owner name in
  dnspython's text form, type, class, TTL, and the rdata read for the types a route uses:
  CNAME/PTR/NS/DNAME targets, `Srv`, `Txt`, A/AAAA addresses, `Soa`; raw bytes for any
  other type), the OPT record's options and the extended RCODE. A message it cannot read raises
  `MalformedReply` (a `dns.exception.FormError`), never anything else: cut short, a label over
  63 octets or of a reserved type, a name over 255, a pointer that does not point back, rdata
  that does not fill its RDLENGTH, a second OPT.

Held to dnspython by a contract test (`tests/sdk/test_sdk_message.py`): the bytes `to_wire`
writes are those of `dns.message.make_query` for the same question and options, and what
`read_reply` reads is what `dns.message.from_wire` reads, on the shipped zones' replies and on
messages generated to hit every branch; random bytes get a `Reply` or `MalformedReply`.
"""
from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence, Union

import dns.exception
import dns.ipv4
import dns.ipv6
import dns.message
import dns.name

HEADER = struct.Struct("!HHHHHH")  # ID, flags, four counts
QUESTION_FIXED = struct.Struct("!HH")  # QTYPE, QCLASS
RR_FIXED = struct.Struct("!HHIH")  # TYPE, CLASS, TTL, RDLENGTH
SRV_FIXED = struct.Struct("!HHH")  # priority, weight, port
SOA_FIXED = struct.Struct("!IIIII")  # serial, refresh, retry, expire, minimum
OPTION_HEADER = struct.Struct("!HH")  # OPTION-CODE, OPTION-LENGTH
QR, RD, TC = 0x8000, 0x0100, 0x0200
IN = 1
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, DNAME, OPT = 1, 2, 5, 6, 12, 16, 28, 33, 39, 41
NAME_TYPES = frozenset({NS, CNAME, PTR, DNAME})  # rdata: one domain name
IN_TYPES = frozenset({A, AAAA, SRV})  # read as such in class IN only (raw bytes in another class)
UDP_PAYLOAD = 1232
MAX_NAME = 255
MAX_TTL = 0x7FFFFFFF
# octets dnspython writes as they are in a name's text; the others are escaped (`\\.` or `\\DDD`)
_PLAIN = bytes(c for c in range(0x21, 0x7F) if c not in b'"().;\\@$')


class MalformedReply(dns.exception.FormError):
    """A reply the SDK cannot read (what dnspython's parser refuses too)."""


class Srv(NamedTuple):
    priority: int
    weight: int
    port: int
    target: str


class Soa(NamedTuple):
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


class Txt(NamedTuple):
    strings: tuple[bytes, ...]


# CNAME/PTR/NS/DNAME: the target's text; A/AAAA: the address's text; any other type: its bytes
RData = Union[str, Srv, Soa, Txt, bytes]


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # absolute, as dnspython writes it (`Name.to_text()`), case as received
    rdtype: int
    rdclass: int
    ttl: int
    data: RData


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    flags: int
    rcode: int  # with the OPT record's extended bits
    question: tuple[tuple[str, int, int], ...]  # (name, type, class)
    answer: tuple[Record, ...]
    authority: tuple[Record, ...]
    additional: tuple[Record, ...]  # without the OPT record
    options: tuple[tuple[int, bytes], ...] = ()  # the OPT record's (code, data)


def find(records: Sequence[Record], name: str, rdtype: int) -> list[Record]:
    """The records of `records` owned by `name` (case-insensitive) of type `rdtype`."""
    name = name.lower()
    return [r for r in records if r.rdtype == rdtype and r.name.lower() == name]


@dataclass(slots=True)
class Query:
    """A recursive query for one name, advertising a UDP payload of 1232 octets; a query larger
    than that (the text option carries up to 65,000 octets) goes over TCP (`sdk.wire`)."""

    name: str  # absolute, text form (`codec` names, or any dnspython can read)
    rdtype: int
    options: tuple[tuple[int, bytes], ...] = ()  # EDNS options (code, data)
    id: int = field(default_factory=lambda: secrets.randbits(16))
    rd: bool = True  # recursion desired (the SDK asks its resolver; `semdns trace` asks each hop without)

    def to_wire(self) -> bytes:
        opt = b"".join(OPTION_HEADER.pack(code, len(data)) + data for code, data in self.options)
        question = name_to_wire(self.name) + QUESTION_FIXED.pack(self.rdtype, IN)
        opt_record = b"\x00" + RR_FIXED.pack(OPT, UDP_PAYLOAD, 0, len(opt)) + opt
        return HEADER.pack(self.id, RD if self.rd else 0, 1, 0, 0, 1) + question + opt_record

    def is_response(self, reply: Reply) -> bool:
        """Whether `reply` answers this query: QR, the same ID, the same question (any case)."""
        return (reply.flags & QR != 0 and reply.id == self.id and len(reply.question) == 1
                and reply.question[0][1:] == (self.rdtype, IN)
                and reply.question[0][0].lower() == self.name.lower())

    def to_message(self) -> dns.message.Message:
        """The query as dnspython's message (for tools that send it with dnspython)."""
        return dns.message.from_wire(self.to_wire())


def name_to_wire(text: str) -> bytes:
    """The wire form of an absolute name's text (dnspython's reading where the text has escapes
    or non-ASCII; its errors, e.g. `dns.name.LabelTooLong`, as they are)."""
    if "\\" in text or not text.isascii() or not text.endswith("."):
        return _dnspython_wire(text)
    if text == ".":
        return b"\x00"
    out = bytearray()
    for label in text[:-1].split("."):
        if not 0 < len(label) <= 63:
            return _dnspython_wire(text)  # dnspython says what is wrong with it
        out.append(len(label))
        out += label.encode("ascii")
    out.append(0)
    if len(out) > MAX_NAME:
        raise dns.name.NameTooLong
    return bytes(out)


def _dnspython_wire(text: str) -> bytes:
    wire = dns.name.from_text(text).to_wire()
    assert wire is not None  # None only when given a file to write to
    return wire


def labels_of(name: str) -> list[str]:
    """A name's labels, lowercased, without the root (`"_llm._tcp.a."` -> `["_llm", "_tcp", "a"]`)."""
    if "\\" in name:
        return [label.decode("latin-1").lower() for label in dns.name.from_text(name).labels[:-1]]
    return name.lower().rstrip(".").split(".") if name != "." else []


def read_reply(wire: bytes) -> Reply:
    """Read a reply (see the module docstring); `MalformedReply` for what cannot be read."""
    try:
        return _Reader(wire).reply()
    except (IndexError, struct.error) as exc:
        raise MalformedReply(f"reply cut short ({exc})") from None


class _Reader:
    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.offset = 0

    def reply(self) -> Reply:
        wire = self.wire
        ident, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(wire, 0)
        self.offset = HEADER.size
        question = []
        for _ in range(qdcount):
            name = self.name()
            qtype, qclass = QUESTION_FIXED.unpack_from(wire, self.offset)
            self.offset += QUESTION_FIXED.size
            question.append((name, qtype, qclass))
        answer = tuple(self.record() for _ in range(ancount))
        authority = tuple(self.record() for _ in range(nscount))
        rcode = flags & 0x000F
        additional: list[Record] = []
        options: tuple[tuple[int, bytes], ...] = ()
        seen_opt = False
        for _ in range(arcount):
            record = self.record()
            if record.rdtype != OPT:
                additional.append(record)
                continue
            if seen_opt or record.name != ".":
                raise MalformedReply("a second OPT record, or one not owned by the root")
            seen_opt = True
            rcode |= (record.ttl >> 24) << 4
            options = _options(record.data)  # type: ignore[arg-type]
        if self.offset != len(wire):
            raise MalformedReply(f"{len(wire) - self.offset} octets after the last record")
        return Reply(ident, flags, rcode, tuple(question), answer, authority, tuple(additional), options)

    def record(self) -> Record:
        name = self.name()
        rdtype, rdclass, ttl, rdlength = RR_FIXED.unpack_from(self.wire, self.offset)
        start = self.offset + RR_FIXED.size
        end = start + rdlength
        if end > len(self.wire):
            raise MalformedReply("rdata cut short")
        self.offset = start
        data = self.rdata(rdtype, end) if rdclass == IN or rdtype not in IN_TYPES else self.raw(end)
        if self.offset != end:
            raise MalformedReply(f"type {rdtype} rdata does not fill its {rdlength} octets")
        if ttl > MAX_TTL and rdtype != OPT:
            ttl = 0  # RFC 2181 §8: a TTL with the top bit set is read as zero
        return Record(name, rdtype, rdclass, ttl, data)

    def rdata(self, rdtype: int, end: int) -> RData:
        wire = self.wire
        if rdtype in NAME_TYPES:
            return self.name(end)
        if rdtype == SRV:
            priority, weight, port = SRV_FIXED.unpack_from(wire, self.offset)
            self.offset += SRV_FIXED.size
            return Srv(priority, weight, port, self.name(end))
        if rdtype == TXT:
            strings = []
            while self.offset < end:
                size = wire[self.offset]
                strings.append(wire[self.offset + 1 : self.offset + 1 + size])
                self.offset += 1 + size
            if self.offset > end:
                raise MalformedReply("a TXT string runs past its rdata")
            return Txt(tuple(strings))
        if rdtype == A and end - self.offset == 4:
            self.offset = end
            return dns.ipv4.inet_ntoa(wire[end - 4 : end])
        if rdtype == AAAA and end - self.offset == 16:
            self.offset = end
            return dns.ipv6.inet_ntoa(wire[end - 16 : end])
        if rdtype in (A, AAAA):
            raise MalformedReply(f"an address of {end - self.offset} octets")
        if rdtype == SOA:
            mname, rname = self.name(end), self.name(end)
            fixed = SOA_FIXED.unpack_from(wire, self.offset)
            self.offset += SOA_FIXED.size
            return Soa(mname, rname, *fixed)
        return self.raw(end)

    def raw(self, end: int) -> bytes:
        raw = self.wire[self.offset : end]
        self.offset = end
        return raw

    def name(self, end: int | None = None) -> str:
        """The name at the offset (following pointers, each strictly backwards), as text; the
        offset moves past it (past its first pointer). `end`: where its rdata stops."""
        wire = self.wire
        offset = self.offset
        limit = offset  # a pointer must point before every octet read so far
        after = -1
        labels: list[bytes] = []
        size = 1
        while True:
            length = wire[offset]
            if length == 0:
                offset += 1
                break
            if length >= 0xC0:
                pointer = ((length & 0x3F) << 8) | wire[offset + 1]
                if after < 0:
                    after = offset + 2
                if pointer >= limit:
                    raise MalformedReply("a compression pointer that does not point back")
                limit = offset = pointer
                continue
            if length > 63:
                raise MalformedReply(f"a label of type {length >> 6:#x}")
            label = wire[offset + 1 : offset + 1 + length]
            if len(label) != length:
                raise MalformedReply("a label cut short")
            size += length + 1
            if size > MAX_NAME:
                raise MalformedReply("a name over 255 octets")
            labels.append(label)
            offset += length + 1
        self.offset = after if after >= 0 else offset
        if end is not None and self.offset > end:
            raise MalformedReply("a name runs past its rdata")
        return _name_text(labels)


def _name_text(labels: list[bytes]) -> str:
    if not labels:
        return "."
    if not b"".join(labels).translate(None, _PLAIN):
        return b".".join(labels).decode("ascii") + "."
    return dns.name.Name([*labels, b""]).to_text()


def _options(data: bytes) -> tuple[tuple[int, bytes], ...]:
    options = []
    offset = 0
    while offset < len(data):
        code, size = OPTION_HEADER.unpack_from(data, offset)
        value = data[offset + 4 : offset + 4 + size]
        if len(value) != size:
            raise MalformedReply("an EDNS option cut short")
        options.append((code, value))
        offset += 4 + size
    return tuple(options)
