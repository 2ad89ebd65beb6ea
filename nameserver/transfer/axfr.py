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
every name can be compressed. Only clients in the ACL (`--axfr-allow`, loopback by default) are
served, over either transport; others get REFUSED with EDE 18 (Prohibited).
"""
from __future__ import annotations

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
from nameserver.request import Next, Request, Response
from nameserver.transfer import ixfr
from nameserver.wire import splice_transfer
from zones.catalog import ZoneStore
from zones.history import ZoneHistory

log = logging.getLogger(__name__)

MESSAGE_SIZE = 16384
TRANSFER_TYPES = (dns.rdatatype.AXFR, dns.rdatatype.IXFR)
OPT_ROOM = 64  # room left in a UDP IXFR answer for the OPT record the server core adds


def render_stream(
    origin: dns.name.Name, rdtype: dns.rdatatype.RdataType, rrsets: Sequence[dns.rrset.RRset],
    max_size: int = MESSAGE_SIZE,
) -> tuple[bytes, ...]:
    """`rrsets` in order in the answer sections of as many messages (ID 0, QR AA) as they need;
    the question (`origin`, `rdtype`) in the first."""
    flags = dns.flags.QR | dns.flags.AA
    messages: list[bytes] = []
    renderer = dns.renderer.Renderer(0, flags, max_size)
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
        renderer.write_header()
        messages.append(renderer.get_wire())
        renderer = dns.renderer.Renderer(0, flags, max_size)
        renderer.add_rrset(dns.renderer.ANSWER, rrset, want_shuffle=False)
        count = 1
    renderer.write_header()
    messages.append(renderer.get_wire())
    return tuple(messages)


def render_transfer(index: ZoneIndex, max_size: int = MESSAGE_SIZE) -> tuple[bytes, ...]:
    """The whole zone as AXFR messages (ID 0): SOA first and last, the question in the first."""
    rrsets = [index.soa, *(r for r in index.ordered if r is not index.soa), index.soa]
    return render_stream(index.origin, dns.rdatatype.AXFR, rrsets, max_size)


class TransferHandler:
    """AXFR/IXFR for zones we host, to clients in the ACL."""

    name = "transfer"

    def __init__(
        self, store: ZoneStore, config: ServerConfig, authorities: Authorities | None = None,
        history: ZoneHistory | None = None,
    ) -> None:
        self.config = config
        self.authorities = authorities or Authorities(store)
        self.history = history if history is not None else store.history
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
        if request.opcode != dns.opcode.QUERY or request.qtype not in TRANSFER_TYPES:
            return await next(request)
        if request.transport != "tcp" and request.qtype == dns.rdatatype.AXFR:
            raise Refusal(dns.rcode.FORMERR, "AXFR over UDP")
        if not self.config.axfr_allowed(request.client[0]):
            raise Refusal(dns.rcode.REFUSED, f"transfer to {request.client[0]}", dns.edns.EDECode.PROHIBITED,
                          "zone transfer not allowed")
        index = self.authorities.current().indexes.get(request.qname)
        if index is None:
            raise Refusal(dns.rcode.NOTAUTH, f"{request.qname} is no zone apex here")
        if request.qtype == dns.rdatatype.IXFR:
            return self._ixfr(request, index)
        return self._full(request, index, "axfr", f"AXFR {index.origin} serial {index.soa[0].serial}", "full")

    def _full(self, request: Request, index: ZoneIndex, key: str, what: str, outcome: str) -> Response:
        messages = self.messages(index)
        self._count(key, request, what, f"{outcome}, {len(messages)} message(s)")
        return Response(wires=splice_transfer(messages, request.wire, request.flags))

    def _ixfr(self, request: Request, index: ZoneIndex) -> Response:
        decision = ixfr.plan(request.message, index.soa, self.history)
        what = f"IXFR {index.origin} {decision.client_serial} -> {decision.serial}"
        if decision.outcome is ixfr.Outcome.UP_TO_DATE:
            self._count("ixfr-up-to-date", request, what, "up to date, SOA only")
            return Response(message=self._soa_only(request, index))
        if request.transport != "tcp":
            return self._ixfr_udp(request, index, decision, what)
        if decision.outcome is ixfr.Outcome.FULL:
            return self._full(request, index, "ixfr-full", what, f"full transfer ({decision.reason})")
        messages = self.incremental_messages(index, decision)
        self._count("ixfr-incremental", request, what,
                    f"incremental, {len(decision.steps)} step(s), {decision.records} records, "
                    f"{len(messages)} message(s)")
        return Response(wires=splice_transfer(messages, request.wire, request.flags))

    def _ixfr_udp(self, request: Request, index: ZoneIndex, decision: ixfr.Plan, what: str) -> Response:
        """The incremental answer when it fits one datagram; else our SOA (the client then uses TCP)."""
        if decision.outcome is ixfr.Outcome.INCREMENTAL:
            reply = self._soa_only(request, index)
            reply.answer = ixfr.incremental_rrsets(decision.steps, index.soa)
            try:
                reply.to_wire(max_size=request.edns.max_size - OPT_ROOM, want_shuffle=False)
            except dns.exception.TooBig:
                pass
            else:
                self._count("ixfr-incremental", request, what,
                            f"incremental over UDP, {len(decision.steps)} step(s), {decision.records} records")
                return Response(message=reply)
        self._count("ixfr-udp-soa", request, what, "SOA only over UDP, the client should use TCP")
        return Response(message=self._soa_only(request, index))

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

