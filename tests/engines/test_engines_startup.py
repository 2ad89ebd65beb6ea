"""Start-up errors: a missing or non-GGUF model file stops the engine with a message naming it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine_support import ROOT


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
