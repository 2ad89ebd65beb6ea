"""Semantic-cache routing for the recursive resolver.

Before resolving a semantic question (`<text>.q.<zone>` asking SRV or TXT), look for a cached
question close enough to it (`nameserver.resolver.semcache`); on a hit, answer with a synthesised CNAME from
the question straight to the cached route (`_llm._tcp.<domain>.`) and resolve only the route.
After a full resolution, remember where its CNAME chain ended.

The text comes from the EDNS text option (65001) or the QNAME; the embedding only from the local
`embed(text)` coroutine function (normalised, then `nameserver.vectors.usable`): a client's embedding
(65002) or one a server returned never reaches the cache, so a foreign vector cannot send other
clients' questions to its route. Without a usable local embedding, nothing is cached.

The question's `explain` TXT (`<text>.explain.<zone>`) is embedded too, never cached or
shortcut: it goes up with the same embedding option as the question's SRV, so the servers below
see one question and classify it once (`nameserver/semantic/walks.py`). The vectors of the last
`VECTOR_MEMO` texts are kept, by digest (the SRV and the explain of a question arrive together),
so the resolver embeds a question once (the second of two that arrive together awaits the first's
embedding); what that tells of other clients' questions, the RRset cache tells already
(ARCHITECTURE §7.5, cache snooping). `embed` is awaited: the resolver's encoder runs in the
servers' batcher (`nameserver.semantic.batcher`), off the event loop, with its queue and deadline;
a question it sheds (`routing.errors.Shed`) goes on without a vector (the servers below embed it
under their own admission), and its text is not memoised.

Shortcuts stay within one client: entries are scoped by the client's address (`Question.scope`),
so a paraphrase's one-hop answer never tells a client what another asked. The synthesised CNAME
goes from the asker's own QNAME to `_llm._tcp.<domain>.`: it carries no earlier question's labels.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

import dns.edns
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import numpy as np

from codec.edns_text import decode_text_option, encode_embedding_option, model_tag
from codec.errors import CodecError
from codec.qname import parse_semantic_name
from nameserver.resolver.iterator import OPTION_EMBEDDING, OPTION_TEXT, Resolution
from nameserver.resolver.semcache import SemanticCache
from nameserver.vectors import normalized
from routing.errors import Shed

ROUTE_TYPES = frozenset({dns.rdatatype.SRV, dns.rdatatype.TXT})
EXPLAIN_TYPES = frozenset({dns.rdatatype.TXT})
VECTOR_MEMO = 256  # texts whose vectors are kept (by digest), least recently used out first
ENGINES_LABELS = (b"_llm", b"_tcp")

Embed = Callable[[str], Awaitable[np.ndarray]]


@dataclass(frozen=True)
class Question:
    """A semantic question as the route cache sees it."""

    zone: dns.name.Name
    text: str
    vector: np.ndarray | None  # from the local encoder only
    scope: str = ""  # whose semantic-cache entries it may use and add to (the client's address)
    form: str = "q"  # "explain": the route's explanation (embedded and forwarded, never cached)

    @property
    def cacheable(self) -> bool:
        """A route question (the semantic cache may answer and learn it), not its explanation."""
        return self.form == "q"


@dataclass(frozen=True)
class Shortcut:
    """A semantic-cache hit: the synthesised CNAME and the name to resolve instead."""

    cname: dns.rrset.RRset
    route: dns.name.Name
    similarity: float


def _payload(option: dns.edns.Option) -> bytes:
    return option.to_wire() or b""


class RouteCache:
    """`embed` (optional) embeds the questions' texts; `embed_model` names that encoder, so the
    embedding can be forwarded to the servers below (`option_for`)."""

    def __init__(self, cache: SemanticCache, embed: Embed | None = None, embed_model: str | None = None) -> None:
        self.cache = cache
        self.embed = embed
        self._tag = model_tag(embed_model) if embed_model else None
        self._vectors: OrderedDict[bytes, np.ndarray | None] = OrderedDict()  # by digest of the text
        self._embedding: dict[bytes, asyncio.Future[np.ndarray | None]] = {}  # under way, by digest

    def option_for(self, question: Question) -> dns.edns.Option | None:
        """The embedding option to forward: the vector we computed here (None without one)."""
        if question.vector is None or self._tag is None:
            return None
        payload = encode_embedding_option(question.vector, self._tag)
        return dns.edns.GenericOption(dns.edns.OptionType.make(OPTION_EMBEDDING), payload)

    async def question(
        self, qname: dns.name.Name, rdtype: int, options: Iterable[dns.edns.Option], scope: str = ""
    ) -> Question | None:
        """The semantic question behind (qname, rdtype) asked by `scope`, or None when this is not one."""
        if rdtype not in ROUTE_TYPES:
            return None
        try:
            parsed = parse_semantic_name(qname)
        except CodecError:
            return None
        if parsed.form != "q" and not (parsed.form == "explain" and rdtype in EXPLAIN_TYPES):
            return None
        by_code: dict[int, dns.edns.Option] = {o.otype: o for o in options}
        text = parsed.text
        try:
            if OPTION_TEXT in by_code:
                text = decode_text_option(_payload(by_code[OPTION_TEXT]))
        except CodecError:
            return None
        if not text:
            return None
        return Question(dns.name.from_text(parsed.zone), text, await self._vector(text), scope, parsed.form)

    async def _vector(self, text: str) -> np.ndarray | None:
        if self.embed is None:
            return None
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).digest()
        if key in self._vectors:
            self._vectors.move_to_end(key)
            return self._vectors[key]
        under_way = self._embedding.get(key)
        if under_way is None:
            under_way = self._embedding[key] = asyncio.ensure_future(self._embed(key, text))
            under_way.add_done_callback(lambda _: self._embedding.pop(key, None))
        return await asyncio.shield(under_way)  # one asker gone leaves the others their vector

    async def _embed(self, key: bytes, text: str) -> np.ndarray | None:
        assert self.embed is not None
        try:
            vector = normalized(await self.embed(text))
        except Shed:
            return None
        self._vectors[key] = vector
        if len(self._vectors) > VECTOR_MEMO:
            self._vectors.popitem(last=False)
        return vector

    def shortcut(self, qname: dns.name.Name, question: Question) -> Shortcut | None:
        if question.vector is None or not question.cacheable:
            return None
        hit = self.cache.lookup(question.zone, question.text, question.vector, scope=question.scope)
        if hit is None:
            return None
        cname = dns.rrset.from_text(qname, max(hit.ttl, 1), dns.rdataclass.IN, dns.rdatatype.CNAME, hit.route.to_text())
        return Shortcut(cname, hit.route, hit.similarity)

    def learn(self, question: Question, result: Resolution) -> None:
        """Remember, for the asking client, where a full resolution's CNAME chain ended (only
        engine routes, only with the vector computed here)."""
        cnames = [rr for rr in result.answer if rr.rdtype == dns.rdatatype.CNAME]
        if question.vector is None or not cnames or not question.cacheable:
            return
        route = cnames[-1][0].target
        if tuple(label.lower() for label in route.labels[:2]) != ENGINES_LABELS:
            return
        ttl = min(rr.ttl for rr in cnames)
        self.cache.put(question.zone, question.text, question.vector, route, ttl, scope=question.scope)
