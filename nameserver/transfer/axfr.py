"""Zone transfer out: AXFR (RFC 5936) and IXFR (RFC 1995), to clients in the ACL.

AXFR goes over TCP only (over UDP: FORMERR). IXFR (the client's SOA in the authority section)
is answered by `nameserver/transfer/ixfr.py`'s plan:
- the client's serial is ours or newer (RFC 1982): our SOA alone (RFC 1995 §2);
- the zone history (`zones/history.py`, fed by every catalog swap: reload, UPDATE) leads from
  the client's serial to ours: the incremental transfer (our SOA; per step its old SOA, deletions,
  new SOA, additions; our SOA), in several messages over TCP like AXFR;
- otherwise (no SOA in the query, an unknown or too old serial): the full, AXFR-style transfer
  (RFC 1995 §4). The history bounds a path to 3x the zone's octets (`zones/history.py`).
Over UDP an IXFR gets the incremental answer only when it fits one datagram, else our SOA alone
(RFC 1995 §2: the client retries over TCP).

Every transfer is logged at INFO (`transfer: AXFR|IXFR <zone> ... to <client>: <outcome>`) and
counted in `TransferHandler.counts` (keys `axfr`, `ixfr-incremental`, `ixfr-full`,
`ixfr-up-to-date`, `ixfr-udp-soa`).

The transfers of a zone version are rendered once and kept (keyed by the zone's index, which
lives as long as that version; incremental ones also by the client's serial); each request gets
copies with its own ID, RD bit and question bytes spliced in. Messages hold up to 16 KiB so that
every name can be compressed.

TSIG (RFC 8945): this slot checks every signed QUERY (`zones.tsigguard`: the server's 300 s
fudge; a replay cache for AXFR/IXFR requests) against the transfer keys (`--transfer-keys`). A signature that fails gets
NOTAUTH with the TSIG error (BADKEY, BADSIG, BADTIME), whoever sends it. A verified transfer is
answered signed, every message of a multi-message one (§5.3.1; rendered for that request, not
taken from the kept renderings); any other verified query (a secondary's SOA refresh) goes down
the chain and its answer comes back signed. Only clients the ACL admits (`--allow-transfer`:
per zone, by network, by key or both; loopback without a key by default) get a transfer, over
either transport; others get REFUSED with EDE 18 (Prohibited), signed when they signed.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from typing import Sequence

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.renderer
import dns.rrset

from nameserver.authority.handler import Authorities
from nameserver.authority.lookup import ZoneIndex
from nameserver.config import ServerConfig
from nameserver.errors import Refusal
from nameserver.logs import packet_log
from nameserver.request import Next, Reply, Request, Response
from nameserver.transfer import ixfr
from nameserver.wire import splice_transfer
from zones.catalog import ZoneStore
from zones.history import ZoneHistory
from zones.tsigguard import StreamSigner, TsigFailure, TsigGuard, sign_reply, tsig_room

log = logging.getLogger(__name__)
packets = packet_log(__name__)  # anyone can send a signed query: rate-limited lines

MESSAGE_SIZE = 16384
TRANSFER_TYPES = (dns.rdatatype.AXFR, dns.rdatatype.IXFR)
OPT_ROOM = 64  # room left in a UDP IXFR answer for the OPT record the server core adds


def render_stream(
    origin: dns.name.Name, rdtype: dns.rdatatype.RdataType, rrsets: Sequence[dns.rrset.RRset],
    max_size: int = MESSAGE_SIZE, *, id: int = 0, flags: int = dns.flags.QR | dns.flags.AA,
    signer: StreamSigner | None = None,
) -> tuple[bytes, ...]:
    """`rrsets` in order in the answer sections of as many messages (ID `id`, `flags`) as they need;
    the question (`origin`, `rdtype`) in the first; each message signed by `signer` if given."""
    messages: list[bytes] = []

    def start() -> dns.renderer.Renderer:
        renderer = dns.renderer.Renderer(id, flags, max_size)
        if signer is not None:
            renderer.reserve(signer.room)
        return renderer

    def finish(renderer: dns.renderer.Renderer) -> None:
        renderer.write_header()
        if signer is not None:
            renderer.release_reserved()
            signer.sign(renderer)
        messages.append(renderer.get_wire())

    renderer = start()
    renderer.add_question(origin, rdtype, dns.rdataclass.IN)
    count = 0
    for rrset in rrsets:
        try:
            renderer.add_rrset(dns.renderer.ANSWER, rrset, want_shuffle=False)
            count += 1
            continue
        except dns.exception.TooBig:
            if count == 0:
                raise
        finish(renderer)
        renderer = start()
        renderer.add_rrset(dns.renderer.ANSWER, rrset, want_shuffle=False)
        count = 1
    finish(renderer)
    return tuple(messages)


def transfer_rrsets(index: ZoneIndex) -> list[dns.rrset.RRset]:
    """The records of a full transfer, in order: SOA first and last."""
    return [index.soa, *(r for r in index.ordered if r is not index.soa), index.soa]


def render_transfer(index: ZoneIndex, max_size: int = MESSAGE_SIZE) -> tuple[bytes, ...]:
    """The whole zone as AXFR messages (ID 0): SOA first and last, the question in the first."""
    return render_stream(index.origin, dns.rdatatype.AXFR, transfer_rrsets(index), max_size)


class TransferHandler:
    """AXFR/IXFR for zones we host, to clients in the ACL."""

    name = "transfer"

    def __init__(
        self, store: ZoneStore, config: ServerConfig, authorities: Authorities | None = None,
        history: ZoneHistory | None = None, guard: TsigGuard | None = None,
    ) -> None:
        self.config = config
        self.authorities = authorities or Authorities(store)
        self.history = history if history is not None else store.history
        self.guard = guard if guard is not None else TsigGuard(config.transfer_keys)
        self.counts: Counter[str] = Counter()
        self._rendered: dict[dns.name.Name, tuple[ZoneIndex, tuple[bytes, ...]]] = {}
        self._incremental: dict[dns.name.Name, tuple[ZoneIndex, dict[int, tuple[bytes, ...]]]] = {}

    def warm(self) -> None:
        """Render the transfers of every zone version not rendered yet."""
        indexes = self.authorities.current().indexes
        for origin in [o for o in self._rendered if o not in indexes]:
            del self._rendered[origin]
        for origin in [o for o in self._incremental if o not in indexes]:
            del self._incremental[origin]
        for index in indexes.values():
            self.messages(index)

    async def serve(self, request: Request, next: Next) -> Response:
        if request.opcode != dns.opcode.QUERY:
            return await next(request)
        signed = request.qname_end < 0 and request.message.had_tsig  # a plain query has no TSIG
        if not signed:
            if request.qtype not in TRANSFER_TYPES:
                return await next(request)
            return self._transfer(request, None)
        try:
            query = self.guard.check(request.wire, once=request.qtype in TRANSFER_TYPES)
        except TsigFailure as failure:
            packets.warning("TSIG from %s (%s) refused: %s", request.client[0], request.transport, failure)
            self.counts[f"tsig-{failure.name.lower()}"] += 1
            return Response(message=failure.response())
        except (dns.exception.DNSException, ValueError) as exc:
            raise Refusal(dns.rcode.FORMERR, f"signed query: {exc}") from None
        try:
            if request.qtype not in TRANSFER_TYPES:
                return self._signed(query, await next(request), request)
            return self._transfer(request, query)
        except Refusal as refused:
            packets.info("signed query from %s refused: %s", request.client[0], refused)
            return self._signed(query, Response(reply=Reply.refusing(refused)), request)

    @staticmethod
    def _signed(query: dns.message.Message, response: Response, request: Request) -> Response:
        """`response` signed for the verified `query` (one message; an answer of several is left as is)."""
        message = response.materialize(request)
        if message is None:
            return response
        sign_reply(query, message)
        return dataclasses.replace(response, message=message, reply=None, cacheable=False)

    def _transfer(self, request: Request, query: dns.message.Message | None) -> Response:
        """An AXFR/IXFR request; `query` is the verified message of a signed one (None: unsigned)."""
        if request.transport != "tcp" and request.qtype == dns.rdatatype.AXFR:
            raise Refusal(dns.rcode.FORMERR, "AXFR over UDP")
        key = None if query is None else query.keyname
        if not self.config.transfer_allowed(request.qname, request.client[0], key):
            signed_by = "" if key is None else f" (key {key})"
            raise Refusal(dns.rcode.REFUSED, f"transfer of {request.qname} to {request.client[0]}{signed_by}",
                          dns.edns.EDECode.PROHIBITED, "zone transfer not allowed")
        index = self.authorities.current().indexes.get(request.qname)
        if index is None:
            raise Refusal(dns.rcode.NOTAUTH, f"{request.qname} is no zone apex here")
        if request.qtype == dns.rdatatype.IXFR:
            return self._ixfr(request, index, query)
        return self._full(request, index, "axfr", f"AXFR {index.origin} serial {index.soa[0].serial}", "full", query)

    def _full(self, request: Request, index: ZoneIndex, key: str, what: str, outcome: str,
              query: dns.message.Message | None) -> Response:
        if query is not None:
            messages = self._signed_stream(request, query, transfer_rrsets(index))
            self._count(key, request, what, f"{outcome}, {len(messages)} signed message(s), key {query.keyname}")
            return Response(wires=messages)
        messages = self.messages(index)
        self._count(key, request, what, f"{outcome}, {len(messages)} message(s)")
        return Response(wires=splice_transfer(messages, request.wire, request.flags))

    @staticmethod
    def _signed_stream(request: Request, query: dns.message.Message,
                       rrsets: Sequence[dns.rrset.RRset]) -> tuple[bytes, ...]:
        """A transfer rendered for this request alone: its ID, RD bit and QNAME, each message signed."""
        flags = dns.flags.QR | dns.flags.AA | (request.flags & dns.flags.RD)
        return render_stream(request.qname, request.qtype, rrsets, id=query.id, flags=flags,
                             signer=StreamSigner(query))

    def _ixfr(self, request: Request, index: ZoneIndex, query: dns.message.Message | None) -> Response:
        decision = ixfr.plan(request.message, index.soa, self.history)
        what = f"IXFR {index.origin} {decision.client_serial} -> {decision.serial}"
        if decision.outcome is ixfr.Outcome.UP_TO_DATE:
            self._count("ixfr-up-to-date", request, what, "up to date, SOA only")
            return self._one(query, self._soa_only(request, index))
        if request.transport != "tcp":
            room = OPT_ROOM + (tsig_room(query.keyring) if query is not None else 0)
            return self._one(query, self._ixfr_udp(request, index, decision, what, room))
        if decision.outcome is ixfr.Outcome.FULL:
            return self._full(request, index, "ixfr-full", what, f"full transfer ({decision.reason})", query)
        outcome = f"incremental, {len(decision.steps)} step(s), {decision.records} records"
        if query is not None:
            rrsets = ixfr.incremental_rrsets(decision.steps, index.soa)
            messages = self._signed_stream(request, query, rrsets)
            self._count("ixfr-incremental", request, what,
                        f"{outcome}, {len(messages)} signed message(s), key {query.keyname}")
            return Response(wires=messages)
        messages = self.incremental_messages(index, decision)
        self._count("ixfr-incremental", request, what, f"{outcome}, {len(messages)} message(s)")
        return Response(wires=splice_transfer(messages, request.wire, request.flags))

    @staticmethod
    def _one(query: dns.message.Message | None, reply: dns.message.Message) -> Response:
        """A one-message transfer answer, signed when the request was."""
        if query is not None:
            sign_reply(query, reply)
        return Response(message=reply)

    def _ixfr_udp(self, request: Request, index: ZoneIndex, decision: ixfr.Plan, what: str,
                  room: int = OPT_ROOM) -> dns.message.Message:
        """The incremental answer when it fits one datagram with `room` octets to spare (the OPT
        record, a TSIG); else our SOA (the client then uses TCP)."""
        if decision.outcome is ixfr.Outcome.INCREMENTAL:
            reply = self._soa_only(request, index)
            reply.answer = ixfr.incremental_rrsets(decision.steps, index.soa)
            try:
                reply.to_wire(max_size=request.edns.max_size - room, want_shuffle=False)
            except dns.exception.TooBig:
                pass
            else:
                self._count("ixfr-incremental", request, what,
                            f"incremental over UDP, {len(decision.steps)} step(s), {decision.records} records")
                return reply
        self._count("ixfr-udp-soa", request, what, "SOA only over UDP, the client should use TCP")
        return self._soa_only(request, index)

    @staticmethod
    def _soa_only(request: Request, index: ZoneIndex) -> dns.message.Message:
        reply = request.reply()
        reply.flags |= dns.flags.AA
        reply.answer = [index.soa]
        return reply

    def _count(self, key: str, request: Request, what: str, outcome: str) -> None:
        self.counts[key] += 1
        log.info("transfer: %s to %s (%s): %s", what, request.client[0], request.transport, outcome)

    def messages(self, index: ZoneIndex) -> tuple[bytes, ...]:
        """The rendered full transfer of this zone version (rendered on first use)."""
        kept = self._rendered.get(index.origin)
        if kept is not None and kept[0] is index:
            return kept[1]
        messages = render_transfer(index)
        self._rendered[index.origin] = (index, messages)
        return messages

    def incremental_messages(self, index: ZoneIndex, decision: ixfr.Plan) -> tuple[bytes, ...]:
        """The rendered incremental transfer from the plan's client serial to this zone version."""
        kept = self._incremental.get(index.origin)
        if kept is None or kept[0] is not index:
            kept = (index, {})
            self._incremental[index.origin] = kept
        serial = decision.client_serial
        assert serial is not None
        messages = kept[1].get(serial)
        if messages is None:
            rrsets = ixfr.incremental_rrsets(decision.steps, index.soa)
            messages = render_stream(index.origin, dns.rdatatype.IXFR, rrsets)
            kept[1][serial] = messages
        return messages

