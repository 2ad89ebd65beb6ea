"""End to end: a nameserver with UPDATE + health, an engine that registers itself by signed
UPDATE; `dig` shows its SRV with no zonefile edit; killed, it leaves the SRV answers."""
from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from engine_support import start_engine, stop_engine

from nameserver.build import DynamicOptions, ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.runner import ServerRunner
from nameserver.update.dynamic import DynamicZones
from nameserver.update.health import HealthSettings
from zones.tsig import generate_key, write_key_file

pytestmark = pytest.mark.model
DOMAIN = "legal.semantic.root."
ZONEFILE = """$ORIGIN legal.semantic.root.
$TTL 300
@       IN SOA ns1 hostmaster 2026010100 3600 600 86400 60
@       IN NS  ns1
ns1     IN A   127.0.0.1
"""
SETTINGS = HealthSettings(interval=0.5, failures=2, timeout=0.5)
BOUND = SETTINGS.failures * SETTINGS.interval + SETTINGS.timeout  # the documented drop-out time


async def dig_srv(port: int) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        shutil.which("dig") or "dig", "@127.0.0.1", "-p", str(port), "+short", "+tcp", "SRV", f"_llm._tcp.{DOMAIN}",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, _ = await process.communicate()
    return sorted(line for line in out.decode().splitlines() if line.strip())


def make_server(tmp_path: Path) -> tuple[ServerRunner, DynamicZones, Path]:
    """A server of the legal zone accepting UPDATEs, probing engines' health (not started), its
    dynamic zones and the key file."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / f"{DOMAIN}zone").write_text(ZONEFILE)
    key_file = tmp_path / "legal.key"
    write_key_file(key_file, generate_key(f"engine.{DOMAIN}"))
    config = ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False)
    dynamic = DynamicOptions(tsig_keys=key_file, journal=tmp_path / "journal", health=SETTINGS)
    runner = build_server(ServerOptions(config=config, semantic=None, dynamic=dynamic))
    return runner, runner.chain.get("update").dynamic, key_file


async def test_engine_registers_and_drops_out(tmp_path: Path) -> None:
    runner, dynamic, key_file = make_server(tmp_path)
    await runner.start()  # and its health monitor
    port = runner.addresses[0][1]
    engine = None
    try:
        assert await dig_srv(port) == []
        engine = await asyncio.to_thread(start_engine, "--backend", "llama", "--domain", DOMAIN, "--ctx", "256",
                                         "--server", f"127.0.0.1:{port}", "--tsig-key", str(key_file), "--lease", "30")
        engine_port = engine.url.rsplit(":", 1)[1]
        expected = [f"0 0 {engine_port} llm-{engine_port}.{DOMAIN}"]
        assert await dig_srv(port) == expected
        engine.process.send_signal(signal.SIGKILL)  # no clean deregistration: health must notice
        await asyncio.to_thread(engine.process.wait)
        for _ in range(int(10 * BOUND / 0.25)):  # generous polling; the bound is checked by the log, not the clock
            if await dig_srv(port) == []:
                break
            await asyncio.sleep(0.25)
        assert await dig_srv(port) == []
        (registration,) = list(dynamic.registry)
        assert registration.hidden and registration.failures >= SETTINGS.failures
    finally:
        if engine is not None:
            await asyncio.to_thread(stop_engine, engine.process)
        await runner.stop()


async def test_clean_shutdown_deregisters(tmp_path: Path) -> None:
    runner, dynamic, key_file = make_server(tmp_path)
    await runner.start()
    port = runner.addresses[0][1]
    try:
        engine = await asyncio.to_thread(start_engine, "--backend", "llama", "--domain", DOMAIN, "--ctx", "256",
                                         "--server", f"127.0.0.1:{port}", "--tsig-key", str(key_file))
        try:
            assert len(await dig_srv(port)) == 1
        finally:
            assert await asyncio.to_thread(stop_engine, engine.process) == 0
        assert await dig_srv(port) == []
        assert dynamic.registry.registrations == {}
        assert (tmp_path / "journal" / f"{DOMAIN}jnl").read_text().count("\n") == 2  # add, delete
    finally:
        await runner.stop()
