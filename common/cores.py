"""How many cores this process may run on, and how many threads a model should get from them.

`os.cpu_count()` counts the machine's CPUs, not the ones a container's cpuset or `taskset` leaves
this process: a model given more threads than it may run on spins at its barriers, waiting for
threads that wait for a core. So does one whose cores another process is using: llama.cpp with
2 threads on a 2-core machine where one other job was busy generated 3.6-94 tokens/s between
runs, with 1 thread 68-79 (SmolLM2-135M, 64 tokens; README "Engines"). The model threads
therefore leave one core to the event loop (health probes, DNS answers) and to everything else.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator


def usable_cpus() -> tuple[int, ...]:
    """The ids of the CPUs this process may run on, in order (empty where the OS keeps no mask)."""
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return ()


@contextlib.contextmanager
def calling_thread_on(cpu: int | None) -> Iterator[None]:
    """Keep the calling thread on `cpu` for the block, then give it back the CPUs it had (None:
    leave it alone). Linux applies `sched_setaffinity(0, ...)` to the calling thread only."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this OS
        return max(1, os.cpu_count() or 1)


def model_threads(limit: int | None = None) -> int:
    """Threads for a model's runs: the usable cores less one (at least 1), at most `limit`."""
    threads = max(1, usable_cores() - 1)
    return threads if limit is None else max(1, min(limit, threads))
