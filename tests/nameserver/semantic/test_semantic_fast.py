"""The fast heads on a real server (loopback, free port) over the shipped zones: what a node's fast
head is sure of is answered without a MiniLM run (`explain` says `stage=fast`, the batcher never
runs); what it is not sure of goes to the MiniLM head; a server without the token encoder (`semdns
serve --no-fast-heads`) routes every question by the MiniLM heads."""
from __future__ import annotations

import contextlib
from typing import AsyncIterator

import dns.asyncquery
import dns.message
import dns.rdatatype
from helpers.shipped import ZONEFILES

from codec import text_to_qname
from nameserver.build import ServerOptions, build_server
from nameserver.config import ServerConfig
from nameserver.semantic.handler import SemanticHandler
from routing.embedder import Embedder
from routing.tokens import TokenEncoder

APEX = "semantic.root."
SURE = "write a limerick about a lazy cat"  # both levels' fast heads are sure (creative, then poetry)
UNSURE = "why do my tomato leaves turn yellow"  # the apex's fast head is not


@contextlib.asynccontextmanager
async def serving(encoder: Embedder, tokens: TokenEncoder | None
                  ) -> AsyncIterator[tuple[tuple[str, int], SemanticHandler]]:
    config = ServerConfig(zones_dir=ZONEFILES, listen=(("127.0.0.1", 0),), uvloop=False, wire_cache=False)
    runner = build_server(ServerOptions(config=config), encoder=encoder, tokens=tokens)
    await runner.start()
    try:
        [semantic] = [h for h in runner.chain.handlers if isinstance(h, SemanticHandler)]
        yield runner.addresses[0], semantic
    finally:
        await runner.stop()


async def explain(address: tuple[str, int], text: str) -> list[dict[str, str]]:
    # EDNS, as dig and the SDK ask: a two-hop explain may not fit 512 octets (TC)
    query = dns.message.make_query(text_to_qname(text, APEX, "explain"), dns.rdatatype.TXT, use_edns=0, payload=1232)
    reply = await dns.asyncquery.udp(query, address[0], port=address[1], timeout=10)
    [rrset] = [r for r in reply.answer if r.rdtype == dns.rdatatype.TXT]
    hops = [dict(s.decode().split("=", 1) for s in rdata.strings) for rdata in rrset]
    return sorted(hops, key=lambda hop: int(hop["hop"]))


async def test_a_sure_question_never_waits_for_the_model(encoder: Embedder, tokens: TokenEncoder) -> None:
    async with serving(encoder, tokens) as (address, semantic):
        hops = await explain(address, SURE)
        assert [(h["stage"], h["choice"]) for h in hops] == [
            ("fast", "creative.semantic.root."), ("fast", "poetry.creative.semantic.root.")]
        assert semantic._batcher is None or semantic._batcher.runs == 0  # MiniLM never ran
        hops = await explain(address, UNSURE)
        assert hops[0]["stage"] == "head" and semantic._batcher is not None and semantic._batcher.runs == 1


async def test_without_the_token_encoder_the_heads_decide(encoder: Embedder) -> None:
    async with serving(encoder, None) as (address, semantic):
        hops = await explain(address, SURE)
        assert [h["stage"] for h in hops] == ["head", "head"] and hops[-1]["choice"] == "poetry.creative.semantic.root."
        assert semantic._batcher is not None and semantic._batcher.runs == 1


def test_a_token_table_that_cannot_load_leaves_the_heads_serving(monkeypatch, caplog) -> None:
    """The fast path is an optimisation: a server whose token table cannot be built or read
    (e.g. no export tools and no fp32 graph) serves with the MiniLM heads and says why."""
    from helpers.bagofwords import BagOfWords

    import routing.embedder
    import routing.tokens
    from nameserver.build import SemanticOptions
    from routing.embedder import EmbedderError

    def broken(*args: object, **kwargs: object) -> TokenEncoder:
        raise EmbedderError("token table: no data left in file")

    monkeypatch.setattr(routing.embedder, "load_embedder", lambda variant, **threads_and_tokens: BagOfWords())
    monkeypatch.setattr(routing.tokens, "load_token_encoder", broken)
    config = ServerConfig(zones_dir=ZONEFILES, listen=(("127.0.0.1", 0),), uvloop=False)
    with caplog.at_level("WARNING"):
        runner = build_server(ServerOptions(config=config, semantic=SemanticOptions()))
    [semantic] = [h for h in runner.chain.handlers if isinstance(h, SemanticHandler)]
    assert semantic._classifier.tokens is None
    assert "fast heads off: token table: no data left in file" in caplog.text
