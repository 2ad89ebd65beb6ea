"""Micro-batching of sentence embeddings under concurrent load, with admission.

One onnxruntime session runs on one dedicated thread. Requests that arrive while it is busy wait
and go together into the next run, so under load N questions cost one batched run instead of N
runs. An idle model starts on the next event-loop turn (requests that arrive in the same turn
share the run; the quiet path pays no fixed delay). So a request waits at most for the batch
already running (a few ms), and a batch holds at most `max_batch` texts.

Admission: the queue (texts waiting, the running batch aside) holds at most `max_queue` texts;
a request that would overfill it raises `routing.descend.Shed("queue-full")` at once (an empty
queue takes any one request). A request whose deadline passes before its vectors are ready
raises `Shed("deadline")` then and leaves the queue; so does one whose caller is cancelled
(a client gone). Nothing waits longer than its deadline, and after a burst the backlog is gone
within one deadline.

    batcher = EmbedBatcher(encoder)              # inside a running event loop
    vectors = await batcher.embed(["a question"])
    await batcher.close()
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Sequence

import numpy as np

from nameserver.config import DEFAULT_ENCODER_DEADLINE, DEFAULT_ENCODER_QUEUE
from routing.errors import Shed
from routing.index import Encoder

Batch = list[tuple["asyncio.Future[np.ndarray]", list[str]]]


class EmbedBatcher:
    def __init__(self, encoder: Encoder, max_batch: int = 32, max_queue: int = DEFAULT_ENCODER_QUEUE,
                 deadline: float = DEFAULT_ENCODER_DEADLINE) -> None:
        self.encoder = encoder
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.deadline = deadline  # seconds a request may wait when it names no deadline of its own
        self.loop = asyncio.get_running_loop()
        self._model = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self._pending: dict[asyncio.Future[np.ndarray], list[str]] = {}  # in arrival order
        self._queued = 0  # texts in `_pending`
        self._busy = False
        self._scheduled: asyncio.Handle | None = None
        self.runs = 0  # batches run (for tests and stats)

    @property
    def queued(self) -> int:
        """Texts waiting for a run (the running batch aside)."""
        return self._queued

    async def embed(self, texts: Sequence[str], deadline: float | None = None) -> np.ndarray:
        """The unit vectors of `texts`, by `deadline` (loop time; default now + `self.deadline`).
        Raises `Shed` when the queue is full or the deadline passes (see the module docstring)."""
        now = self.loop.time()
        expires = now + self.deadline if deadline is None else deadline
        if expires <= now:
            raise Shed("deadline")
        if self._queued and self._queued + len(texts) > self.max_queue:
            raise Shed("queue-full")
        future: asyncio.Future[np.ndarray] = self.loop.create_future()
        self._pending[future] = list(texts)
        self._queued += len(texts)
        timer = self.loop.call_at(expires, self._expire, future)
        if not self._busy:
            if self._queued >= self.max_batch:
                self._flush()
            elif self._scheduled is None:
                self._scheduled = self.loop.call_soon(self._flush)
        try:
            return await future
        finally:  # answered, expired or cancelled: never left behind in the queue
            timer.cancel()
            self._dequeue(future)

    async def close(self) -> None:
        self._model.shutdown(wait=True)

    def _dequeue(self, future: asyncio.Future[np.ndarray]) -> None:
        texts = self._pending.pop(future, None)
        if texts is not None:
            self._queued -= len(texts)

    def _expire(self, future: asyncio.Future[np.ndarray]) -> None:
        self._dequeue(future)
        if not future.done():
            future.set_exception(Shed("deadline"))

    def _flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._busy:
            return
        batch: Batch = []
        count = 0
        while self._pending:
            future, texts = next(iter(self._pending.items()))
            if batch and count + len(texts) > self.max_batch:
                break
            self._dequeue(future)
            if not future.done():  # a cancelled caller's texts are not embedded
                batch.append((future, texts))
                count += len(texts)
        if not batch:
            return
        self._busy = True
        self.runs += 1
        texts = [text for _, item in batch for text in item]
        task = self.loop.run_in_executor(self._model, self.encoder.embed, texts)
        task.add_done_callback(lambda done: self._finish(batch, done))

    def _finish(self, batch: Batch, done: asyncio.Future[np.ndarray]) -> None:
        self._busy = False
        error = done.exception()
        offset = 0
        for future, texts in batch:
            if not future.done():  # one that expired while its batch ran has had its answer
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(done.result()[offset : offset + len(texts)])
            offset += len(texts)
        if self._pending:
            self._flush()
