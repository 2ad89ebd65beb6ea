"""A small semantic zone for the semantic handler's tests (`sem.test.` routing to `law` and `med`,
each with its engine, keywords that decide only above `th.keyword=0.6` and one exemplar each),
`lawmed_runner`, a runner serving it, and `handler_of`, the semantic handler of a runner."""
from __future__ import annotations

from pathlib import Path

from nameserver.build import SemanticOptions, ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.runner import ServerRunner
from nameserver.semantic.handler import SemanticHandler
from routing.index import Encoder
from zones.catalog import ZoneStore
from zones.loader import load_directory

APEX = "sem.test."
APEX_ZONE = """$ORIGIN sem.test.
$TTL 300
@ IN SOA ns1 hostmaster 2026010100 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
_llm._tcp       IN SRV 10 10 8100 llm1
llm1            IN A   127.0.0.1
_route          IN TXT "v=semroute1" "route-ttl=300" "th.keyword=0.6"
law._route      IN TXT "v=semroute1" "desc=law" "kw=court,judge" "ex=can the court hear my case"
med._route      IN TXT "v=semroute1" "desc=medicine" "kw=dose" "ex=how much of this drug"
_llm._tcp.law   IN SRV 10 10 8110 llm1.law
llm1.law        IN A   127.0.0.1
_llm._tcp.med   IN SRV 10 10 8120 llm1.med
llm1.med        IN A   127.0.0.1
"""


def lawmed_runner(tmp_path: Path, encoder: Encoder, semantic: SemanticOptions | None = None,
                  wire_cache: bool = True) -> ServerRunner:
    """A runner (not started) of APEX_ZONE, written to `tmp_path/zones`, with `encoder` and its
    indexes compiled."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "sem.test.zone").write_text(APEX_ZONE)
    catalog, problems = load_directory(zones)
    assert not [p for p in problems if p.is_error], problems
    store = ZoneStore()
    store.swap(catalog)
    config = ServerConfig(zones_dir=zones, listen=(("127.0.0.1", 0),), uvloop=False, wire_cache=wire_cache)
    runner = build_server(ServerOptions(config=config, semantic=semantic or SemanticOptions()), store=store,
                          encoder=encoder)
    runner.chain.warm()
    return runner


def handler_of(runner: ServerRunner) -> SemanticHandler:
    """The semantic handler of `runner`'s chain."""
    handler = runner.chain.get("semantic")
    assert isinstance(handler, SemanticHandler)
    return handler
