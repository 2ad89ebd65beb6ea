"""Helpers and fixtures of the engine tests: free loopback ports, engine subprocesses (always stopped), and
tiny ONNX models with their tokenizer built on the spot."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from helpers.guards import require
from helpers.processes import read_until, stop_process

ROOT = Path(__file__).resolve().parents[2]
SEMDNS = [sys.executable, "-m", "tools.cli"]
READY_MARK = "engine ready:"
START_TIMEOUT = 120.0
WORDS = ("contract", "breach", "court", "patient", "dose", "symptom", "python", "bug", "code", "poem")
LABELS = ("legal", "medical", "code")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class EngineProcess:
    process: subprocess.Popen[str]
    url: str
    output: list[str]


def start_engine(*args: str) -> EngineProcess:
    """`semdns engine ARGS --listen 127.0.0.1:<free>`; returns once it prints its ready line."""
    require("model")
    port = free_port()
    cmd = [*SEMDNS, "engine", "--listen", f"127.0.0.1:{port}", "--threads", "2", *args]
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output: list[str] = []
    try:
        if read_until(process, lambda line: line.startswith(READY_MARK), START_TIMEOUT, output):
            return EngineProcess(process=process, url=f"http://127.0.0.1:{port}", output=output)
    except BaseException:
        stop_engine(process)
        raise
    stop_engine(process)
    raise AssertionError(f"engine did not start: {cmd}\n{''.join(output)}")


def stop_engine(process: subprocess.Popen[str]) -> int:
    code = stop_process(process, timeout=20)
    assert code is not None
    return code


@pytest.fixture(scope="module")
def llama_engine() -> Iterator[EngineProcess]:
    """The real SmolLM2 engine, small context (so 413 is cheap to reach), queue of one."""
    engine = start_engine("--backend", "llama", "--domain", "legal.semantic.root.", "--ctx", "256",
                          "--max-queue", "1")
    try:
        yield engine
    finally:
        stop_engine(engine.process)


def write_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(path))
    return path


def write_tiny_onnx(path: Path, *, classifier: bool, dim: int = 8) -> Path:
    """A word-embedding table (token states out) or, with `classifier`, mean + linear -> logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    vocab = len(WORDS) + 2
    table = rng.normal(size=(vocab, dim)).astype(np.float32)
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
    ]
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["states"], axis=0)]
    inits = [numpy_helper.from_array(table, "table")]
    if classifier:
        weights = np.zeros((dim, len(LABELS)), dtype=np.float32)
        # each label's weights follow the embedding of its own words, so the answer is predictable
        for label_index, words in enumerate((WORDS[0:3], WORDS[3:6], WORDS[6:9])):
            for word in words:
                weights[:, label_index] += table[WORDS.index(word) + 2]
        inits.append(numpy_helper.from_array(weights, "weights"))
        nodes += [
            helper.make_node("ReduceMean", ["states"], ["pooled"], axes=[1], keepdims=0),
            helper.make_node("MatMul", ["pooled", "weights"], ["logits"]),
        ]
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])]
    else:
        nodes.append(helper.make_node("Identity", ["states"], ["last_hidden_state"]))
        outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", dim])]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if classifier:
        helper.set_model_props(model, {"labels": json.dumps(list(LABELS))})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("onnx")
    write_tokenizer(root / "tokenizer.json")
    write_tiny_onnx(root / "embedder.onnx", classifier=False)
    write_tiny_onnx(root / "classifier.onnx", classifier=True)
    return root
