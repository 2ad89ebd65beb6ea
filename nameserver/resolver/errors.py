"""The resolver's exceptions: one root, each failure carrying the Extended DNS Error to answer with."""
from __future__ import annotations

import dns.edns
import dns.rcode

from nameserver.errors import NameserverError


class ResolverError(NameserverError):
    """Root of the resolver's errors."""


class HintsError(ResolverError):
    """The root hints file is missing or malformed."""


class ResolutionFailed(ResolverError):
    """Iterative resolution gave up; answer SERVFAIL with this Extended DNS Error (RFC 8914)."""

    def __init__(self, code: dns.edns.EDECode, text: str, rcode: dns.rcode.Rcode = dns.rcode.SERVFAIL) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.rcode = rcode

    @property
    def ede(self) -> dns.edns.EDEOption:
        return dns.edns.EDEOption(self.code, self.text)
