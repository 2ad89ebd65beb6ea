"""Who may ask an engine, and how much, decided before any work on the request body (issue 12).

Order for a request with a body (`admit_body`):

1. API key (`access_middleware`): when the engine has one, every path but `/health` needs
   `Authorization: Bearer <key>` (as OpenAI clients send it), compared in constant time;
   otherwise 401 `invalid_api_key`. `/metrics` needs the key too; an engine without a key
   answers `/metrics` to loopback clients only (403 to others). `/health` stays open: the
   nameserver probes it.
2. Content-Length over `max_body` (default 1 MiB): 413 `request_too_large`, body unread.
3. Admission to the model's queue (`InferenceWorker.admit`): 503 loading / shutting down, 429 full.
4. The body, read with the limit (chunked uploads too): 413 once it passes `max_body`.
5. JSON decoding, validation and tokenising, in a thread (`asyncio.to_thread`), never on the
   event loop: 400 / 404 / 413 from the route's `prepare` function.

The slot taken in 3 is released if 4 or 5 fail, else handed to the worker with the job.
So a client sending megabytes costs the loop a header parse, and `/health` answers on time.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from engines.errors import EngineStartupError, RequestError
from engines.worker import InferenceWorker, Slot

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: ~500 times the text a 2048-token context holds
API_KEY_ENV = "SEMDNS_ENGINE_API_KEY"
OPEN_PATHS = frozenset({"/health"})
LOOPBACK_ONLY_WITHOUT_KEY = frozenset({"/metrics"})
READ_CHUNK = 64 << 10


class Unauthorized(RequestError):
    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(RequestError):
    status = 403
    error_type = "invalid_request_error"
    code = "forbidden"


class BodyTooLarge(RequestError):
    status = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


@dataclass(frozen=True)
class AccessPolicy:
    """`max_body`: the largest request body read, in octets; `api_key`: the key clients must send
    (None: no key, and `/metrics` for loopback clients only)."""

    max_body: int = DEFAULT_MAX_BODY
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.max_body < 1:
            raise EngineStartupError(f"max body {self.max_body}: must be at least 1 octet")
        if self.api_key is not None and not self.api_key:
            raise EngineStartupError("the API key is empty")


def load_api_key(path: Path | None, environ: dict[str, str] | None = None) -> str | None:
    """The key in `path` (surrounding whitespace stripped), else `$SEMDNS_ENGINE_API_KEY`, else None."""
    if path is None:
        key = (os.environ if environ is None else environ).get(API_KEY_ENV, "").strip()
        return key or None
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise EngineStartupError(f"API key file {path}: cannot read it ({exc})") from exc
    if not key or any(c.isspace() for c in key):
        raise EngineStartupError(f"API key file {path}: must hold one key (no spaces), found {len(key)} characters")
    return key


def key_matches(authorization: str | None, key: str) -> bool:
    """Whether an `Authorization` header carries `Bearer <key>` (constant-time comparison)."""
    return hmac.compare_digest((authorization or "").encode("utf-8", "replace"), f"Bearer {key}".encode("utf-8"))


def is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


def check_access(policy: AccessPolicy, path: str, authorization: str | None, remote: str | None) -> None:
    """Raise Unauthorized / Forbidden unless a request for `path` may go on."""
    if path in OPEN_PATHS:
        return
    if policy.api_key is not None:
        if not key_matches(authorization, policy.api_key):
            raise Unauthorized("missing or incorrect API key: send 'Authorization: Bearer <key>'")
    elif path in LOOPBACK_ONLY_WITHOUT_KEY and not is_loopback(remote):
        raise Forbidden(f"{path} is served to loopback clients only (or start the engine with --api-key-file)")


def check_length(content_length: int | None, policy: AccessPolicy) -> None:
    """413 from the declared length alone (nothing read)."""
    if content_length is not None and content_length > policy.max_body:
        raise BodyTooLarge(f"request body of {content_length} octets; this engine reads at most {policy.max_body}")


async def read_body(request: web.Request, policy: AccessPolicy) -> bytes:
    """The body, read in chunks, refused (413) as soon as it passes `policy.max_body`."""
    check_length(request.content_length, policy)
    parts: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        total += len(chunk)
        if total > policy.max_body:
            raise BodyTooLarge(f"request body over {policy.max_body} octets, the most this engine reads")
        parts.append(chunk)
    return b"".join(parts)


def access_middleware(policy: AccessPolicy) -> Middleware:
    """The aiohttp middleware applying `check_access` (inside the error middleware, so errors are JSON)."""

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_access(policy, request.path, request.headers.get("Authorization"), request.remote)
        return await handler(request)

    return access


async def admit_body(request: web.Request, policy: AccessPolicy, worker: InferenceWorker,
                     prepare: Callable[[bytes], T]) -> tuple[Slot, T]:
    """Steps 2 to 5 above: the queue slot (pass it to `worker.call`/`stream`) and `prepare(body)`."""
    check_length(request.content_length, policy)
    slot = worker.admit()
    try:
        raw = await read_body(request, policy)
        value = await asyncio.to_thread(prepare, raw)
    except BaseException:
        slot.release()
        raise
    return slot, value
