"""Start-up errors: a missing or non-GGUF model file stops the engine with a message naming it; a
llama that cannot generate fails the start-up self-test (or crashes in it) before the engine says
it is ready or contacts its nameserver."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from engine_support import READY_MARK, ROOT

from zones.tsig import generate_key, write_key_file


def run_engine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", "engine", "--listen", "127.0.0.1:0",
                           "--domain", "legal.semantic.root.", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    result = run_engine("--model", str(missing))
    assert result.returncode != 0
    assert str(missing) in result.stderr and "does not exist" in result.stderr


def test_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 definitely not a model")
    result = run_engine("--model", str(fake))
    assert result.returncode != 0
    assert str(fake) in result.stderr and "not a GGUF file" in result.stderr


def test_missing_onnx_model(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    result = run_engine("--backend", "onnx", "--model", str(missing))
    assert result.returncode != 0
    assert str(missing) in result.stderr


BROKEN_GENERATION = """
import ctypes
import sys

import engines.llama_backend
from tools.cli import main


class LlamaThatCannotGenerate:
    '''Loads, but its first generation raises (argv[1] == "raise") or crashes natively ("segfault").'''

    def n_ctx(self) -> int:
        return 2048

    def create_completion(self, *args, **kwargs):
        if sys.argv[1] == "segfault":
            ctypes.string_at(0)
        raise RuntimeError("llama_decode returned -1")


engines.llama_backend.load_llama = lambda settings: LlamaThatCannotGenerate()
sys.exit(main(sys.argv[2:]))
"""


def run_broken_engine(failure: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], bool]:
    """`semdns engine --server …` whose llama cannot generate; its result, and whether it contacted the server."""
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + bytes(28))
    key = tmp_path / "engine.key"
    write_key_file(key, generate_key("engine.legal.semantic.root."))
    with socket.create_server(("127.0.0.1", 0)) as nameserver:
        result = subprocess.run(
            [sys.executable, "-c", BROKEN_GENERATION, failure, "engine", "--listen", "127.0.0.1:0",
             "--domain", "legal.semantic.root.", "--model", str(model), "--model-name", "broken",
             "--server", f"127.0.0.1:{nameserver.getsockname()[1]}", "--tsig-key", str(key)],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        nameserver.setblocking(False)
        try:
            nameserver.accept()[0].close()
        except BlockingIOError:
            return result, False
        return result, True


def test_self_test_failure_exits_with_a_clear_message(tmp_path: Path) -> None:
    result, contacted_dns = run_broken_engine("raise", tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "semdns engine: model broken: start-up self-test failed, llama.cpp cannot generate one token "
        "(RuntimeError: llama_decode returned -1)")
    assert READY_MARK not in result.stdout and not contacted_dns


def test_a_crash_in_the_self_test_comes_before_ready_and_registration(tmp_path: Path) -> None:
    result, contacted_dns = run_broken_engine("segfault", tmp_path)
    assert result.returncode == -signal.SIGSEGV
    assert READY_MARK not in result.stdout and not contacted_dns
