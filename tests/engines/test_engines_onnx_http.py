"""The ONNX engine in a subprocess: embeddings and classification with tiny generated models."""
from __future__ import annotations

from pathlib import Path

import aiohttp
import numpy as np
import pytest
from engine_support import LABELS, start_engine, stop_engine


@pytest.fixture(scope="module")
def embedder_engine(tiny_models: Path):
    engine = start_engine("--backend", "onnx", "--model", str(tiny_models / "embedder.onnx"),
                          "--domain", "code.semantic.root.")
    try:
        yield engine
    finally:
        stop_engine(engine.process)


@pytest.fixture(scope="module")
def classifier_engine(tiny_models: Path):
    engine = start_engine("--backend", "onnx", "--model", str(tiny_models / "classifier.onnx"),
                          "--model-name", "tiny-classifier", "--domain", "semantic.root.")
    try:
        yield engine
    finally:
        stop_engine(engine.process)


async def post(url: str, body: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body) as resp:
            return resp.status, await resp.json()


async def test_embeddings(embedder_engine) -> None:
    status, body = await post(f"{embedder_engine.url}/v1/embeddings",
                              {"model": "embedder", "input": ["contract breach", "python bug code", "contract breach"]})
    assert status == 200, body
    vectors = np.array([d["embedding"] for d in body["data"]])
    assert vectors.shape == (3, 8)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2])
    assert not np.allclose(vectors[0], vectors[1])
    assert body["usage"]["prompt_tokens"] == 7


async def test_embeddings_errors(embedder_engine) -> None:
    status, body = await post(f"{embedder_engine.url}/v1/embeddings", {"model": "embedder"})
    assert status == 400 and body["error"]["param"] == "input"
    status, body = await post(f"{embedder_engine.url}/v1/embeddings", {"model": "other", "input": "x"})
    assert status == 404 and body["error"]["code"] == "model_not_found"
    status, body = await post(f"{embedder_engine.url}/v1/classify", {"model": "embedder", "input": "x"})
    assert status == 400 and body["error"]["code"] == "unsupported_model"


async def test_classify(classifier_engine) -> None:
    status, body = await post(f"{classifier_engine.url}/v1/classify",
                              {"model": "tiny-classifier", "input": ["contract breach court", "patient dose symptom"],
                               "top_k": 2})
    assert status == 200, body
    assert [d["label"] for d in body["data"]] == ["legal", "medical"]
    for item in body["data"]:
        assert len(item["scores"]) == 2
        assert item["scores"][0]["label"] == item["label"]
        assert 0.0 < item["scores"][1]["score"] <= item["scores"][0]["score"] < 1.0
        assert set(s["label"] for s in item["scores"]) <= set(LABELS)


async def test_onnx_health_and_metrics(classifier_engine) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{classifier_engine.url}/health") as resp:
            assert resp.status == 200 and (await resp.json())["backend"] == "onnx"
        async with session.get(f"{classifier_engine.url}/metrics") as resp:
            assert 'backend="onnx",model="tiny-classifier"' in await resp.text()


@pytest.mark.model
async def test_default_onnx_engine_is_minilm() -> None:
    """No --model: the MiniLM encoder, the whole model (routing runs its first layers); its
    vectors match an in-process embedder's on the same graph."""
    from routing.embedder import Embedder, ensure_onnx, model_dir

    engine = start_engine("--backend", "onnx", "--domain", "semantic.root.")
    try:
        texts = ["Is a verbal agreement legally binding?", "What are the side effects of ibuprofen?"]
        status, body = await post(f"{engine.url}/v1/embeddings", {"model": "all-minilm-l6-v2", "input": texts})
    finally:
        stop_engine(engine.process)
    assert status == 200, body
    got = np.array([d["embedding"] for d in body["data"]])
    expected = Embedder(ensure_onnx(), model_dir() / "tokenizer.json").embed(texts)
    assert got.shape == (2, 384)
    assert np.min(np.sum(got * expected, axis=1)) > 0.9999
