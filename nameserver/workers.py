"""`semdns serve --workers N`: N-1 worker processes beside the main one, answering UDP queries on
the same addresses and ports (SO_REUSEPORT: the kernel spreads the clients over the N sockets).

    runner = build_server(options, store=PublishingStore())
    runner.attach(WorkerPool(runner, options))     # `semdns serve` does this when N > 1
    await runner.start()     # the main binds first (a port 0 is resolved), then the workers start

The main stays the server it is with one process: zones, UPDATE and its journal, health probes,
leases, NOTIFY, transfers, TCP, metrics, the query log, SIGHUP. A worker answers plain queries
(opcode QUERY) from its own copy of the catalog, with its own caches and encoder, and hands the
main everything else (`workers_channel.needs_main`), which answers it from its own socket on the
same address (`ServerRunner.inject`). Each swap of the main's catalog reaches every worker: a burst
of swaps within `COALESCE` seconds is sent as one update, and each worker has its own sender, so a
slow worker only delays itself (`workers_sync`).

Workers are started with `python -m nameserver.workers_child` (a fresh interpreter: no fork of a
process whose threads hold locks). One that dies is logged and started again after a backoff
(`BACKOFF` doubling up to `MAX_BACKOFF`, reset once it has run `STABLE` seconds) and gets the
current catalog whole. Stopping the pool sends SIGTERM to every worker and waits for it
(SIGKILL after `STOP_GRACE`); a worker whose main is gone exits by itself (its channel closes).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import pickle
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

from nameserver.workers_channel import (
    CATALOG,
    COUNTS,
    COUNTS_BODY,
    FORWARD,
    READY,
    SETUP,
    ChannelError,
    WorkerSetup,
    frame,
    parse_forward,
    read_frame,
)
from nameserver.workers_sync import CatalogFeed, PublishingStore
from zones.catalog import ZoneCatalog

if TYPE_CHECKING:
    from nameserver.build import ServerOptions
    from nameserver.runner import ServerRunner

log = logging.getLogger(__name__)

COALESCE = 0.02  # seconds a catalog change waits for more before it goes out
BACKOFF = 0.5
MAX_BACKOFF = 30.0
STABLE = 30.0
START_TIMEOUT = 120.0  # a worker loads its encoder and the catalog before it is ready
STOP_GRACE = 10.0


class WorkerStartError(RuntimeError):
    """A worker exited, or was not ready in time, while the server started."""


def worker_options(options: ServerOptions) -> ServerOptions:
    """What a worker builds its server from: the main's options without what stays in the main
    (UPDATE, the journal and health probes, metrics and the query log, the pid file)."""
    config = dataclasses.replace(options.config, workers=1, pid_file=None)
    return dataclasses.replace(options, config=config, dynamic=None, observe=type(options.observe)())


class WorkerPool:
    """The worker processes of one runner (an attachment: started after its listeners)."""

    def __init__(self, runner: ServerRunner, options: ServerOptions) -> None:
        if not isinstance(runner.store, PublishingStore):
            raise TypeError("WorkerPool needs the runner's store to be a PublishingStore")
        self.runner = runner
        self.store: PublishingStore = runner.store
        self.count = options.config.workers - 1
        self._options = worker_options(options)
        self._feed = CatalogFeed()
        self._slots: list[_Slot] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopped = asyncio.Event()  # set by `stop`: no worker is started again

    async def start(self) -> None:
        """Start every worker and wait until each is ready (or raise `WorkerStartError`)."""
        loop = self._loop = asyncio.get_running_loop()
        self.stopped.clear()
        self.store.subscribers.append(self._changed)
        self._slots = [_Slot(self, index, loop.create_future()) for index in range(1, self.count + 1)]
        self._tasks = [loop.create_task(slot.run(), name=f"worker-{slot.index}") for slot in self._slots]
        try:
            await asyncio.wait_for(asyncio.gather(*(slot.first_ready for slot in self._slots)), START_TIMEOUT)
        except (asyncio.TimeoutError, WorkerStartError) as exc:
            await self.stop()
            raise WorkerStartError(str(exc) or f"workers not ready within {START_TIMEOUT:g} s") from None
        log.info("workers: %d ready beside the main (pid %s)", self.count,
                 " ".join(str(slot.pid) for slot in self._slots))

    @property
    def stopping(self) -> bool:
        return self.stopped.is_set()

    async def stop(self) -> None:
        self.stopped.set()
        if self._changed in self.store.subscribers:
            self.store.subscribers.remove(self._changed)
        for slot in self._slots:
            slot.terminate()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE)
            for slot in self._slots:
                slot.kill()
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def setup(self, index: int) -> bytes:
        setup = WorkerSetup(index, self._options, tuple(self.runner.addresses), logging.getLogger().getEffectiveLevel())
        return frame(SETUP, pickle.dumps(setup, pickle.HIGHEST_PROTOCOL))

    def update(self, sent: ZoneCatalog | None, current: ZoneCatalog) -> bytes:
        return frame(CATALOG, self._feed.update(sent, current))

    def _changed(self) -> None:
        """The store swapped (maybe from a thread): wake every worker's sender."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for slot in self._slots:
            loop.call_soon_threadsafe(slot.dirty.set)


class _Slot:
    """One worker place: runs a worker process, restarts it when it dies, until the pool stops."""

    def __init__(self, pool: WorkerPool, index: int, first_ready: asyncio.Future[None]) -> None:
        self.pool = pool
        self.index = index
        self.first_ready = first_ready
        self.dirty = asyncio.Event()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self.pool.stopping:
            started = loop.time()
            try:
                outcome = await self._run_once()
            except (OSError, ChannelError) as exc:
                outcome = f"failed: {exc}"
            if not self.first_ready.done():
                self.first_ready.set_exception(WorkerStartError(f"worker {self.index} {outcome} before it was ready"))
                return
            if self.pool.stopping:
                return
            failures = 0 if loop.time() - started >= STABLE else failures + 1
            delay = min(MAX_BACKOFF, BACKOFF * 2 ** (failures - 1)) if failures else BACKOFF
            log.warning("worker %d %s; starting it again in %.1f s", self.index, outcome, delay)
            try:
                await asyncio.wait_for(self.pool.stopped.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _run_once(self) -> str:
        """Run one worker process until it exits; how it ended."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "nameserver.workers_child", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        process = self.process
        if self.pool.stopping:  # the pool stopped while this one was starting
            self.terminate()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        sender = asyncio.get_running_loop().create_task(self._send(writer))
        try:
            await self._receive(reader)
        finally:
            sender.cancel()
            writer.close()
            if process.returncode is None and not self.pool.stopping:
                process.kill()  # its channel broke: it cannot be told what the zones are any more
        code = await process.wait()
        return f"(pid {process.pid}) exited with {_exit_text(code)}"

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        """The setup, the current catalog whole, then every change once the burst is over."""
        pool = self.pool
        writer.write(pool.setup(self.index))
        sent: ZoneCatalog | None = None
        try:
            while True:
                self.dirty.clear()
                current = pool.store.current
                if current is not sent:
                    writer.write(pool.update(sent, current))
                    sent = current
                    await writer.drain()
                await self.dirty.wait()
                await asyncio.sleep(COALESCE)
        except (ConnectionError, OSError) as exc:
            log.debug("worker %d: channel closed while sending: %s", self.index, exc)

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        runner = self.pool.runner
        while (received := await read_frame(reader)) is not None:
            kind, payload = received
            if kind == FORWARD:
                listener, client, wire = parse_forward(payload)
                runner.inject(listener, wire, client)
            elif kind == READY:
                log.info("worker %d (pid %s) ready", self.index, self.pid)
                if not self.first_ready.done():
                    self.first_ready.set_result(None)
            elif kind == COUNTS:
                answered, forwarded = COUNTS_BODY.unpack(payload)
                log.info("worker %d (pid %s): answered %d UDP queries, forwarded %d to the main",
                         self.index, self.pid, answered, forwarded)
            else:
                raise ChannelError(f"unknown frame {kind!r} from worker {self.index}")

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            try:
                process.send_signal(sig)
            except ProcessLookupError:
                pass


def _exit_text(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
