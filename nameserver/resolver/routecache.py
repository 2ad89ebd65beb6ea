"""Semantic-cache routing for the recursive resolver.

Before resolving a semantic question (`<text>.q.<zone>` asking SRV or TXT), look for a cached
question close enough to it (`nameserver.resolver.semcache`); on a hit, answer with a synthesised CNAME from
the question straight to the cached route (`_llm._tcp.<domain>.`) and resolve only the route.
After a full resolution, remember where its CNAME chain ended.

The text comes from the EDNS text option (65001) or the QNAME; the embedding from the EDNS
embedding option (65002), sent by the client or learned from a server during the resolution, or
from an optional local `embed(text)` function. Without an embedding, nothing is cached.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import dns.edns
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import numpy as np

from codec.edns_text import decode_embedding_option, decode_text_option, encode_embedding_option, model_tag
from codec.errors import CodecError
from codec.qname import parse_semantic_name
from nameserver.resolver.iterator import OPTION_EMBEDDING, OPTION_TEXT, Resolution
from nameserver.resolver.semcache import SemanticCache

ROUTE_TYPES = frozenset({dns.rdatatype.SRV, dns.rdatatype.TXT})
ENGINES_LABELS = (b"_llm", b"_tcp")

Embed = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class Question:
    """A semantic question as the route cache sees it."""

    zone: dns.name.Name
    text: str
    vector: np.ndarray | None


@dataclass(frozen=True)
class Shortcut:
    """A semantic-cache hit: the synthesised CNAME and the name to resolve instead."""

    cname: dns.rrset.RRset
    route: dns.name.Name
    similarity: float


def _payload(option: dns.edns.Option) -> bytes:
    return option.to_wire() or b""


class RouteCache:
    """`embed` (optional) embeds texts that arrive without option 65002; `embed_model` names that
    encoder, so the embedding can be forwarded to the servers below (`option_for`)."""

    def __init__(self, cache: SemanticCache, embed: Embed | None = None, embed_model: str | None = None) -> None:
        self.cache = cache
        self.embed = embed
        self._tag = model_tag(embed_model) if embed_model else None

    def option_for(self, question: Question, options: Iterable[dns.edns.Option]) -> dns.edns.Option | None:
        """The embedding option to forward when we embedded the text here and the client sent none."""
        if question.vector is None or self._tag is None or any(o.otype == OPTION_EMBEDDING for o in options):
            return None
        payload = encode_embedding_option(question.vector, self._tag)
        return dns.edns.GenericOption(dns.edns.OptionType.make(OPTION_EMBEDDING), payload)

    def question(
        self, qname: dns.name.Name, rdtype: int, options: Iterable[dns.edns.Option]
    ) -> Question | None:
        """The semantic question behind (qname, rdtype), or None when this is not one."""
        if rdtype not in ROUTE_TYPES:
            return None
        try:
            parsed = parse_semantic_name(qname)
        except CodecError:
            return None
        if parsed.form != "q":
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
        return Question(dns.name.from_text(parsed.zone), text, self._vector(text, by_code))

    def _vector(self, text: str, by_code: dict[int, dns.edns.Option]) -> np.ndarray | None:
        if OPTION_EMBEDDING in by_code:
            try:
                return decode_embedding_option(_payload(by_code[OPTION_EMBEDDING])).vector
            except CodecError:
                return None
        if self.embed is not None:
            return np.asarray(self.embed(text), dtype=np.float32).ravel()
        return None

    def shortcut(self, qname: dns.name.Name, question: Question) -> Shortcut | None:
        if question.vector is None:
            return None
        hit = self.cache.lookup(question.zone, question.text, question.vector)
        if hit is None:
            return None
        cname = dns.rrset.from_text(qname, max(hit.ttl, 1), dns.rdataclass.IN, dns.rdatatype.CNAME, hit.route.to_text())
        return Shortcut(cname, hit.route, hit.similarity)

    def learn(self, question: Question, result: Resolution) -> None:
        """Remember where a full resolution's CNAME chain ended (only engine routes)."""
        vector = question.vector
        if vector is None:
            learned: dict[int, dns.edns.Option] = {o.otype: o for o in result.options}
            vector = self._vector(question.text, learned) if OPTION_EMBEDDING in learned else None
        cnames = [rr for rr in result.answer if rr.rdtype == dns.rdatatype.CNAME]
        if vector is None or not cnames:
            return
        route = cnames[-1][0].target
        if tuple(label.lower() for label in route.labels[:2]) != ENGINES_LABELS:
            return
        self.cache.put(question.zone, question.text, vector, route, min(rr.ttl for rr in cnames))
