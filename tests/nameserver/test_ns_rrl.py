"""Response rate limiting (`nameserver/rrl.py`): the bucket arithmetic on a fake clock, the response
classes and the slip read from rendered replies, the table's bound; then a real server: a burst of
identical UDP queries from one client gets at most rate + burst answers, every second refused
reply slips out truncated and the rest are dropped, while TCP, an exempt network and another
prefix are answered in full."""
from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path
from typing import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest
from helpers.dnswire import tcp_connect, tcp_read, tcp_send
from helpers.server import ServerHandle, running_server

from nameserver.config import DEFAULT_RRL_RATE, DEFAULT_RRL_SLIP, DEFAULT_RRL_WINDOW, ServerConfig
from nameserver.errors import ConfigError
from nameserver.rrl import RateLimiter, Verdict, response_class
from nameserver.wire import truncated_reply

BURST = 300
ZONE = """\
$ORIGIN rrl.test.
$TTL 600
@     SOA   ns1 hostmaster ( 2026120301 3600 900 1209600 60 )
@     NS    ns1
ns1   A     192.0.2.53
big   TXT   "{text}" "{text}" "{text}" "{text}"
www   CNAME big
""".format(text="x" * 200)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- sans-IO ----------------------------------------------------------------------------------
def test_bucket_spends_its_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(8, window=2.5, slip=3, clock=clock)
    verdicts = [limiter.decide(b"p", b"k") for _ in range(26)]
    assert verdicts[:20] == [Verdict.SEND] * 20  # a new bucket holds rate x window
    assert verdicts[20:] == [Verdict.DROP, Verdict.DROP, Verdict.SLIP] * 2  # every 3rd refused slips
    clock.now += 0.5625  # 4.5 tokens (times exact in binary)
    assert [limiter.decide(b"p", b"k") for _ in range(5)] == [Verdict.SEND] * 4 + [Verdict.DROP]
    clock.now += 0.0625  # the half token left and half a new one: one more
    assert limiter.decide(b"p", b"k") is Verdict.SEND
    clock.now += 3600.0  # a quiet hour saves no more than the burst
    assert [limiter.decide(b"p", b"k") for _ in range(21)].count(Verdict.SEND) == 20
    assert limiter.decide(b"p", b"other") is Verdict.SEND  # another class has its own bucket
    assert limiter.decide(b"q", b"k") is Verdict.SEND  # so has another prefix


def test_slip_zero_drops_every_refused_reply() -> None:
    limiter = RateLimiter(1, slip=0, clock=FakeClock())
    assert [limiter.decide(b"p", b"k") for _ in range(5)] == [Verdict.SEND] + [Verdict.DROP] * 4


def test_prefixes_are_ipv4_24_and_ipv6_56_and_exemptions_match() -> None:
    limiter = RateLimiter(5, exempt=[ipaddress.ip_network("198.51.100.0/24")])
    assert limiter.prefix_of("192.0.2.1") == limiter.prefix_of("192.0.2.254") != limiter.prefix_of("192.0.3.1")
    assert limiter.prefix_of("::ffff:192.0.2.9") == limiter.prefix_of("192.0.2.1")
    assert limiter.prefix_of("2001:db8:0:ff::1") == limiter.prefix_of("2001:db8::2")
    assert limiter.prefix_of("2001:db8:0:100::1") != limiter.prefix_of("2001:db8::2")
    assert limiter.prefix_of("198.51.100.7") is None
    assert limiter.limit(b"any reply", "198.51.100.7") == b"any reply"


def test_table_stays_bounded() -> None:
    limiter = RateLimiter(5, max_buckets=100, clock=FakeClock())
    for index in range(10_000):
        limiter.decide(index.to_bytes(4, "big"), b"k")
        limiter.decide(index.to_bytes(4, "big"), b"j")
    assert len(limiter) <= 100 and limiter.prefixes <= 50
    limiter.decide(b"recent", b"k")
    for index in range(1_000):  # one prefix with many classes keeps only its newest ones
        limiter.decide(b"busy", index.to_bytes(4, "big"))
    assert len(limiter) == 100 and limiter.prefixes == 1


def test_config_rejects_a_limiter_that_cannot_answer() -> None:
    with pytest.raises(ConfigError):
        ServerConfig(rrl_rate=2, rrl_window=0.1)
    with pytest.raises(ConfigError):
        ServerConfig(rrl_slip=-1)
    assert RateLimiter.from_config(ServerConfig(rrl_rate=0)) is None


def _reply(qname: str, rdtype: str, rcode: int = dns.rcode.NOERROR, answer: tuple[str, ...] = (),
           authority: str | None = None) -> bytes:
    reply = dns.message.make_response(dns.message.make_query(qname, rdtype))
    reply.set_rcode(rcode)
    for record in answer:
        owner, ttl, rdtype, data = record.split(maxsplit=3)
        reply.answer.append(dns.rrset.from_text(owner, int(ttl), "IN", rdtype, data))
    if authority is not None:
        reply.authority.append(dns.rrset.from_text(authority, 60, "IN", "SOA", "ns1. host. 1 2 3 4 5"))
    return reply.to_wire()


def test_response_classes() -> None:
    plain = response_class(_reply("Big.rrl.test.", "TXT", answer=('big.rrl.test. 60 TXT "x"',)))
    assert plain == response_class(_reply("big.rrl.test.", "TXT", answer=('big.rrl.test. 60 TXT "x"',)))
    assert plain != response_class(_reply("big.rrl.test.", "ANY", answer=('big.rrl.test. 60 TXT "x"',)))
    chain = ("a.rrl.test. 60 CNAME big.rrl.test.", 'big.rrl.test. 60 TXT "x"')
    assert response_class(_reply("a.rrl.test.", "TXT", answer=chain)) == plain  # the chain's end
    nx = [response_class(_reply(f"n{i}.rrl.test.", "A", dns.rcode.NXDOMAIN, authority="rrl.test.")) for i in range(3)]
    assert len(set(nx)) == 1  # random names under one zone: one bucket
    nx_other = response_class(_reply("n.other.test.", "A", dns.rcode.NXDOMAIN, authority="other.test."))
    nodata = response_class(_reply("big.rrl.test.", "AAAA", authority="rrl.test."))
    assert len({nx[0], nx_other, nodata, plain}) == 4
    refused = {response_class(_reply(f"{i}.x.", "A", dns.rcode.REFUSED)) for i in range(3)}
    assert refused == {response_class(_reply("y.", "MX", dns.rcode.SERVFAIL))}  # errors: one per prefix


def test_slip_is_the_question_with_tc_and_nothing_else() -> None:
    full = _reply("Big.rrl.test.", "TXT", answer=('big.rrl.test. 60 TXT "x"',), authority="rrl.test.")
    slipped = dns.message.from_wire(truncated_reply(full))
    original = dns.message.from_wire(full)
    assert slipped.flags == original.flags | dns.flags.TC and slipped.id == original.id
    assert slipped.question[0].name.to_text() == "Big.rrl.test." and slipped.question == original.question
    assert (slipped.answer, slipped.authority, slipped.additional) == ([], [], [])


# --- a real server ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    directory: Path = tmp_path_factory.mktemp("zones")
    (directory / "rrl.test.zone").write_text(ZONE)
    with running_server(directory, ["--no-semantic", "--rrl-exempt", "127.0.2.0/24"], rate_limit=True) as handle:
        yield handle


def udp_burst(server: ServerHandle, source: str, qname: str = "big.rrl.test.") -> tuple[int, int]:
    """(full answers, truncated answers) to `BURST` identical queries from `source`, one a millisecond."""
    query = dns.message.make_query(qname, "TXT", use_edns=0)
    replies: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((source, 0))
        sock.setblocking(False)
        for index in range(BURST):
            query.id = index
            sock.sendto(query.to_wire(), (server.host, server.port))
            time.sleep(0.001)
            _drain(sock, replies)
        sock.settimeout(0.5)
        _drain(sock, replies)
    messages = [dns.message.from_wire(r) for r in replies]
    truncated = [m for m in messages if m.flags & dns.flags.TC]
    assert all(m.answer == [] and m.rcode() == dns.rcode.NOERROR for m in truncated)
    assert all(len(m.answer[0][0].strings) == 4 for m in messages if not m.flags & dns.flags.TC)
    return len(messages) - len(truncated), len(truncated)


def _drain(sock: socket.socket, replies: list[bytes]) -> None:
    """Read what has come (a non-blocking socket), or until a timeout passes in silence."""
    while True:
        try:
            replies.append(sock.recv(65535))
        except (BlockingIOError, TimeoutError):
            return


def test_udp_burst_is_limited_with_slips(server: ServerHandle) -> None:
    full, truncated = udp_burst(server, "127.0.0.1")
    rate, burst = DEFAULT_RRL_RATE, int(DEFAULT_RRL_RATE * DEFAULT_RRL_WINDOW)
    assert burst <= full <= rate + burst
    refused = BURST - full
    assert abs(truncated - refused / DEFAULT_RRL_SLIP) <= 1  # the rest: dropped
    assert refused - truncated >= BURST // 3


def test_tcp_is_never_limited(server: ServerHandle) -> None:
    udp_burst(server, "127.0.0.1")  # the client's bucket is empty now
    with tcp_connect(server.host, server.port, source="127.0.0.1") as sock:
        for index in range(BURST):
            query = dns.message.make_query("big.rrl.test.", "TXT", use_edns=0)
            query.id = index
            tcp_send(sock, query.to_wire())
        replies = [dns.message.from_wire(tcp_read(sock)) for _ in range(BURST)]
    assert all(len(r.answer[0]) == 1 and not r.flags & dns.flags.TC for r in replies)


def test_exempt_network_is_answered_in_full(server: ServerHandle) -> None:
    assert udp_burst(server, "127.0.2.1") == (BURST, 0)


def test_another_prefix_is_unaffected(server: ServerHandle) -> None:
    udp_burst(server, "127.0.0.1")
    full, _truncated = udp_burst(server, "127.0.1.1")  # another /24: its own buckets
    assert full >= DEFAULT_RRL_RATE
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # and another class of the first
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2.0)
        sock.sendto(dns.message.make_query("rrl.test.", "SOA").to_wire(), (server.host, server.port))
        assert dns.message.from_wire(sock.recv(65535)).answer
