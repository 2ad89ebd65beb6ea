"""The one driver of sans-IO steps (`common.steps`): what the SDK, the resolver and the semantic
handler run their generators with."""
from __future__ import annotations

from typing import Generator

from common.steps import drive, drive_async


def doubling(start: int) -> Generator[int, int, list[int]]:
    """Yields numbers to double until the answer passes 10; returns every answer it got."""
    got: list[int] = []
    value = start
    while value <= 10:
        value = yield value
        got.append(value)
    return got


def test_drive_answers_each_yield_in_turn() -> None:
    assert drive(doubling(1), lambda n: n * 2) == [2, 4, 8, 16]


def test_a_generator_that_needs_nothing_returns_at_once() -> None:
    assert drive(doubling(11), lambda n: 1 / 0) == []


async def test_drive_async_matches_drive() -> None:
    async def double(n: int) -> int:
        return n * 2

    assert await drive_async(doubling(3), double) == [6, 12]


async def test_drive_async_resumes_a_started_generator() -> None:
    seen: list[int] = []

    async def double(n: int) -> int:
        seen.append(n)
        return n * 2

    steps = doubling(1)
    first = next(steps)  # looked at by the caller before it decided to drive
    assert await drive_async(steps, double, started=(first,)) == [2, 4, 8, 16]
    assert seen == [1, 2, 4, 8]
