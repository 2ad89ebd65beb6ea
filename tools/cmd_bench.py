"""`semdns bench <what>`: benchmarks, one module each (`tools/bench_<what>.py`).

Each bench module exposes `register(bench_subparsers)`. Benchmarks print medians and ratios
against a reference measured in the same run; they never assert on time.
"""
from __future__ import annotations

import argparse
import importlib

from tools.extras import is_ours, register_missing
from tools.progress import add_flag

BENCHES: tuple[str, ...] = (
    "dns", "route", "resolve", "engine", "codec", "amplification", "attack", "fuzz", "soak", "cluster", "hierarchy",
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
    for bench in bench_sub.choices.values():
        add_flag(bench)  # every benchmark: bars on stderr, off with --no-progress
