"""The values that travel down the handler chain: a frozen `Request` in, a frozen `Response` out.

The hot path never builds a dnspython message it does not need: a plain query (one question, at
most an option-less OPT) is read straight from the wire into the `Request`'s fields, and
`request.message` is parsed only when a handler asks for it. A handler may answer with a `Reply`
(sections of RRsets) that the server core renders from pre-rendered pieces (`nameserver/render.py`),
or with a full `dns.message.Message` as before.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Awaitable, Callable, Literal

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from nameserver.config import Address
from nameserver.edns import Negotiation

Transport = Literal["udp", "tcp"]
_OPCODES = {int(o): o for o in dns.opcode.Opcode}
_RDTYPES = {int(t): t for t in dns.rdatatype.RdataType}
_RDCLASSES = {int(c): c for c in dns.rdataclass.RdataClass}


@dataclass(frozen=True)
class Request:
    """One query, as the chain sees it.

    `wire` is the raw query; `flags` its header flags; `qname` (in the client's case), `qtype` and
    `qclass` its question; `edns` the outcome of EDNS negotiation (`edns.max_size` is how big the
    answer may be on this transport). `message` is the parsed query, built on first use.
    """

    wire: bytes
    client: Address
    transport: Transport
    edns: Negotiation
    qname: dns.name.Name
    qtype: dns.rdatatype.RdataType
    qclass: dns.rdataclass.RdataClass
    flags: int

    @classmethod
    def of(
        cls, message: dns.message.Message, wire: bytes, client: Address, transport: Transport, edns: Negotiation
    ) -> "Request":
        """A request for an already parsed query (it must have one question)."""
        question = message.question[0]
        request = cls(wire, client, transport, edns, question.name, question.rdtype, question.rdclass, int(message.flags))
        request.__dict__["message"] = message
        return request

    @classmethod
    def plain(
        cls, wire: bytes, client: Address, transport: Transport, edns: Negotiation,
        qname: dns.name.Name, qtype: int, qclass: int, flags: int,
    ) -> "Request":
        """A request read from the wire by `errors.scan_plain` (no dnspython parse)."""
        rdtype = _RDTYPES.get(qtype)
        rdclass = _RDCLASSES.get(qclass)
        return cls(
            wire, client, transport, edns, qname,
            dns.rdatatype.RdataType.make(qtype) if rdtype is None else rdtype,
            dns.rdataclass.RdataClass.make(qclass) if rdclass is None else rdclass,
            flags,
        )

    @cached_property
    def message(self) -> dns.message.Message:
        """The parsed query (parsed on first use; its question keeps the client's case)."""
        return dns.message.from_wire(self.wire)

    @property
    def opcode(self) -> dns.opcode.Opcode:
        opcode = _OPCODES.get((self.flags >> 11) & 0xF)
        return dns.opcode.from_flags(self.flags) if opcode is None else opcode

    def reply(self, rcode: dns.rcode.Rcode = dns.rcode.NOERROR) -> dns.message.Message:
        """An empty reply: same ID and opcode, QR set, RD and CD copied, question echoed as sent.

        EDNS is applied when the response is rendered (`nameserver/edns.py`), not here.
        """
        reply = dns.message.Message(id=int.from_bytes(self.wire[:2], "big"))
        reply.flags = dns.flags.QR | (self.flags & (dns.flags.RD | dns.flags.CD))
        reply.set_opcode(self.opcode)
        parsed = self.__dict__.get("message")
        if parsed is not None:
            reply.question = list(parsed.question)
        else:
            reply.question = [dns.rrset.RRset(self.qname, self.qclass, self.qtype)]
        reply.set_rcode(rcode)
        return reply


@dataclass(frozen=True)
class Reply:
    """A reply as sections of RRsets, for the server core's fast renderer.

    The header is the request's (ID, opcode, RD and CD copied, QR set) plus `flags` (e.g. AA, RA);
    `rcode` must fit the header (0..15). The OPT record is the one EDNS negotiation calls for, with
    no options. `Response.materialize` turns it into the equivalent `dns.message.Message`; the
    rendered bytes are the same either way (the tests compare them).
    """

    rcode: int
    flags: int = 0
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()

    def to_message(self, request: Request) -> dns.message.Message:
        message = request.reply(dns.rcode.Rcode.make(self.rcode))
        message.flags |= self.flags
        message.answer = list(self.answer)
        message.authority = list(self.authority)
        message.additional = list(self.additional)
        return message


@dataclass(frozen=True)
class Response:
    """What a handler returns.

    One of `message` (rendered by the server core, which applies EDNS and truncation), `reply`
    (the same, rendered faster; a handler that post-processes another's response calls
    `materialize`) or `wires` (messages already rendered, e.g. an AXFR stream; sent as they are).
    `cacheable` lets the wire cache keep the rendered answer: set it only when the answer depends
    on nothing but the query's bytes (minus ID and QNAME case) and the current zone catalog, until
    `expires` (a `time.monotonic()` instant; None: for as long as the catalog lasts).
    """

    message: dns.message.Message | None = None
    wires: tuple[bytes, ...] = field(default=())
    cacheable: bool = False
    reply: Reply | None = None
    expires: float | None = None

    def materialize(self, request: Request) -> dns.message.Message | None:
        """The reply as a message (`message`, or `reply` built into one)."""
        if self.message is None and self.reply is not None:
            return self.reply.to_message(request)
        return self.message


Next = Callable[[Request], Awaitable[Response]]
