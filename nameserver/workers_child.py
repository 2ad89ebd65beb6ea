"""One worker process of `semdns serve --workers N` (`nameserver.workers` starts it):

    python -m nameserver.workers_child FD      # FD: its end of the channel to the main

It reads its setup, builds the server the main's options describe (without UPDATE, metrics and the
query log: `workers.worker_options`), waits for the catalog, binds a UDP socket with SO_REUSEPORT
on each of the main's addresses, and says it is ready. From then on it answers plain queries and
forwards the rest to the main (`workers_channel.needs_main`), and applies every catalog update.
It stops on SIGTERM (sending the main its counts first) and when its channel closes (the main is
gone); SIGINT and SIGHUP are the main's to handle (a terminal's Ctrl-C reaches the whole group).
"""
from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import socket
import sys

from nameserver.build import build_server
from nameserver.config import Address
from nameserver.runner import ServerRunner
from nameserver.server import DnsServer
from nameserver.sockets import udp_socket
from nameserver.udp import UdpListener
from nameserver.workers_channel import (
    CATALOG,
    COUNTS,
    COUNTS_BODY,
    FORWARD,
    READY,
    ChannelError,
    WorkerSetup,
    forward_payload,
    frame,
    needs_main,
    read_frame,
    read_setup,
)
from nameserver.workers_sync import CatalogUpdate, apply
from zones.catalog import ZoneCatalog, ZoneStore

log = logging.getLogger("semdns.worker")
FORWARD_BACKLOG = 4 * 1024 * 1024  # octets of forwards the main has not read yet; beyond, drop


class WorkerStore(ZoneStore):
    """A worker's store: swaps keep no IXFR history (the main answers IXFR)."""

    def swap(self, catalog: ZoneCatalog) -> None:
        self.current = catalog


class WorkerUdp(UdpListener):
    """A worker's UDP listener: answers plain queries, forwards the others to the main."""

    def __init__(self, server: DnsServer, sock: socket.socket, listener: int, channel: asyncio.StreamWriter) -> None:
        super().__init__(server, sock)
        self.listener = listener
        self.channel = channel
        self.forwarded = 0

    @property
    def answered(self) -> int:
        """Datagrams this worker answered itself (the wire cache's hits in C included)."""
        return self.received - self.forwarded

    def _answer(self, data: bytes, addr: tuple) -> bytes | None:
        if needs_main(data):  # never a plain query, so never one the C answered from the cache
            self._forward(data, (addr[0], addr[1]))
            return None
        return super()._answer(data, addr)

    def _forward(self, data: bytes, client: Address) -> None:
        channel = self.channel
        if channel.is_closing() or channel.transport.get_write_buffer_size() > FORWARD_BACKLOG:
            return  # the main is gone or not reading: the client retries
        self.forwarded += 1
        channel.write(frame(FORWARD, forward_payload(self.listener, client, data)))


class Worker:
    def __init__(self, setup: WorkerSetup, runner: ServerRunner, channel: socket.socket) -> None:
        self.setup = setup
        self.runner = runner
        self.channel = channel
        self.listeners: list[WorkerUdp] = []

    async def run(self) -> int:
        """Serve until SIGTERM or the main closes the channel; the exit code."""
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_unix_connection(sock=self.channel)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        stopped = loop.create_task(stop.wait())
        first = loop.create_task(self._apply_next(reader))
        await asyncio.wait((first, stopped), return_when=asyncio.FIRST_COMPLETED)
        if not first.done() or not first.result():  # stopped, or the main went away, before the catalog came
            first.cancel()
            stopped.cancel()
            writer.close()
            return 0
        self._listen(writer)
        writer.write(frame(READY))
        log.info("worker %d ready: catalog generation %d", self.setup.index, self.runner.store.current.generation)
        updates = loop.create_task(self._follow(reader))
        await asyncio.wait((updates, stopped), return_when=asyncio.FIRST_COMPLETED)
        for listener in self.listeners:
            listener.close()
        await self._report(writer)
        updates.cancel()
        stopped.cancel()
        if updates.done() and not updates.cancelled() and updates.exception() is not None:
            log.error("worker %d: %s", self.setup.index, updates.exception())
            return 1
        return 0

    def _listen(self, writer: asyncio.StreamWriter) -> None:
        """A UDP socket on each of the main's addresses, beside the main's (SO_REUSEPORT)."""
        for index, (host, port) in enumerate(self.setup.addresses):
            listener = WorkerUdp(self.runner.server, udp_socket(host, port, reuse_port=True), index, writer)
            listener.start()
            self.listeners.append(listener)

    async def _report(self, writer: asyncio.StreamWriter) -> None:
        """Tell the main what this worker answered and forwarded, then close the channel."""
        answered = sum(listener.answered for listener in self.listeners)
        forwarded = sum(listener.forwarded for listener in self.listeners)
        if not writer.is_closing():
            writer.write(frame(COUNTS, COUNTS_BODY.pack(answered, forwarded)))
            try:
                await asyncio.wait_for(writer.drain(), 2.0)
            except (ConnectionError, asyncio.TimeoutError):
                pass
        writer.close()

    async def _follow(self, reader: asyncio.StreamReader) -> None:
        while await self._apply_next(reader):
            pass

    async def _apply_next(self, reader: asyncio.StreamReader) -> bool:
        """Apply the next catalog frame; False when the main closed the channel."""
        received = await read_frame(reader)
        if received is None:
            return False
        kind, payload = received
        if kind != CATALOG:
            raise ChannelError(f"unexpected frame {kind!r} from the main")
        update = pickle.loads(payload)
        if not isinstance(update, CatalogUpdate):
            raise ChannelError("a catalog frame holds no CatalogUpdate")
        store = self.runner.store
        store.swap(apply(store.current, update))
        self.runner.chain.warm()
        log.debug("worker %d: catalog generation %d (%d zones changed)", self.setup.index, update.generation,
                  len(update.zones))
        return True


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    channel = socket.socket(fileno=int(argv[1]))
    setup = read_setup(channel)
    logging.basicConfig(level=setup.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = build_server(setup.options, store=WorkerStore())
    if setup.options.config.uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    channel.setblocking(False)
    return asyncio.run(Worker(setup, runner, channel).run())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
