"""Request parsing: defaults, accepted shapes and the `param` named by each error."""
from __future__ import annotations

import pytest

from engines.errors import BadRequest
from engines.schema import (
    DEFAULT_CHAT_MAX_TOKENS,
    decode_body,
    parse_chat,
    parse_classify,
    parse_completion,
    parse_embedding,
)


def test_completion_defaults_and_shapes() -> None:
    req = parse_completion({"model": "m", "prompt": ["hello"], "stop": "\n", "logit_bias": {"2": -100}})
    assert req.prompt == "hello" and req.sampling.max_tokens == 16 and req.sampling.stop == ("\n",)
    assert req.sampling.logit_bias == ((2, -100.0),) and req.stream is False and req.context is None


def test_chat_defaults_and_context() -> None:
    req = parse_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                      "semdns_context": {"dict_id": 5, "encoding": "zstd+base64", "data": "AA=="}})
    assert req.sampling.max_tokens == DEFAULT_CHAT_MAX_TOKENS and req.stream
    assert req.context is not None and req.context.dict_id == 5


@pytest.mark.parametrize(
    ("parse", "body", "param"),
    [
        (parse_completion, {"prompt": "x"}, "model"),
        (parse_completion, {"model": "m", "prompt": ["a", "b"]}, "prompt"),
        (parse_completion, {"model": "m", "prompt": "x", "temperature": 3}, "temperature"),
        (parse_completion, {"model": "m", "prompt": "x", "max_tokens": True}, "max_tokens"),
        (parse_completion, {"model": "m", "prompt": "x", "stream": "yes"}, "stream"),
        (parse_completion, {"model": "m", "prompt": "x", "logit_bias": {"a": 1}}, "logit_bias"),
        (parse_completion, {"model": "m", "prompt": "x", "semdns_context": {"dict_id": -1}}, "semdns_context.dict_id"),
        (parse_chat, {"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (parse_embedding, {"model": "m", "input": []}, "input"),
        (parse_classify, {"model": "m", "input": "x", "top_k": 0}, "top_k"),
    ],
)
def test_errors_name_their_param(parse, body, param) -> None:
    with pytest.raises(BadRequest) as info:
        parse(body)
    assert info.value.param == param and info.value.status == 400


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b"\xff\xfe"])
def test_decode_body_rejects_non_objects(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_body(raw)
