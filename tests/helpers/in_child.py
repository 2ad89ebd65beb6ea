"""Run a test's llama.cpp work in a child process, so that a native crash (SIGSEGV) fails that one
test with the signal's name and the suite goes on.

The child is started with `spawn`, not `fork`: ggml's OpenMP runtime (libgomp, shared with torch)
deadlocks in a forked child once the parent has run a parallel region, which earlier tests in the
same pytest process do (sentence-transformers, an in-process engine). The function must be
importable by name (a module-level function of a test module); its result must pickle. The child
enables faulthandler, so a crash also leaves the Python stack on stderr (captured by pytest).
"""
from __future__ import annotations

import faulthandler
import multiprocessing
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable, TypeVar

from helpers.guards import require

T = TypeVar("T")
CHILD_TIMEOUT = 180.0
EXIT_GRACE = 10.0  # after an answer (or EOF), how long the child may take to exit


class ChildFailed(AssertionError):
    """The function raised in the child, crashed it, or did not finish in time."""


def run_in_child(func: Callable[..., T], *args: Any, timeout: float = CHILD_TIMEOUT, model: bool = True) -> T:
    """`func(*args)` in a fresh (spawned) Python process; its return value, or ChildFailed saying why not.

    A child that answered but then died badly (a crash at exit) fails too. `model`: the child
    loads a model (the test must be marked `model`; `helpers.guards`)."""
    __tracebackhide__ = True  # a failure points at the test's call, not at this helper
    if model:
        require("model")
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(sender, func, args), name=f"in-child:{func.__name__}")
    child.start()
    sender.close()
    timed_out = False
    try:
        outcome = _receive(receiver, timeout)
    finally:
        receiver.close()
        child.join(EXIT_GRACE)
        if child.is_alive():
            timed_out = True
            child.kill()
            child.join()
    if timed_out:
        raise ChildFailed(f"{func.__name__} did not finish within {timeout:g} s in its child process (killed)")
    if child.exitcode != 0:
        raise ChildFailed(_death(func.__name__, child.exitcode))
    if outcome is None:
        raise ChildFailed(f"{func.__name__}: its child process exited without a result")
    kind, value = outcome
    if kind == "raised":
        raise ChildFailed(f"{func.__name__} raised in its child process:\n{value}")
    return value


def _receive(receiver: Connection, timeout: float) -> tuple[str, Any] | None:
    if not receiver.poll(timeout):
        return None
    try:
        return receiver.recv()
    except EOFError:  # the child died before it could answer
        return None


def _death(name: str, exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"{name} crashed its child process with signal {-exitcode} ({signal.Signals(-exitcode).name})"
    return f"{name}: its child process exited with code {exitcode}"


def _child_main(sender: Connection, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
    faulthandler.enable()
    try:
        outcome: tuple[str, Any] = ("returned", func(*args))
    except BaseException:  # reported to the parent, which fails the test with it
        outcome = ("raised", traceback.format_exc())
    sender.send(outcome)
    sender.close()
