"""The I/O half of iterative resolution: carry one `Query` action over UDP or TCP (dnspython)."""
from __future__ import annotations

import time
from typing import Protocol

import dns.asyncquery
import dns.exception
import dns.message

from nameserver.resolver.iterator import Event, NoReply, Query, Reply


class Transport(Protocol):
    async def exchange(self, query: Query) -> Event: ...


class DnsTransport:
    """Real sockets: a fresh UDP socket per query (random source port), TCP when asked."""

    def __init__(self, timeout: float = 0.8) -> None:
        self.timeout = timeout

    async def exchange(self, query: Query) -> Event:
        try:
            if query.tcp:
                message = await dns.asyncquery.tcp(query.message, query.address, self.timeout, query.port)
                return Reply(message)
            message = await dns.asyncquery.udp(
                query.message, query.address, self.timeout, query.port,
                ignore_unexpected=True, raise_on_truncation=True,
            )
            return Reply(message)
        except dns.message.Truncated as exc:
            return Reply(exc.message(), truncated=True)
        except dns.exception.Timeout:
            return NoReply(f"timeout after {self.timeout:g} s")
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            return NoReply(f"network error: {exc or type(exc).__name__}")


class TimedTransport:
    """Wraps a transport and reports every exchange (for `semdns trace`)."""

    def __init__(self, inner: Transport, on_hop) -> None:  # on_hop(query, event, seconds)
        self.inner = inner
        self.on_hop = on_hop

    async def exchange(self, query: Query) -> Event:
        start = time.perf_counter()
        event = await self.inner.exchange(query)
        self.on_hop(query, event, time.perf_counter() - start)
        return event
