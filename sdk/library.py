"""The SDK's side of context compression (issue 6): fetch a domain's pattern library by DNS,
verify it, cache it, and compress `ask(..., context=...)` with it.

- `library_steps(domain, apex, known)`: a sans-IO plan (a generator, like those of `sdk.steps`) that yields
  TXT queries for the header `_codec.<owner>.` of each name of `library_owner_chain(domain)`,
  nearest first, until one exists; then for its chunks `<i>._codec.<owner>.`, and returns a
  `FetchedLibrary` verified by `codec.library.from_txt_records` (format, size, sha256, dict id).
  A library already known by dict id and sha256 is not fetched again (only its header is).
  The header is checked against the cache's `LibraryLimits` (default 16 chunks, 128 KiB; at most
  `codec.library.HARD_LIMITS`) before any chunk is asked for: `LibraryTooLarge` after one query.
- `LibraryCache`: libraries by zstd dictionary id, and per domain the outcome of the last fetch
  for the header's TTL (a domain without a library, or whose library is faulty, for a shorter
  negative TTL).
- `load_library` / `load_library_async`: drive the plan with a DNS exchange (the clients pass a
  TCP one: a chunk answer is ~11 KB). Every fault (DNS failure, a chunk missing or out of order,
  sha256 mismatch, unknown format version) is logged as a warning and cached as "no library":
  the caller never sees an exception, the context then goes without a dictionary (dict_id 0).
  One fetch has a deadline (`LibraryCache.deadline`, default 5 s) over all its queries:
  `LibraryTimeout` (a `Deadline` gives each query at most what is left).
- `LibraryCompressor`: the SDK's `compressor(context, route)` hook; builds the engines' request
  field ``"semdns_context": {"dict_id": N, "encoding": "zstd+base64", "data": "<base64 frame>"}``.
- `context_stats(context, body)`: what a request body did with the context (dict id, ratio).
- `is_unknown_dictionary(status, body)`: whether an engine's 4xx says it lacks the dictionary
  (the SDK then retries once with the context as plain text).
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generator, Mapping

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from codec.compress import DEFAULT_LEVEL, compress
from codec.errors import CodecError, HeaderOutOfBounds
from codec.library import (
    DEFAULT_LIMITS,
    LibraryLimits,
    PatternLibrary,
    chunk_owner,
    from_txt_records,
    library_owner_chain,
    parse_header,
)
from common.rdataclasses import resolve_in_classes
from common.steps import drive, drive_async
from sdk.errors import LibraryFault, LibraryTimeout, LibraryTooLarge, SdkError
from sdk.route import Route

resolve_in_classes()  # before a library's reply is parsed by dnspython (see common.rdataclasses)
log = logging.getLogger(__name__)

CONTEXT_FIELD = "semdns_context"  # the engines' request field (engines/schema.py)
ENCODING = "zstd+base64"
NO_DICTIONARY = 0
NEGATIVE_TTL = 300  # seconds a domain without a library is remembered as such
FAULT_TTL = 60  # seconds a faulty library (or a DNS failure) is remembered before retrying
FETCH_DEADLINE = 5.0  # seconds one library fetch (header and every chunk) may take
UNKNOWN_DICTIONARY_CODE = "unknown_dictionary"
# a header owner answered with these has no library there: NXDOMAIN, or REFUSED from a server that
# does not host that ancestor (the walk up the chain goes on; SERVFAIL and the like are faults)
HEADER_ABSENT = (dns.rcode.NXDOMAIN, dns.rcode.REFUSED)

Strings = tuple[bytes, ...]


__all__ = ["LibraryFault", "LibraryTimeout", "LibraryTooLarge"]  # re-exported from sdk.errors


class Deadline:
    """The end of one library fetch: `remaining()` seconds left, or `LibraryTimeout`."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.end = clock() + seconds

    def remaining(self, what: str = "the library") -> float:
        left = self.end - self.clock()
        if left <= 0:
            raise LibraryTimeout(f"fetching {what} took over {self.seconds:g} s (the library deadline); "
                                 "is the DNS server slow? raise Client(library_deadline=...)")
        return left


@dataclass(frozen=True)
class FetchedLibrary:
    """The outcome of a fetch: the library found for `domain` (None: no library up the chain)."""

    domain: str
    owner: str | None  # the header owner it came from (`_codec.<domain or ancestor>.`)
    library: PatternLibrary | None
    ttl: int


@dataclass(frozen=True)
class CacheEntry:
    library: PatternLibrary | None
    owner: str | None
    expires: float
    fault: str | None = None  # why there is no library, when it is a fault


@dataclass(frozen=True)
class ContextStats:
    """What a request did with the context: `dict_id` (0: none), octets before/after, and how."""

    dict_id: int
    original: int
    sent: int
    mode: str  # "zstd-dict", "zstd" (no dictionary) or "plain"

    @property
    def ratio(self) -> float:
        return self.original / self.sent if self.sent else 1.0

    def to_json(self) -> dict[str, Any]:
        return {"dict_id": self.dict_id, "mode": self.mode, "original_octets": self.original,
                "sent_octets": self.sent, "ratio": round(self.ratio, 3)}


def _txt_strings(reply: dns.message.Message, owner: dns.name.Name) -> list[Strings]:
    return [tuple(rdata.strings) for rrset in reply.answer
            if rrset.name == owner and rrset.rdtype == dns.rdatatype.TXT for rdata in rrset]


def _ttl(reply: dns.message.Message, owner: dns.name.Name) -> int:
    return min((rrset.ttl for rrset in reply.answer if rrset.name == owner and rrset.rdtype == dns.rdatatype.TXT),
               default=NEGATIVE_TTL)


def _check(reply: dns.message.Message, owner: dns.name.Name, absent: tuple[int, ...]) -> None:
    rcode = reply.rcode()
    if rcode not in (dns.rcode.NOERROR, *absent):
        raise LibraryFault(f"TXT {owner}: the server answered {dns.rcode.to_text(rcode)}")


def txt_query(owner: dns.name.Name) -> dns.message.Message:
    return dns.message.make_query(owner, dns.rdatatype.TXT, use_edns=0, payload=65535)


LibrarySteps = Generator[dns.message.Message, dns.message.Message, FetchedLibrary]


def library_steps(domain: str, apex: str | None = None, known: Mapping[int, PatternLibrary] | None = None,
                  limits: LibraryLimits = DEFAULT_LIMITS) -> LibrarySteps:
    """Plan: the header of `domain`'s library, walking up to `apex`; then its chunks; verified.

    Raises `LibraryFault` naming the owner and the problem (`LibraryTooLarge`: the header is
    out of `limits`, raised before any chunk query).
    """
    known = known or {}
    for header_text in library_owner_chain(domain, apex):
        owner = dns.name.from_text(header_text)
        reply = yield txt_query(owner)
        _check(reply, owner, HEADER_ABSENT)
        headers = _txt_strings(reply, owner)
        if not headers:
            continue  # no library here (NXDOMAIN / NODATA): try the parent's
        if len(headers) > 1:
            raise LibraryFault(f"{owner}: {len(headers)} header records, expected one")
        ttl = _ttl(reply, owner)
        try:
            header = parse_header(headers[0], limits)
        except HeaderOutOfBounds as exc:
            raise LibraryTooLarge(f"{owner}: {exc}") from exc
        except CodecError as exc:
            raise LibraryFault(f"{owner}: {exc}") from exc
        cached = known.get(header.dict_id)
        if cached is not None and cached.sha256 == header.sha256:
            return FetchedLibrary(domain, header_text, cached, ttl)
        base = dns.name.Name(owner.labels[1:]).to_text()
        chunks: list[Strings] = []
        for index in range(header.chunks):
            chunk_name = dns.name.from_text(chunk_owner(base, index))
            chunk_reply = yield txt_query(chunk_name)
            _check(chunk_reply, chunk_name, (dns.rcode.NXDOMAIN,))
            ttl = min(ttl, _ttl(chunk_reply, chunk_name))
            chunks.extend(_txt_strings(chunk_reply, chunk_name)[:1])
        try:
            library = from_txt_records(headers[0], chunks, limits)
        except CodecError as exc:
            raise LibraryFault(f"{owner}: {exc}") from exc
        return FetchedLibrary(domain, header_text, library, ttl)
    return FetchedLibrary(domain, None, None, NEGATIVE_TTL)


class LibraryCache:
    """Libraries by zstd dictionary id; per domain, the last fetch's outcome until it expires."""

    def __init__(self, apex: str | None = None, clock: Callable[[], float] = time.monotonic,
                 fault_ttl: float = FAULT_TTL, limits: LibraryLimits = DEFAULT_LIMITS,
                 deadline: float = FETCH_DEADLINE) -> None:
        """`apex`: the highest name whose library a domain may use (None: up to the TLD);
        `limits`: the largest header fetched (capped by `codec.library.HARD_LIMITS`);
        `deadline`: seconds one fetch may take."""
        if deadline <= 0:
            raise SdkError(f"library deadline {deadline:g} s: must be positive")
        self.apex = apex
        self.clock = clock
        self.fault_ttl = fault_ttl
        self.limits = limits.capped()
        self.deadline = deadline
        self.by_id: dict[int, PatternLibrary] = {}
        self._domains: dict[str, CacheEntry] = {}

    def entry(self, domain: str) -> CacheEntry | None:
        """The unexpired entry of `domain`, if any."""
        entry = self._domains.get(_key(domain))
        if entry is None or entry.expires <= self.clock():
            return None
        return entry

    def library(self, domain: str) -> PatternLibrary | None:
        entry = self.entry(domain)
        return entry.library if entry is not None else None

    def steps(self, domain: str) -> LibrarySteps:
        apex = self.apex
        if apex is not None and not dns.name.from_text(domain).is_subdomain(dns.name.from_text(apex)):
            apex = None
        return library_steps(domain, apex, self.by_id, self.limits)

    def store(self, fetched: FetchedLibrary) -> None:
        if fetched.library is not None:
            self.by_id[fetched.library.dict_id] = fetched.library
        self._domains[_key(fetched.domain)] = CacheEntry(fetched.library, fetched.owner, self.clock() + fetched.ttl)

    def fail(self, domain: str, fault: Exception) -> None:
        log.warning("pattern library of %s unusable, sending context without a dictionary: %s", domain, fault)
        self._domains[_key(domain)] = CacheEntry(None, None, self.clock() + self.fault_ttl, str(fault))

    def forget(self, domain: str) -> None:
        self._domains.pop(_key(domain), None)


def _key(domain: str) -> str:
    return dns.name.from_text(domain).to_text().lower()


Exchange = Callable[[dns.message.Message], dns.message.Message]
AsyncExchange = Callable[[dns.message.Message], Awaitable[dns.message.Message]]


def load_library(cache: LibraryCache, domain: str, exchange: Exchange,
                 deadline: Deadline | None = None) -> PatternLibrary | None:
    """The library for `domain` (from the cache, else fetched with `exchange`); None on any fault.

    `deadline` (default: `cache.deadline` from now) is checked before each query; pass the one
    `exchange` bounds its own queries by (`Deadline.remaining`) so a hanging server cannot outlast it.
    """
    entry = cache.entry(domain)
    if entry is not None:
        return entry.library
    deadline = deadline or Deadline(cache.deadline)

    def bounded(query: dns.message.Message) -> dns.message.Message:
        deadline.remaining(f"the library of {domain}")
        return exchange(query)

    try:
        fetched = drive(cache.steps(domain), bounded)
    except SdkError as exc:  # LibraryFault, ResolveTimeout ...
        cache.fail(domain, exc)
        return None
    cache.store(fetched)
    return fetched.library


async def load_library_async(cache: LibraryCache, domain: str, exchange: AsyncExchange) -> PatternLibrary | None:
    """`load_library` for asyncio; the whole fetch is cancelled at `cache.deadline`."""
    entry = cache.entry(domain)
    if entry is not None:
        return entry.library
    try:
        try:
            fetched = await asyncio.wait_for(drive_async(cache.steps(domain), exchange), cache.deadline)
        except asyncio.TimeoutError:
            raise LibraryTimeout(f"fetching the library of {domain} took over {cache.deadline:g} s (the library "
                                 "deadline); is the DNS server slow? raise AsyncClient(library_deadline=...)") from None
    except SdkError as exc:
        cache.fail(domain, exc)
        return None
    cache.store(fetched)
    return fetched.library


def context_field(context: str, library: PatternLibrary | None, level: int = DEFAULT_LEVEL) -> dict[str, Any]:
    """The `semdns_context` value: one zstd frame of the UTF-8 context, base64."""
    frame = compress(context.encode("utf-8"), library, level)
    return {"dict_id": library.dict_id if library is not None else NO_DICTIONARY, "encoding": ENCODING,
            "data": base64.b64encode(frame).decode("ascii")}


class LibraryCompressor:
    """The SDK's `compressor` hook: compress the context with the route's domain library.

    It reads `cache` only (no I/O): the clients load the library (`load_library*`) before asking.
    Without a library (none published, or a fault) the frame has no dictionary (dict_id 0).
    """

    def __init__(self, cache: LibraryCache | None = None, level: int = DEFAULT_LEVEL) -> None:
        self.cache = cache if cache is not None else LibraryCache()
        self.level = level

    def __call__(self, context: str, route: Route) -> Mapping[str, Any]:
        return {CONTEXT_FIELD: context_field(context, self.cache.library(route.domain), self.level)}


def context_stats(context: str | None, body: Mapping[str, Any]) -> ContextStats | None:
    """How `body` carries `context` (None: no context)."""
    if not context:
        return None
    original = len(context.encode("utf-8"))
    field = body.get(CONTEXT_FIELD)
    if isinstance(field, Mapping):
        sent = len(base64.b64decode(field.get("data", "")))
        dict_id = int(field.get("dict_id", NO_DICTIONARY))
        return ContextStats(dict_id, original, sent, "zstd-dict" if dict_id else "zstd")
    return ContextStats(NO_DICTIONARY, original, original, "plain")


def is_unknown_dictionary(status: int | None, body: bytes) -> bool:
    """Whether an engine's answer is a 4xx saying it does not have the request's dictionary."""
    if status is None or not 400 <= status < 500:
        return False
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("code") == UNKNOWN_DICTIONARY_CODE
