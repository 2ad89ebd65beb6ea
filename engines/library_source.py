"""How an engine learns its domain's pattern libraries (the `_codec.<domain>` TXT records).

`LibraryWatcher` is an engine attachment: once the engine is ready it fetches the libraries
from a `LibrarySource`, hands them to the context decoder, then polls the zone's SOA serial and
fetches again when it changes. A failed fetch is logged and retried at the next poll; the engine
keeps serving (contexts compressed without a dictionary, dict_id 0, always work).

`DnsLibrarySource` reads the records over DNS (TCP: chunks are ~11 KB) with dnspython: the
header at `_codec.<domain>.` (or, where the domain has none, at its nearest ancestor's, as the
SDK looks it up), then chunk i at `<i>._codec.<that domain>.`, reassembled and verified by
`codec.library.from_txt_records` (formats `semcodec1`, `semcodec2` and `semcodec3`).
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
from codec.library import PatternLibrary, chunk_owner, from_txt_records, library_owner_chain, parse_header
from common.tasks import cancel_and_wait
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
    """The nearest library up `domain`'s ancestors, found as the SDK finds it
    (`codec.library.library_owner_chain`: a domain without a library uses its parent's), walking
    up while `server` answers for the names."""

    def __init__(self, domain: str, server: tuple[str, int]) -> None:
        self.domain = dns.name.from_text(domain)
        self.server = server
        self._holder = self.domain  # the domain whose library is in use

    async def serial(self) -> int:
        """The domain's SOA serial; combined with the holder zone's (high 32 bits: the domain's)
        when the library comes from an ancestor, so that a retrain there is noticed too."""
        serial = await self._soa_serial(self.domain)
        if self._holder == self.domain:
            return serial
        return serial << 32 | await self._soa_serial(self._holder)

    async def fetch(self) -> LibrarySnapshot:
        library: PatternLibrary | None = None
        self._holder = self.domain
        for owner in library_owner_chain(self.domain.to_text()):
            header = await self._txt(dns.name.from_text(owner))
            if header is None:
                break  # this server does not answer for that name: no ancestor's library here
            if header:
                self._holder = dns.name.from_text(owner).parent()
                library = await self._library(header[0])
                break
        serial = await self.serial()
        return LibrarySnapshot(serial=serial, libraries={library.dict_id: library} if library else {})

    async def _library(self, header: tuple[bytes, ...]) -> PatternLibrary:
        base = self._holder.to_text()
        try:
            chunks = []
            for index in range(parse_header(header).chunks):
                records = await self._txt(dns.name.from_text(chunk_owner(base, index)))
                chunks.extend((records or [])[:1])
            return from_txt_records(header, chunks)
        except LibraryError as exc:
            raise LibraryFetchError(f"_codec.{base}: records do not form a library: {exc}") from exc

    async def _soa_serial(self, zone: dns.name.Name) -> int:
        response = await self._query(zone, dns.rdatatype.SOA)
        for section in (response.answer, response.authority) if response is not None else ():
            for rrset in section:
                if rrset.rdtype == dns.rdatatype.SOA:
                    return int(rrset[0].serial)
        raise LibraryFetchError(f"no SOA for {zone} from {self.server[0]}:{self.server[1]}")

    async def _txt(self, name: dns.name.Name) -> list[tuple[bytes, ...]] | None:
        """The TXT records at `name` (none: an empty list); None when the server refuses the name."""
        response = await self._query(name, dns.rdatatype.TXT)
        if response is None:
            return None
        return [tuple(rdata.strings) for rrset in response.answer if rrset.rdtype == dns.rdatatype.TXT
                and rrset.name == name for rdata in rrset]

    async def _query(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.message.Message | None:
        """The answer (NOERROR or NXDOMAIN), None for REFUSED (not a name this server holds)."""
        host, port = self.server
        try:
            response = await dns.asyncquery.tcp(dns.message.make_query(name, rdtype), host, port=port,
                                                timeout=DNS_TIMEOUT)
        except (dns.exception.DNSException, OSError) as exc:
            raise LibraryFetchError(f"{dns.rdatatype.to_text(rdtype)} {name} to {host}:{port}: {exc}") from exc
        if response.rcode() == dns.rcode.REFUSED:
            return None
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
        await cancel_and_wait(self._task)

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
