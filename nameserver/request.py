"""The values that travel down the handler chain: a frozen `Request` in, a frozen `Response` out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable, Literal

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from nameserver.config import Address
from nameserver.edns import Negotiation

Transport = Literal["udp", "tcp"]


@dataclass(frozen=True)
class Request:
    """One parsed query, as the chain sees it.

    `message` is the parsed query (its question keeps the client's case); `wire` the raw bytes;
    `edns` the outcome of EDNS negotiation (`edns.max_size` is how big the answer may be on this
    transport).
    """

    message: dns.message.Message
    wire: bytes
    client: Address
    transport: Transport
    edns: Negotiation

    @property
    def qname(self) -> dns.name.Name:
        return self.message.question[0].name

    @property
    def qtype(self) -> dns.rdatatype.RdataType:
        return self.message.question[0].rdtype

    @property
    def qclass(self) -> dns.rdataclass.RdataClass:
        return self.message.question[0].rdclass

    @property
    def opcode(self) -> dns.opcode.Opcode:
        return self.message.opcode()

    def reply(self, rcode: dns.rcode.Rcode = dns.rcode.NOERROR) -> dns.message.Message:
        """An empty reply: same ID and opcode, QR set, RD and CD copied, question echoed as sent.

        EDNS is applied when the response is rendered (`nameserver/edns.py`), not here.
        """
        query = self.message
        reply = dns.message.Message(id=query.id)
        reply.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
        reply.set_opcode(query.opcode())
        reply.question = list(query.question)
        reply.set_rcode(rcode)
        return reply


@dataclass(frozen=True)
class Response:
    """What a handler returns.

    Either `message` (rendered by the server core, which applies EDNS and truncation) or `wires`
    (messages already rendered, e.g. an AXFR stream; sent as they are). `cacheable` lets the wire
    cache keep the rendered answer: set it only when the answer depends on nothing but the query's
    bytes (minus ID and QNAME case) and the current zone catalog.
    """

    message: dns.message.Message | None = None
    wires: tuple[bytes, ...] = field(default=())
    cacheable: bool = False


Next = Callable[[Request], Awaitable[Response]]
