"""An engine's lifecycle: check the model file, bind the application, load the model on its
worker thread and self-test it (one generated token for llama), register in DNS, follow the
domain's pattern library; and the reverse on stop. The self-test comes before the engine is ready
and before any attachment starts, so a backend that fails or crashes never gets registered.

The aiohttp application knows no sockets; `EngineServer` owns the AppRunner and TCPSite and the
explicit `start()` / `stop()` (the aiohttp runner model).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from aiohttp import web

from common.cores import model_threads
from engines.admission import DEFAULT_MAX_BODY, AccessPolicy
from engines.app import EngineState, build_app
from engines.errors import EngineStartupError
from engines.llama_load import LlamaSettings
from engines.metrics import EngineMetrics
from engines.models import check_gguf, check_onnx, model_id_for
from engines.worker import InferenceWorker

log = logging.getLogger(__name__)
Backend = Literal["llama", "onnx"]


@dataclass(frozen=True)
class EngineConfig:
    backend: Backend
    model: Path
    domain: str
    host: str = "127.0.0.1"
    port: int = 0
    model_id: str | None = None
    max_queue: int = 8
    n_ctx: int = 2048
    threads: int = field(default_factory=model_threads)  # the usable cores less one (`common.cores`)
    tokenizer: Path | None = None
    shutdown_grace: float = 5.0
    llama_extra_bufts: bool = False
    max_body: int = DEFAULT_MAX_BODY  # octets of request body read at most (413 beyond)
    api_key: str | None = None  # None: no key; /metrics for loopback clients only

    @property
    def served_model_id(self) -> str:
        return self.model_id or model_id_for(self.model)

    @property
    def llama_settings(self) -> LlamaSettings:
        return LlamaSettings(path=self.model, n_ctx=self.n_ctx, n_threads=self.threads,
                             use_extra_bufts=self.llama_extra_bufts)


class Attachment(Protocol):
    """Something that runs alongside a ready engine (DNS registration, library watcher)."""

    async def start(self, server: "EngineServer") -> None: ...

    async def stop(self) -> None: ...


class EngineServer:
    def __init__(self, config: EngineConfig, attachments: tuple[Attachment, ...] = ()) -> None:
        self.config = config
        self._attachments = attachments
        self._started: list[Attachment] = []
        self.state = EngineState(
            backend_name=config.backend,
            model_id=config.served_model_id,
            domain=config.domain,
            worker=InferenceWorker(config.served_model_id, config.max_queue),
            metrics=EngineMetrics(config.backend, config.served_model_id),
            policy=AccessPolicy(config.max_body, config.api_key),
        )
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._runner is None or not self._runner.addresses:
            raise EngineStartupError("engine is not listening")
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        host = self.config.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        """Check the model file, listen, load and self-test the model, then start the attachments."""
        config = self.config
        if config.backend == "llama":
            check_gguf(config.model)
            routes = _llama_routes()
        elif config.backend == "onnx":
            check_onnx(config.model)
            routes = _onnx_routes()
        else:
            raise EngineStartupError(f"unknown backend {config.backend!r} (use llama or onnx)")
        app = build_app(self.state, routes)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=config.shutdown_grace)
        await self._runner.setup()
        site = web.TCPSite(self._runner, config.host, config.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise EngineStartupError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
        log.info(
            "engine %s (%s) listening on %s, loading %s", self.state.model_id, config.backend, self.url, config.model
        )
        self.state.backend = await self.state.worker.load(self._loader())
        log.info("engine %s ready", self.state.model_id)
        for attachment in self._attachments:
            await attachment.start(self)
            self._started.append(attachment)

    async def stop(self) -> None:
        """Deregister, refuse new requests, let admitted ones finish (grace), close sockets."""
        while self._started:
            attachment = self._started.pop()
            try:
                await attachment.stop()
            except Exception:  # one failing attachment must not keep the engine running
                log.exception("engine %s: stopping %r failed", self.state.model_id, attachment)
        await self.state.worker.stop(self.config.shutdown_grace)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _loader(self):
        config = self.config
        if config.backend == "llama":
            from engines.llama_backend import LlamaBackend

            def load_llama_backend() -> LlamaBackend:
                backend = LlamaBackend(config.llama_settings, config.served_model_id)
                backend.self_test()
                return backend

            return load_llama_backend
        from engines.onnx_backend import OnnxBackend, OnnxSettings

        onnx_settings = OnnxSettings(path=config.model, tokenizer=config.tokenizer, n_threads=config.threads)
        return lambda: OnnxBackend(onnx_settings, config.served_model_id)


def _llama_routes() -> list[web.RouteDef]:
    from engines.llama_routes import llama_routes

    return llama_routes()


def _onnx_routes() -> list[web.RouteDef]:
    from engines.onnx_routes import onnx_routes

    return onnx_routes()
