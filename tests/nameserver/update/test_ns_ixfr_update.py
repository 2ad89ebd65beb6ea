"""IXFR after dynamic UPDATEs (RFC 2136) and after a reload that replays the journal: a server in
this process, real sockets, dnspython as the secondary."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import AsyncIterator

import dns.asyncquery
import dns.name
import dns.rcode
import dns.rdatatype
import dns.update
import dns.xfr
import dns.zone
import pytest

from nameserver.build import DynamicOptions, ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.transfer.axfr import TransferHandler
from zones.catalog import ZoneStore
from zones.tsig import generate_key, load_keyring, write_key_file

ZONE = "dyn.test."
ORIGIN = dns.name.from_text(ZONE)
KEY = dns.name.from_text(f"engine.{ZONE}")


def zonefile(serial: int, extra: str = "") -> str:
    return (
        f"$ORIGIN {ZONE}\n$TTL 300\n@ SOA ns1 hostmaster ( {serial} 3600 600 86400 60 )\n@ NS ns1\n"
        "ns1 A 127.0.0.1\nstatic TXT \"from the file\"\n" + "".join(f"h{i} A 10.0.1.{i}\n" for i in range(30)) + extra
    )


class Primary:
    def __init__(self, tmp: Path) -> None:
        self.zones = tmp / "zones"
        self.zones.mkdir()
        (self.zones / f"{ZONE}zone").write_text(zonefile(2026010100))
        key_file = tmp / "dyn.key"
        write_key_file(key_file, generate_key(KEY.to_text()))
        self.keyring = load_keyring(key_file)
        self.store = ZoneStore()
        config = ServerConfig(zones_dir=self.zones, listen=(("127.0.0.1", 0),), uvloop=False)
        policy = tmp / "update-policy.conf"
        policy.write_text(f"grant {KEY} zone {ZONE};\n")  # these UPDATEs change zonefile records too
        dynamic = DynamicOptions(tsig_keys=key_file, journal=tmp / "journal", update_policy=policy)
        self.runner = build_server(ServerOptions(config=config, semantic=None, dynamic=dynamic), store=self.store)
        self.dynamic = self.runner.chain.get("update").dynamic

    @property
    def port(self) -> int:
        return self.runner.addresses[0][1]

    @property
    def zone(self) -> dns.zone.Zone:
        return self.store.current.zones[ORIGIN]

    @property
    def serial(self) -> int:
        return self.zone.get_rdataset(ORIGIN, dns.rdatatype.SOA)[0].serial

    @property
    def transfers(self) -> TransferHandler:
        handler = self.runner.chain.get("transfer")
        assert isinstance(handler, TransferHandler)
        return handler

    async def update(self, build) -> None:
        message = dns.update.UpdateMessage(ORIGIN, keyring=self.keyring, keyname=KEY)
        build(message)
        reply = await dns.asyncquery.tcp(message, "127.0.0.1", port=self.port, timeout=5)
        assert reply.rcode() == dns.rcode.NOERROR


@pytest.fixture
async def primary(tmp_path: Path) -> AsyncIterator[Primary]:
    server = Primary(tmp_path)
    await server.runner.start()
    try:
        yield server
    finally:
        await server.runner.stop()


async def secondary_catches_up(primary: Primary, copy_of: dns.zone.Zone) -> dns.zone.Zone:
    received = copy.deepcopy(copy_of)
    serial = received.get_rdataset(ORIGIN, dns.rdatatype.SOA)[0].serial
    query, _ = dns.xfr.make_query(received, serial=serial)
    await dns.asyncquery.inbound_xfr("127.0.0.1", received, query, port=primary.port, timeout=5)
    return received


async def test_updates_go_out_as_increments(primary: Primary) -> None:
    start = copy.deepcopy(primary.zone)
    await primary.update(lambda m: m.add("engine1", 60, "A", "192.0.2.10"))
    after_one = copy.deepcopy(primary.zone)
    await primary.update(lambda m: (m.delete("h3", "A"), m.add("engine1", 60, "A", "192.0.2.11")))
    assert primary.store.history.serials(ORIGIN)[0] == start.get_rdataset(ORIGIN, "SOA")[0].serial

    assert await secondary_catches_up(primary, start) == primary.zone
    assert await secondary_catches_up(primary, after_one) == primary.zone
    assert primary.transfers.counts["ixfr-incremental"] == 2 and primary.transfers.counts["ixfr-full"] == 0


async def test_reload_with_journal_replay_keeps_the_path(primary: Primary) -> None:
    start = copy.deepcopy(primary.zone)
    await primary.update(lambda m: m.add("engine1", 60, "A", "192.0.2.10"))
    before_reload = copy.deepcopy(primary.zone)
    (primary.zones / f"{ZONE}zone").write_text(zonefile(primary.serial + 100, 'fresh TXT "edited"\n'))
    assert await primary.runner.reload()
    # the file's version, then the journal's UPDATE re-applied on top: two more steps
    assert primary.zone.get_rdataset("engine1.dyn.test.", "A") is not None
    assert primary.zone.get_rdataset("fresh.dyn.test.", "TXT") is not None
    for old in (start, before_reload):
        assert await secondary_catches_up(primary, old) == primary.zone
    assert primary.transfers.counts["ixfr-incremental"] == 2 and primary.transfers.counts["ixfr-full"] == 0


async def test_a_reload_without_a_serial_rise_forces_a_full_transfer(primary: Primary) -> None:
    start = copy.deepcopy(primary.zone)
    await primary.update(lambda m: m.add("engine1", 60, "A", "192.0.2.10"))
    (primary.zones / f"{ZONE}zone").write_text(zonefile(2026010100, 'quiet TXT "no serial bump"\n'))
    # The file's serial is below the dynamic one now: the reload keeps the served version ...
    await primary.runner.reload()
    assert primary.zone.get_rdataset("quiet.dyn.test.", "TXT") is None
    assert await secondary_catches_up(primary, start) == primary.zone
    # ... and a same-serial edit of the served data clears the history: the next IXFR is a full one.
    served = primary.serial
    (primary.zones / f"{ZONE}zone").write_text(zonefile(served, 'quiet TXT "same serial"\n'))
    assert await primary.runner.reload()
    # (the journal replay after the reload starts a new history at the file's version)
    assert start.get_rdataset(ORIGIN, "SOA")[0].serial not in primary.store.history.serials(ORIGIN)
    assert await secondary_catches_up(primary, start) == primary.zone
    assert primary.transfers.counts["ixfr-full"] == 1
