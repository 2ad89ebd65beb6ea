"""`in_child.run_in_child`, the isolation of the tests' in-process llama.cpp work: results come back,
exceptions come back with their traceback, and a native crash fails one test with the signal's name
while the test session goes on."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_support import ROOT
from helpers.in_child import ChildFailed, run_in_child

CRASHING_SESSION = """
import ctypes

from helpers.in_child import run_in_child


def read_address_zero() -> bytes:
    return ctypes.string_at(0)


def test_crashes() -> None:
    run_in_child(read_address_zero, model=False)


def test_after_the_crash() -> None:
    assert run_in_child(sum, [1, 2], model=False) == 3
"""


def child_pid_and_sum(numbers: list[int]) -> tuple[int, int]:
    return os.getpid(), sum(numbers)


def divide_by_zero() -> float:
    return 1 / 0


def read_address_zero() -> bytes:
    return ctypes.string_at(0)


def test_the_result_comes_back_from_another_process() -> None:
    pid, total = run_in_child(child_pid_and_sum, [1, 2, 3], model=False)
    assert (total, pid != os.getpid()) == (6, True)


def test_an_exception_comes_back_with_its_traceback() -> None:
    with pytest.raises(ChildFailed, match=r"(?s)divide_by_zero raised in its child process:.*ZeroDivisionError"):
        run_in_child(divide_by_zero, model=False)


def test_a_segfault_fails_with_the_signal_name() -> None:
    with pytest.raises(ChildFailed, match=r"read_address_zero crashed its child process with signal 11 \(SIGSEGV\)"):
        run_in_child(read_address_zero, model=False)


def test_a_child_that_hangs_is_killed() -> None:
    started = time.monotonic()
    with pytest.raises(ChildFailed, match=r"sleep did not finish within 1 s"):
        run_in_child(time.sleep, 60, timeout=1, model=False)
    assert time.monotonic() - started < 30


def test_a_crash_fails_one_test_and_the_session_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_crash.py").write_text(CRASHING_SESSION)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(tmp_path / "test_crash.py")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "crashed its child process with signal 11 (SIGSEGV)" in result.stdout
    assert "1 failed, 1 passed" in result.stdout
