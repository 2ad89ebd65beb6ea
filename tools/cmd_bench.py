"""`semdns bench <what>`: benchmarks, one module each (`tools/bench_<what>.py`).

Each bench module exposes `register(bench_subparsers)`. Benchmarks print medians and ratios
against a reference measured in the same run; they never assert on time. Every bench's first line
says what it ran on (`tools.machine.describe_machine`: CPU model, CPUs, flags, load), so figures of
different machines are never compared as one (`codec` and `resolve` print it themselves, within
their own report).
"""
from __future__ import annotations

import argparse
import importlib
import os
from typing import Callable

from tools.extras import is_ours, register_missing
from tools.machine import describe_machine
from tools.progress import add_flag

PRINT_THEIR_OWN_MACHINE_LINE = frozenset({"codec", "resolve"})
BENCHES: tuple[str, ...] = (
    "dns", "route", "resolve", "engine", "codec", "amplification", "attack", "fuzz", "soak", "cluster", "hierarchy",
    "encoder",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and print its table")
    bench_sub = parser.add_subparsers(dest="bench", required=True)
    for name in BENCHES:
        try:
            module = importlib.import_module(f"tools.bench_{name}")
        except ModuleNotFoundError as exc:
            if is_ours(exc):
                raise
            register_missing(bench_sub, f"bench {name}", exc)  # an extra's package is missing
            continue
        module.register(bench_sub)
    for name, bench in bench_sub.choices.items():
        add_flag(bench)  # every benchmark: bars on stderr, off with --no-progress
        run = bench.get_default("func")
        if name in BENCHES and name not in PRINT_THEIR_OWN_MACHINE_LINE and run is not None:
            bench.set_defaults(func=_with_machine_line(run))


def _with_machine_line(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run_on_this_machine(args: argparse.Namespace) -> int:
        print(f"{describe_machine()}; load {os.getloadavg()[0]:.2f}", flush=True)
        return run(args)
    return run_on_this_machine
