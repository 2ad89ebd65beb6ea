"""Zone transfer out (RFC 5936): AXFR over TCP, IXFR answered with a full AXFR (RFC 1995 §4).

The transfer of a zone version is rendered once and kept (keyed by the zone's index, which lives as
long as that version); each request gets copies with its own ID, RD bit and question bytes spliced in.
Messages hold up to 16 KiB so that every name can be compressed. Only clients in the ACL
(`--axfr-allow`, loopback by default) are served; others get REFUSED. Over UDP: FORMERR.
"""
from __future__ import annotations

import struct

import dns.edns
import dns.exception
import dns.flags
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.renderer

from nameserver.answer import Authorities
from nameserver.authority import ZoneIndex
from nameserver.config import ServerConfig
from nameserver.edns import add_ede
from nameserver.request import Next, Request, Response
from nameserver.wirecache import question_end
from zones.catalog import ZoneStore

MESSAGE_SIZE = 16384
TRANSFER_TYPES = (dns.rdatatype.AXFR, dns.rdatatype.IXFR)


def render_transfer(index: ZoneIndex, max_size: int = MESSAGE_SIZE) -> tuple[bytes, ...]:
    """The whole zone as AXFR messages (ID 0): SOA first and last, the question in the first."""
    flags = dns.flags.QR | dns.flags.AA
    rrsets = [index.soa, *(r for r in index.ordered if r is not index.soa), index.soa]
    messages: list[bytes] = []
    renderer = dns.renderer.Renderer(0, flags, max_size)
    renderer.add_question(index.origin, dns.rdatatype.AXFR, dns.rdataclass.IN)
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


class TransferHandler:
    """AXFR/IXFR for zones we host, to clients in the ACL."""

    name = "transfer"

    def __init__(self, store: ZoneStore, config: ServerConfig, authorities: Authorities | None = None) -> None:
        self.config = config
        self.authorities = authorities or Authorities(store)
        self._rendered: dict[dns.name.Name, tuple[ZoneIndex, tuple[bytes, ...]]] = {}

    def warm(self) -> None:
        """Render the transfers of every zone version not rendered yet."""
        indexes = self.authorities.current().indexes
        for origin in [o for o in self._rendered if o not in indexes]:
            del self._rendered[origin]
        for index in indexes.values():
            self.messages(index)

    async def serve(self, request: Request, next: Next) -> Response:
        if request.opcode != dns.opcode.QUERY or request.qtype not in TRANSFER_TYPES:
            return await next(request)
        if request.transport != "tcp":
            return Response(message=request.reply(dns.rcode.FORMERR))
        if not self.config.axfr_allowed(request.client[0]):
            reply = request.reply(dns.rcode.REFUSED)
            add_ede(reply, dns.edns.EDECode.PROHIBITED, "zone transfer not allowed")
            return Response(message=reply)
        index = self.authorities.current().indexes.get(request.qname)
        if index is None:
            return Response(message=request.reply(dns.rcode.NOTAUTH))
        return Response(wires=_personalise(self.messages(index), request.wire, request.message.flags))

    def messages(self, index: ZoneIndex) -> tuple[bytes, ...]:
        """The rendered transfer of this zone version (rendered on first use)."""
        kept = self._rendered.get(index.origin)
        if kept is not None and kept[0] is index:
            return kept[1]
        messages = render_transfer(index)
        self._rendered[index.origin] = (index, messages)
        return messages


def _personalise(messages: tuple[bytes, ...], query: bytes, query_flags: int) -> tuple[bytes, ...]:
    head = query[:2] + struct.pack("!H", dns.flags.QR | dns.flags.AA | (query_flags & dns.flags.RD))
    first = messages[0]
    end = question_end(query) + 4
    out = [head + first[4:12] + query[12:end] + first[end:]]
    out.extend(head + m[4:] for m in messages[1:])
    return tuple(out)
