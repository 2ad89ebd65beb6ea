"""Micro-batching of sentence embeddings under concurrent load.

One onnxruntime session runs on one dedicated thread. Requests that arrive while it is busy wait
and go together into the next run, so under load N questions cost one batched run instead of N
runs. An idle model starts on the next event-loop turn (requests that arrive in the same turn
share the run; the quiet path pays no fixed delay). So a request waits at most for the batch
already running (a few ms), and a batch holds at most `max_batch` texts.

    batcher = EmbedBatcher(encoder)              # inside a running event loop
    vectors = await batcher.embed(["a question"])
    await batcher.close()
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Sequence

import numpy as np

from routing.index import Encoder


class EmbedBatcher:
    def __init__(self, encoder: Encoder, max_batch: int = 32) -> None:
        self.encoder = encoder
        self.max_batch = max_batch
        self.loop = asyncio.get_running_loop()
        self._model = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self._pending: list[tuple[list[str], asyncio.Future[np.ndarray]]] = []
        self._busy = False
        self._scheduled: asyncio.Handle | None = None
        self.runs = 0  # batches run (for tests and stats)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        future: asyncio.Future[np.ndarray] = self.loop.create_future()
        self._pending.append((list(texts), future))
        if not self._busy:
            if self._count() >= self.max_batch:
                self._flush()
            elif self._scheduled is None:
                self._scheduled = self.loop.call_soon(self._flush)
        return await future

    async def close(self) -> None:
        self._model.shutdown(wait=True)

    def _count(self) -> int:
        return sum(len(texts) for texts, _ in self._pending)

    def _flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._busy or not self._pending:
            return
        batch: list[tuple[list[str], asyncio.Future[np.ndarray]]] = []
        count = 0
        while self._pending and (not batch or count + len(self._pending[0][0]) <= self.max_batch):
            item = self._pending.pop(0)
            batch.append(item)
            count += len(item[0])
        self._busy = True
        self.runs += 1
        texts = [text for item, _ in batch for text in item]
        task = self.loop.run_in_executor(self._model, self.encoder.embed, texts)
        task.add_done_callback(lambda done: self._finish(batch, done))

    def _finish(self, batch: list[tuple[list[str], asyncio.Future[np.ndarray]]],
                done: asyncio.Future[np.ndarray]) -> None:
        self._busy = False
        error = done.exception()
        offset = 0
        for texts, future in batch:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result()[offset : offset + len(texts)])
            offset += len(texts)
        if self._pending:
            self._flush()
