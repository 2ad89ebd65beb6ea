"""Driving sans-IO steps: a generator yields what it needs done (a DNS query or an HTTP post to
send, texts to embed), is sent back the outcome, and returns its result; `drive` does the I/O
with a blocking callable, `drive_async` with a coroutine function. The SDK, the semantic handler
and the in-process routing bench all run their steps through these two."""
from __future__ import annotations

from typing import Awaitable, Callable, Generator, TypeVar

Out = TypeVar("Out")
In = TypeVar("In")
Result = TypeVar("Result")


def drive(steps: Generator[Out, In, Result], io: Callable[[Out], In]) -> Result:
    """Run `steps` to its result, answering each thing it yields with `io(thing)`."""
    try:
        outgoing = next(steps)
        while True:
            outgoing = steps.send(io(outgoing))
    except StopIteration as stop:
        return stop.value


async def drive_async(steps: Generator[Out, In, Result], io: Callable[[Out], Awaitable[In]],
                      started: tuple[Out] | None = None) -> Result:
    """`drive` with an awaitable `io`. `started=(first,)`: the caller already took the first thing
    `steps` yielded (to look at it before deciding to drive), and it is answered first."""
    try:
        outgoing = started[0] if started is not None else next(steps)
        while True:
            outgoing = steps.send(await io(outgoing))
    except StopIteration as stop:
        return stop.value
