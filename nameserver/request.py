"""The values that travel down the handler chain: a frozen `Request` in, a frozen `Response` out.

The hot path never builds a dnspython message it does not need: a plain query (one question, at
most an option-less OPT) is read straight from the wire into the `Request`'s fields, and
`request.message` is parsed only when a handler asks for it. A handler may answer with a `Reply`
(sections of RRsets) that the server core renders from pre-rendered pieces (`nameserver/render.py`),
or with a full `dns.message.Message` as before.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, Literal, NamedTuple, TypeVar

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.TXT
import dns.rrset

from common.names import name_wire
from nameserver.config import Address
from nameserver.edns import Negotiation
from nameserver.errors import Refusal
from nameserver.wire import id_from_wire, option_from_wire, qname_from_wire
from nameserver.wire import qname_wire as _qname_wire

Transport = Literal["udp", "tcp"]
T = TypeVar("T")


class cached_property(Generic[T]):
    """`functools.cached_property` without its lock (the server is one thread): computed on first
    use and kept in the instance's `__dict__`, where later reads find it directly."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        value = self.compute(instance)
        instance.__dict__[self.name] = value
        return value
_OPCODES = {int(o): o for o in dns.opcode.Opcode}
_RDTYPES = {int(t): t for t in dns.rdatatype.RdataType}
_RDCLASSES = {int(c): c for c in dns.rdataclass.RdataClass}


@dataclass(frozen=True)
class Request:
    """One query, as the chain sees it.

    `wire` is the raw query; `flags` its header flags; `qname` (in the client's case, a property
    built on first use), `qtype` and `qclass` its question; `edns` the outcome of EDNS negotiation
    (`edns.max_size` is how big the answer may be on this transport). `message` is the parsed
    query, built on first use.
    """

    wire: bytes
    client: Address
    transport: Transport
    edns: Negotiation
    qtype: dns.rdatatype.RdataType
    qclass: dns.rdataclass.RdataClass
    flags: int
    qname_end: int = -1  # offset just past an uncompressed QNAME in `wire` (-1: not known)
    opt_rdata: bytes | None = None  # the OPT record's RDATA as scanned (None: see `message`)

    @classmethod
    def of(
        cls, message: dns.message.Message, wire: bytes, client: Address, transport: Transport, edns: Negotiation
    ) -> "Request":
        """A request for an already parsed query (it must have one question)."""
        question = message.question[0]
        request = cls(wire, client, transport, edns, question.rdtype, question.rdclass, int(message.flags))
        request.__dict__["message"] = message
        request.__dict__["qname"] = question.name
        return request

    @classmethod
    def plain(
        cls, wire: bytes, client: Address, transport: Transport, edns: Negotiation,
        qtype: int, qclass: int, flags: int, qname_end: int, opt_rdata: bytes = b"",
    ) -> "Request":
        """A request read from the wire by `wire.PlainQuery.from_wire` (no dnspython parse); its QNAME
        ends at `qname_end`, its OPT record (if any) carries `opt_rdata`."""
        rdtype = _RDTYPES.get(qtype)
        rdclass = _RDCLASSES.get(qclass)
        request = cls(
            wire, client, transport, edns,
            dns.rdatatype.RdataType.make(qtype) if rdtype is None else rdtype,
            dns.rdataclass.RdataClass.make(qclass) if rdclass is None else rdclass,
            flags, qname_end, opt_rdata,
        )
        request.__dict__["qkey"] = _qname_wire(wire, qname_end).lower()
        return request

    @cached_property
    def message(self) -> dns.message.Message:
        """The parsed query (parsed on first use; its question keeps the client's case)."""
        return dns.message.from_wire(self.wire, keyring=False)

    @cached_property
    def qname(self) -> dns.name.Name:
        """The QNAME, in the client's case (built on first use)."""
        if self.qname_end < 0:
            return self.message.question[0].name
        return qname_from_wire(self.wire, self.qname_end)

    @cached_property
    def qkey(self) -> bytes:
        """The QNAME as lower-cased wire bytes (`authority.name_key`)."""
        return name_wire(self.qname).lower()

    @property
    def qname_wire(self) -> bytes:
        """The QNAME in uncompressed wire form, in the client's case."""
        if self.qname_end < 0:
            return name_wire(self.qname)
        return _qname_wire(self.wire, self.qname_end)

    def option(self, code: int) -> bytes | None:
        """The data of the query's first EDNS option `code`, or None."""
        if self.opt_rdata is not None:
            return option_from_wire(self.opt_rdata, code)
        for option in self.message.options:
            if option.otype == code:
                return option.to_wire()
        return None

    @property
    def opcode(self) -> dns.opcode.Opcode:
        opcode = _OPCODES.get((self.flags >> 11) & 0xF)
        return dns.opcode.from_flags(self.flags) if opcode is None else opcode

    def reply(self, rcode: dns.rcode.Rcode = dns.rcode.NOERROR) -> dns.message.Message:
        """An empty reply: same ID and opcode, QR set, RD and CD copied, question echoed as sent.

        EDNS is applied when the response is rendered (`nameserver/edns.py`), not here.
        """
        reply = dns.message.Message(id=id_from_wire(self.wire))
        reply.flags = dns.flags.QR | (self.flags & (dns.flags.RD | dns.flags.CD))
        reply.set_opcode(self.opcode)
        parsed = self.__dict__.get("message")
        if parsed is not None:
            reply.question = list(parsed.question)
        else:
            reply.question = [dns.rrset.RRset(self.qname, self.qclass, self.qtype)]
        reply.set_rcode(rcode)
        return reply


class Alias(NamedTuple):
    """A CNAME record made for one reply, in wire form: `owner` and `target` are uncompressed
    absolute names (length-prefixed labels ending with the root), as they are to be sent."""

    owner: bytes
    target: bytes
    ttl: int

    def to_rrset(self) -> dns.rrset.RRset:
        target = dns.name.from_wire(self.target, 0)[0]
        rdata = dns.rdtypes.ANY.CNAME.CNAME(dns.rdataclass.IN, dns.rdatatype.CNAME, target)
        return dns.rrset.from_rdata(dns.name.from_wire(self.owner, 0)[0], self.ttl, rdata)


class Texts(NamedTuple):
    """TXT records made for one reply, in wire form: `owner` as in `Alias`, and each record's
    character-strings (each at most 255 octets), in order (e.g. the steps of an `explain`)."""

    owner: bytes
    ttl: int
    records: tuple[tuple[bytes, ...], ...]

    def to_rrset(self) -> dns.rrset.RRset:
        rdatas = [dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings) for strings in self.records]
        return dns.rrset.from_rdata_list(dns.name.from_wire(self.owner, 0)[0], self.ttl, rdatas)


@dataclass(frozen=True)
class Reply:
    """A reply as sections of RRsets, for the server core's fast renderer.

    The header is the request's (ID, opcode, RD and CD copied, QR set) plus `flags` (e.g. AA, RA);
    `rcode` must fit the header (0..15). The OPT record is the one EDNS negotiation calls for,
    carrying `options` (e.g. Extended DNS Errors; sent only when the client speaks EDNS).
    Records made for this reply alone travel in wire form: `aliases` (e.g. a semantic CNAME
    chain) lead the answer section, then `texts` (e.g. an `explain` answer); the RRsets of
    `answer`, `authority` and `additional` live as long as a zone catalog (the renderer keeps
    their pieces). `Response.materialize` turns it into the
    equivalent `dns.message.Message`; the rendered bytes are the same either way (the tests
    compare them).
    """

    rcode: int
    flags: int = 0
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()
    options: tuple[dns.edns.Option, ...] = ()
    aliases: tuple[Alias, ...] = ()
    texts: tuple[Texts, ...] = ()

    @classmethod
    def refusing(
        cls, refusal: Refusal, flags: int = 0, authority: tuple[dns.rrset.RRset, ...] = (),
    ) -> "Reply":
        """The reply to a `Refusal`: the one place a refusal becomes an answer (its RCODE, its
        EDE option); `flags` and `authority` add what the refusing handler knows (AA and the
        zone's SOA for an authoritative negative answer)."""
        return cls(int(refusal.rcode), flags, authority=authority, options=refusal.options)

    def to_message(self, request: Request, base: dns.message.Message | None = None) -> dns.message.Message:
        """This reply as a message: `request.reply()` filled in, or `base` (a reply already
        made, e.g. the TSIG-signed response to an UPDATE)."""
        rcode = dns.rcode.Rcode.make(self.rcode)
        message = request.reply() if base is None else base
        if self.options:
            message.use_edns(0, 0, options=list(self.options))
        message.set_rcode(rcode)
        message.flags |= self.flags
        message.answer = ([alias.to_rrset() for alias in self.aliases] + [text.to_rrset() for text in self.texts]
                          + list(self.answer))
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
    `expires` (a `time.monotonic()` instant; None: for as long as the catalog lasts). With
    `ttl_epoch` (the whole second of `time.monotonic()` at which the answer's TTLs were computed,
    by a cache that counts in whole seconds) the wire cache lowers every TTL by the seconds since.
    """

    message: dns.message.Message | None = None
    wires: tuple[bytes, ...] = field(default=())
    cacheable: bool = False
    reply: Reply | None = None
    expires: float | None = None
    ttl_epoch: int | None = None

    def materialize(self, request: Request) -> dns.message.Message | None:
        """The reply as a message (`message`, or `reply` built into one)."""
        if self.message is None and self.reply is not None:
            return self.reply.to_message(request)
        return self.message


Next = Callable[[Request], Awaitable[Response]]
