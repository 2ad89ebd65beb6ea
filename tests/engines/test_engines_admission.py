"""Admission before decoding (issue 12): body limits, API key, /metrics, max_tokens, queue first.

The llama routes run in-process on loopback with a fake backend (no model): fast, and the
same aiohttp application, middlewares and worker as a real engine.
"""
from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from engines.admission import (
    API_KEY_ENV,
    AccessPolicy,
    Forbidden,
    Unauthorized,
    check_access,
    key_matches,
    load_api_key,
)
from engines.app import EngineState, build_app
from engines.errors import ContextTooLong, EngineStartupError
from engines.llama_routes import llama_routes
from engines.metrics import EngineMetrics
from engines.schema import ChatMessage, Sampling
from engines.worker import InferenceWorker

MODEL = "fake"
KEY = "sk-test-0123456789"
N_CTX = 256


class FakeBackend:
    """The LlamaBackend calls the routes make; `complete` waits for `gate` when one is set."""

    n_ctx = N_CTX

    def __init__(self) -> None:
        self.gate: threading.Event | None = None
        self.tokenised = 0

    def count_tokens(self, text: str) -> int:
        self.tokenised += 1
        return len(text.split())

    def check_prompt(self, text: str, param: str = "prompt") -> int:
        tokens = self.count_tokens(text)
        if tokens >= self.n_ctx:
            raise ContextTooLong(f"prompt is {tokens} tokens", param=param)
        return tokens

    def complete(self, prompt: str, sampling: Sampling, cancel: threading.Event) -> dict[str, Any]:
        if self.gate is not None:
            self.gate.wait(10)
        return {"object": "text_completion", "model": MODEL, "choices": [{"index": 0, "text": " ok"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    def chat(self, messages: tuple[ChatMessage, ...], sampling: Sampling, cancel: threading.Event) -> dict[str, Any]:
        return {"object": "chat.completion", "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1}}


class Engine:
    def __init__(self, state: EngineState, backend: FakeBackend, url: str) -> None:
        self.state, self.backend, self.url = state, backend, url


async def start(policy: AccessPolicy, max_queue: int = 2) -> tuple[Engine, web.AppRunner]:
    backend = FakeBackend()
    worker = InferenceWorker(MODEL, max_queue)
    state = EngineState("llama", MODEL, "legal.semantic.root.", worker, EngineMetrics("llama", MODEL), policy=policy)
    state.backend = await worker.load(lambda: backend)
    runner = web.AppRunner(build_app(state, llama_routes()), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Engine(state, backend, f"http://127.0.0.1:{port}"), runner


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    running, runner = await start(AccessPolicy())
    yield running
    await running.state.worker.stop(1)
    await runner.cleanup()


@pytest.fixture
async def keyed() -> AsyncIterator[Engine]:
    running, runner = await start(AccessPolicy(api_key=KEY))
    yield running
    await running.state.worker.stop(1)
    await runner.cleanup()


def completion(prompt: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, **extra}


async def post(url: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=data, headers={"Content-Type": "application/json", **(headers or {})}) as r:
            return r.status, await r.json(content_type=None)


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers or {}) as response:
            return response.status, await response.text()


async def test_a_4mb_prompt_gets_413_and_health_still_answers(engine: Engine) -> None:
    huge = json.dumps(completion("word " * (800 << 10))).encode()  # 4 MiB of JSON
    assert len(huge) > 4_000_000
    floods = [post(f"{engine.url}/v1/completions", huge) for _ in range(3)]
    probes = [get(f"{engine.url}/health") for _ in range(5)]
    results = await asyncio.gather(*floods, *probes)
    for status, body in results[:3]:
        assert status == 413 and isinstance(body, dict)
        assert body["error"]["code"] == "request_too_large" and "1048576" in body["error"]["message"]
    assert all(status == 200 for status, _ in results[3:])
    assert engine.backend.tokenised == 0  # nothing was decoded, let alone tokenised
    assert engine.state.worker.in_flight == 0


async def test_a_chunked_body_is_cut_at_the_limit(engine: Engine) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * (64 << 10)  # 2.5 MiB, no Content-Length

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{engine.url}/v1/completions", data=chunks()) as response:
            assert response.status == 413
            assert (await response.json())["error"]["code"] == "request_too_large"
    assert engine.state.worker.in_flight == 0


async def test_a_body_under_the_limit_is_decoded_off_the_loop_and_served(engine: Engine) -> None:
    status, body = await post(f"{engine.url}/v1/completions", completion())
    assert status == 200 and body["choices"][0]["text"] == " ok"
    status, body = await post(f"{engine.url}/v1/chat/completions",
                              {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert status == 200


async def test_bad_json_releases_its_place_in_the_queue(engine: Engine) -> None:
    for _ in range(5):  # more than max_queue + 1: a leaked slot would turn these into 429
        status, body = await post(f"{engine.url}/v1/completions", b"{not json")
        assert status == 400
    assert engine.state.worker.in_flight == 0


async def test_prompt_over_the_context_is_413_after_tokenising(engine: Engine) -> None:
    status, body = await post(f"{engine.url}/v1/completions", completion("word " * 300))
    assert status == 413 and body["error"]["code"] == "context_length_exceeded"
    assert engine.state.worker.in_flight == 0


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
async def test_max_tokens_over_the_context_is_refused(engine: Engine, path: str) -> None:
    body: dict[str, Any] = completion(max_tokens=10**9)
    if path.endswith("chat/completions"):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**9}
    status, answer = await post(engine.url + path, body)
    assert status == 400
    assert answer["error"]["param"] == "max_tokens" and answer["error"]["code"] == "max_tokens_exceeded"
    assert str(N_CTX) in answer["error"]["message"]
    status, _ = await post(engine.url + path, {**body, "max_tokens": N_CTX})
    assert status == 200


async def test_a_full_queue_answers_429_before_reading_the_body(engine: Engine) -> None:
    engine.backend.gate = threading.Event()
    busy = [asyncio.create_task(post(f"{engine.url}/v1/completions", completion())) for _ in range(3)]
    while engine.state.worker.in_flight < 3:  # max_queue=2: one running, two waiting
        await asyncio.sleep(0.01)
    tokenised = engine.backend.tokenised
    status, body = await post(f"{engine.url}/v1/completions", completion())
    assert status == 429 and body["error"]["code"] == "queue_full"
    assert engine.backend.tokenised == tokenised
    engine.backend.gate.set()
    assert [status for status, _ in await asyncio.gather(*busy)] == [200, 200, 200]


async def test_the_api_key_is_required_except_for_health(keyed: Engine) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        status, body = await post(f"{keyed.url}/v1/completions", completion(), headers)
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, _ = await post(f"{keyed.url}/v1/completions", completion(), {"Authorization": f"Bearer {KEY}"})
    assert status == 200
    assert (await get(f"{keyed.url}/health"))[0] == 200
    assert (await get(f"{keyed.url}/v1/models"))[0] == 401


async def test_metrics_behind_the_key(keyed: Engine) -> None:
    status, text = await get(f"{keyed.url}/metrics")
    assert status == 401 and "invalid_api_key" in text
    status, text = await get(f"{keyed.url}/metrics", {"Authorization": f"Bearer {KEY}"})
    assert status == 200 and "semdns_engine" in text
    assert 'reason="invalid_api_key"' in text or "invalid_api_key" in text  # the 401 was counted


async def test_metrics_without_a_key_for_loopback_only(engine: Engine) -> None:
    assert (await get(f"{engine.url}/metrics"))[0] == 200
    policy = AccessPolicy()
    check_access(policy, "/metrics", None, "127.0.0.1")
    check_access(policy, "/metrics", None, "::1")
    with pytest.raises(Forbidden):
        check_access(policy, "/metrics", None, "192.0.2.7")
    check_access(policy, "/health", None, "192.0.2.7")
    with pytest.raises(Unauthorized):
        check_access(AccessPolicy(api_key=KEY), "/metrics", "Bearer x", "127.0.0.1")


async def test_the_sdk_sends_the_key(keyed: Engine) -> None:
    from sdk import AsyncClient, Client
    from sdk.route import Engine as Target
    from sdk.steps import HttpPost

    post_ = HttpPost(f"{keyed.url}/v1/completions", completion(), Target("llm1.legal.", 0, 0, 0))
    assert (await asyncio.to_thread(Client(["127.0.0.1:53"], api_key=KEY)._post, post_)).status == 200
    assert (await asyncio.to_thread(Client(["127.0.0.1:53"])._post, post_)).status == 401
    async with AsyncClient(["127.0.0.1:53"], api_key=KEY) as client:
        assert (await client._post(post_)).status == 200


def test_key_matches() -> None:
    assert key_matches(f"Bearer {KEY}", KEY)
    assert not key_matches(None, KEY) and not key_matches(f"Bearer {KEY}x", KEY) and not key_matches("Bearer é", KEY)


@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    yield


def test_load_api_key(tmp_path: Path, no_env_key: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_api_key(None) is None
    monkeypatch.setenv(API_KEY_ENV, " from-env ")
    assert load_api_key(None) == "from-env"
    path = tmp_path / "key"
    path.write_text(f"{KEY}\n")
    assert load_api_key(path) == KEY
    path.write_text("\n")
    with pytest.raises(EngineStartupError, match="one key"):
        load_api_key(path)
    with pytest.raises(EngineStartupError, match="cannot read"):
        load_api_key(tmp_path / "absent")
