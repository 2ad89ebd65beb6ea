"""The chain's `update` slot: takes opcode UPDATE (RFC 2136), passes everything else on.

A refused UPDATE (`errors.Refusal`) gets its RCODE: with the TSIG error when the signature is what
failed (`errors.TsigRefusal`, RFC 8945 §5.3.2), else on the TSIG-signed response (RFC 8945 §5.3)
made for the verified message."""
from __future__ import annotations

import dns.message
import dns.opcode

from nameserver.errors import Refusal, TsigRefusal
from nameserver.logs import packet_log
from nameserver.request import Next, Reply, Request, Response
from nameserver.update.apply import verify
from nameserver.update.dynamic import DynamicZones
from zones.tsigguard import TsigGuard

log = packet_log(__name__)  # anyone can send an UPDATE: rate-limited lines


class UpdateHandler:
    """The `update` slot: takes opcode UPDATE, passes everything else on."""

    name = "update"
    inline = True  # awaits nothing that needs a running task

    def __init__(self, dynamic: DynamicZones, guard: TsigGuard | None = None) -> None:
        self.dynamic = dynamic
        self.guard = guard if guard is not None else TsigGuard(dynamic.keyring)  # fudge, replay cache

    async def serve(self, request: Request, next: Next) -> Response:
        if request.opcode != dns.opcode.UPDATE:
            return await next(request)
        try:
            message = verify(request.wire, self.guard)
        except Refusal as refused:
            log.warning("UPDATE from %s refused: %s", request.client[0], refused)
            if isinstance(refused, TsigRefusal):
                return Response(message=refused.response())
            return Response(message=Reply.refusing(refused).to_message(request))
        reply = dns.message.make_response(message)
        try:
            await self.dynamic.update(message)
        except Refusal as refused:
            log.warning("UPDATE of %s from %s refused: %s", request.qname, request.client[0], refused)
            reply = Reply.refusing(refused).to_message(request, base=reply)  # still signed
        return Response(message=reply)
