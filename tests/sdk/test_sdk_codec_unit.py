"""The SDK's library plan and cache without sockets: a dnspython zone answers the plan's queries."""
from __future__ import annotations

import base64
import logging

import dns.message
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest
from sdk_codec_support import APEX, CONTEXT, FAULTS, lab_zone, small_library

from codec.compress import decompress
from engines.context import ContextDecoder
from engines.schema import parse_context
from sdk.errors import ResolveTimeout
from sdk.library import (
    LibraryCache,
    LibraryCompressor,
    LibraryFault,
    context_field,
    context_stats,
    is_unknown_dictionary,
    library_steps,
    load_library,
)
from sdk.route import Route


class ZoneExchange:
    """Answers TXT queries from a zone, like an authoritative server; counts the queries."""

    def __init__(self, text: str) -> None:
        self.zone = dns.zone.from_text(text, relativize=False)
        self.asked: list[str] = []

    def __call__(self, query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        self.asked.append(question.name.to_text())
        reply = dns.message.make_response(query)
        node = self.zone.get_node(question.name)
        if node is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply
        rdataset = node.get_rdataset(dns.rdataclass.IN, question.rdtype)
        if rdataset is not None:
            rrset = reply.find_rrset(reply.answer, question.name, dns.rdataclass.IN, question.rdtype, create=True)
            rrset.update(rdataset)
        return reply


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def zone_text() -> str:
    return lab_zone({"good": 1, "stale": 2})


def route(domain: str) -> Route:
    return Route(text="q", qname="q", path=(APEX, domain), domain=domain, stage=None, confidence=None, ttl=60,
                 engines=())


def test_fetch_verifies_and_caches_with_the_header_ttl(zone_text: str) -> None:
    exchange, clock = ZoneExchange(zone_text), Clock()
    cache = LibraryCache(apex=APEX, clock=clock)
    library = load_library(cache, f"good.{APEX}", exchange)
    assert library == small_library()
    assert exchange.asked == [f"_codec.good.{APEX}", *(f"{i}._codec.good.{APEX}" for i in range(3))]
    assert cache.by_id == {library.dict_id: library}
    assert load_library(cache, f"good.{APEX}", exchange) is library  # cached: no query
    assert len(exchange.asked) == 4
    clock.now += 3600  # the header's TTL: the header is asked again, the chunks are not (known id + sha)
    assert load_library(cache, f"good.{APEX}", exchange) is library
    assert exchange.asked[4:] == [f"_codec.good.{APEX}"]


def test_a_domain_without_library_uses_its_parents(zone_text: str) -> None:
    exchange = ZoneExchange(zone_text)
    cache = LibraryCache(apex=APEX)
    assert load_library(cache, f"child.good.{APEX}", exchange) == small_library()
    assert exchange.asked[:2] == [f"_codec.child.good.{APEX}", f"_codec.good.{APEX}"]
    assert cache.entry(f"child.good.{APEX}").owner == f"_codec.good.{APEX}"


def test_no_library_up_to_the_apex_means_none(zone_text: str) -> None:
    exchange = ZoneExchange(zone_text + f"other.{APEX} IN TXT \"x\"\n")
    cache = LibraryCache(apex=APEX)
    assert load_library(cache, f"other.{APEX}", exchange) is None
    assert exchange.asked == [f"_codec.other.{APEX}", f"_codec.{APEX}"]  # stops at the apex
    entry = cache.entry(f"other.{APEX}")
    assert entry is not None and entry.fault is None


@pytest.mark.parametrize("label", sorted(FAULTS))
def test_faults_fall_back_with_a_warning(zone_text: str, label: str, caplog: pytest.LogCaptureFixture) -> None:
    fault, word = FAULTS[label]
    cache = LibraryCache(apex=APEX)
    with caplog.at_level(logging.WARNING, logger="sdk.library"):
        assert load_library(cache, f"{label}.{APEX}", ZoneExchange(zone_text)) is None
    (record,) = caplog.records
    assert f"{label}.{APEX}" in record.getMessage() and word in record.getMessage()
    assert cache.entry(f"{label}.{APEX}").fault
    field = LibraryCompressor(cache)(CONTEXT, route(f"{label}.{APEX}"))["semdns_context"]
    assert field["dict_id"] == 0
    assert decompress(base64.b64decode(field["data"]), {}).decode() == CONTEXT


def test_dns_failure_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    def down(query: dns.message.Message) -> dns.message.Message:
        raise ResolveTimeout("no answer from 127.0.0.1:9 (test)")

    with caplog.at_level(logging.WARNING, logger="sdk.library"):
        assert load_library(LibraryCache(apex=APEX), f"good.{APEX}", down) is None
    assert "no answer" in caplog.text


def test_servfail_is_a_fault() -> None:
    steps = library_steps(f"good.{APEX}", APEX)
    query = next(steps)
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.SERVFAIL)
    with pytest.raises(LibraryFault, match="SERVFAIL"):
        steps.send(reply)


def test_round_trip_is_byte_exact_through_the_engine_decoder() -> None:
    library = small_library()
    field = context_field(CONTEXT, library)
    assert field["dict_id"] == library.dict_id and field["encoding"] == "zstd+base64"
    frame = base64.b64decode(field["data"])
    assert decompress(frame, {library.dict_id: library}) == CONTEXT.encode("utf-8")
    decoder = ContextDecoder({library.dict_id: library})  # the engines' side of the contract
    assert decoder.decode(parse_context(field)) == CONTEXT
    stats = context_stats(CONTEXT, {"semdns_context": field})
    assert stats.dict_id == library.dict_id and stats.mode == "zstd-dict"
    assert stats.original == len(CONTEXT.encode()) and stats.sent == len(frame) and stats.ratio > 2
    plain = context_field(CONTEXT, None)
    assert len(base64.b64decode(plain["data"])) > len(frame)  # the library earns its place


def test_unknown_dictionary_answers() -> None:
    body = b'{"error": {"message": "x", "type": "invalid_request_error", "param": "semdns_context.dict_id", ' \
           b'"code": "unknown_dictionary"}}'
    assert is_unknown_dictionary(400, body)
    assert not is_unknown_dictionary(500, body)
    assert not is_unknown_dictionary(400, b'{"error": {"code": "corrupt_context"}}')
    assert not is_unknown_dictionary(400, b"not json")
    assert not is_unknown_dictionary(None, b"")
