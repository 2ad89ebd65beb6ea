"""How an engine learns its domain's pattern libraries (the `_codec.<domain>` TXT records).

`LibraryWatcher` is an engine attachment: once the engine is ready it fetches the libraries
from a `LibrarySource`, hands them to the context decoder, then polls the zone's SOA serial and
fetches again when it changes. A failed fetch is logged and retried at the next poll; the engine
keeps serving (contexts compressed without a dictionary, dict_id 0, always work).

`DnsLibrarySource` reads the records over DNS (TCP: chunks are ~11 KB) with dnspython: the
header at `_codec.<domain>.`, then chunk i at `<i>._codec.<domain>.`, reassembled and verified
by `codec.library.from_txt_records` (formats `semcodec1` and `semcodec2`).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Protocol

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from codec.errors import LibraryError
from codec.library import PatternLibrary, chunk_owner, from_txt_records, header_owner, parse_header
from engines.errors import EngineError

if TYPE_CHECKING:
    from engines.server import EngineServer

log = logging.getLogger(__name__)

DNS_TIMEOUT = 5.0

class LibraryFetchError(EngineError):
    """The libraries could not be read (no answer, bad records)."""


@dataclass(frozen=True)
class LibrarySnapshot:
    serial: int
    libraries: Mapping[int, PatternLibrary]


class LibrarySource(Protocol):
    async def serial(self) -> int: ...

    async def fetch(self) -> LibrarySnapshot: ...


class DnsLibrarySource:
    def __init__(self, domain: str, server: tuple[str, int]) -> None:
        self.domain = dns.name.from_text(domain)
        self.server = server

    async def serial(self) -> int:
        response = await self._query(self.domain, dns.rdatatype.SOA)
        for section in (response.answer, response.authority):
            for rrset in section:
                if rrset.rdtype == dns.rdatatype.SOA:
                    return int(rrset[0].serial)
        raise LibraryFetchError(f"no SOA for {self.domain} from {self.server[0]}:{self.server[1]}")

    async def fetch(self) -> LibrarySnapshot:
        serial = await self.serial()
        header = await self._txt(dns.name.from_text(header_owner(self.domain.to_text())))
        if not header:
            return LibrarySnapshot(serial=serial, libraries={})
        try:
            count = parse_header(header[0]).chunks
            chunks = []
            for index in range(count):
                records = await self._txt(dns.name.from_text(chunk_owner(self.domain.to_text(), index)))
                chunks.extend(records[:1])
            library = from_txt_records(header[0], chunks)
        except LibraryError as exc:
            raise LibraryFetchError(f"_codec.{self.domain}: records do not form a library: {exc}") from exc
        return LibrarySnapshot(serial=serial, libraries={library.dict_id: library})

    async def _txt(self, name: dns.name.Name) -> list[tuple[bytes, ...]]:
        response = await self._query(name, dns.rdatatype.TXT)
        return [tuple(rdata.strings) for rrset in response.answer if rrset.rdtype == dns.rdatatype.TXT
                and rrset.name == name for rdata in rrset]

    async def _query(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        host, port = self.server
        try:
            response = await dns.asyncquery.tcp(dns.message.make_query(name, rdtype), host, port=port,
                                                timeout=DNS_TIMEOUT)
        except (dns.exception.DNSException, OSError) as exc:
            raise LibraryFetchError(f"{dns.rdatatype.to_text(rdtype)} {name} to {host}:{port}: {exc}") from exc
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise LibraryFetchError(f"{dns.rdatatype.to_text(rdtype)} {name}: {dns.rcode.to_text(response.rcode())}")
        return response


class LibraryWatcher:
    """Engine attachment: keep the engine's context decoder on the zone's current libraries."""

    def __init__(self, source: LibrarySource, poll_seconds: float = 30.0) -> None:
        self.source = source
        self.poll_seconds = poll_seconds
        self.serial: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, server: "EngineServer") -> None:
        await self.refresh(server)
        self._task = asyncio.create_task(self._poll(server))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def refresh(self, server: "EngineServer") -> None:
        try:
            snapshot = await self.source.fetch()
        except LibraryFetchError as exc:
            log.warning("engine %s: pattern libraries not loaded: %s", server.state.model_id, exc)
            return
        server.state.decoder.update(snapshot.libraries)
        self.serial = snapshot.serial
        log.info("engine %s: pattern libraries %s (serial %d)", server.state.model_id,
                 list(snapshot.libraries) or "none", snapshot.serial)

    async def _poll(self, server: "EngineServer") -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                serial = await self.source.serial()
            except LibraryFetchError as exc:
                log.warning("engine %s: serial check failed: %s", server.state.model_id, exc)
                continue
            if serial != self.serial:
                await self.refresh(server)
