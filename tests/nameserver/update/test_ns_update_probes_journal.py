"""Issue 12, the rest: health probes go only where the policy allows, the journal is private, who
owns what survives a restart, and the per-zone cap. A real `semdns serve` on the shipped zones."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.update
import dns.zone
import pytest
from helpers.server import REPO, running_server, semdns_command
from helpers.shipped import ZONEFILES
from helpers.updates import ZONE, ask, ede_text, registration, send, write_keys

from nameserver.update.dynamic import DynamicZones
from nameserver.update.health import HealthMonitor
from zones.catalog import ZoneCatalog, ZoneStore


def flags(tmp: Path, *extra: str) -> list[str]:
    return ["--no-semantic", "--tsig-keys", str(tmp / "keys.conf"), "--journal", str(tmp / "journal"), *extra]


def test_a_registration_probed_outside_the_allowed_ranges_is_refused(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.conf", "engine")
    with running_server(ZONEFILES, flags(tmp_path)) as server:
        reply = send(server, registration(keys["engine"], "llm-9301", 9301, address="192.0.2.10"))
        assert reply.rcode() == dns.rcode.REFUSED
        assert "192.0.2.10 is neither loopback nor in --health-probe-allow" in ede_text(reply)
        assert ask(server, f"llm-9301.{ZONE}", "A") == []
        # loopback, v4 and v6, is always allowed
        assert send(server, registration(keys["engine"], "llm-9302", 9302)).rcode() == dns.rcode.NOERROR
        assert send(server, registration(keys["engine"], "llm-9303", 9303, address="::1")).rcode() == 0


def test_the_operator_allows_a_range(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.conf", "engine")
    with running_server(ZONEFILES, flags(tmp_path, "--health-probe-allow", "192.0.2.0/24")) as server:
        assert send(server, registration(keys["engine"], "llm-9311", 9311, address="192.0.2.10")).rcode() == 0
        assert ask(server, f"llm-9311.{ZONE}", "A") == ["192.0.2.10"]
        reply = send(server, registration(keys["engine"], "llm-9312", 9312, address="198.51.100.7"))
        assert reply.rcode() == dns.rcode.REFUSED and "198.51.100.7" in ede_text(reply)


def test_journal_is_private_and_owners_survive_a_restart(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.conf", "engine", "other")
    with running_server(ZONEFILES, flags(tmp_path)) as server:
        assert send(server, registration(keys["engine"], "llm-9321", 9321)).rcode() == dns.rcode.NOERROR
    journal = tmp_path / "journal"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o700
    files = list(journal.glob("*.jnl"))
    assert [f.name for f in files] == [f"{ZONE}jnl"] and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    with running_server(ZONEFILES, flags(tmp_path)) as server:  # the journal replayed: still the engine's
        assert ask(server, f"llm-9321.{ZONE}", "A") == ["127.0.0.1"]
        reply = send(server, registration(keys["other"], "llm-9321", 9321, delete=True))
        assert reply.rcode() == dns.rcode.REFUSED and "belongs to key engine.legal" in ede_text(reply)
        assert send(server, registration(keys["engine"], "llm-9321", 9321, delete=True)).rcode() == 0
        assert ask(server, f"llm-9321.{ZONE}", "A") == []


def test_a_journal_others_may_read_stops_the_start(tmp_path: Path) -> None:
    write_keys(tmp_path / "keys.conf", "engine")
    journal = tmp_path / "journal"
    journal.mkdir()
    loose = journal / f"{ZONE}jnl"
    loose.write_text("")
    loose.chmod(0o644)
    result = subprocess.run([*semdns_command(), "serve", "--zones", str(ZONEFILES), "--listen", "127.0.0.1:0",
                             *flags(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"semdns serve: journal {loose} is readable by others (mode 0644); chmod 600 it" in result.stderr


@pytest.mark.parametrize("limit", [8])
def test_records_over_the_per_zone_cap_are_refused(tmp_path: Path, limit: int) -> None:
    keys = write_keys(tmp_path / "keys.conf", "engine", "other")
    (tmp_path / "policy.conf").write_text(f"limit per-zone {limit};\n")
    with running_server(ZONEFILES, flags(tmp_path, "--update-policy", str(tmp_path / "policy.conf"))) as server:
        assert send(server, registration(keys["engine"], "llm-9331", 9331)).rcode() == dns.rcode.NOERROR  # 5
        reply = send(server, registration(keys["other"], "llm-9332", 9332))  # 10 > 8
        assert reply.rcode() == dns.rcode.REFUSED
        assert f"would number 10 (limit per-zone {limit})" in ede_text(reply)
        assert ask(server, f"llm-9332.{ZONE}", "A") == []


def test_a_broken_policy_file_stops_the_start(tmp_path: Path) -> None:
    write_keys(tmp_path / "keys.conf", "engine")
    policy = tmp_path / "policy.conf"
    policy.write_text("grant engine.legal.semantic.root. zone legal.semantic.root.;\ngrant oops;\n")
    result = subprocess.run([*semdns_command(), "serve", "--zones", str(ZONEFILES), "--listen", "127.0.0.1:0",
                             *flags(tmp_path, "--update-policy", str(policy))],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"semdns serve: {policy}:2: expected 'grant KEY" in result.stderr


async def test_a_replayed_registration_outside_the_ranges_is_not_probed() -> None:
    """A journal line from before the ranges narrowed: its engine is served on its lease, never probed."""
    origin = dns.name.from_text(ZONE)
    zone = dns.zone.from_text("@ 300 IN SOA ns1 h 1 3600 600 86400 60\n@ 300 IN NS ns1\nns1 300 IN A 127.0.0.2\n",
                              origin=origin, relativize=False)
    dynamic = DynamicZones(ZoneStore(ZoneCatalog(zones={origin: zone})), keyring={})
    message = dns.update.UpdateMessage(ZONE)
    message.add(f"_llm._tcp.{ZONE}", 30, "SRV", f"0 0 9341 llm-9341.{ZONE}")
    message.add(f"llm-9341.{ZONE}", 30, "A", "192.0.2.41")
    message.add(f"llm-9342.{ZONE}", 30, "A", "127.0.0.1")
    message.add(f"_llm._tcp.{ZONE}", 30, "SRV", f"0 0 9342 llm-9342.{ZONE}")
    wired = dns.message.from_wire(message.to_wire()).update  # absolute names, as a server reads them
    dynamic.apply(origin, wired, lease=60)  # as a replay does: no policy check
    monitor = HealthMonitor(dynamic)
    probed: list[tuple[str, int]] = []

    async def probe(host: str, port: int) -> bool:
        probed.append((host, port))
        return True

    monitor._probe = probe  # type: ignore[method-assign]
    try:
        await monitor.check_once()
    finally:
        await monitor.stop()
    assert probed == [("127.0.0.1", 9342)]
