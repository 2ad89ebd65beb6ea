"""The real llama engine (SmolLM2, subprocess) behind an API key: max_tokens over the context,
a prompt refused from its length before tokenising, a 4 MB body, the key on the SDK's side."""
from __future__ import annotations

import asyncio
from typing import Iterator

import aiohttp
import pytest
from engine_support import EngineProcess, start_engine, stop_engine

pytestmark = pytest.mark.model
KEY = "sk-llama-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def keyed_llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    key_file = tmp_path_factory.mktemp("key") / "engine.key"
    key_file.write_text(KEY + "\n")
    engine = start_engine("--backend", "llama", "--domain", "legal.semantic.root.", "--ctx", "256",
                          "--api-key-file", str(key_file))
    try:
        yield engine
    finally:
        stop_engine(engine.process)


async def model_id(engine: EngineProcess) -> str:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(f"{engine.url}/v1/models") as response:
            return (await response.json())["data"][0]["id"]


async def post(url: str, body: dict | bytes, headers: dict[str, str] = AUTH) -> tuple[int, dict]:
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(url, **kwargs) as response:
            return response.status, await response.json(content_type=None)


async def test_key_health_and_metrics(keyed_llama: EngineProcess) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{keyed_llama.url}/health") as response:
            assert response.status == 200
        async with session.get(f"{keyed_llama.url}/metrics") as response:
            assert response.status == 401
    status, body = await post(f"{keyed_llama.url}/v1/completions", {"model": "x", "prompt": "hi"}, {})
    assert status == 401 and body["error"]["code"] == "invalid_api_key"


async def test_max_tokens_over_the_context_is_400(keyed_llama: EngineProcess) -> None:
    model = await model_id(keyed_llama)
    status, body = await post(f"{keyed_llama.url}/v1/completions", {"model": model, "prompt": "hi",
                                                                     "max_tokens": 10**9})
    assert status == 400 and body["error"]["param"] == "max_tokens" and "256" in body["error"]["message"]


async def test_long_prompt_refused_from_its_length(keyed_llama: EngineProcess) -> None:
    model = await model_id(keyed_llama)
    prompt = "the tenant shall pay " * 40_000  # 840 kB: under the body limit, far over 256 tokens
    status, body = await post(f"{keyed_llama.url}/v1/chat/completions",
                              {"model": model, "messages": [{"role": "user", "content": prompt}]})
    assert status == 413 and body["error"]["code"] == "context_length_exceeded"
    assert "octets" in body["error"]["message"]


async def test_4mb_body_413_while_health_answers(keyed_llama: EngineProcess) -> None:
    body = b'{"model": "m", "prompt": "' + b"word " * 800_000 + b'"}'
    async with aiohttp.ClientSession() as session:
        async def health() -> int:
            async with session.get(f"{keyed_llama.url}/health") as response:
                return response.status

        results = await asyncio.gather(*(post(f"{keyed_llama.url}/v1/completions", body) for _ in range(3)),
                                       *(health() for _ in range(5)))
    assert [status for status, _ in results[:3]] == [413] * 3
    assert results[3:] == [200] * 5


async def test_sdk_client_sends_the_key(keyed_llama: EngineProcess) -> None:
    from sdk import AsyncClient
    from sdk.route import Engine
    from sdk.steps import HttpPost

    model = await model_id(keyed_llama)
    post_ = HttpPost(f"{keyed_llama.url}/v1/chat/completions",
                     {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
                     Engine("llm1.legal.", 0, 0, 0))
    async with AsyncClient(["127.0.0.1:53"], api_key=KEY) as client:
        assert (await client._post(post_)).status == 200


