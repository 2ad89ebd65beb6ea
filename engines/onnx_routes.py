"""`/v1/embeddings` (OpenAI shape) and `/v1/classify` (text -> labels with scores).

Bodies go through `engines.admission.admit_body` (key, size, queue, then JSON in a thread);
tokenising runs with the model, on the worker thread."""
from __future__ import annotations

from aiohttp import web

from engines.admission import admit_body
from engines.app import EngineState, engine_of
from engines.errors import BadRequest, Unavailable
from engines.onnx_backend import OnnxBackend
from engines.schema import ClassifyRequest, EmbeddingRequest, decode_body, parse_classify, parse_embedding

MAX_BATCH = 256


def onnx_routes() -> list[web.RouteDef]:
    return [web.post("/v1/embeddings", embeddings), web.post("/v1/classify", classify)]


async def embeddings(request: web.Request) -> web.Response:
    state = engine_of(request)
    backend = _backend(state, "embedder", "input")
    slot, req = await admit_body(request, state.policy, state.worker, lambda raw: _embedding(state, raw))
    vectors, tokens = await state.worker.call(lambda _cancel: backend.embed(req.inputs), slot)
    state.metrics.record_tokens(tokens, 0)
    return web.json_response(
        {
            "object": "list",
            "model": state.model_id,
            "data": [
                {"object": "embedding", "index": i, "embedding": [float(x) for x in row]}
                for i, row in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def classify(request: web.Request) -> web.Response:
    state = engine_of(request)
    backend = _backend(state, "classifier", "input")
    slot, req = await admit_body(request, state.policy, state.worker, lambda raw: _classify(state, raw))
    results, tokens = await state.worker.call(lambda _cancel: backend.classify(req.inputs), slot)
    state.metrics.record_tokens(tokens, 0)
    return web.json_response(
        {
            "object": "list",
            "model": state.model_id,
            "data": [
                {
                    "object": "classification",
                    "index": i,
                    "label": result.label,
                    "scores": [{"label": label, "score": score} for label, score in result.scores[: req.top_k]],
                }
                for i, result in enumerate(results)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _embedding(state: EngineState, raw: bytes) -> EmbeddingRequest:
    req = parse_embedding(decode_body(raw))
    state.check_model(req.model)
    _check_batch(len(req.inputs))
    return req


def _classify(state: EngineState, raw: bytes) -> ClassifyRequest:
    req = parse_classify(decode_body(raw))
    state.check_model(req.model)
    _check_batch(len(req.inputs))
    return req


def _backend(state: EngineState, kind: str, param: str) -> OnnxBackend:
    backend = state.backend
    if backend is None:
        raise Unavailable(f"engine {state.model_id} is not ready (model loading)")
    if backend.kind != kind:
        raise BadRequest(
            f"model {state.model_id!r} is an ONNX {backend.kind}; this endpoint needs an ONNX {kind}",
            param="model",
            code="unsupported_model",
        )
    return backend


def _check_batch(size: int) -> None:
    if size > MAX_BATCH:
        raise BadRequest(f"'input' has {size} items; at most {MAX_BATCH} per request", param="input")
