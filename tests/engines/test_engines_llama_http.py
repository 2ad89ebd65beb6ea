"""The real SmolLM2 engine in a subprocess, over HTTP on loopback: every endpoint and error case."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from engines.context import encode_context

pytestmark = pytest.mark.model
MODEL = "smollm2-135m-instruct"
NO_EOS = {"0": -100, "1": -100, "2": -100}  # SmolLM2's special tokens: generation runs to max_tokens


async def post(url: str, body: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        async with session.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
            return resp.status, await resp.json(content_type=None)


async def sse_events(url: str, body: dict) -> list[object]:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            events = []
            async for raw in resp.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    payload = line[len("data: "):]
                    events.append(payload if payload == "[DONE]" else json.loads(payload))
            return events


def assert_error(status: int, body: dict, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_completion(llama_engine) -> None:
    status, body = await post(f"{llama_engine.url}/v1/completions",
                              {"model": MODEL, "prompt": "The capital of France is", "max_tokens": 4, "temperature": 0})
    assert status == 200
    assert body["object"] == "text_completion" and body["model"] == MODEL
    assert body["choices"][0]["text"].strip()
    assert body["usage"]["completion_tokens"] <= 4


async def test_completion_stream(llama_engine) -> None:
    events = await sse_events(f"{llama_engine.url}/v1/completions",
                              {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 5, "stream": True,
                               "logit_bias": NO_EOS})
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["text"] for e in events[:-1])
    assert text.strip()
    assert all(e["model"] == MODEL for e in events[:-1])


async def test_chat(llama_engine) -> None:
    status, body = await post(f"{llama_engine.url}/v1/chat/completions",
                              {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}],
                               "max_tokens": 6, "temperature": 0})
    assert status == 200
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant" and message["content"].strip()


async def test_chat_stream(llama_engine) -> None:
    events = await sse_events(f"{llama_engine.url}/v1/chat/completions",
                              {"model": MODEL, "messages": [{"role": "user", "content": "Name a colour."}],
                               "max_tokens": 6, "stream": True})
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks).strip()


async def test_models_health_metrics(llama_engine) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{llama_engine.url}/v1/models") as resp:
            models = await resp.json()
        async with session.get(f"{llama_engine.url}/health") as resp:
            health_status, health = resp.status, await resp.json()
        async with session.get(f"{llama_engine.url}/metrics") as resp:
            metrics_type, metrics = resp.headers["Content-Type"], await resp.text()
    assert [m["id"] for m in models["data"]] == [MODEL]
    assert health_status == 200 and health["status"] == "ok" and health["domain"] == "legal.semantic.root."
    assert metrics_type.startswith("text/plain; version=0.0.4")
    assert "# TYPE semdns_engine_requests_total counter" in metrics
    assert 'semdns_engine_ready{backend="llama",model="smollm2-135m-instruct"} 1.0' in metrics


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/completions", b"{not json", 400, "invalid_request"),
        ("/v1/completions", {"model": MODEL}, 400, "invalid_request"),
        ("/v1/completions", {"prompt": "hi"}, 400, "invalid_request"),
        ("/v1/completions", {"model": MODEL, "prompt": "hi", "max_tokens": 0}, 400, "invalid_request"),
        ("/v1/chat/completions", {"model": MODEL, "messages": []}, 400, "invalid_request"),
        ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, 400,
         "invalid_request"),
        ("/v1/completions", {"model": "gpt-4", "prompt": "hi"}, 404, "model_not_found"),
        ("/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}, 404,
         "model_not_found"),
        ("/v1/completions", {"model": MODEL, "prompt": "word " * 400}, 413, "context_length_exceeded"),
        ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "word " * 400}]}, 413,
         "context_length_exceeded"),
        ("/v1/completions", {"model": MODEL, "prompt": "hi",
                             "semdns_context": {"dict_id": 99, "encoding": "zstd+base64", "data": ""}}, 400,
         "unknown_dictionary"),
        ("/v1/completions", {"model": MODEL, "prompt": "hi",
                             "semdns_context": {"dict_id": 0, "encoding": "zstd+base64", "data": "aGVsbG8="}}, 400,
         "corrupt_context"),
        ("/v1/embeddings", {"model": MODEL, "input": "hi"}, 404, "not_found"),
    ],
)
async def test_errors(llama_engine, path: str, body: object, status: int, code: str) -> None:
    got_status, got = await post(f"{llama_engine.url}{path}", body)
    assert_error(got_status, got, status, code)


CONTEXT_TEXT = "The secret word is PINEAPPLE. Repeat the secret word when asked, and nothing else."


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
async def test_compressed_context_reaches_the_prompt(llama_engine, path: str) -> None:
    context = encode_context(CONTEXT_TEXT)
    if path == "/v1/completions":
        body = {"prompt": "Q: What is the secret word?\nA:"}
    else:
        body = {"messages": [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "What is the secret word?"}]}
    body |= {"model": MODEL, "max_tokens": 2, "temperature": 0}
    status, plain = await post(f"{llama_engine.url}{path}", body)
    assert status == 200, plain
    with_context = body | {"semdns_context": {"dict_id": context.dict_id, "encoding": context.encoding,
                                              "data": context.data}}
    status, got = await post(f"{llama_engine.url}{path}", with_context)
    assert status == 200, got
    # the decompressed context entered the prompt (it is ~20 tokens long)
    assert got["usage"]["prompt_tokens"] >= plain["usage"]["prompt_tokens"] + 15


async def test_queue_full_gets_429(llama_engine) -> None:
    """--max-queue 1: one request running and one waiting fill the engine; the third gets 429."""
    url = llama_engine.url
    async with aiohttp.ClientSession() as session:
        long_body = {"model": MODEL, "prompt": "Count:", "max_tokens": 2000 // 8, "stream": True,
                     "logit_bias": NO_EOS}
        running = await session.post(f"{url}/v1/completions", json=long_body)
        assert running.status == 200
        await running.content.readline()  # the first token has been produced: the job is running
        waiting = asyncio.create_task(post(f"{url}/v1/completions",
                                           {"model": MODEL, "prompt": "Hi", "max_tokens": 1}))
        for _ in range(200):
            async with session.get(f"{url}/health") as resp:
                if (await resp.json())["waiting"] == 1:
                    break
            await asyncio.sleep(0.02)
        status, body = await post(f"{url}/v1/completions", {"model": MODEL, "prompt": "Hi", "max_tokens": 1})
        running.close()  # the client goes away: the engine cancels the generation
        waiting_status, _ = await waiting
    assert_error(status, body, 429, "queue_full")
    assert waiting_status == 200
