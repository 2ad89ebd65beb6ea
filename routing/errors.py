"""Errors of the routing package."""
from __future__ import annotations

from common.errors import SemanticDnsError


class RoutingError(SemanticDnsError):
    """Routing cannot do what it was asked (the encoder cannot load, an index cannot compile)."""
