"""Errors of the routing package."""
from __future__ import annotations

from common.errors import SemanticDnsError


class RoutingError(SemanticDnsError):
    """Routing cannot do what it was asked (the encoder cannot load, an index cannot compile)."""


class Shed(RoutingError):
    """The encoder could not serve a step: `reason` is `queue-full` or `deadline`."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"encoder overloaded: {reason}")
        self.reason = reason
