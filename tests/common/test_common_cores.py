"""Model threads come from the cores this process may use, less one for the event loop."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from common import cores
from engines.llama_load import LlamaSettings
from engines.onnx_backend import OnnxSettings
from engines.server import EngineConfig


@pytest.mark.parametrize(("cpus", "threads", "limited"), [(1, 1, 1), (2, 1, 1), (3, 2, 2), (8, 7, 2)])
def test_model_threads_leave_a_core(monkeypatch: pytest.MonkeyPatch, cpus: int, threads: int, limited: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert cores.usable_cores() == cpus
    assert cores.model_threads() == threads
    assert cores.model_threads(limit=2) == limited


def test_the_engines_take_their_default_when_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)))
    assert LlamaSettings(path=__file__).n_threads == 5  # type: ignore[arg-type]
    assert OnnxSettings(path=__file__).n_threads == 5  # type: ignore[arg-type]
    assert EngineConfig(backend="llama", model=__file__, domain="x.").threads == 5  # type: ignore[arg-type]


def test_usable_cores_follow_the_affinity_mask_not_the_machine() -> None:
    taskset = shutil.which("taskset")
    assert taskset is not None, "taskset (util-linux) is part of every Debian system"
    code = "from common.cores import usable_cores; import os; print(usable_cores(), os.cpu_count())"
    out = subprocess.run([taskset, "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out[0] == "1" and int(out[1]) >= 1  # os.cpu_count() still counts the machine's CPUs


def test_the_calling_thread_is_kept_on_a_cpu_for_a_block_only() -> None:
    """`calling_thread_on(cpu)` pins the thread that enters it (not the process) and gives it back
    its CPUs after, even when the block raises; `None` leaves the thread alone."""
    import threading

    seen: dict[str, object] = {}
    cpu = cores.usable_cpus()[-1]

    def pinned_in_a_thread() -> None:
        before = os.sched_getaffinity(0)
        with cores.calling_thread_on(cpu):
            seen["inside"] = os.sched_getaffinity(0)
            seen["process"] = os.sched_getaffinity(os.getpid())  # the main thread's, here
        seen["after"] = os.sched_getaffinity(0) == before
        with pytest.raises(RuntimeError), cores.calling_thread_on(cpu):
            raise RuntimeError("the block failed")
        seen["after a failure"] = os.sched_getaffinity(0) == before
        with cores.calling_thread_on(None):
            seen["none"] = os.sched_getaffinity(0) == before

    worker = threading.Thread(target=pinned_in_a_thread)
    worker.start()
    worker.join()
    assert seen["inside"] == {cpu}
    assert seen["process"] == set(cores.usable_cpus())
    assert seen["after"] and seen["after a failure"] and seen["none"]
