"""Issue 17 item 2: the batcher shares one run between requests for the very same texts in flight
(a question's `q` and `explain` queries), within each one's deadline, and keeps nothing after."""
from __future__ import annotations

import asyncio
import threading
from typing import Sequence

import numpy as np
import pytest

from nameserver.semantic.batcher import EmbedBatcher
from routing.descend import Shed


class CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate = threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.gate.wait(5)
        self.calls.append(list(texts))
        return np.ones((len(texts), 4), dtype=np.float32) * len(texts[0])


async def test_same_texts_in_flight_share_one_run() -> None:
    encoder = CountingEncoder()
    batcher = EmbedBatcher(encoder)  # type: ignore[arg-type]
    first = asyncio.ensure_future(batcher.embed(["is a verbal contract binding"]))
    await asyncio.sleep(0.01)  # the first one runs now (gate closed)
    second = asyncio.ensure_future(batcher.embed(["is a verbal contract binding"]))
    other = asyncio.ensure_future(batcher.embed(["something else"]))
    await asyncio.sleep(0.01)
    encoder.gate.set()
    a, b, c = await asyncio.gather(first, second, other)
    assert np.array_equal(a, b) and a is not b
    assert encoder.calls == [["is a verbal contract binding"], ["something else"]]
    assert batcher.shared == 1 and not batcher._inflight
    await batcher.close()


async def test_a_shed_first_request_leaves_the_second_its_own_chance() -> None:
    encoder = CountingEncoder()
    batcher = EmbedBatcher(encoder)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    blocker = asyncio.ensure_future(batcher.embed(["busy"]))  # occupies the model
    await asyncio.sleep(0.01)
    first = asyncio.ensure_future(batcher.embed(["q"], deadline=loop.time() + 0.05))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(batcher.embed(["q"], deadline=loop.time() + 5))
    with pytest.raises(Shed):
        await first
    encoder.gate.set()
    await blocker
    assert (await second).shape == (1, 4)
    assert batcher.shared == 0 and not batcher._inflight
    await batcher.close()
