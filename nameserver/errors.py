"""Errors of the nameserver package, and the one place that maps bad input to an RCODE.

- `NameserverError` is the root of the package's exceptions.
- `parse_query(wire)` turns bytes into a dnspython message or raises `Rejected`, which carries the
  reply to send (FORMERR / NOTIMP with the client's ID and opcode) or None when the packet must be
  dropped (no readable header, or a response rather than a query).
- `error_reply(...)` renders a header-only error reply; `servfail(...)` is what a handler crash gets.
"""
from __future__ import annotations

import struct

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset

HEADER = struct.Struct("!HHHHHH")
QUESTION = struct.Struct("!HH")
EMPTY_OPT = struct.Struct("!BHHIH")  # root owner, type 41, payload, ext-rcode/version/flags, rdlen

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
    message = _plain_query(wire, query_id, flags)
    if message is not None:
        return message
    try:
        message = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, struct.error) as exc:
        raise Rejected(f"unparsable: {exc}", error_reply(query_id, flags, dns.rcode.FORMERR)) from exc
    if len(message.question) != 1:
        raise Rejected("no single question", error_reply(query_id, flags, dns.rcode.FORMERR))
    return message


def _plain_query(wire: bytes, query_id: int, flags: int) -> dns.message.Message | None:
    """The common shape (one question, at most an option-less OPT) built without a full parse.

    Gives the same message as `dns.message.from_wire` (the tests compare them); any other shape,
    or anything odd, returns None and takes the full parse.
    """
    if wire[4:10] != b"\x00\x01\x00\x00\x00\x00" or wire[10] or wire[11] > 1 or flags & 0x7800:
        return None
    try:
        qname, used = dns.name.from_wire(wire, 12)
    except dns.exception.DNSException:
        return None
    end = 12 + used + QUESTION.size
    if end > len(wire):
        return None
    rdtype, rdclass = QUESTION.unpack_from(wire, 12 + used)
    message = dns.message.Message(id=query_id)
    message.flags = dns.flags.Flag(flags & 0x87F0)
    if wire[11]:
        if len(wire) != end + EMPTY_OPT.size:
            return None
        owner, opt_type, payload, ttl, rdlen = EMPTY_OPT.unpack_from(wire, end)
        if owner or opt_type != 41 or rdlen:
            return None
        message.use_edns((ttl >> 16) & 0xFF, ttl & 0xFFFF, payload)
        message.set_rcode(dns.rcode.from_flags(flags, ttl))
    elif len(wire) != end:
        return None
    message.question = [dns.rrset.RRset(qname, rdclass, rdtype)]
    return message
