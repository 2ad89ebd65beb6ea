"""An append-only journal of accepted UPDATEs, one file per zone, replayed at start.

`<dir>/<origin>jnl` (e.g. `legal.semantic.root.jnl`) holds one JSON object per line:

    {"time": 1795443927.1, "lease": 60, "key": "engine.legal.semantic.root.",
     "wire": "<base64 of the UPDATE, unsigned>"}

The wire form is the update section re-rendered without TSIG (RFC 2136 wire format; `dig`-free
tools like dnspython read it back). Every line is flushed and fsync'd before the UPDATE is
answered, so a NOERROR means the change survives a crash. A torn last line (crash mid-write) is
reported and ignored at replay. Replay re-applies each entry in order, skipping prerequisites
(they held when the entry was accepted) and the policy (it held too); `key` (absent in lines
written before keys were recorded, and null for a lease the server withdrew) rebuilds which key
owns which name (`nameserver.update.owners`).

The journal holds what engines registered (addresses, ports, models): the directory is made
0700 and each file 0600, and `Journal` refuses to start on a file that group or others may read
(`JournalError`: `journal FILE is readable by others (mode 0644); chmod 600 it`).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import dns.exception
import dns.message
import dns.name
import dns.rrset
import dns.update

from nameserver.errors import NameserverError

log = logging.getLogger(__name__)
SUFFIX = "jnl"
FILE_MODE = 0o600
DIR_MODE = 0o700


class JournalError(NameserverError):
    """A journal the server will not use (a file others may read)."""


@dataclass(frozen=True)
class JournalEntry:
    origin: dns.name.Name
    time: float
    lease: int | None
    key: dns.name.Name | None
    updates: tuple[dns.rrset.RRset, ...]


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        mode = directory.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("journal directory %s is open to others (mode %04o); chmod 700 it", directory, mode)
        self.check_modes()

    def check_modes(self) -> None:
        """Raise `JournalError` for a journal file that group or others may read."""
        for path in sorted(self.directory.glob(f"*.{SUFFIX}")):
            mode = path.stat().st_mode & 0o777
            if mode & 0o044:
                raise JournalError(f"journal {path} is readable by others (mode {mode:04o}); chmod 600 it")

    def path(self, origin: dns.name.Name) -> Path:
        return self.directory / f"{origin.to_text()}{SUFFIX}"

    def append(self, origin: dns.name.Name, updates: Sequence[dns.rrset.RRset], lease: int | None,
               key: dns.name.Name | None = None) -> None:
        message = dns.update.UpdateMessage(origin)
        message.update = [rrset for rrset in updates]
        line = json.dumps({"time": time.time(), "lease": lease, "key": None if key is None else key.to_text(),
                           "wire": base64.b64encode(message.to_wire()).decode("ascii")})
        descriptor = os.open(self.path(origin), os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        with os.fdopen(descriptor, "a", encoding="ascii") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def origins(self) -> list[dns.name.Name]:
        return sorted(dns.name.from_text(p.name[: -len(SUFFIX)]) for p in self.directory.glob(f"*.{SUFFIX}"))

    def entries(self, origin: dns.name.Name) -> Iterator[JournalEntry]:
        path = self.path(origin)
        if not path.exists():
            return
        with path.open(encoding="ascii") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    record = json.loads(line)
                    message = dns.message.from_wire(base64.b64decode(record["wire"], validate=True))
                except (ValueError, KeyError, binascii.Error, dns.exception.DNSException) as exc:
                    log.warning("%s:%d: unreadable journal entry skipped (%s)", path, number, exc)
                    continue
                if not isinstance(message, dns.update.UpdateMessage) or [q.name for q in message.zone] != [origin]:
                    log.warning("%s:%d: not an UPDATE of %s; skipped", path, number, origin)
                    continue
                key = record.get("key")
                try:
                    owner = dns.name.from_text(key) if isinstance(key, str) else None
                except dns.exception.DNSException:
                    owner = None
                yield JournalEntry(origin=origin, time=float(record.get("time", 0.0)), lease=record.get("lease"),
                                   key=owner, updates=tuple(message.update))
