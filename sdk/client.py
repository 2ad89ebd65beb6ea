"""`Client` and `AsyncClient`: the SDK's blocking and asyncio front ends (they only move bytes; the
steps they drive are in `sdk.steps`, `sdk.route` and `sdk.library`).

Example::

    from sdk import Client

    client = Client(servers=["127.0.0.10:53"])        # default: the system resolver's servers
    route = client.resolve("is a verbal contract binding?")
    print(route.path)      # ('semantic.root.', 'legal.semantic.root.', 'contract.legal.semantic.root.')
    print(route.engines[0].base_url, route.stage, route.confidence, route.ttl)
    answer = client.ask("is a verbal contract binding?", context="We agreed by phone.")
    print(answer.text, answer.engine.target)

    # asyncio
    async with AsyncClient(servers=["127.0.0.10:53"]) as client:
        answer = await client.ask("is a verbal contract binding?")

`resolve(text) -> Route` asks the server for SRV of the question (the QNAME form, or the EDNS form
when the text's `q` or `explain` name would exceed 255 octets), follows what the answer lacks (engine TXT attributes,
target addresses) and the `explain` TXT (stage, confidence). Engines come ordered per RFC 2782
(priority, then weighted random; pass `rng=random.Random(seed)` for repeatable order).
It asks in rounds (`sdk.steps.resolve_steps`, `sdk.wire`): the SRV and the `explain` TXT together,
then what the answer lacks together; one UDP socket per round, a late reply's query sent again
(then doubling, within `timeout`) after srtt + 4 x rttvar of the replies timed so far (RFC 6298;
between 0.1 s and `retry`, default 0.5, which is also the first), TCP after a truncated reply.
The engines' records (TXT, PTR, instances, addresses) are kept for their TTL (`sdk.cache`), so
a question of a domain already seen costs one round trip. `observer=` is called with an
`Exchange` per query (transports, datagrams, octets, seconds: what `semdns bench resolve` shows).
`ask(text, context=None)` resolves, then POSTs an OpenAI chat completion to each engine in turn
until one answers. When the server fails on the question (a domain's servers down: SERVFAIL),
the route degrades to the general engine of the zone asked (`route.stage == "degraded"`; pass
`degrade=False` to get `ServerFailure` instead). Errors: `BadQuestion` (text no form can carry: empty,
lone surrogates, over 65,000 octets of UTF-8 or 65,000 code points decomposed), `NoRoute`, `ServerFailure`,
`ResolveTimeout`, `EngineFailure` (all `SdkError`), each saying what to do.

Context compression (issue 6): by default `ask(text, context=...)` fetches the route's domain
pattern library by DNS over TCP (`_codec.<domain>`, or the nearest ancestor's), verifies it,
caches it by dictionary id, and sends the context as a zstd frame with that dictionary
(`semdns_context`); `answer.context` tells the dictionary id and the ratio. A library fault falls
back to no dictionary (logged warning); an engine that does not know the dictionary is asked once
more with the context as plain text. `compress_context=False` sends plain text; `compressor=` replaces
the hook. A library's header over `library_limits` (default 16 chunks, 128 KiB; at most
`codec.library.HARD_LIMITS`) is refused before any chunk is fetched, and one fetch has
`library_deadline` seconds (default 5) in all; both faults fall back to no dictionary.

Engines that require a key (`semdns engine ... --api-key-file`): `Client(..., api_key="...")`
sends `Authorization: Bearer <key>` with every engine request, as OpenAI clients do.
"""
from __future__ import annotations

import asyncio
import json
import random
import socket
import urllib.error
import urllib.request
from typing import Any, Sequence

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.query
import dns.resolver

from codec.library import DEFAULT_LIMITS, LibraryLimits, PatternLibrary
from common.steps import drive, drive_async
from sdk.cache import RecordCache
from sdk.errors import ResolveTimeout, SdkError
from sdk.library import (
    FETCH_DEADLINE,
    Deadline,
    LibraryCache,
    LibraryCompressor,
    LibraryFault,
    load_library,
    load_library_async,
)
from sdk.message import Query, Reply
from sdk.route import DEFAULT_ZONE, Route
from sdk.steps import Answer, ContextCompressor, DnsRound, HttpPost, HttpResult, ask_steps, resolve_steps
from sdk.wire import RETRY, Exchange, Observer, RetryTimer, udp_round, udp_round_async

Server = tuple[str, int]


def parse_servers(servers: Sequence[str | Server] | None) -> list[Server]:
    """`["127.0.0.1:5353", ("::1", 53), "10.0.0.1"]`; None: the system resolver (/etc/resolv.conf)."""
    if servers is None:
        try:
            system = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration as exc:
            raise SdkError(f"no servers given and no system resolver configured ({exc}); pass servers=[...]") from exc
        return [(str(ns), int(system.port)) for ns in system.nameservers]
    parsed: list[Server] = []
    for server in servers:
        if isinstance(server, tuple):
            parsed.append((server[0], int(server[1])))
            continue
        text = server.strip()
        if text.startswith("["):
            host, _, port = text[1:].partition("]:")
            parsed.append((host, int(port or 53)))
        elif text.count(":") == 1:
            host, port = text.split(":")
            parsed.append((host, int(port)))
        else:
            parsed.append((text, 53))
    if not parsed:
        raise SdkError("servers: the list is empty; pass at least one 'ADDR:PORT'")
    return parsed


class _Base:
    def __init__(
        self,
        servers: Sequence[str | Server] | None = None,
        *,
        zone: str = DEFAULT_ZONE,
        timeout: float = 2.0,
        http_timeout: float = 60.0,
        explain: bool = True,
        degrade: bool = True,
        rng: random.Random | None = None,
        compressor: ContextCompressor | None = None,
        compress_context: bool = True,
        library_limits: LibraryLimits = DEFAULT_LIMITS,
        library_deadline: float = FETCH_DEADLINE,
        api_key: str | None = None,
        retry: float = RETRY,
        observer: Observer | None = None,
    ) -> None:
        self.servers = parse_servers(servers)
        self.zone = zone
        self.timeout = timeout
        self.http_timeout = http_timeout
        self.explain = explain
        self.degrade = degrade
        self.rng = rng or random.Random()
        self.libraries = LibraryCache(limits=library_limits, deadline=library_deadline)
        self.api_key = api_key
        self.retry = retry  # at most this many seconds before a UDP query is first sent again
        self.timer = RetryTimer(ceiling=retry)  # sooner once replies are timed (srtt + 4 x rttvar)
        self.observer = observer  # called with each query's `Exchange` (bench, tracing)
        self.records = RecordCache()
        if compressor is None and compress_context:
            compressor = LibraryCompressor(self.libraries)
        self.compressor = compressor

    def _library_cache(self, context: str | None, route: Route) -> LibraryCache | None:
        """The cache to load the route's library into before asking (None: no library needed)."""
        if context and route.engines and isinstance(self.compressor, LibraryCompressor):
            return self.compressor.cache
        return None

    def _headers(self) -> dict[str, str]:
        """The engine request's headers (the API key, when given one)."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _observe(self, exchange: Exchange) -> None:
        self.timer.observe(exchange)
        if self.observer is not None:
            self.observer(exchange)

    def _from_cache(self, queries: DnsRound) -> tuple[list[Reply | None], list[Query]]:
        """(the round's replies the record cache holds, None for the others; the queries to send)."""
        replies = [self.records.get(query) for query in queries]
        return replies, [query for query, reply in zip(queries, replies) if reply is None]

    def _to_cache(self, queries: DnsRound, replies: list[Reply | None],
                  asked: list[Query], answered: list[Reply]) -> list[Reply]:
        """The round's replies in order, the new ones put in the record cache."""
        fresh = iter(answered)
        out = []
        for query, reply in zip(queries, replies):
            if reply is None:
                reply = next(fresh)
                self.records.put(query, reply)
            out.append(reply)
        return out

    def _timeout_error(self, query: Query, failures: list[str]) -> ResolveTimeout:
        where = ", ".join(f"{h}:{p}" for h, p in self.servers)
        return ResolveTimeout(
            f"no answer for {query.name} from {where} within {self.timeout:g} s "
            f"({'; '.join(failures)}); is the server running? pass servers=['ADDR:PORT'] or raise timeout="
        )


class Client(_Base):
    """Blocking client (`sdk.wire`'s sockets; dnspython over TCP for pattern libraries; urllib for HTTP)."""

    def resolve(self, text: str, zone: str | None = None) -> Route:
        steps = resolve_steps(text, zone or self.zone, rng=self.rng, explain=self.explain, degrade=self.degrade)
        return drive(steps, self._exchange)

    def library(self, domain: str) -> PatternLibrary | None:
        """`domain`'s pattern library (or its nearest ancestor's), fetched by DNS over TCP, verified
        and cached; None when there is none or it is faulty (a warning is logged)."""
        return self._load(self.libraries, domain)

    def ask(
        self, text: str, context: str | None = None, zone: str | None = None, max_tokens: int | None = None
    ) -> Answer:
        route = self.resolve(text, zone)
        cache = self._library_cache(context, route)
        if cache is not None:
            self._load(cache, route.domain)
        return drive(ask_steps(text, route, context, self.compressor, max_tokens), self._post)

    def _exchange(self, queries: DnsRound) -> list[Reply]:
        """One round of queries: the cached ones from the record cache, the rest sent together."""
        replies, ask = self._from_cache(queries)
        failures: list[str] = []
        for server in self.servers:
            if not ask:
                break
            try:
                answered = udp_round(ask, server, self.timeout, self.timer.timeout(), self._observe)
            except dns.exception.Timeout:
                failures.append(f"{server[0]}:{server[1]} timed out")
                continue
            except (OSError, EOFError, dns.exception.DNSException) as exc:
                failures.append(f"{server[0]}:{server[1]} {exc or type(exc).__name__}")
                continue
            return self._to_cache(queries, replies, ask, answered)
        if ask:
            raise self._timeout_error(ask[0], failures)
        return [reply for reply in replies if reply is not None]

    def _load(self, cache: LibraryCache, domain: str) -> PatternLibrary | None:
        deadline = Deadline(cache.deadline)
        return load_library(cache, domain, lambda query: self._exchange_tcp(query, deadline), deadline)

    def _exchange_tcp(self, query: dns.message.Message, deadline: Deadline | None = None) -> dns.message.Message:
        failures: list[str] = []
        for host, port in self.servers:
            timeout = self.timeout if deadline is None else min(self.timeout, deadline.remaining())
            try:
                return dns.query.tcp(query, host, timeout, port)
            except (OSError, EOFError, dns.exception.DNSException) as exc:  # EOFError: server closed
                failures.append(f"{host}:{port} {exc or type(exc).__name__}")
        raise LibraryFault(f"TXT {query.question[0].name} over TCP: {'; '.join(failures)}")

    def _post(self, post: HttpPost) -> HttpResult:
        request = urllib.request.Request(
            post.url, data=json.dumps(post.body).encode(), headers=self._headers()
        )
        try:
            with urllib.request.urlopen(request, timeout=self.http_timeout) as response:
                return HttpResult(response.status, response.read())
        except urllib.error.HTTPError as exc:
            return HttpResult(exc.code, exc.read())
        except (urllib.error.URLError, OSError, socket.timeout) as exc:
            return HttpResult(None, error=str(getattr(exc, "reason", exc)))


class AsyncClient(_Base):
    """asyncio client (`sdk.wire`'s sockets; dnspython over TCP for pattern libraries; aiohttp). Use
    `async with`, or call `close()`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def resolve(self, text: str, zone: str | None = None) -> Route:
        steps = resolve_steps(text, zone or self.zone, rng=self.rng, explain=self.explain, degrade=self.degrade)
        return await drive_async(steps, self._exchange)

    async def library(self, domain: str) -> PatternLibrary | None:
        """`Client.library` for asyncio."""
        return await load_library_async(self.libraries, domain, self._exchange_tcp)

    async def ask(
        self, text: str, context: str | None = None, zone: str | None = None, max_tokens: int | None = None
    ) -> Answer:
        route = await self.resolve(text, zone)
        cache = self._library_cache(context, route)
        if cache is not None:
            await load_library_async(cache, route.domain, self._exchange_tcp)
        return await drive_async(ask_steps(text, route, context, self.compressor, max_tokens), self._post)

    async def _exchange(self, queries: DnsRound) -> list[Reply]:
        """`Client._exchange` for asyncio."""
        replies, ask = self._from_cache(queries)
        failures: list[str] = []
        for server in self.servers:
            if not ask:
                break
            try:
                answered = await udp_round_async(ask, server, self.timeout, self.timer.timeout(), self._observe)
            except dns.exception.Timeout:
                failures.append(f"{server[0]}:{server[1]} timed out")
                continue
            except (OSError, EOFError, dns.exception.DNSException) as exc:
                failures.append(f"{server[0]}:{server[1]} {exc or type(exc).__name__}")
                continue
            return self._to_cache(queries, replies, ask, answered)
        if ask:
            raise self._timeout_error(ask[0], failures)
        return [reply for reply in replies if reply is not None]

    async def _exchange_tcp(self, query: dns.message.Message) -> dns.message.Message:
        failures: list[str] = []
        for host, port in self.servers:
            try:
                return await dns.asyncquery.tcp(query, host, self.timeout, port)
            except (OSError, EOFError, dns.exception.DNSException) as exc:  # EOFError: server closed
                failures.append(f"{host}:{port} {exc or type(exc).__name__}")
        raise LibraryFault(f"TXT {query.question[0].name} over TCP: {'; '.join(failures)}")

    async def _post(self, post: HttpPost) -> HttpResult:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.http_timeout))
        try:
            async with self._session.post(post.url, json=dict(post.body), headers=self._headers()) as response:
                return HttpResult(response.status, await response.read())
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return HttpResult(None, error=str(exc) or type(exc).__name__)
