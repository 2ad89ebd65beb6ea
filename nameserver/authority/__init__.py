"""Authoritative answers: the RFC 1034 lookup over a zone-catalog snapshot (lookup), the chain's
`authority` slot that renders it (handler), and CHAOS-class identification (chaos)."""
