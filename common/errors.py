"""The root of every error the project raises on purpose.

Each package has one root under it (`codec.errors.CodecError`, `zones.errors.ZonesError`,
`routing.errors.RoutingError`, `nameserver.errors.NameserverError`, `sdk.errors.SdkError`,
`engines.errors.EngineError`), and its own errors under that root: `except SemanticDnsError`
catches what the project means to raise and nothing it does not."""
from __future__ import annotations


class SemanticDnsError(Exception):
    """An error semantic-dns raises deliberately (never a bug's exception)."""
