"""What a benchmark ran on: one line for its output, so figures from different machines are never compared.

`describe_machine()` reads /proc/cpuinfo (Linux; elsewhere `platform`): the CPU model, the
number of logical CPUs this process may use, and the flags that change how fast vectorised and
compression code runs (SSE4.2, AVX2, AVX-512*, AMX*, BMI2, SHA). Call it from every bench.
"""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
_FLAGS = re.compile(r"sse4_2|avx2?|avx512\w*|avx_vnni\w*|amx\w*|bmi2|sha_ni|neon|asimd\w*|sve\w*")


def describe_machine(cpuinfo: str | None = None) -> str:
    """``cpu: <model> (<n> CPUs); flags: <relevant flags>``, from /proc/cpuinfo when there is one."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():  # the first processor's block is enough: cores are alike
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break
            continue
        fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name") or fields.get("Model") or platform.processor() or platform.machine() or "unknown"
    flags = [flag for flag in (fields.get("flags") or fields.get("Features") or "").split() if _FLAGS.fullmatch(flag)]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    return f"cpu: {model} ({cpus} CPUs); flags: {' '.join(flags) or 'none listed'}"
