"""Every hand-written read and splice of DNS messages (RFC 1035 §4.1, RFC 6891 §6) in one place.

dnspython reads and renders messages everywhere else; the hot path reads the common shapes of
query straight from the bytes and splices pre-rendered replies, and it does so only here, held
byte for byte to dnspython by one contract test (`tests/nameserver/test_ns_wire.py`): a reader
gives what `dns.message.from_wire` gives (or declines: None / -1, and then dnspython decides), a
splice gives what dnspython renders.

Reading queries:
- `PlainQuery.from_wire(wire)`: the common query (QUERY, one question, uncompressed QNAME, at most
  an OPT record carrying only the semantic options) without a parse; None for any other shape.
- `query_from_wire(wire)`: any other query, parsed by dnspython, or `Rejected` (header-only
  reply, `error_reply`, or a drop).
- `question_end`, `plain_qname_end`, `qname_from_wire`, `qname_wire`, `id_from_wire`,
  `copyable_question`, `option_from_wire`, `update_lease_from_wire`: pieces of a query's wire
  (the wire cache's key is computed in C: `nameserver/_hotpath.c`'s `locate`).
Reading and splicing replies:
- `ttl_offsets` and `count_down` (TTLs of a rendered answer), `echoes_question` and
  `splice_question` (a cached answer given another query's ID and QNAME case),
  `splice_transfer` (rendered transfer messages given the query's ID, RD and question),
  `last_answer_owner`, `authority_owner` and `truncated_reply` (response rate limiting's
  classes and its slip).
Writing pieces: `reply_flags`, `error_reply` (a header-only reply), `opt_to_wire`,
`labels_to_wire`; the renderer of whole replies (`nameserver/render.py`, compression included)
writes with `HEADER`, `RR_FIXED` and these.
"""
from __future__ import annotations

import struct
from typing import Iterable, NamedTuple, Sequence

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode

from codec.edns_text import EMBEDDING_OPTION, TEXT_OPTION
from common.rdataclasses import resolve_in_classes
from nameserver.errors import Rejected

resolve_in_classes()  # before a query is parsed (see common.rdataclasses)

HEADER = struct.Struct("!2sHHHHH")  # ID (its two octets, copied as they are), flags, four counts
ID_FLAGS = struct.Struct("!HH")
QUESTION = struct.Struct("!HH")  # QTYPE, QCLASS
RR_FIXED = struct.Struct("!HHI")  # TYPE, CLASS, TTL (RDLENGTH follows)
OPT_FIXED = struct.Struct("!BHHIH")  # root owner, type 41, payload, ext-rcode/version/flags, RDLENGTH
OPTION_HEADER = struct.Struct("!HH")  # OPTION-CODE, OPTION-LENGTH
LEASE = struct.Struct("!I")
QUESTION_START = 12  # the first question follows the 12-octet header
OPT_TYPE = 41
MAX_NAME = 255
MAX_POINTER = 0x3FFF
QR, AA, TC, DO = 0x8000, 0x0400, 0x0200, 0x8000
ECHOED_FLAGS = 0x7910  # opcode, RD and CD: what a reply copies from its query
# Options a plain scan may carry: dnspython reads these as opaque bytes (GenericOption), so the
# scan accepts exactly what its parser accepts. Other options send the query to `query_from_wire`.
SCANNED_OPTIONS = frozenset({TEXT_OPTION, EMBEDDING_OPTION})
# Opcodes the server knows how to route; the others get NOTIMP before reaching the chain. The
# chain itself answers NOTIMP for any of these that no handler takes (e.g. UPDATE without one).
KNOWN_OPCODES = frozenset({dns.opcode.QUERY, dns.opcode.NOTIFY, dns.opcode.UPDATE})


# --- queries -------------------------------------------------------------------------------
def question_end(wire: bytes) -> int:
    """Offset just past the QNAME of a message's first question, or -1 where that QNAME is not
    plain labels ending in the root label (a pointer, a bad label type, or cut short)."""
    size = len(wire)
    offset = QUESTION_START
    while offset < size:
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length > 63:
            return -1
        offset += length + 1
    return -1


def plain_qname_end(wire: bytes) -> int:
    """`question_end` of a query with the plain header (QR=0, opcode QUERY, QDCOUNT=1,
    ANCOUNT=NSCOUNT=0, ARCOUNT<=1) whose QNAME fits a name (255 octets) with QTYPE and QCLASS
    after it; -1 for anything else. The one test of the plain shape in Python (`PlainQuery`; the
    C's `locate` makes the same)."""
    # QR=0, opcode=0 (QUERY): the top five bits of byte 2; QDCOUNT=1; ANCOUNT=NSCOUNT=0; ARCOUNT<=1
    if len(wire) < 17 or wire[2] & 0xF8 or wire[4:10] != b"\x00\x01\x00\x00\x00\x00" or wire[10] or wire[11] > 1:
        return -1
    end = question_end(wire)
    if end < 0 or end - QUESTION_START > MAX_NAME or end + 4 > len(wire):
        return -1
    return end


class PlainQuery(NamedTuple):
    """A plain query read straight from the wire (see `from_wire`)."""

    query_id: int
    flags: int
    qname_end: int  # offset just past the QNAME's root label
    qtype: int
    qclass: int
    edns: bool
    payload: int  # the OPT record's class: the client's UDP size
    ttl: int  # the OPT record's TTL: extended RCODE, version, flags
    options: bytes  # the OPT record's RDATA: only `SCANNED_OPTIONS`, each whole (b"": none)

    @classmethod
    def from_wire(cls, wire: bytes) -> "PlainQuery | None":
        """The common shape (`plain_qname_end`, then at most an OPT record whose options are all
        semantic ones, `SCANNED_OPTIONS`, and nothing after it) read without dnspython's parser;
        None for anything else (then call `query_from_wire`). Gives what `dns.message.from_wire`
        gives; the QNAME itself is left in the wire (`qname_from_wire` reads it when asked)."""
        qname_end = plain_qname_end(wire)
        if qname_end < 0:
            return None
        size = len(wire)
        query_id, flags = ID_FLAGS.unpack_from(wire)
        qtype, qclass = QUESTION.unpack_from(wire, qname_end)
        end = qname_end + 4
        if not wire[11]:
            return cls(query_id, flags, qname_end, qtype, qclass, False, 0, 0, b"") if end == size else None
        if size < end + OPT_FIXED.size:
            return None
        owner, opt_type, payload, ttl, rdlen = OPT_FIXED.unpack_from(wire, end)
        if owner or opt_type != OPT_TYPE or size != end + OPT_FIXED.size + rdlen:
            return None
        options = wire[end + OPT_FIXED.size :] if rdlen else b""
        if options and not _only_scanned_options(options):
            return None
        return cls(query_id, flags, qname_end, qtype, qclass, True, payload, ttl, options)


def _only_scanned_options(rdata: bytes) -> bool:
    """True when `rdata` is a sequence of whole options, each of a code in `SCANNED_OPTIONS`."""
    offset, size = 0, len(rdata)
    while offset < size:
        if offset + 4 > size:
            return False
        code, length = OPTION_HEADER.unpack_from(rdata, offset)
        offset += 4 + length
        if code not in SCANNED_OPTIONS or offset > size:
            return False
    return True


def option_from_wire(rdata: bytes, code: int) -> bytes | None:
    """The data of the first option `code` in OPT RDATA that `PlainQuery.from_wire` accepted
    (what dnspython's `option.to_wire()` gives for it), or None."""
    offset, size = 0, len(rdata)
    while offset + 4 <= size:
        found, length = OPTION_HEADER.unpack_from(rdata, offset)
        if found == code:
            return rdata[offset + 4 : offset + 4 + length]
        offset += 4 + length
    return None


def query_from_wire(wire: bytes) -> dns.message.Message:
    """Any query parsed by dnspython (TSIG left unverified), or `Rejected`: a refusal answered
    with a header-only reply (NOTIMP for an unknown opcode, FORMERR for a QUERY without exactly
    one question or for what dnspython cannot parse), or a drop (no header, or a response)."""
    if len(wire) < HEADER.size:
        raise Rejected("short packet: no header")
    _id, flags, qdcount, _an, _ns, _ar = HEADER.unpack_from(wire)
    if flags & dns.flags.QR:
        raise Rejected("a response, not a query")
    opcode = dns.opcode.from_flags(flags)
    if opcode not in KNOWN_OPCODES:
        raise Rejected(f"opcode {opcode}", dns.rcode.NOTIMP)
    if qdcount != 1 and opcode == dns.opcode.QUERY:
        raise Rejected(f"qdcount {qdcount}", dns.rcode.FORMERR)
    try:
        message = dns.message.from_wire(wire, keyring=False)
    except (dns.exception.DNSException, ValueError, struct.error) as exc:
        raise Rejected(f"unparsable: {exc}", dns.rcode.FORMERR) from exc
    if len(message.question) != 1:
        raise Rejected("no single question", dns.rcode.FORMERR)
    return message


def id_from_wire(wire: bytes) -> int:
    """The message ID (the first two octets)."""
    return ID_FLAGS.unpack_from(wire)[0]


def qname_wire(wire: bytes, qname_end: int) -> bytes:
    """The uncompressed QNAME ending at `qname_end`, as sent (length-prefixed labels, root label)."""
    return wire[QUESTION_START:qname_end]


def qname_from_wire(wire: bytes, qname_end: int) -> dns.name.Name:
    """The uncompressed QNAME ending at `qname_end` as a name, in the client's case."""
    labels = []
    offset = QUESTION_START
    while offset < qname_end - 1:
        length = wire[offset]
        labels.append(wire[offset + 1 : offset + 1 + length])
        offset += length + 1
    labels.append(b"")
    return dns.name.Name(labels)


def copyable_question(wire: bytes) -> tuple[int, int] | None:
    """(end of QNAME, header flags) where a reply can copy the one question from `wire` as it is
    (QDCOUNT=1, an uncompressed QNAME, QTYPE and QCLASS present); else None."""
    if wire[4:6] != b"\x00\x01":
        return None
    end = question_end(wire)
    if end < 0 or end + 4 > len(wire):
        return None
    return end, ID_FLAGS.unpack_from(wire)[1]


# --- replies -------------------------------------------------------------------------------
def reply_flags(query_flags: int) -> int:
    """The header flags of a reply before its own bits: QR, and the query's opcode, RD and CD."""
    return QR | (query_flags & ECHOED_FLAGS)


def error_reply(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A header-only reply to the query `wire` (at least a header): its ID, opcode, RD and CD
    echoed, QR set, `rcode`, no sections."""
    _id, flags = ID_FLAGS.unpack_from(wire)
    return HEADER.pack(wire[:2], reply_flags(flags) | int(rcode), 0, 0, 0, 0)


def opt_to_wire(options: Iterable[dns.edns.Option], payload: int, do: bool) -> bytes:
    """The OPT record (root owner, version 0) advertising `payload` with `options`, as
    `dns.rdtypes.ANY.OPT` writes it."""
    data = b""
    for option in options:
        body = option.to_wire()
        data += OPTION_HEADER.pack(option.otype, len(body)) + body  # type: ignore[operator,arg-type]
    return OPT_FIXED.pack(0, OPT_TYPE, payload, DO if do else 0, len(data)) + data


def labels_to_wire(labels: Iterable[str]) -> bytes:
    """Relative labels (ASCII) in wire form: length-prefixed, no root label."""
    return b"".join(bytes((len(label),)) + label.encode("ascii") for label in labels)


def update_lease_from_wire(data: bytes) -> int | None:
    """The lease of an EDNS UPDATE-LEASE option (draft-ietf-dnssd-update-lease: 4 or 8 octets,
    the lease first), or None for any other size."""
    return LEASE.unpack_from(data)[0] if len(data) in (4, 8) else None


def ttl_offsets(answer: bytes) -> tuple[int, ...] | None:
    """Offsets of the TTL fields of every record but OPT in a rendered message (None: unreadable,
    or bytes left over)."""
    found: list[int] = []
    try:
        questions = int.from_bytes(answer[4:6], "big")
        records = sum(int.from_bytes(answer[i : i + 2], "big") for i in (6, 8, 10))
        offset = QUESTION_START
        for index in range(questions + records):
            while True:  # the owner: labels, then the root label or a pointer
                length = answer[offset]
                if length == 0:
                    offset += 1
                    break
                if length >= 0xC0:
                    offset += 2
                    break
                offset += length + 1
            if index < questions:
                offset += 4  # a question: type, class
                continue
            rdtype = int.from_bytes(answer[offset : offset + 2], "big")
            rdlength = int.from_bytes(answer[offset + 8 : offset + 10], "big")
            if rdtype != OPT_TYPE:
                found.append(offset + 4)
            offset += 10 + rdlength
    except IndexError:
        return None
    return tuple(found) if offset == len(answer) else None


def count_down(answer: bytes, offsets: Sequence[int], seconds: int) -> bytes:
    """`answer` with each TTL at `offsets` (`ttl_offsets`) lowered by `seconds`, never below 0."""
    patched = bytearray(answer)
    for offset in offsets:
        ttl = int.from_bytes(answer[offset : offset + 4], "big")
        patched[offset : offset + 4] = max(ttl - seconds, 0).to_bytes(4, "big")
    return bytes(patched)


def echoes_question(answer: bytes, query: bytes, qname_end: int) -> bool:
    """True when `answer` has one question whose QNAME is `query`'s (ending at `qname_end`) but
    for case: where `splice_question` may put another query's QNAME."""
    start = QUESTION_START
    return answer[4:6] == b"\x00\x01" and answer[start:qname_end].lower() == query[start:qname_end].lower()


def splice_question(answer: bytes, query: bytes, qname_end: int) -> bytes:
    """`answer` (which `echoes_question`) given `query`'s ID and QNAME bytes: what dnspython
    renders for that query, since names equal to the QNAME are compressed to pointers at it."""
    return query[:2] + answer[2:QUESTION_START] + query[QUESTION_START:qname_end] + answer[qname_end:]


def splice_transfer(messages: Sequence[bytes], query: bytes, query_flags: int) -> tuple[bytes, ...]:
    """Transfer messages rendered with ID 0 (the question in the first) given `query`'s ID, RD
    bit (QR and AA set) and the question bytes as the client sent them."""
    head = query[:2] + (QR | AA | (query_flags & dns.flags.RD)).to_bytes(2, "big")
    first = messages[0]
    end = question_end(query) + 4
    out = [head + first[4:QUESTION_START] + query[QUESTION_START:end] + first[end:]]
    out.extend(head + m[4:] for m in messages[1:])
    return tuple(out)


def _skip_name(message: bytes, offset: int) -> int:
    """Offset just past the (possibly compressed) name at `offset`; IndexError when cut short."""
    while True:
        length = message[offset]
        if length == 0:
            return offset + 1
        if length >= 0xC0:
            return offset + 2
        offset += length + 1


def _name_at(message: bytes, offset: int) -> bytes:
    """The name at `offset`, pointers followed, as lower-cased uncompressed wire (labels, then the
    root label); IndexError when cut short or for a forward pointer (RFC 1035 §4.1.4 points back:
    no loops) or an unknown label type."""
    labels = []
    while True:
        length = message[offset]
        if length >= 0xC0:
            target = ((length & 0x3F) << 8) | message[offset + 1]
            if target >= offset:
                raise IndexError("pointer forwards")
            offset = target
            continue
        label = message[offset : offset + 1 + length]
        if length > 63 or len(label) != length + 1:
            raise IndexError("bad label")
        labels.append(label)
        if length == 0:
            return b"".join(labels).lower()
        offset += length + 1


def _owner_after(reply: bytes, records: int) -> bytes | None:
    """The owner (`_name_at`) of the record that follows the questions and `records` records."""
    try:
        offset = QUESTION_START
        for _ in range(int.from_bytes(reply[4:6], "big")):
            offset = _skip_name(reply, offset) + 4
        for _ in range(records):
            offset = _skip_name(reply, offset)
            offset += 10 + int.from_bytes(reply[offset + 8 : offset + 10], "big")
        return _name_at(reply, offset)
    except IndexError:
        return None


def last_answer_owner(reply: bytes) -> bytes | None:
    """The owner of the last answer record of a rendered reply (lower-cased uncompressed wire):
    the QNAME of a plain answer, the end of a CNAME chain; None when there is no answer record
    or the reply cannot be read that far."""
    answers = int.from_bytes(reply[6:8], "big")
    return _owner_after(reply, answers - 1) if answers else None


def authority_owner(reply: bytes) -> bytes | None:
    """The owner of the first authority record of a rendered reply (lower-cased uncompressed
    wire): the zone of a negative answer (its SOA), the child of a referral (its NS); None when
    the authority section is empty or the reply cannot be read that far."""
    if reply[8:10] == b"\x00\x00":
        return None
    return _owner_after(reply, int.from_bytes(reply[6:8], "big"))


def truncated_reply(reply: bytes) -> bytes:
    """`reply` cut to its header and question, TC set and the other sections empty: what tells a
    client to ask again over TCP (RFC 1035 §4.2.1, RFC 7766 §5). A reply whose question cannot be
    read keeps its header alone."""
    end = question_end(reply)
    qdcount = 1 if reply[4:6] == b"\x00\x01" and 0 <= end and end + 4 <= len(reply) else 0
    flags = ID_FLAGS.unpack_from(reply)[1] | TC
    question = reply[QUESTION_START : end + 4] if qdcount else b""
    return HEADER.pack(reply[:2], flags, qdcount, 0, 0, 0) + question
