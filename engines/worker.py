"""One inference thread per model, with bounded admission in front of it.

Model runtimes (llama.cpp contexts in particular) are not thread-safe, so every call on a model
runs on the worker's single thread; the event loop only awaits. Admission is decided on the event
loop when a request arrives: `Unavailable` while the model loads, `ShuttingDown` once `stop` has
begun, `QueueFull` when `max_queue` requests already wait behind the one being served.

A route that must read and check a body first takes its place with `admit()` (a `Slot`) before
reading it, and hands the slot to `call`/`stream`; a slot never handed over is `release()`d.

Streaming jobs are generators run on the worker thread; each item is handed to the loop with
`call_soon_threadsafe`. Closing a `JobStream` (client gone) sets its cancel event, which the
producing thread checks between items, so an abandoned generation stops at the next token.
"""
from __future__ import annotations

import asyncio
import enum
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Generic, Iterator, TypeVar

from engines.errors import QueueFull, ShuttingDown, Unavailable

T = TypeVar("T")
_END = object()


class WorkerState(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


class JobStream(Generic[T]):
    """The items of one streaming job, as an async iterator; `close()` cancels the job."""

    def __init__(self, queue: "asyncio.Queue[tuple[Any, BaseException | None]]", cancel: threading.Event) -> None:
        self._queue = queue
        self._cancel = cancel
        self._done = False

    def __aiter__(self) -> "JobStream[T]":
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        item, exc = await self._queue.get()
        if item is _END:
            self._done = True
            if exc is not None:
                raise exc
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        self._done = True
        self._cancel.set()


class Slot:
    """A place in a worker's queue, taken by `InferenceWorker.admit`; released once (idempotent)."""

    def __init__(self, worker: "InferenceWorker", cancel: threading.Event) -> None:
        self.worker = worker
        self.cancel = cancel
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.worker._release(self.cancel)


class InferenceWorker:
    """A single worker thread for one model and the admission rules in front of it."""

    def __init__(self, name: str, max_queue: int) -> None:
        if max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue}")
        self.name = name
        self.max_queue = max_queue
        self.state = WorkerState.LOADING
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"semdns-{name}")
        self._pending = 0
        self._cancels: set[threading.Event] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        """Requests admitted and not finished (the one running plus those waiting)."""
        return self._pending

    @property
    def waiting(self) -> int:
        return max(0, self._pending - 1)

    async def load(self, loader: Callable[[], T]) -> T:
        """Run `loader` on the worker thread; the worker is ready when it returns."""
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, loader)
        except BaseException:
            self.state = WorkerState.FAILED
            raise
        if self.state is WorkerState.LOADING:
            self.state = WorkerState.READY
        return result

    def admit(self) -> Slot:
        """A place in the queue, or Unavailable / ShuttingDown / QueueFull (see the module doc)."""
        return Slot(self, self._admit())

    async def call(self, job: Callable[[threading.Event], T], slot: Slot | None = None) -> T:
        """Run `job(cancel_event)` on the worker thread and return its result (in `slot`, if given)."""
        slot = slot or self.admit()
        cancel = slot.cancel
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor, job, cancel)
        except BaseException:
            slot.release()
            raise
        future.add_done_callback(lambda _f: slot.release())
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()
            raise

    def stream(self, job: Callable[[threading.Event], Iterator[T]], slot: Slot | None = None) -> JobStream[T]:
        """Start `job(cancel_event)` (a generator) on the worker thread; its items arrive in order."""
        slot = slot or self.admit()
        cancel = slot.cancel
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()

        def hand_over(item: Any, exc: BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (item, exc))
            except RuntimeError:  # the loop has closed: nobody is listening any more
                cancel.set()

        def run(cancel_event: threading.Event) -> None:
            try:
                for item in job(cancel_event):
                    if cancel_event.is_set():
                        break
                    hand_over(item, None)
            except BaseException as exc:  # handed to the consumer, re-raised there
                hand_over(_END, exc)
            else:
                hand_over(_END, None)

        try:
            future = loop.run_in_executor(self._executor, run, cancel)
        except BaseException:
            slot.release()
            raise
        future.add_done_callback(lambda _f: slot.release())
        return JobStream(queue, cancel)

    async def stop(self, grace: float = 5.0) -> None:
        """Refuse new work, let admitted jobs finish for up to `grace` s, cancel the rest, end the thread."""
        if self.state is WorkerState.STOPPED:
            return
        self.state = WorkerState.STOPPING
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
        except asyncio.TimeoutError:
            for cancel in list(self._cancels):
                cancel.set()
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        self.state = WorkerState.STOPPED

    def _admit(self) -> threading.Event:
        if self.state in (WorkerState.STOPPING, WorkerState.STOPPED):
            raise ShuttingDown(f"engine {self.name} is shutting down")
        if self.state is not WorkerState.READY:
            raise Unavailable(f"engine {self.name} is not ready (model {self.state.value})")
        if self._pending > self.max_queue:
            raise QueueFull(
                f"engine {self.name}: queue full ({self.waiting} waiting, max_queue={self.max_queue}); retry later"
            )
        self._pending += 1
        self._idle.clear()
        cancel = threading.Event()
        self._cancels.add(cancel)
        return cancel

    def _release(self, cancel: threading.Event) -> None:
        self._cancels.discard(cancel)
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()
