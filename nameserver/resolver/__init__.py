"""Iterative (recursive) resolution from root hints.

- `iterator`: the sans-IO state machine (`Iteration`, `Query`/`Reply`/`NoReply`, `Resolution`);
- `bailiwick`: what a server may say, typed (`sanitize`);
- `hints`: the root hints file (`Hints`);
- `transport`: UDP/TCP exchanges with dnspython;
- `recursor`: the driver with a deadline, and the stub-facing `respond`;
- `handler`: the chain handler for `semdns serve --recursive`.
"""
from nameserver.resolver.errors import HintsError, ResolutionFailed, ResolverError
from nameserver.resolver.hints import Hints, NameServer
from nameserver.resolver.iterator import Iteration, NoReply, Query, Reply, Resolution, ResolverConfig
from nameserver.resolver.recursor import Recursor

__all__ = [
    "Hints", "HintsError", "Iteration", "NameServer", "NoReply", "Query", "Recursor", "Reply",
    "Resolution", "ResolutionFailed", "ResolverConfig", "ResolverError",
]
