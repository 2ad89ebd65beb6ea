"""The inference worker's admission rules, with jobs that block until the test releases them."""
from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from engines.errors import QueueFull, ShuttingDown, Unavailable
from engines.worker import InferenceWorker, WorkerState


async def ready_worker(max_queue: int) -> InferenceWorker:
    worker = InferenceWorker("test", max_queue)
    await worker.load(lambda: None)
    return worker


async def test_not_ready_before_load() -> None:
    worker = InferenceWorker("test", 1)
    with pytest.raises(Unavailable) as info:
        await worker.call(lambda cancel: 1)
    assert info.value.status == 503 and info.value.code == "not_ready"
    await worker.stop()


async def test_queue_full_and_release() -> None:
    worker = await ready_worker(max_queue=1)
    gate = threading.Event()
    running = asyncio.create_task(worker.call(lambda cancel: gate.wait(5)))
    waiting = asyncio.create_task(worker.call(lambda cancel: "second"))
    await asyncio.sleep(0)
    assert worker.in_flight == 2 and worker.waiting == 1
    with pytest.raises(QueueFull) as info:
        await worker.call(lambda cancel: "third")
    assert info.value.status == 429
    gate.set()
    assert await running is True
    assert await waiting == "second"
    assert worker.in_flight == 0
    assert await worker.call(lambda cancel: "again") == "again"
    await worker.stop()


async def test_stream_in_order_and_cancel() -> None:
    """An endless generation: only the cancel event set by `close()` can end it."""
    worker = await ready_worker(max_queue=0)

    def numbers(cancel: threading.Event):
        for i in itertools.count():
            if cancel.is_set():
                return
            time.sleep(0.001)
            yield i

    stream = worker.stream(numbers)
    got = [await stream.__anext__() for _ in range(3)]
    stream.close()
    assert got == [0, 1, 2]
    await asyncio.wait_for(worker.stop(grace=30), timeout=60)  # returns: the generation stopped
    assert worker.state is WorkerState.STOPPED


async def test_stream_error_reaches_consumer() -> None:
    worker = await ready_worker(max_queue=0)

    def failing(cancel: threading.Event):
        yield 1
        raise ValueError("boom")

    stream = worker.stream(failing)
    assert await stream.__anext__() == 1
    with pytest.raises(ValueError, match="boom"):
        await stream.__anext__()
    await worker.stop()


async def test_shutting_down_refuses_and_drains() -> None:
    worker = await ready_worker(max_queue=4)
    gate = threading.Event()
    job = asyncio.create_task(worker.call(lambda cancel: gate.wait(5)))
    await asyncio.sleep(0)
    stopping = asyncio.create_task(worker.stop(grace=5))
    await asyncio.sleep(0.01)
    with pytest.raises(ShuttingDown) as info:
        await worker.call(lambda cancel: None)
    assert info.value.status == 503 and info.value.code == "shutting_down"
    gate.set()
    await stopping
    assert await job is True
    assert worker.state is WorkerState.STOPPED


async def test_a_slot_taken_before_the_job_is_released_once() -> None:
    worker = await ready_worker(max_queue=0)
    slot = worker.admit()
    assert worker.in_flight == 1
    with pytest.raises(QueueFull):
        worker.admit()
    slot.release()
    slot.release()  # idempotent: a second release must not free someone else's place
    assert worker.in_flight == 0
    slot = worker.admit()
    assert await worker.call(lambda cancel: 7, slot) == 7
    assert worker.in_flight == 0
    await worker.stop()
