"""OpenAI-compatible request bodies, parsed and validated into frozen dataclasses.

Parsing is pure (a decoded JSON value in, a request or `BadRequest` out) so it is tested without
a server. Fields the engines do not use are ignored, as the OpenAI API ignores unknown ones;
fields they use are type-checked and name themselves (`param`) when wrong.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engines.errors import BadRequest

DEFAULT_COMPLETION_MAX_TOKENS = 16  # the OpenAI default for /v1/completions
DEFAULT_CHAT_MAX_TOKENS = 256  # OpenAI leaves chat unbounded; an engine on 2 cores should not
CONTEXT_FIELD = "semdns_context"
CHAT_ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class CompressedContext:
    """`"semdns_context": {"dict_id": N, "encoding": "zstd+base64", "data": "..."}`: text to prepend to
    the prompt, zstd-compressed with the domain's pattern library `dict_id` (0: no dictionary)."""

    dict_id: int
    encoding: str
    data: str


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None
    logit_bias: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    prompt: str
    sampling: Sampling
    stream: bool
    context: CompressedContext | None


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    sampling: Sampling
    stream: bool
    context: CompressedContext | None


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class ClassifyRequest:
    model: str
    inputs: tuple[str, ...]
    top_k: int | None


def decode_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body, or BadRequest saying why it is not one."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(value).__name__}")
    return value


def parse_completion(body: dict[str, Any]) -> CompletionRequest:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' is required and must be a string (or a list of one string)", param="prompt")
    return CompletionRequest(
        model=_model(body),
        prompt=prompt,
        sampling=_sampling(body, DEFAULT_COMPLETION_MAX_TOKENS),
        stream=_bool(body, "stream", False),
        context=parse_context(body.get(CONTEXT_FIELD)),
    )


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'messages' is required and must be a non-empty list", param="messages")
    messages = []
    for index, item in enumerate(raw):
        param = f"messages[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{param} must be an object", param=param)
        role, content = item.get("role"), item.get("content")
        if role not in CHAT_ROLES:
            raise BadRequest(f"{param}.role must be one of {sorted(CHAT_ROLES)}", param=f"{param}.role")
        if not isinstance(content, str):
            raise BadRequest(f"{param}.content must be a string", param=f"{param}.content")
        messages.append(ChatMessage(role=role, content=content))
    return ChatRequest(
        model=_model(body),
        messages=tuple(messages),
        sampling=_sampling(body, DEFAULT_CHAT_MAX_TOKENS),
        stream=_bool(body, "stream", False),
        context=parse_context(body.get(CONTEXT_FIELD)),
    )


def parse_embedding(body: dict[str, Any]) -> EmbeddingRequest:
    return EmbeddingRequest(model=_model(body), inputs=_texts(body, "input"))


def parse_classify(body: dict[str, Any]) -> ClassifyRequest:
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise BadRequest("'top_k' must be a positive integer", param="top_k")
    return ClassifyRequest(model=_model(body), inputs=_texts(body, "input"), top_k=top_k)


def parse_context(value: Any) -> CompressedContext | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"'{CONTEXT_FIELD}' must be an object", param=CONTEXT_FIELD)
    dict_id, encoding, data = value.get("dict_id"), value.get("encoding"), value.get("data")
    if not isinstance(dict_id, int) or isinstance(dict_id, bool) or dict_id < 0:
        raise BadRequest(f"'{CONTEXT_FIELD}.dict_id' must be a non-negative integer", param=f"{CONTEXT_FIELD}.dict_id")
    if not isinstance(encoding, str):
        raise BadRequest(f"'{CONTEXT_FIELD}.encoding' must be a string", param=f"{CONTEXT_FIELD}.encoding")
    if not isinstance(data, str):
        raise BadRequest(f"'{CONTEXT_FIELD}.data' must be a string", param=f"{CONTEXT_FIELD}.data")
    return CompressedContext(dict_id=dict_id, encoding=encoding, data=data)


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a non-empty string", param="model")
    return model


def _texts(body: dict[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise BadRequest(f"'{key}' is required: a string or a non-empty list of strings", param=key)


def _sampling(body: dict[str, Any], default_max_tokens: int) -> Sampling:
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", default_max_tokens))
    if max_tokens is None:
        max_tokens = default_max_tokens
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest("'max_tokens' must be a positive integer", param="max_tokens")
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    else:
        raise BadRequest("'stop' must be a string or a list of strings", param="stop")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise BadRequest("'seed' must be an integer", param="seed")
    return Sampling(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        stop=stops,
        seed=seed,
        logit_bias=_logit_bias(body.get("logit_bias")),
    )


def _logit_bias(value: Any) -> tuple[tuple[int, float], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise BadRequest("'logit_bias' must map token ids to numbers", param="logit_bias")
    out = []
    for key, bias in value.items():
        try:
            token = int(key)
        except ValueError:
            raise BadRequest(f"'logit_bias' key {key!r} is not a token id", param="logit_bias") from None
        if not isinstance(bias, (int, float)) or isinstance(bias, bool) or not -100 <= bias <= 100:
            raise BadRequest(f"'logit_bias' value for {key} must be a number in [-100, 100]", param="logit_bias")
        out.append((token, float(bias)))
    return tuple(out)


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"'{key}' must be a number in [{low}, {high}]", param=key)
    return float(value)


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"'{key}' must be a boolean", param=key)
    return value
