"""The client SDK's exceptions: one root, `SdkError`; each message says what happened and what to do."""
from __future__ import annotations

from common.errors import SemanticDnsError


class SdkError(SemanticDnsError):
    """Root of every error the client SDK raises."""


class BadQuestion(SdkError):
    """The question cannot be sent in any form: empty once normalised, not valid Unicode (lone
    surrogates), larger than the EDNS text option carries (65,000 octets of UTF-8, or 65,000 code
    points once decomposed, NFKD: `codec.text`), or a bad zone name."""


class NoRoute(SdkError):
    """The hierarchy has no route for the question (NXDOMAIN / NODATA / no engines listed)."""


class ServerFailure(SdkError):
    """The DNS server answered with an error (SERVFAIL, REFUSED ...), often with an EDE text."""


class ResolveTimeout(SdkError):
    """No DNS server answered in time."""


class EngineFailure(SdkError):
    """Every engine of the route failed (connection refused, HTTP error, malformed reply)."""


class LibraryFault(SdkError):
    """A domain's pattern library could not be fetched or verified (the context goes uncompressed)."""


class LibraryTooLarge(LibraryFault):
    """A library's header announces more chunks or octets than the client's limits
    (`Client(library_limits=codec.library.LibraryLimits(...))`, at most `HARD_LIMITS`): nothing fetched."""


class LibraryTimeout(LibraryFault):
    """Fetching one library took longer than the client's deadline (`Client(library_deadline=...)`)."""
