"""Errors of the nameserver package, and the one place that maps bad input to an RCODE.

- `NameserverError` is the root of the package's exceptions.
- `scan_plain(wire)` reads the common shape of query without a parse (the hot path), semantic
  queries in the EDNS form included;
- `parse_query(wire)` turns bytes into a dnspython message or raises `Rejected`, which carries the
  reply to send (FORMERR / NOTIMP with the client's ID and opcode) or None when the packet must be
  dropped (no readable header, or a response rather than a query).
- `error_reply(...)` renders a header-only error reply; `servfail(...)` is what a handler crash gets.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode

from codec.edns_text import EMBEDDING_OPTION, TEXT_OPTION

HEADER = struct.Struct("!HHHHHH")
HEADER_START = struct.Struct("!HH")
QUESTION = struct.Struct("!HH")
EMPTY_OPT = struct.Struct("!BHHIH")  # root owner, type 41, payload, ext-rcode/version/flags, rdlen
OPTION_HEADER = struct.Struct("!HH")
# Options a plain scan may carry: dnspython reads these as opaque bytes (GenericOption), so the
# scan accepts exactly what its parser accepts. Other options send the query to `parse_query`.
SCANNED_OPTIONS = frozenset({TEXT_OPTION, EMBEDDING_OPTION})

# Opcodes the server knows how to route; the others get NOTIMP before reaching the chain. The
# chain itself answers NOTIMP for any of these that no handler takes (e.g. UPDATE without one).
KNOWN_OPCODES = frozenset({dns.opcode.QUERY, dns.opcode.NOTIFY, dns.opcode.UPDATE})


class NameserverError(Exception):
    """Root of the nameserver package's exceptions."""


class ConfigError(NameserverError):
    """A configuration value is wrong; the message names the option and the value."""


class ZoneLoadError(NameserverError):
    """The zones could not be loaded; the message carries `file:line: message` lines."""


class Rejected(NameserverError):
    """A packet the chain never sees: `reply` is the wire to send, or None to drop it."""

    def __init__(self, reason: str, reply: bytes | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


def error_reply(query_id: int, flags: int, rcode: dns.rcode.Rcode) -> bytes:
    """A header-only reply: the client's ID, opcode and RD echoed, QR set, no sections."""
    opcode_bits = flags & 0x7800
    reply_flags = dns.flags.QR | opcode_bits | (flags & (dns.flags.RD | dns.flags.CD))
    return HEADER.pack(query_id, reply_flags | int(rcode), 0, 0, 0, 0)


class Plain(NamedTuple):
    """A plain query read straight from the wire (see `scan_plain`)."""

    query_id: int
    flags: int
    qname_end: int  # offset just past the QNAME's root label
    qtype: int
    qclass: int
    edns: bool
    payload: int  # the OPT record's class: the client's UDP size
    ttl: int  # the OPT record's TTL: extended RCODE, version, flags
    options: bytes  # the OPT record's RDATA: only `SCANNED_OPTIONS`, each whole (b"": none)


def scan_options(rdata: bytes) -> bool:
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


def option_data(rdata: bytes, code: int) -> bytes | None:
    """The data of the first option `code` in OPT RDATA that `scan_options` accepted, or None."""
    offset, size = 0, len(rdata)
    while offset + 4 <= size:
        found, length = OPTION_HEADER.unpack_from(rdata, offset)
        if found == code:
            return rdata[offset + 4 : offset + 4 + length]
        offset += 4 + length
    return None


def scan_plain(wire: bytes) -> Plain | None:
    """The common shape (QUERY, one question, uncompressed QNAME, at most an OPT record whose
    options are all semantic ones (`SCANNED_OPTIONS`), nothing after it) read without dnspython's
    parser; None for anything else (then call `parse_query`).

    Gives what `dns.message.from_wire` gives (the tests compare them); the QNAME itself is left in
    the wire (`Request.qname` parses it when asked).
    """
    size = len(wire)
    if size < 17 or wire[2] & 0xF8 or wire[4:10] != b"\x00\x01\x00\x00\x00\x00" or wire[10] or wire[11] > 1:
        return None
    offset = 12
    while True:
        if offset >= size:
            return None
        length = wire[offset]
        if length == 0:
            break
        if length > 63:
            return None
        offset += length + 1
    qname_end = offset + 1
    if qname_end - 12 > 255 or qname_end + 4 > size:
        return None
    query_id, flags = HEADER_START.unpack_from(wire)
    qtype, qclass = QUESTION.unpack_from(wire, qname_end)
    end = qname_end + 4
    if not wire[11]:
        return Plain(query_id, flags, qname_end, qtype, qclass, False, 0, 0, b"") if end == size else None
    if size < end + EMPTY_OPT.size:
        return None
    owner, opt_type, payload, ttl, rdlen = EMPTY_OPT.unpack_from(wire, end)
    if owner or opt_type != 41 or size != end + EMPTY_OPT.size + rdlen:
        return None
    options = wire[end + EMPTY_OPT.size :] if rdlen else b""
    if options and not scan_options(options):
        return None
    return Plain(query_id, flags, qname_end, qtype, qclass, True, payload, ttl, options)


def parse_query(wire: bytes) -> dns.message.Message:
    """Parse a query or raise `Rejected` with the reply that the error deserves."""
    if len(wire) < HEADER.size:
        raise Rejected("short packet: no header", None)
    query_id, flags, qdcount, _an, _ns, _ar = HEADER.unpack_from(wire)
    if flags & dns.flags.QR:
        raise Rejected("a response, not a query", None)
    opcode = dns.opcode.from_flags(flags)
    if opcode not in KNOWN_OPCODES:
        raise Rejected(f"opcode {opcode}", error_reply(query_id, flags, dns.rcode.NOTIMP))
    if qdcount != 1 and opcode == dns.opcode.QUERY:
        raise Rejected(f"qdcount {qdcount}", error_reply(query_id, flags, dns.rcode.FORMERR))
    try:
        message = dns.message.from_wire(wire, keyring=False)
    except (dns.exception.DNSException, ValueError, struct.error) as exc:
        raise Rejected(f"unparsable: {exc}", error_reply(query_id, flags, dns.rcode.FORMERR)) from exc
    if len(message.question) != 1:
        raise Rejected("no single question", error_reply(query_id, flags, dns.rcode.FORMERR))
    return message
