"""`/v1/completions` and `/v1/chat/completions` (streaming as server-sent events, or not).

Order of checks (`engines.admission`): API key (401) -> Content-Length (413) -> admission
(503/429) -> body read with its limit (413) -> then in a thread, off the event loop: JSON (400)
-> model name (404) -> `max_tokens` over the model's context (400: refused, not clamped, so a
client never gets less than it asked without knowing) -> compressed context (400) -> prompt
length (413: from its octets when no tokenising could make it fit, else tokenised) -> generation
in the slot taken at admission. A streaming response starts only once the first chunk exists, so
errors met before any token (e.g. llama's own context check) still get a proper status code; an
error after that is sent as a final `data: {"error": …}` event.
"""
from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from engines.admission import admit_body
from engines.app import EngineState, engine_of, sse_event
from engines.errors import BadRequest, RequestError, Unavailable
from engines.llama_backend import LlamaBackend
from engines.schema import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Sampling,
    decode_body,
    parse_chat,
    parse_completion,
)
from engines.worker import JobStream


def llama_routes() -> list[web.RouteDef]:
    return [web.post("/v1/completions", completions), web.post("/v1/chat/completions", chat_completions)]


async def completions(request: web.Request) -> web.StreamResponse:
    state = engine_of(request)
    backend = _backend(state)
    slot, (req, prompt) = await admit_body(request, state.policy, state.worker,
                                           lambda raw: prepare_completion(state, backend, raw))
    if req.stream:
        stream = state.worker.stream(lambda cancel: backend.complete_stream(prompt, req.sampling, cancel), slot)
        return await _send_stream(request, state, stream)
    result = await state.worker.call(lambda cancel: backend.complete(prompt, req.sampling, cancel), slot)
    _count_usage(state, result)
    return web.json_response(result)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = engine_of(request)
    backend = _backend(state)
    slot, (req, messages) = await admit_body(request, state.policy, state.worker,
                                             lambda raw: prepare_chat(state, backend, raw))
    if req.stream:
        stream = state.worker.stream(lambda cancel: backend.chat_stream(messages, req.sampling, cancel), slot)
        return await _send_stream(request, state, stream)
    result = await state.worker.call(lambda cancel: backend.chat(messages, req.sampling, cancel), slot)
    _count_usage(state, result)
    return web.json_response(result)


def prepare_completion(state: EngineState, backend: LlamaBackend, raw: bytes) -> tuple[CompletionRequest, str]:
    """The request and its prompt (context prepended), checked; runs in a thread (see the module doc)."""
    req = parse_completion(decode_body(raw))
    state.check_model(req.model)
    check_max_tokens(req.sampling, backend.n_ctx)
    prompt = req.prompt
    if req.context is not None:
        prompt = f"{state.decoder.decode(req.context)}\n\n{prompt}"
    backend.check_prompt(prompt)
    return req, prompt


def prepare_chat(state: EngineState, backend: LlamaBackend, raw: bytes) -> tuple[ChatRequest, tuple[ChatMessage, ...]]:
    """`prepare_completion` for chat: the request and its messages (context in the system message)."""
    req = parse_chat(decode_body(raw))
    state.check_model(req.model)
    check_max_tokens(req.sampling, backend.n_ctx)
    messages = req.messages
    if req.context is not None:
        messages = with_context(messages, state.decoder.decode(req.context))
    backend.check_prompt("\n".join(m.content for m in messages), "messages")
    return req, messages


def check_max_tokens(sampling: Sampling, n_ctx: int) -> None:
    """400 when `max_tokens` is over the model's context (nothing could generate that many)."""
    if sampling.max_tokens > n_ctx:
        raise BadRequest(f"'max_tokens' is {sampling.max_tokens}; this model's context holds {n_ctx} tokens "
                         f"(prompt included): ask for at most {n_ctx}", param="max_tokens", code="max_tokens_exceeded")


def with_context(messages: tuple[ChatMessage, ...], context: str) -> tuple[ChatMessage, ...]:
    """The messages with `context` added to the system message (one is created when absent)."""
    if messages and messages[0].role == "system":
        merged = ChatMessage(role="system", content=f"{messages[0].content}\n\n{context}")
        return (merged, *messages[1:])
    return (ChatMessage(role="system", content=context), *messages)


def _backend(state: EngineState) -> LlamaBackend:
    if state.backend is None:
        raise Unavailable(f"engine {state.model_id} is not ready (model loading)")
    return state.backend


async def _send_stream(
    request: web.Request, state: EngineState, stream: JobStream[dict[str, Any]]
) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        first = await stream.__anext__()
    except StopAsyncIteration:
        first = None
    except BaseException:
        stream.close()
        raise
    state.metrics.record_first_token(time.perf_counter() - started)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    tokens = 0
    try:
        await response.prepare(request)
        if first is not None:
            tokens += _has_text(first)
            await response.write(sse_event(first))
            async for chunk in stream:
                tokens += _has_text(chunk)
                await response.write(sse_event(chunk))
        await response.write(sse_event("[DONE]"))
    except RequestError as exc:
        await response.write(sse_event(exc.to_json()))
    finally:
        stream.close()
        state.metrics.record_tokens(0, tokens)
    await response.write_eof()
    return response


def _has_text(chunk: dict[str, Any]) -> bool:
    """Whether a stream chunk carries generated text (one token, give or take merged bytes)."""
    for choice in chunk.get("choices", ()):
        if choice.get("text") or (choice.get("delta") or {}).get("content"):
            return True
    return False


def _count_usage(state: EngineState, result: dict[str, Any]) -> None:
    usage = result.get("usage") or {}
    state.metrics.record_tokens(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
