"""The nameserver package's errors: one root, under the project's (`common.errors`).

- `NameserverError` is the root (`ConfigError`, `ZoneLoadError`, the resolver's `ResolverError`,
  `authority.lookup.ZoneIndexError` ... all derive from it).
- `Refusal` is an error that is an answer: a handler raises it (or keeps one ready) for a query it
  answers with an error RCODE, an optional Extended DNS Error (RFC 8914) and a reason; it becomes
  a reply in one place, `request.Reply.refusing`.
- `TsigRefusal` is the refusal of a request whose TSIG failed: its answer carries the TSIG error.
- `Rejected` is a packet the chain never sees (no request can be made of it): it carries the
  refusal it is answered with (header-only, `wire.error_reply`), or none when it is dropped.
"""
from __future__ import annotations

import dns.edns
import dns.message
import dns.rcode

from common.errors import SemanticDnsError
from zones.tsigguard import TsigFailure


class NameserverError(SemanticDnsError):
    """Root of the nameserver package's exceptions."""


class ConfigError(NameserverError):
    """A configuration value is wrong; the message names the option and the value."""


class ZoneLoadError(NameserverError):
    """The zones could not be loaded; the message carries `file:line: message` lines."""


class Refusal(NameserverError):
    """An error that is an answer: `rcode`, the Extended DNS Error `ede` (with `ede_text`, both
    optional; sent only to clients that speak EDNS), and `text` saying why (for logs;
    `str()` is `"<RCODE>: <text>"`). An UPDATE the policy refuses carries EDE 18 (Prohibited) and
    its reason (`nameserver.update.authorize.refused`); the other UPDATE refusals (RFC 2136 §3)
    carry no EDE."""

    def __init__(
        self, rcode: dns.rcode.Rcode, text: str, ede: dns.edns.EDECode | None = None, ede_text: str | None = None,
    ) -> None:
        super().__init__(f"{dns.rcode.to_text(rcode)}: {text}")
        self.rcode = rcode
        self.text = text
        self.ede = ede
        self.ede_text = ede_text

    @property
    def options(self) -> tuple[dns.edns.Option, ...]:
        """The EDNS options the reply carries: the EDE, if there is one."""
        return () if self.ede is None else (dns.edns.EDEOption(self.ede, self.ede_text),)


class TsigRefusal(Refusal):
    """A request whose TSIG failed (`zones.tsigguard.TsigFailure`): NOTAUTH, answered by
    `response()` with the TSIG error RFC 8945 §5.3.2 asks for (not by `Reply.refusing`)."""

    def __init__(self, failure: TsigFailure) -> None:
        super().__init__(dns.rcode.NOTAUTH, str(failure))
        self.failure = failure

    def response(self) -> dns.message.Message:
        return self.failure.response()


class Rejected(NameserverError):
    """A packet the chain never sees: `refusal` is its answer (sent header-only, without EDE:
    there is no question to echo), None when the packet is dropped (no readable header, or a
    response, which is never answered)."""

    def __init__(self, reason: str, rcode: dns.rcode.Rcode | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refusal = Refusal(rcode, reason) if rcode is not None else None
