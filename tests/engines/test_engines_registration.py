"""Registration by signed DNS UPDATE, against a small TCP DNS server that verifies the TSIG."""
from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rrset
import pytest

import engines.registration as registration_module
from engines.registration import (
    UPDATE_LEASE_OPTION,
    Registration,
    RegistrationError,
    RegistrationSettings,
    ServiceInstance,
    build_update,
    load_tsig,
)
from zones.tsig import generate_key, write_key_file

ZONE = dns.name.from_text("legal.semantic.root.")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "legal.key"
    write_key_file(path, generate_key("engine-legal"))
    return path


@dataclass
class FakeServer:
    keyring: dict
    updates: list[dns.message.Message] = field(default_factory=list)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def close_connections(self) -> None:
        for writer in self.writers:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One message per connection (what dnspython's tcp() sends), answered, then closed."""
        self.writers.add(writer)
        try:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            out = self.answer(await reader.readexactly(length))
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def answer(self, wire: bytes) -> bytes:
        try:
            query = dns.message.from_wire(wire, keyring=self.keyring)
        except dns.message.UnknownTSIGKey:  # answered unsigned, as a server without the key must
            reply = dns.message.make_response(dns.message.from_wire(wire, keyring=False))
            reply.set_rcode(dns.rcode.NOTAUTH)
            return reply.to_wire()
        reply = dns.message.make_response(query)
        if query.opcode() == dns.opcode.UPDATE:
            self.updates.append(query)
        else:
            soa = dns.rrset.from_text(
                ZONE, 60, "IN", "SOA", "ns1.legal.semantic.root. admin.legal.semantic.root. 1 60 60 60 60"
            )
            (reply.answer if query.question[0].name == ZONE else reply.authority).append(soa)
        return reply.to_wire()


def fake_engine(port: int = 8110) -> SimpleNamespace:
    state = SimpleNamespace(domain="litigation.legal.semantic.root.", model_id="smollm2-135m-instruct",
                            backend_name="llama", backend=SimpleNamespace(n_ctx=2048))
    return SimpleNamespace(state=state, port=port, config=SimpleNamespace(host="127.0.0.1", n_ctx=2048))


def test_build_update_records_and_lease(key_file: Path) -> None:
    key = load_tsig(key_file)
    instance = ServiceInstance(domain=dns.name.from_text("legal.semantic.root."), instance="llm-8110", port=8110,
                               addresses=("127.0.0.1", "::1"), attributes=(("txtvers", "1"), ("model", "m")))
    update = build_update(ZONE, instance, key, lease=90)
    wire = update.to_wire()
    parsed = dns.message.from_wire(wire, keyring=key.keyring())
    assert parsed.had_tsig
    assert [o.otype for o in parsed.options] == [UPDATE_LEASE_OPTION]
    assert struct.unpack("!I", parsed.options[0].to_wire()) == (90,)
    texts = sorted(rrset.to_text() for rrset in parsed.update)
    service = "_llm._tcp.legal.semantic.root."
    assert f"{service} 30 IN SRV 0 0 8110 llm-8110.legal.semantic.root." in texts
    assert f"{service} 30 IN PTR llm-8110.{service}" in texts
    assert f'llm-8110.{service} 30 IN TXT "txtvers=1" "model=m"' in texts
    assert "llm-8110.legal.semantic.root. 30 IN A 127.0.0.1" in texts
    assert "llm-8110.legal.semantic.root. 30 IN AAAA ::1" in texts
    deletion = dns.message.from_wire(build_update(ZONE, instance, key, lease=None, delete=True).to_wire(),
                                     keyring=key.keyring())
    assert all(rrset.deleting == dns.rdataclass.NONE for rrset in deletion.update)
    assert deletion.edns < 0


async def test_register_renew_deregister(key_file: Path) -> None:
    key = load_tsig(key_file)
    fake = FakeServer(keyring=key.keyring())
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        registration = Registration(RegistrationSettings(server=("127.0.0.1", port), key=key, lease=3))
        await registration.start(fake_engine())
        assert len(fake.updates) == 1
        add = fake.updates[0]
        assert add.question[0].name == ZONE  # the zone was found by its SOA
        owners = {rrset.name.to_text() for rrset in add.update}
        assert "_llm._tcp.litigation.legal.semantic.root." in owners
        for _ in range(100):  # lease 3 s: a renewal within about a second
            if len(fake.updates) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(fake.updates) >= 2
        await registration.stop()
        last = fake.updates[-1]
        assert all(rrset.deleting == dns.rdataclass.NONE for rrset in last.update)
    finally:
        server.close()
        fake.close_connections()
        await asyncio.wait_for(server.wait_closed(), timeout=5)


async def test_refused_registration_raises(key_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    write_key_file(other, generate_key("someone-else"))
    fake = FakeServer(keyring=load_tsig(other).keyring())
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        registration = Registration(RegistrationSettings(server=("127.0.0.1", port), key=load_tsig(key_file),
                                                         zone="legal.semantic.root."))
        with pytest.raises(RegistrationError, match="TSIG"):
            await registration.start(fake_engine())
    finally:
        server.close()
        fake.close_connections()
        await asyncio.wait_for(server.wait_closed(), timeout=5)


async def test_stop_ends_a_renewal_whose_cancellation_was_swallowed(key_file: Path, monkeypatch) -> None:
    # Python 3.11's asyncio.wait_for (inside dnspython's query) can swallow a cancellation that
    # arrives as the query completes; the renewal loop must still end when the engine stops.
    calls: list[dns.message.Message] = []
    renewing = asyncio.Event()

    async def send(update: dns.message.Message, server: tuple[str, int]) -> None:
        calls.append(update)
        if len(calls) == 2:  # the first renewal: swallow the cancellation, as wait_for may
            renewing.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                return

    monkeypatch.setattr(registration_module, "send_update", send)
    key = load_tsig(key_file)
    registration = Registration(RegistrationSettings(server=("127.0.0.1", 9), key=key, lease=3, zone=str(ZONE)))
    await registration.start(fake_engine())
    await asyncio.wait_for(renewing.wait(), timeout=10)
    await asyncio.wait_for(registration.stop(), timeout=5)  # hung for ever before the fix
    assert len(calls) == 3  # registration, the swallowed renewal, the deletion
