"""How many cores this process may run on, and how many threads a model should get from them.

`os.cpu_count()` counts the machine's CPUs, not the ones a container's cpuset or `taskset` leaves
this process: a model given more threads than it may run on spins at its barriers, waiting for
threads that wait for a core. So does one whose cores another process is using: llama.cpp with
2 threads on a 2-core machine where one other job was busy generated 3.6-94 tokens/s between
runs, with 1 thread 68-79 (SmolLM2-135M, 64 tokens; README "Engines"). The model threads
therefore leave one core to the event loop (health probes, DNS answers) and to everything else.
"""
from __future__ import annotations

import os


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
