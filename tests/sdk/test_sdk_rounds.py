"""Issue 17 item 2: a resolution asks in rounds (SRV + explain together; the engines' records
together, then from the record cache), each round over one UDP socket with resends and a TCP
retry after TC, and every query leaves an `Exchange` record."""
from __future__ import annotations

import random
import socket
import string
import threading
from typing import Iterator

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import pytest
from helpers.server import REPO, ServerHandle, running_server

from sdk import AsyncClient, Client
from sdk.cache import RecordCache, cache_key
from sdk.message import Query, read_reply
from sdk.route import DEFAULT_ZONE, question_form
from sdk.steps import resolve_steps
from sdk.wire import Exchange, RetryTimer, udp_round

LONG = " ".join(["Can my landlord keep the whole security deposit after the lease ends?"] * 6)


@pytest.fixture(scope="module")
def shipped() -> Iterator[ServerHandle]:
    with running_server(REPO / "zonefiles") as server:
        yield server


def test_first_round_is_srv_and_explain_in_one_form() -> None:
    for text in ("is a verbal contract binding?", LONG):
        steps = resolve_steps(text, rng=random.Random(1))
        first = next(steps)
        assert [q.rdtype for q in first] == [dns.rdatatype.SRV, dns.rdatatype.TXT]
        form = question_form(text)
        assert [q.name for q in first] == [form.name("q"), form.name("explain")]
        assert all(bool(q.options[-1:] and form.option) == (form.option is not None) for q in first)


def test_record_cache_keeps_engine_records_not_questions() -> None:
    now = [0.0]
    cache = RecordCache(clock=lambda: now[0])
    service = Query("_llm._tcp.legal.semantic.root.", dns.rdatatype.TXT)
    response = dns.message.make_response(service.to_message())
    response.answer.append(dns.rrset.from_text(service.name, 60, "IN", "TXT", '"model=m"'))
    reply = read_reply(response.to_wire())
    cache.put(service, reply)
    assert cache.get(Query("_LLM._tcp.legal.semantic.root.", dns.rdatatype.TXT)) is reply
    now[0] = 61.0
    assert cache.get(service) is None
    for text in ("is a verbal contract binding?", LONG):
        for query in next(resolve_steps(text, rng=random.Random(1))):
            assert cache_key(query) is None


def test_resolve_breakdown_one_udp_round_trip_per_round(shipped: ServerHandle) -> None:
    seen: list[Exchange] = []
    client = Client([f"{shipped.host}:{shipped.port}"], timeout=5.0, rng=random.Random(1), observer=seen.append)
    route = client.resolve(LONG)  # EDNS form: the text travels in option 65001
    assert route.engines and route.stage
    question = [e for e in seen if e.text_option]
    assert [e.rdtype for e in question] == ["SRV", "TXT"]
    for exchange in question:
        assert exchange.transports == ("udp",) and exchange.datagrams == 1 and exchange.reply_octets <= 1232
    first = len(seen)
    seen.clear()
    client.resolve(LONG + " Thanks.")  # same domain: its engine records come from the cache
    assert len(seen) == 2 <= first


async def test_a_question_too_large_for_udp_goes_over_tcp_sync_and_async(shipped: ServerHandle) -> None:
    rng = random.Random(7)  # letters at random: the text option's compression leaves ~3,500 octets
    text = LONG + " " + " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
                                 for _ in range(900))
    for make in (Client, AsyncClient):
        seen: list[Exchange] = []
        client = make([f"{shipped.host}:{shipped.port}"], timeout=5.0, rng=random.Random(1), observer=seen.append)
        if isinstance(client, AsyncClient):
            async with client:
                route = await client.resolve(text)
        else:
            route = client.resolve(text)
        assert route.engines and route.stage
        assert [e.transports for e in seen if e.text_option] == [("tcp",), ("tcp",)]
        assert all(e.query_octets > 1232 for e in seen if e.text_option)


def _fake_server(replies: list[str]) -> tuple[socket.socket, threading.Thread]:
    """A UDP server answering each datagram per `replies` in turn: "drop", "tc" or "ok"."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve() -> None:
        for what in replies:
            data, peer = sock.recvfrom(65535)
            if what == "drop":
                continue
            reply = dns.message.make_response(dns.message.from_wire(data))
            if what == "tc":
                reply.flags |= dns.flags.TC
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, thread


def test_udp_round_resends_a_lost_query() -> None:
    sock, thread = _fake_server(["drop", "ok"])
    seen: list[Exchange] = []
    try:
        query = Query(f"_llm._tcp.{DEFAULT_ZONE}", dns.rdatatype.SRV)
        (reply,) = udp_round([query], sock.getsockname(), timeout=3.0, retry=0.05, observer=seen.append)
        assert query.is_response(reply)
        assert seen[0].datagrams == 2 and seen[0].retries == 1 and seen[0].transports == ("udp",)
    finally:
        thread.join(timeout=5)
        sock.close()


def test_udp_round_truncated_goes_to_tcp() -> None:
    sock, thread = _fake_server(["tc"])
    seen: list[Exchange] = []
    try:
        query = Query(f"_llm._tcp.{DEFAULT_ZONE}", dns.rdatatype.SRV)
        with pytest.raises(OSError):  # nothing listens on TCP there: the TC retry is attempted
            udp_round([query], sock.getsockname(), timeout=1.0, observer=seen.append)
    finally:
        thread.join(timeout=5)
        sock.close()


def test_retry_timer_follows_the_replies_within_bounds() -> None:
    def timed(seconds: float, datagrams: int = 1) -> Exchange:
        return Exchange("x.", "SRV", False, ("udp",), datagrams, 40, 100, seconds, "127.0.0.1:53")

    timer = RetryTimer(ceiling=0.5, floor=0.1)
    assert timer.timeout() == 0.5  # nothing timed yet
    for _ in range(20):
        timer.observe(timed(0.004))
    assert timer.timeout() == 0.1  # fast replies: the floor
    timer.observe(timed(3.0, datagrams=2))  # Karn: a resent query's time is ambiguous
    assert timer.timeout() == 0.1
    for _ in range(20):
        timer.observe(timed(0.2))
    assert 0.2 <= timer.timeout() <= 0.5
