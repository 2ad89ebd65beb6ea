"""The aiohttp application shared by every engine: error middleware, access middleware (API key,
`engines.admission`), `/v1/models`, `/health`, `/metrics`. Backend-specific routes (completions,
embeddings …) are added by their modules and read their bodies with `admission.admit_body`.

The application holds no sockets: `engines.server.EngineServer` binds it with AppRunner/TCPSite.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from engines.admission import AccessPolicy, access_middleware
from engines.context import ContextDecoder
from engines.errors import ModelNotFound, RequestError
from engines.metrics import EngineMetrics
from engines.worker import InferenceWorker, WorkerState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REJECTIONS = (401, 403, 413, 429, 503)  # counted in `semdns_engine_rejected_total` by code


@dataclass
class EngineState:
    """What the handlers of one engine share. `backend` is set once the model has loaded."""

    backend_name: str
    model_id: str
    domain: str
    worker: InferenceWorker
    metrics: EngineMetrics
    decoder: ContextDecoder = field(default_factory=ContextDecoder)
    backend: Any = None
    policy: AccessPolicy = field(default_factory=AccessPolicy)
    created: int = field(default_factory=lambda: int(time.time()))

    def check_model(self, requested: str) -> None:
        if requested != self.model_id:
            raise ModelNotFound(
                f"model {requested!r} is not served here (this engine serves {self.model_id!r})", param="model"
            )


ENGINE_KEY = web.AppKey("engine", EngineState)


def build_app(state: EngineState, routes: list[web.RouteDef]) -> web.Application:
    app = web.Application(middlewares=[_error_middleware, access_middleware(state.policy)],
                          client_max_size=state.policy.max_body)
    app[ENGINE_KEY] = state
    app.add_routes(
        [
            web.get("/v1/models", _models),
            web.get("/health", _health),
            web.get("/metrics", _metrics),
            *routes,
        ]
    )
    return app


def engine_of(request: web.Request) -> EngineState:
    return request.app[ENGINE_KEY]


def error_response(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


def sse_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode("utf-8")


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = engine_of(request)
    started = time.perf_counter()
    route = request.match_info.route.resource
    endpoint = route.canonical if route is not None else "unmatched"
    try:
        response = await handler(request)
    except RequestError as exc:
        if exc.status in REJECTIONS:
            state.metrics.record_rejection(exc.code)
        response = error_response(exc.status, exc.to_json())
    except web.HTTPException as exc:  # routing (404/405) and body-size (413) errors from aiohttp
        response = error_response(
            exc.status,
            {
                "error": {
                    "message": f"{request.method} {request.path}: {exc.reason}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": exc.reason.lower().replace(" ", "_"),
                }
            },
        )
    state.metrics.record_request(endpoint, response.status, time.perf_counter() - started)
    return response


async def _models(request: web.Request) -> web.Response:
    state = engine_of(request)
    return web.json_response(
        {
            "object": "list",
            "data": [{"id": state.model_id, "object": "model", "created": state.created, "owned_by": "semantic-dns"}],
        }
    )


async def _health(request: web.Request) -> web.Response:
    state = engine_of(request)
    worker = state.worker
    ready = worker.state is WorkerState.READY
    body = {
        "status": "ok" if ready else worker.state.value,
        "backend": state.backend_name,
        "model": state.model_id,
        "domain": state.domain,
        "in_flight": worker.in_flight,
        "waiting": worker.waiting,
        "max_queue": worker.max_queue,
    }
    return web.json_response(body, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    state = engine_of(request)
    worker = state.worker
    gauges = {
        "ready": 1.0 if worker.state is WorkerState.READY else 0.0,
        "in_flight": float(worker.in_flight),
        "queue_waiting": float(worker.waiting),
        "queue_capacity": float(worker.max_queue),
    }
    return web.Response(
        body=state.metrics.render(gauges).encode("utf-8"),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )
