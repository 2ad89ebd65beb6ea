"""Progress bars of the long commands (training, export, benchmarks): tqdm, on standard error only,
and only when it is a terminal; `--no-progress` (or `SEMDNS_NO_PROGRESS=1`) turns them off. What a
command prints on standard output (tables, figures) stays parseable either way.

    for query in bar(queries, args=args, desc="route", unit="q"):
        ...
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Iterable, TypeVar

from tqdm import tqdm

ENV = "SEMDNS_NO_PROGRESS"
T = TypeVar("T")


def add_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true",
                        help=f"no progress bars (they go to stderr, only to a terminal; or set {ENV}=1)")


def wanted(args: argparse.Namespace | None = None) -> bool:
    """Bars wanted: standard error is a terminal, and neither `--no-progress` nor `SEMDNS_NO_PROGRESS`."""
    if getattr(args, "no_progress", False) or os.environ.get(ENV):
        return False
    return sys.stderr.isatty()


class Steps:
    """A bar of named steps, drawn from the first step on (nothing when no step comes, e.g. an
    export already cached): call it with each step's name as the step starts (the callback of
    `routing.embedder.ensure_onnx`); use it as a context manager to close the bar."""

    def __init__(self, args: argparse.Namespace | None = None, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.shown: tqdm | None = None

    def __call__(self, name: str) -> None:
        if self.shown is None:
            self.shown = bar(args=self.args, bar_format="{desc}: {n}/{total} steps, {elapsed}{postfix}", **self.kwargs)
        else:
            self.shown.update()
        self.shown.set_postfix_str(name)

    def __enter__(self) -> "Steps":
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.shown is not None:
            self.shown.update()
            self.shown.close()


def bar(iterable: Iterable[T] | None = None, *, args: argparse.Namespace | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar on standard error, disabled unless `wanted(args)`."""
    return tqdm(iterable, disable=not wanted(args), file=sys.stderr, dynamic_ncols=True, **kwargs)
