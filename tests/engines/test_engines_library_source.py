"""The engine learns its domain's pattern library over DNS, from a real nameserver on loopback."""
from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import zstandard

from codec.library import PatternLibrary
from engines.context import ContextDecoder, encode_context
from engines.library_source import DnsLibrarySource, LibraryWatcher
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig

DOMAIN = "legal.semantic.root."
ZONEFILE = """$ORIGIN legal.semantic.root.
$TTL 300
@       IN SOA ns1 hostmaster 2026010100 3600 600 86400 60
@       IN NS  ns1
ns1     IN A   127.0.0.1
"""


def make_library() -> PatternLibrary:
    rng = random.Random(5)
    words = "plaintiff defendant statute limitation contract breach remedy appeal verdict motion".split()
    samples = [" ".join(rng.choice(words) for _ in range(60)).encode() for _ in range(400)]
    return PatternLibrary.from_dictionary(zstandard.train_dictionary(16384, samples).as_bytes())


async def test_watcher_loads_the_library_over_dns(tmp_path: Path) -> None:
    library = make_library()
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / f"{DOMAIN}zone").write_text(ZONEFILE + library.to_zone_fragment(DOMAIN))
    runner = build_server(
        ServerOptions(config=ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False), semantic=None)
    )
    await runner.start()
    try:
        source = DnsLibrarySource(DOMAIN, ("127.0.0.1", runner.addresses[0][1]))
        assert await source.serial() == 2026010100
        engine = SimpleNamespace(state=SimpleNamespace(decoder=ContextDecoder(), model_id="m"))
        watcher = LibraryWatcher(source, poll_seconds=60)
        await watcher.start(engine)
        await watcher.stop()
    finally:
        await runner.stop()
    assert watcher.serial == 2026010100
    assert engine.state.decoder.dict_ids == (library.dict_id,)
    text = "The plaintiff filed a motion after the verdict; the statute of limitation bars the appeal."
    assert engine.state.decoder.decode(encode_context(text, library)) == text


async def test_no_library_is_not_an_error(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / f"{DOMAIN}zone").write_text(ZONEFILE)
    runner = build_server(
        ServerOptions(config=ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False), semantic=None)
    )
    await runner.start()
    try:
        snapshot = await DnsLibrarySource(DOMAIN, ("127.0.0.1", runner.addresses[0][1])).fetch()
    finally:
        await runner.stop()
    assert snapshot.libraries == {} and snapshot.serial == 2026010100


CHILD = "contract.legal.semantic.root."
CHILD_ZONEFILE = """$ORIGIN contract.legal.semantic.root.
$TTL 300
@       IN SOA ns1 hostmaster 2026010500 3600 600 86400 60
@       IN NS  ns1
ns1     IN A   127.0.0.1
"""


async def test_a_domain_without_a_library_uses_its_parents_and_follows_its_serial(tmp_path: Path) -> None:
    # As the SDK does (codec.library.library_owner_chain): the engine of contract.legal decodes
    # contexts compressed with legal's library, and a new serial of legal (a retrain) is noticed.
    library = make_library()
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / f"{DOMAIN}zone").write_text(ZONEFILE + library.to_zone_fragment(DOMAIN))
    (zones / f"{CHILD}zone").write_text(CHILD_ZONEFILE)
    runner = build_server(
        ServerOptions(config=ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False), semantic=None)
    )
    await runner.start()
    try:
        source = DnsLibrarySource(CHILD, ("127.0.0.1", runner.addresses[0][1]))
        snapshot = await source.fetch()
        assert list(snapshot.libraries) == [library.dict_id]
        assert snapshot.serial == 2026010500 << 32 | 2026010100 == await source.serial()
        (zones / f"{DOMAIN}zone").write_text(ZONEFILE.replace("2026010100", "2026010101")
                                             + library.to_zone_fragment(DOMAIN))
        await runner.reload()
        assert await source.serial() == 2026010500 << 32 | 2026010101
    finally:
        await runner.stop()
    text = "The plaintiff filed a motion after the verdict."
    decoder = ContextDecoder()
    decoder.update(snapshot.libraries)
    assert decoder.decode(encode_context(text, library)) == text
