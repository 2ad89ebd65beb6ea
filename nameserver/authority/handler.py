"""The authority handler: turns an `authority.Lookup` into a reply message."""
from __future__ import annotations

import dns.flags
import dns.opcode
import dns.rcode

from nameserver.authority.lookup import Authority, Kind, Lookup
from nameserver.request import Next, Reply, Request, Response
from zones.catalog import ZoneCatalog, ZoneStore

RCODES = {
    Kind.SUCCESS: int(dns.rcode.NOERROR),
    Kind.NO_DATA: int(dns.rcode.NOERROR),
    Kind.DELEGATION: int(dns.rcode.NOERROR),
    Kind.NAME_ERROR: int(dns.rcode.NXDOMAIN),
}
AA = int(dns.flags.AA)


class Authorities:
    """The `Authority` of the store's current catalog, rebuilt (reusing indexes) when it changes."""

    def __init__(self, store: ZoneStore) -> None:
        self.store = store
        self._catalog: ZoneCatalog | None = None
        self._authority: Authority | None = None

    def current(self) -> Authority:
        catalog = self.store.current
        authority = self._authority
        if authority is None or catalog is not self._catalog:
            authority = Authority(catalog, previous=authority)
            self._catalog, self._authority = catalog, authority
        return authority


class AuthorityHandler:
    """Answers QUERY from our zones; passes on names outside them (the chain's end REFUSES)."""

    name = "authority"
    inline = True  # never waits

    def __init__(self, store: ZoneStore, authorities: Authorities | None = None) -> None:
        self.authorities = authorities or Authorities(store)

    def warm(self) -> None:
        self.authorities.current()

    async def serve(self, request: Request, next: Next) -> Response:
        if request.opcode != dns.opcode.QUERY:
            return await next(request)
        result = self.authorities.current().lookup(lambda: request.qname, request.qtype, request.qclass, request.qkey)
        if result.kind == Kind.REFUSED:
            return await next(request)
        return Response(reply=to_reply(result), cacheable=True)


def to_reply(result: Lookup) -> Reply:
    """The reply for a lookup: rcode, AA, and the three sections."""
    flags = AA if result.authoritative else 0
    return Reply(RCODES[result.kind], flags, result.answer, result.authority, result.additional)
