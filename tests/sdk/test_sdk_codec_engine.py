"""End to end: our nameserver (semantic routing) serving `legal.semantic.root.` with the shipped
legal library, a real llama engine (SmolLM2) that loads that library by DNS (the engine's
`LibraryWatcher` + `DnsLibrarySource`, what `semdns engine --server` attaches), and
`AsyncClient.ask(question, context=...)`: the context travels compressed with the legal dictionary
and the engine restores it exactly (the same prompt tokens as the plain text).

llama.cpp runs in a child process (`helpers.in_child`): a native crash fails this test only."""
from __future__ import annotations

import asyncio
import random
import shutil
from pathlib import Path

import pytest
from helpers.in_child import run_in_child
from helpers.server import REPO, free_port
from sdk_codec_support import defined_terms, legal_document

from engines.library_source import DnsLibrarySource, LibraryWatcher
from engines.models import default_gguf_path
from engines.server import EngineConfig, EngineServer
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from sdk import AsyncClient
from zones.catalog import ZoneStore

pytestmark = pytest.mark.model
DOMAIN = "legal.semantic.root."
MODEL = "smollm2-135m-instruct"
ZONEFILE = """$ORIGIN {domain}
$TTL 300
@          IN SOA ns1 hostmaster 2026112301 3600 600 86400 60
@          IN NS  ns1
ns1        IN A   127.0.0.1
_llm._tcp  IN SRV 0 0 {port} llm1
_llm._tcp  IN TXT "txtvers=1" "model={model}" "api=openai-v1" "ctx=2048" "codec=zstd-dict" "path=/v1"
llm1       IN A   127.0.0.1
$INCLUDE codec/{domain}codec {domain}
"""


async def ask_both_ways(tmp_path: Path) -> dict[str, object]:
    """Serve, start the engine, ask with and without compression; what the test checks."""
    engine_port = free_port()
    zones = tmp_path / "zones"
    (zones / "codec").mkdir(parents=True)
    shutil.copy(REPO / "zonefiles/codec" / f"{DOMAIN}codec", zones / "codec")
    (zones / f"{DOMAIN}zone").write_text(ZONEFILE.format(domain=DOMAIN, port=engine_port, model=MODEL))
    store = ZoneStore()
    config = ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False)
    runner = build_server(ServerOptions(config=config), store=store)
    await runner.start()
    dns_server = ("127.0.0.1", runner.addresses[0][1])
    watcher = LibraryWatcher(DnsLibrarySource(DOMAIN, dns_server))
    engine = EngineServer(EngineConfig(backend="llama", model=default_gguf_path(), domain=DOMAIN, port=engine_port,
                                       threads=2), attachments=(watcher,))
    rng = random.Random(11)
    terms = defined_terms(rng)
    context = b"".join(legal_document(rng, terms, sentences=8) for _ in range(2)).decode()
    question = "Who must notify the other party?"
    servers = [f"{dns_server[0]}:{dns_server[1]}"]
    try:
        await engine.start()
        async with AsyncClient(servers, zone=DOMAIN, http_timeout=300.0) as client:
            library = await client.library(DOMAIN)
            compressed = await client.ask(question, context=context, max_tokens=8)
        async with AsyncClient(servers, zone=DOMAIN, compress_context=False, http_timeout=300.0) as client:
            plain = await client.ask(question, context=context, max_tokens=8)
    finally:
        await engine.stop()
        await runner.stop()
    return {
        "library_id": library.dict_id if library is not None else None,
        "engine_dict_ids": engine.state.decoder.dict_ids,
        "port": compressed.engine.port, "engine_port": engine_port, "failures": compressed.failures,
        "stats": compressed.context, "text": compressed.text, "plain_mode": plain.context.mode,
        "compressed_tokens": compressed.raw["usage"]["prompt_tokens"],
        "plain_tokens": plain.raw["usage"]["prompt_tokens"],
    }


def ask_in_child(tmp: str) -> dict[str, object]:
    return asyncio.run(ask_both_ways(Path(tmp)))


def test_ask_with_compressed_context_through_a_llama_engine(tmp_path: Path) -> None:
    got = run_in_child(ask_in_child, str(tmp_path))
    library_id = got["library_id"]
    assert library_id is not None and got["engine_dict_ids"] == (library_id,)  # loaded by DNS
    assert got["port"] == got["engine_port"]
    assert got["failures"] == ()  # the engine knew the dictionary: no plain-text retry
    stats = got["stats"]
    assert stats.mode == "zstd-dict" and stats.dict_id == library_id and stats.ratio > 1.5
    assert str(got["text"]).strip()  # a generated answer
    # the engine put the decompressed context in the prompt: exactly as many tokens as the plain text
    assert got["plain_mode"] == "plain"
    assert got["compressed_tokens"] == got["plain_tokens"] > 200  # type: ignore[operator]
