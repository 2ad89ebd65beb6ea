"""The runner: owns the listeners, loads and reloads the zones, sends NOTIFY, starts and stops its
attachments, shuts down. `nameserver.build.build_server` makes one from the server's options.

    runner = ServerRunner(config)            # or ServerRunner(config, store=..., extra=[...])
    runner.load()                            # the zones, then every `after_load` hook
    await runner.start()                     # binds every --listen address, then starts attachments
    print(runner.addresses)                  # the actual addresses (port 0 picks a free one)
    await runner.reload()                    # what SIGHUP does
    await runner.stop()

Attachments are background parts with `async start()` / `async stop()` (the health monitor of
registered engines): started after the listeners, stopped before them. `after_load` hooks run
after every catalog load, the first and each reload (the UPDATE journal's replay).
`serve_forever()` installs SIGHUP (reload) and SIGTERM/SIGINT (graceful stop) handlers and runs
until stopped. `nameserver.watch.ZoneWatcher` (`serve --watch`) calls `reload()` too: one runs
at a time. Zones come from `zones.loader` / `zones.reload`; a zone that fails its check stops
`load()` with `ZoneLoadError` (its message lists `file:line: message` lines).
UDP sockets come from `nameserver.sockets` (SO_REUSEPORT when `config.workers` is above 1, for the
worker processes of `nameserver.workers`); `inject()` answers a datagram a worker forwarded as if
the listener had received it.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from pathlib import Path
from typing import Callable, Iterable, Protocol

import dns.name

from nameserver.chain import Chain, Handler, build_chain
from nameserver.config import Address, ServerConfig, format_address
from nameserver.errors import ZoneLoadError
from nameserver.server import DnsServer
from nameserver.sockets import udp_socket
from nameserver.tcp import TcpLimits, TcpListener
from nameserver.transfer.notify import send_notify
from nameserver.udp import UdpListener
from zones.catalog import ZoneCatalog, ZoneStore
from zones.loader import load_directory
from zones.reload import reload as reload_directory

log = logging.getLogger(__name__)
BIND_ATTEMPTS = 20


def load_zones(config: ServerConfig) -> ZoneCatalog:
    """The catalog of `config.zones_dir`, or `ZoneLoadError` listing every error found."""
    if config.zones_dir is None:
        return ZoneCatalog(zones={})
    if not config.zones_dir.is_dir():
        raise ZoneLoadError(f"{config.zones_dir}: not a directory")
    catalog, problems = load_directory(config.zones_dir)
    errors = [str(p) for p in problems if p.is_error]
    for problem in problems:
        if not problem.is_error:
            log.warning("%s", problem)
    if errors:
        raise ZoneLoadError("\n".join(errors))
    return catalog


class Attachment(Protocol):
    """A background part of a server, started and stopped with it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ServerRunner:
    """One server: a zone store, a chain, and UDP+TCP listeners on every configured address."""

    def __init__(
        self, config: ServerConfig, store: ZoneStore | None = None, extra: Iterable[Handler] = ()
    ) -> None:
        self.config = config
        self.store = store if store is not None else ZoneStore()
        self.chain: Chain = build_chain(self.store, config, extra)
        self.server = DnsServer(self.store, self.chain, config)
        self.addresses: list[Address] = []
        self._udp: list[UdpListener] = []  # one per listener, in `addresses` order
        self._servers: list[asyncio.AbstractServer] = []
        self._tcp: list[TcpListener] = []
        self._stopped = asyncio.Event()
        self._background: set[asyncio.Task[object]] = set()
        self.after_load: list[Callable[[], object]] = []
        self.attachments: list[Attachment] = []
        self._running: list[Attachment] = []  # started attachments, stopped in reverse order
        self._stop_task: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()  # SIGHUP and the file watcher: one reload at a time

    def attach(self, attachment: Attachment) -> None:
        """Start `attachment` with the server (after the listeners) and stop it with it (before)."""
        self.attachments.append(attachment)

    def load(self) -> None:
        """Load `config.zones_dir` into the store (raises `ZoneLoadError`), then run `after_load`."""
        if self.config.zones_dir is not None:
            self.store.swap(load_zones(self.config))
        for hook in self.after_load:
            hook()

    async def start(self) -> None:
        if not self.store.current.zones:
            self.load()
        self.chain.warm()
        for host, port in self.config.listen:
            self.addresses.append(await self._listen(host, port))
        log.info("listening on %s", " ".join(format_address(a) for a in self.addresses))
        for attachment in self.attachments:
            await attachment.start()
            self._running.append(attachment)

    async def _listen(self, host: str, port: int) -> Address:
        """Bind UDP then TCP on the same port (retrying when port 0 gave one TCP can't have)."""
        loop = asyncio.get_running_loop()
        limits = TcpLimits(
            idle_timeout=self.config.tcp_idle_timeout,
            max_connections=self.config.tcp_max_connections,
            max_inflight=self.config.tcp_max_inflight,
            max_per_address=self.config.tcp_max_per_address,
            message_timeout=self.config.tcp_message_timeout,
            write_high_water=self.config.tcp_write_high_water,
        )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(BIND_ATTEMPTS):
            udp = UdpListener(self.server, udp_socket(host, port, reuse_port=self.config.workers > 1))
            actual = udp.address[1]
            listener = TcpListener(self.server, limits)
            try:
                tcp = await loop.create_server(
                    listener.protocol, host, actual, family=family, reuse_address=True, backlog=256
                )
            except OSError as exc:
                udp.close()
                if port == 0 and exc.errno == errno.EADDRINUSE:
                    continue
                raise
            udp.start()
            self._udp.append(udp)
            self._servers.append(tcp)
            self._tcp.append(listener)
            return host, actual
        raise OSError(errno.EADDRINUSE, f"no port free for both UDP and TCP on {host}")

    def inject(self, listener: int, wire: bytes, client: Address) -> None:
        """Answer `wire` as if listener `listener` (an index of `addresses`) had received it from
        `client`: the reply leaves from that listener's UDP socket. Worker processes hand the main
        what only it can answer this way (`nameserver.workers`)."""
        if listener < len(self._udp):
            self._udp[listener].inject(wire, client)

    async def reload(self) -> bool:
        """Re-read changed zonefiles; swap the catalog; NOTIFY for serials that rose."""
        if self.config.zones_dir is None:
            return False
        async with self._reload_lock:
            return await self._reload(self.config.zones_dir)

    async def _reload(self, zones_dir: Path) -> bool:
        result = await asyncio.to_thread(reload_directory, zones_dir, self.store.current)
        if not result.changed:
            log.info("reload: nothing changed")
            return False
        self.store.swap(result.catalog)
        for hook in self.after_load:
            hook()
        self.chain.warm()
        log.info("reload: catalog generation %d", self.store.current.generation)
        for origin, old, new in result.serial_changes:
            log.info("reload: %s serial %d -> %d", origin, old, new)
            self.notify(origin)
        return True

    def notify(self, origin: dns.name.Name) -> None:
        """NOTIFY every configured secondary about `origin`, in the background."""
        for target in self.config.notify:
            task = asyncio.get_running_loop().create_task(
                send_notify(origin, target, self.config.notify_retries, self.config.notify_timeout,
                            key=self.config.notify_key(target))
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        """Stop the attachments; close the listeners and open connections; cancel background work."""
        while self._running:
            await self._running.pop().stop()
        for server in self._servers:
            server.close()
        for listener in self._tcp:
            listener.close_all()
        for udp in self._udp:
            udp.close()
        for server in self._servers:
            await server.wait_closed()
        for task in list(self._background):
            task.cancel()
        self._servers.clear()
        self._udp.clear()
        self._tcp.clear()
        self._stopped.set()

    async def serve_forever(self, on_ready: Callable[[], object] | None = None) -> None:
        """Run until SIGTERM/SIGINT (or `stop()`); SIGHUP reloads the zones. `on_ready` is called
        once those signals are handled (announce readiness there: a SIGHUP before would kill)."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._spawn_reload)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._spawn_stop)
        try:
            if on_ready is not None:
                on_ready()
            await self._stopped.wait()
        finally:
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _spawn_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self._safe_reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _safe_reload(self) -> None:
        try:
            await self.reload()
        except Exception:
            log.exception("reload failed; the previous zones keep serving")

    def _spawn_stop(self) -> None:
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self.stop())
