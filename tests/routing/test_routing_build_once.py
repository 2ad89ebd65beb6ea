"""Cached model files are built once per cache, however many processes start on it at once: the
others wait on `common.buildlock` and take what the first one built."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import routing.embedder
import routing.tokens
from common.buildlock import build_lock
from routing.embedder import model_dir, onnx_path
from routing.tokens import table_path


def race(callers: int, call: Callable[[], Path]) -> list[Path]:
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(call())) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_the_token_table_is_built_by_one_of_many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []

    def slow_write(source: Path, cache: Path | None, target: Path) -> None:
        built.append(threading.get_ident())
        time.sleep(0.3)  # long enough for every caller to find no table before it is written
        np.save(target, np.zeros((2, 2), dtype=np.float16))

    monkeypatch.setattr(routing.tokens, "_write_table", slow_write)
    target = table_path(model_dir(), tmp_path)
    assert race(3, lambda: routing.tokens.ensure_table(cache=tmp_path)) == [target] * 3
    assert len(built) == 1


def test_the_encoder_is_exported_by_one_of_many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []

    def slow_export(variant: str, source: Path, fp32: Path, target: Path, layers: int, tell: object) -> None:
        built.append(threading.get_ident())
        time.sleep(0.3)
        target.write_bytes(b"graph")

    monkeypatch.setattr(routing.embedder, "_export", slow_export)
    monkeypatch.setattr(routing.embedder, "_require_export_tools", lambda target: None)
    target = onnx_path(model_dir(), "int8", tmp_path)
    assert race(3, lambda: routing.embedder.ensure_onnx("int8", cache=tmp_path)) == [target] * 3
    assert len(built) == 1


def test_a_dead_holder_releases_the_lock(tmp_path: Path) -> None:
    target = tmp_path / "table.npy"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom common.buildlock import build_lock\n"
         f"with build_lock(Path({str(target)!r})):\n    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        taken = threading.Event()

        def take() -> None:
            with build_lock(target):
                taken.set()

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        assert not taken.wait(0.3)  # held by the other process
        holder.kill()
        assert taken.wait(10)  # the kernel released it with the process
    finally:
        holder.kill()
        holder.wait()
