"""Reloading the zones when their files change: `semdns serve --watch`.

`ZoneWatcher(directory, runner.reload, lambda: runner.store.current)` is an attachment of the
`ServerRunner` (`semdns serve --watch` attaches one): every `interval` seconds
(0.25) it stats the directory's `*.zone` files and every file the current catalog's zones were
read from (their `$INCLUDE`s), and once a change has been followed by `quiet` seconds (0.5) with
no further change it calls `runner.reload()`, the same reload as SIGHUP: only changed zones are
re-read, a zone that fails to load or check keeps serving its previous version and the reason is
logged as `file:line: message` (`zones.reload`). Polling (mtime, size) is portable and costs a few
`stat` calls a second; the debounce lets an editor's save, or a multi-file `semdns zone` edit,
finish before the reload reads it.

`Debouncer` is the decision alone, with no I/O and no clock of its own: snapshots and times in,
"reload now" out.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Awaitable, Callable, Mapping

from common.tasks import cancel_and_wait
from zones.catalog import ZoneCatalog
from zones.loader import zone_files

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.25
DEFAULT_QUIET = 0.5

Snapshot = Mapping[str, "tuple[int, int] | None"]  # path -> (mtime_ns, size), None: missing


class Debouncer:
    """Says when to reload: `quiet` seconds after the last change seen, once per burst."""

    def __init__(self, quiet: float = DEFAULT_QUIET) -> None:
        self.quiet = quiet
        self.seen: dict[str, tuple[int, int] | None] | None = None
        self.changed_at: float | None = None

    def observe(self, snapshot: Snapshot, now: float) -> bool:
        if self.seen is None:
            self.seen = dict(snapshot)
            return False
        if dict(snapshot) != self.seen:
            self.seen = dict(snapshot)
            self.changed_at = now
            return False
        if self.changed_at is not None and now - self.changed_at >= self.quiet:
            self.changed_at = None
            return True
        return False

    def rebase(self, snapshot: Snapshot) -> None:
        """After a reload: watch the files the zones now read, keeping what was seen of the
        others (a file changed while the reload ran still differs at the next look)."""
        seen = self.seen or {}
        self.seen = {path: seen.get(path, stamp) for path, stamp in snapshot.items()}


def snapshot(directory: Path, catalog: ZoneCatalog) -> dict[str, tuple[int, int] | None]:
    """(mtime_ns, size) of the directory's zonefiles and of every file its zones were read from."""
    paths = {str(path) for path in zone_files(directory)}
    paths.update(stamp.path for source in catalog.sources.values() for stamp in source.stamps)
    found: dict[str, tuple[int, int] | None] = {}
    for path in sorted(paths):
        try:
            st = os.stat(path)
        except OSError:
            found[path] = None
        else:
            found[path] = (st.st_mtime_ns, st.st_size)
    return found


class ZoneWatcher:
    """The attachment: polls, debounces, reloads (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        reload: Callable[[], Awaitable[bool]],
        catalog: Callable[[], ZoneCatalog],
        interval: float = DEFAULT_INTERVAL,
        quiet: float = DEFAULT_QUIET,
    ) -> None:
        self.directory = directory
        self.reload = reload
        self.catalog = catalog
        self.interval = interval
        self.debouncer = Debouncer(quiet)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.debouncer.observe(snapshot(self.directory, self.catalog()), 0.0)
        self._task = asyncio.get_running_loop().create_task(self._run())
        log.info("watching %s for changes (every %gs, reload %gs after the last)",
                 self.directory, self.interval, self.debouncer.quiet)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            if not self.debouncer.observe(snapshot(self.directory, self.catalog()), loop.time()):
                continue
            log.info("zone files changed under %s: reloading", self.directory)
            try:
                await self.reload()
            except Exception:
                log.exception("reload failed; the previous zones keep serving")
            self.debouncer.rebase(snapshot(self.directory, self.catalog()))
