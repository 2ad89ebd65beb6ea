"""The SDK's shared sans-IO plans: `resolve_steps` and `ask_steps` are generators.

They *yield* what to do next — a round of DNS queries (a tuple: queries that need nothing from
each other, sent together), or an `HttpPost` — and are *sent* the result — the replies in the same
order, or an `HttpResult`; they *return* the `Route` or the `Answer`. The sync and
asyncio clients (`sdk/client.py`) only move bytes, so both behave identically.
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Generator, Mapping, Protocol, Sequence

from sdk.errors import EngineFailure, NoRoute, ServerFailure
from sdk.library import ContextStats, context_stats, is_unknown_dictionary
from sdk.message import PTR, SRV, TXT, A, Query, Reply, Srv, find
from sdk.route import (
    DEFAULT_ZONE,
    ENGINES,
    Engine,
    Route,
    additional_addresses,
    check_reply,
    engines_name,
    explain_hops,
    explain_query,
    form_query,
    question_form,
    route_from,
    srv_targets_missing,
    txt_attributes,
)

log = logging.getLogger(__name__)


class ContextCompressor(Protocol):
    """Hook for issue 6 (`codec/compress.py`): turn a context into request-body fields.

    Return the JSON fields to merge into the chat request, using the route's domain to pick its
    pattern library (`_codec.<domain>`); the default, `sdk_codec.LibraryCompressor`, returns
    ``{"semdns_context": {"dict_id": N, "encoding": "zstd+base64", "data": "..."}}``.
    """

    def __call__(self, context: str, route: Route) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class HttpPost:
    url: str
    body: Mapping[str, Any]
    engine: Engine


@dataclass(frozen=True)
class HttpResult:
    status: int | None  # None: no HTTP response at all (connection refused, timeout)
    body: bytes = b""
    error: str = ""


@dataclass(frozen=True)
class Answer:
    """An engine's reply to a question, with the route it took and the engine that answered."""

    text: str
    route: Route
    engine: Engine
    failures: tuple[str, ...] = field(default=())  # engines tried before, and why they failed
    raw: Mapping[str, Any] = field(default_factory=dict)
    context: ContextStats | None = None  # how the context travelled (dict id, ratio), if one was sent


DnsRound = tuple[Query, ...]
DnsSteps = Generator[DnsRound, Sequence[Reply], Route]


def resolve_steps(
    text: str, zone: str = DEFAULT_ZONE, *, rng: random.Random, explain: bool = True, degrade: bool = True
) -> DnsSteps:
    """Plan, in rounds of queries that need nothing from each other (each round is yielded as a
    tuple and answered with the replies in the same order; a client sends a round at once):

    1. SRV of the question, and its `explain` TXT (same form, `question_form`);
    2. what the SRV answer lacks: TXT attributes of the engines, the PTR of registered instances,
       A of targets without glue;
    3. SRV and TXT of each instance the PTR lists.

    Text no form can carry raises `BadQuestion` before anything is sent.

    With `degrade`, a server failure on the question (e.g. a domain's servers are down) falls back
    to the general engine of the zone asked (`_llm._tcp.<zone>`), with stage "degraded" (its
    explain reply is dropped).
    """
    form = question_form(text, zone)
    query = form_query(form, "q", SRV)
    first: DnsRound = (query, explain_query(form)) if explain else (query,)
    replies = yield first
    reply = replies[0]
    explained = replies[1] if explain else None
    try:
        check_reply(reply, f"route of {text[:60]!r}", "the server")
    except ServerFailure as failure:
        if not degrade:
            raise
        general = Query(f"{ENGINES}.{zone}", SRV)
        (reply,) = yield (general,)
        check_reply(reply, f"general engine of {zone} (after: {failure})", "the server")
        query, explained = general, None
        hops: list[dict[str, str]] = [{"stage": "degraded", "reason": str(failure)}]
    else:
        hops = []
    owner = engines_name(reply)
    if owner is None:
        raise NoRoute(
            f"no engines for {text[:60]!r} under {zone}: the answer has no SRV records; "
            "check the zone name or ask the apex"
        )
    txt = find(reply.answer, owner, TXT)
    missing = srv_targets_missing(reply)
    second = ((Query(owner, PTR),)
              + tuple(Query(target, A) for target in missing)
              + ((Query(owner, TXT),) if not txt else ()))
    answers = yield second
    ptr_reply, a_replies = answers[0], answers[1 : 1 + len(missing)]
    if not txt:
        txt = find(answers[-1].answer, owner, TXT)
    addresses = additional_addresses(reply)
    for target, a_reply in zip(missing, a_replies):
        found = find(a_reply.answer, target, A)
        if found:
            addresses[target] = tuple(str(rr.data) for rr in found)
    instances = yield from instance_attributes(owner, ptr_reply)
    if explained is not None and explained.rcode == 0:
        hops = explain_hops(explained)
    return route_from(text, query, reply, zone, rng, txt_attributes(txt), addresses, hops, instances)


def instance_attributes(
    service: str, ptr_reply: Reply,
) -> Generator[DnsRound, Sequence[Reply], dict[str, dict[str, str]]]:
    """Plan: DNS-SD attributes per SRV target, from the instances the service's PTR records list
    (one round: SRV and TXT of every instance).

    Engines that register themselves (RFC 6763) publish `PTR <instance>` at `_llm._tcp.<domain>`
    and their own SRV + TXT at the instance name; engines written into a zonefile keep one TXT at
    the service name, which applies to every target without an instance of its own.
    """
    by_target: dict[str, dict[str, str]] = {}
    listed = [str(rr.data) for rr in find(ptr_reply.answer, service, PTR)]
    if not listed:
        return by_target
    replies = yield tuple(Query(instance, rdtype) for instance in listed for rdtype in (SRV, TXT))
    for n, instance in enumerate(listed):
        srv, txt = replies[2 * n], replies[2 * n + 1]
        attributes = txt_attributes(find(txt.answer, instance, TXT))
        for rr in find(srv.answer, instance, SRV):
            if isinstance(rr.data, Srv):
                by_target[rr.data.target] = attributes
    return by_target


def chat_body(text: str, context: str | None, route: Route, engine: Engine,
              compressor: ContextCompressor | None, max_tokens: int | None = None) -> dict[str, Any]:
    """An OpenAI chat-completions request body; the context goes through `compressor` if given."""
    messages: list[dict[str, str]] = [{"role": "user", "content": text}]
    body: dict[str, Any] = {"model": engine.model or "default", "messages": messages}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if context:
        if compressor is not None:
            body.update(compressor(context, route))
        else:
            messages.insert(0, {"role": "system", "content": context})
    return body


def ask_steps(
    text: str, route: Route, context: str | None = None, compressor: ContextCompressor | None = None,
    max_tokens: int | None = None,
) -> Generator[HttpPost, HttpResult, Answer]:
    """Plan: POST to each engine in RFC 2782 order until one answers.

    An engine answering 4xx "unknown_dictionary" to a compressed context is asked once more,
    with the context as a plain system message.
    """
    failures: list[str] = []
    for engine in route.engines:
        url = f"{engine.base_url}/chat/completions"
        body = chat_body(text, context, route, engine, compressor, max_tokens)
        result = yield HttpPost(url, body, engine)
        if compressor is not None and is_unknown_dictionary(result.status, result.body):
            failures.append(f"{url}: HTTP {result.status} unknown_dictionary; retried with plain context")
            log.warning("engine %s lacks the dictionary of the context; retrying with plain context", url)
            body = chat_body(text, context, route, engine, None, max_tokens)
            result = yield HttpPost(url, body, engine)
        if result.status is None:
            failures.append(f"{url}: {result.error}")
            continue
        if result.status != 200:
            failures.append(f"{url}: HTTP {result.status} {result.body[:120]!r}")
            continue
        try:
            payload = json.loads(result.body)
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            failures.append(f"{url}: not an OpenAI chat completion ({type(exc).__name__}: {exc})")
            continue
        return Answer(str(content), route, engine, tuple(failures), payload, context_stats(context, body))
    raise EngineFailure(
        f"every engine of {route.domain} failed: {'; '.join(failures) or 'the route lists none'}; "
        "check that they run (`semdns engine ...`) or retry later"
    )
