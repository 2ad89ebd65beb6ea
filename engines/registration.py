"""Registering an engine in its domain's zone by DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945).

What one engine adds (instance `llm-8110`, domain `legal.semantic.root.`):

    _llm._tcp.legal.semantic.root.           SRV 0 0 8110 llm-8110.legal.semantic.root.
    _llm._tcp.legal.semantic.root.           PTR llm-8110._llm._tcp.legal.semantic.root.
    llm-8110._llm._tcp.legal.semantic.root.  SRV 0 0 8110 llm-8110.legal.semantic.root.
    llm-8110._llm._tcp.legal.semantic.root.  TXT ( "txtvers=1" "model=…" "api=openai-v1" "ctx=2048"
                                                   "codec=zstd-dict" "path=/v1" )
    llm-8110.legal.semantic.root.            A   127.0.0.1

The SRV at the service name is the flat form the semantic answers use; PTR + instance SRV/TXT
are the DNS-SD (RFC 6763) form. Every UPDATE carries the EDNS UPDATE-LEASE option
(draft-ietf-dnssd-update-lease, option code 2, 4-octet lease in seconds); the registration is
re-sent every lease/3 and deleted (RR by RR, so static records stay) on clean shutdown.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dns.asyncquery
import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update

from common.tasks import cancel_and_wait
from engines.errors import EngineError

if TYPE_CHECKING:
    from engines.server import EngineServer

log = logging.getLogger(__name__)

UPDATE_LEASE_OPTION = 2
SERVICE_LABELS = ("_llm", "_tcp")
DNS_TIMEOUT = 5.0


class RegistrationError(EngineError):
    """The nameserver refused or did not answer a registration UPDATE."""


@dataclass(frozen=True)
class TsigKey:
    name: dns.name.Name
    algorithm: dns.name.Name
    secret: bytes

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return {self.name: dns.tsig.Key(self.name, self.secret, self.algorithm)}


@dataclass(frozen=True)
class ServiceInstance:
    """The records one engine publishes."""

    domain: dns.name.Name
    instance: str
    port: int
    addresses: tuple[str, ...]
    attributes: tuple[tuple[str, str], ...]
    priority: int = 0
    weight: int = 0
    ttl: int = 30

    @property
    def service(self) -> dns.name.Name:
        return dns.name.Name(SERVICE_LABELS).concatenate(self.domain)

    @property
    def instance_name(self) -> dns.name.Name:
        return dns.name.Name((self.instance,)).concatenate(self.service)

    @property
    def target(self) -> dns.name.Name:
        return dns.name.Name((self.instance,)).concatenate(self.domain)

    def rrs(self) -> list[tuple[dns.name.Name, dns.rdata.Rdata]]:
        """(owner, rdata) of every record, in the order they are added."""
        IN = dns.rdataclass.IN
        srv = dns.rdata.from_text(IN, dns.rdatatype.SRV, f"{self.priority} {self.weight} {self.port} {self.target}")
        txt = dns.rdata.from_text(IN, dns.rdatatype.TXT, " ".join(_quote(f"{k}={v}") for k, v in self.attributes))
        out = [
            (self.service, srv),
            (self.service, dns.rdata.from_text(IN, dns.rdatatype.PTR, str(self.instance_name))),
            (self.instance_name, srv),
            (self.instance_name, txt),
        ]
        for address in self.addresses:
            rdtype = dns.rdatatype.AAAA if ipaddress.ip_address(address).version == 6 else dns.rdatatype.A
            out.append((self.target, dns.rdata.from_text(IN, rdtype, address)))
        return out


def build_update(
    zone: dns.name.Name, instance: ServiceInstance, key: TsigKey, *, lease: int | None, delete: bool = False
) -> dns.update.UpdateMessage:
    """The signed UPDATE adding (or deleting) every record of `instance` in `zone`."""
    update = dns.update.UpdateMessage(zone, keyring=key.keyring(), keyname=key.name, keyalgorithm=key.algorithm)
    for owner, rdata in instance.rrs():
        if delete:
            update.delete(owner, rdata)
        else:
            update.add(owner, instance.ttl, rdata)
    if lease is not None:
        option = dns.edns.GenericOption(dns.edns.OptionType.make(UPDATE_LEASE_OPTION), struct.pack("!I", lease))
        update.use_edns(0, options=[option])
    return update


async def send_update(update: dns.update.UpdateMessage, server: tuple[str, int]) -> dns.message.Message:
    """Send over TCP; the response's TSIG is verified by dnspython; a non-NOERROR rcode raises."""
    host, port = server
    try:
        response = await dns.asyncquery.tcp(update, host, port=port, timeout=DNS_TIMEOUT)
    except (dns.exception.DNSException, OSError) as exc:
        hint = " (an unsigned answer: the server does not accept this TSIG key)" if "TSIG" in str(exc) else ""
        raise RegistrationError(f"UPDATE of zone {update.origin} to {host}:{port} failed: {exc}{hint}") from exc
    if response.rcode() != dns.rcode.NOERROR:
        raise RegistrationError(
            f"UPDATE of zone {update.origin} to {host}:{port}: {dns.rcode.to_text(response.rcode())}"
        )
    return response


async def find_zone(name: dns.name.Name, server: tuple[str, int]) -> dns.name.Name:
    """The apex of the zone that holds `name`, asked of `server` (SOA in the answer or authority)."""
    host, port = server
    query = dns.message.make_query(name, dns.rdatatype.SOA)
    try:
        response = await dns.asyncquery.tcp(query, host, port=port, timeout=DNS_TIMEOUT)
    except (dns.exception.DNSException, OSError) as exc:
        raise RegistrationError(f"SOA query for {name} to {host}:{port} failed: {exc}") from exc
    for section in (response.answer, response.authority):
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.SOA and name.is_subdomain(rrset.name):
                return rrset.name
    raise RegistrationError(f"{host}:{port} is not authoritative for {name} (no SOA in its answer)")


@dataclass(frozen=True)
class RegistrationSettings:
    server: tuple[str, int]
    key: TsigKey
    lease: int = 60
    ttl: int = 30
    instance: str | None = None
    advertise: str | None = None
    zone: str | None = None


class Registration:
    """Engine attachment: register when ready, renew every lease/3, delete on stop."""

    def __init__(self, settings: RegistrationSettings) -> None:
        self.settings = settings
        self._zone: dns.name.Name | None = None
        self._instance: ServiceInstance | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self, server: "EngineServer") -> None:
        s = self.settings
        state = server.state
        self._instance = ServiceInstance(
            domain=dns.name.from_text(state.domain),
            instance=s.instance or f"llm-{server.port}",
            port=server.port,
            addresses=(s.advertise or server.config.host,),
            attributes=service_attributes(server),
            ttl=s.ttl,
        )
        self._zone = dns.name.from_text(s.zone) if s.zone else await find_zone(self._instance.domain, s.server)
        await send_update(build_update(self._zone, self._instance, s.key, lease=s.lease), s.server)
        log.info("registered %s in zone %s at %s:%d (lease %ds)", self._instance.instance_name, self._zone,
                 *s.server, s.lease)
        self._renewer = asyncio.create_task(self._renew())

    async def stop(self) -> None:
        if self._renewer is not None:
            # The flag as well as the cancellation: Python 3.11's asyncio.wait_for (inside
            # dnspython's query) can swallow a cancellation that lands as the query completes,
            # and the renewal loop would then run on and this await never return.
            self._stopping.set()
            await cancel_and_wait(self._renewer)
        if self._zone is None or self._instance is None:
            return
        await send_update(build_update(self._zone, self._instance, self.settings.key, lease=None, delete=True),
                          self.settings.server)
        log.info("deregistered %s", self._instance.instance_name)

    async def _renew(self) -> None:
        assert self._zone is not None and self._instance is not None
        interval = max(1.0, self.settings.lease / 3)
        while True:
            await asyncio.sleep(interval)
            if self._stopping.is_set():
                return
            try:
                await send_update(build_update(self._zone, self._instance, self.settings.key,
                                               lease=self.settings.lease), self.settings.server)
            except RegistrationError as exc:  # keep trying: the lease has two more chances
                log.warning("lease renewal failed: %s", exc)


def service_attributes(server: "EngineServer") -> tuple[tuple[str, str], ...]:
    """The DNS-SD TXT attributes of an engine (hierarchy contract)."""
    state = server.state
    if state.backend_name == "llama":
        api = "openai-v1"
        ctx = str(getattr(state.backend, "n_ctx", server.config.n_ctx))
        extra: tuple[tuple[str, str], ...] = (("ctx", ctx), ("codec", "zstd-dict"))
    else:
        kind = getattr(state.backend, "kind", "embedder")
        api = "openai-v1-embeddings" if kind == "embedder" else "semdns-v1-classify"
        extra = ()
    return (("txtvers", "1"), ("model", state.model_id), ("api", api), *extra, ("path", "/v1"))


def load_tsig(path: Path) -> TsigKey:
    """A TSIG key from a BIND-style key file (`key "name" { algorithm …; secret "…"; };`)."""
    from zones.tsig import load_keyring  # the zones room owns the key-file format

    keyring = load_keyring(path)
    if len(keyring) != 1:
        raise EngineError(f"TSIG key file {path}: expected exactly one key, found {len(keyring)}")
    ((name, key),) = keyring.items()
    return TsigKey(name=name, algorithm=key.algorithm, secret=key.secret)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
