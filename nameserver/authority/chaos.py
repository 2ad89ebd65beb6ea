"""CHAOS-class identification queries: which server, which software (the BIND convention; RFC 4892
for `id.server.`), answered as NSD 4 answers them.

- `TXT` (or `ANY`) in class CH at `version.bind.` or `version.server.`: the configured version; at
  `id.server.` or `hostname.bind.`: the configured identity. One TXT record, class CH, TTL 0, AA
  clear, the owner in the client's case (the renderer points it at the question).
- a hidden one (`--hide-version`, `--hide-identity`): REFUSED with EDE 18 (Prohibited);
- any other CHAOS query (another name, another type): REFUSED with EDE 21 (Not Supported).
Queries of other classes pass on down the chain. Answers depend on the query and the configuration
only, so the wire cache may keep them.
"""
from __future__ import annotations

import dns.edns
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from common.names import name_wire
from nameserver.config import ServerConfig
from nameserver.errors import Refusal
from nameserver.request import Next, Reply, Request, Response

VERSION_NAMES = ("version.bind.", "version.server.")
IDENTITY_NAMES = ("id.server.", "hostname.bind.")
ANSWERED_TYPES = frozenset({dns.rdatatype.TXT, dns.rdatatype.ANY})
PROHIBITED = Reply.refusing(Refusal(dns.rcode.REFUSED, "hidden", dns.edns.EDECode.PROHIBITED))
NOT_SUPPORTED = Reply.refusing(Refusal(dns.rcode.REFUSED, "no such CHAOS query", dns.edns.EDECode.NOT_SUPPORTED))


def chaos_txt(owner: str, text: str) -> dns.rrset.RRset:
    """The one-record CH TXT RRset that answers `owner`, TTL 0."""
    rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.CH, dns.rdatatype.TXT, [text.encode()])
    return dns.rrset.from_rdata(dns.name.from_text(owner), 0, rdata)


def chaos_replies(config: ServerConfig) -> dict[bytes, Reply]:
    """The reply to CH TXT for each known name (lower-cased wire bytes), per `config`."""
    replies: dict[bytes, Reply] = {}
    for names, text, hidden in (
        (VERSION_NAMES, config.version, config.hide_version),
        (IDENTITY_NAMES, config.identity, config.hide_identity),
    ):
        for owner in names:
            key = name_wire(dns.name.from_text(owner))
            replies[key] = PROHIBITED if hidden else Reply(int(dns.rcode.NOERROR), answer=(chaos_txt(owner, text),))
    return replies


class ChaosHandler:
    """Answers CHAOS-class queries (see the module docstring); passes on every other class."""

    name = "chaos"
    inline = True  # never waits

    def __init__(self, config: ServerConfig) -> None:
        self.replies = chaos_replies(config)

    async def serve(self, request: Request, next: Next) -> Response:
        if request.qclass != dns.rdataclass.CH or request.opcode != dns.opcode.QUERY:
            return await next(request)
        reply = self.replies.get(request.qkey) if request.qtype in ANSWERED_TYPES else None
        return Response(reply=reply or NOT_SUPPORTED, cacheable=True)
