"""zones.tsigguard: the server's fudge, the replay cache, and the TSIG error answers of RFC 8945
§5.3.2, checked by decoding the TSIG record of each answer (its MAC recomputed with dnspython)."""
from __future__ import annotations

import struct
import time

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig
import pytest

from zones.tsig import generate_key, parse_keyring
from zones.tsigguard import SERVER_FUDGE, ReplayCache, TsigFailure, TsigGuard, sign_reply

KEYRING = parse_keyring(generate_key("xfr-test"))
((NAME, KEY),) = KEYRING.items()
OTHER_SECRET = parse_keyring(generate_key("xfr-test"))  # same name, another secret


def signed_query(keyring: dict = KEYRING, fudge: int = SERVER_FUDGE) -> tuple[dns.message.Message, bytes]:
    query = dns.message.make_query("legal.semantic.root.", "SOA")
    ((name, key),) = keyring.items()
    query.use_tsig(key, name, fudge=fudge)
    return query, query.to_wire()


def guard_at(offset: float, **kwargs: object) -> TsigGuard:
    """A guard whose clock runs `offset` seconds ahead of ours."""
    return TsigGuard(KEYRING, clock=lambda: time.time() + offset, **kwargs)  # type: ignore[arg-type]


def failure_of(guard: TsigGuard, wire: bytes) -> TsigFailure:
    with pytest.raises(TsigFailure) as info:
        guard.check(wire)
    return info.value


def answer_tsig(failure: TsigFailure) -> tuple[dns.message.Message, bytes]:
    """The error answer as sent, parsed without verifying its TSIG."""
    wire = failure.response().to_wire()
    return dns.message.from_wire(wire, keyring=False), wire


def mac_verifies(answer: dns.message.Message, request_mac: bytes) -> bool:
    """Recompute the MAC of a signed answer whose TSIG carries an error (dnspython's validate
    stops at the error field): the answer rendered without its TSIG, signed as the server did."""
    rdata = answer.tsig[0]
    unsigned = dns.message.from_wire(answer.to_wire(), keyring=False)  # a copy
    unsigned.tsig = None
    unsigned.want_tsig_sign = False
    wire = unsigned.to_wire()
    remade, _ctx = dns.tsig.sign(wire, KEY, rdata, rdata.time_signed, request_mac)
    return remade.mac == rdata.mac


def test_a_good_signature_verifies_and_the_answer_is_signed() -> None:
    query, wire = signed_query()
    verified = TsigGuard(KEYRING).check(wire)
    assert verified.had_tsig and verified.keyring == KEY
    reply = dns.message.make_response(verified)
    sign_reply(verified, reply)
    parsed = dns.message.from_wire(reply.to_wire(), keyring=KEYRING, request_mac=query.mac)
    assert parsed.had_tsig and parsed.tsig[0].fudge == SERVER_FUDGE


def test_unsigned_messages_pass_through() -> None:
    wire = dns.message.make_query("legal.semantic.root.", "SOA").to_wire()
    assert not TsigGuard(KEYRING).check(wire).had_tsig


def test_the_servers_fudge_applies_whatever_the_message_says() -> None:
    # signed 10 hours ago with fudge 65535: dnspython alone would accept it
    _query, wire = signed_query(fudge=65535)
    failure = failure_of(guard_at(36_000), wire)
    assert failure.error == dns.rcode.BADTIME and "fudge 300 s" in failure.reason
    # a tiny fudge in the message does not make the server stricter than its own 300 s
    _query, wire = signed_query(fudge=1)
    assert guard_at(200).check(wire).had_tsig
    _query, wire = signed_query()
    assert failure_of(guard_at(-301), wire).error == dns.rcode.BADTIME


def test_a_replay_is_refused_within_the_window() -> None:
    guard = TsigGuard(KEYRING)
    _query, wire = signed_query()
    guard.check(wire)
    failure = failure_of(guard, wire)
    assert failure.error == dns.rcode.BADTIME and "replay" in failure.reason
    _query, fresh = signed_query()  # a new signature of the same question is fine
    guard.check(fresh)
    guard.check(fresh, once=False)  # a request that may be resent unchanged (a UDP SOA query)


def test_replay_cache_is_bounded_and_forgets_expired_entries() -> None:
    cache = ReplayCache(size=2)
    assert not cache.seen(NAME, b"a", expires=100, now=0)
    assert cache.seen(NAME, b"a", expires=100, now=1)
    assert not cache.seen(NAME, b"b", expires=100, now=1)
    assert not cache.seen(NAME, b"c", expires=100, now=1)
    assert len(cache) == 2  # "a" dropped: the oldest
    assert not cache.seen(NAME, b"d", expires=300, now=200)  # b and c expired at 100
    assert len(cache) == 1


def test_badkey_answer_is_an_unsigned_tsig_with_the_error() -> None:
    stranger = parse_keyring(generate_key("stranger"))
    query, wire = signed_query(stranger)
    failure = failure_of(TsigGuard(KEYRING), wire)
    assert failure.error == dns.rcode.BADKEY
    answer, _ = answer_tsig(failure)
    rdata = answer.tsig[0]
    assert answer.rcode() == dns.rcode.NOTAUTH and answer.id == query.id
    assert answer.tsig.name == dns.name.from_text("stranger.")
    assert rdata.error == dns.rcode.BADKEY and rdata.mac == b"" and rdata.other == b""


def test_wrong_algorithm_is_badkey() -> None:
    _query, wire = signed_query({NAME: dns.tsig.Key(NAME, KEY.secret, "hmac-sha512")})
    assert failure_of(TsigGuard(KEYRING), wire).error == dns.rcode.BADKEY


def test_badsig_answer_is_an_unsigned_tsig_with_the_error() -> None:
    _query, wire = signed_query(OTHER_SECRET)
    failure = failure_of(TsigGuard(KEYRING), wire)
    assert failure.error == dns.rcode.BADSIG
    answer, _ = answer_tsig(failure)
    rdata = answer.tsig[0]
    assert answer.rcode() == dns.rcode.NOTAUTH
    assert rdata.error == dns.rcode.BADSIG and rdata.mac == b""
    # a client holding the key sees the error (dnspython raises on the error field first)
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.message.from_wire(answer.to_wire(), keyring=KEYRING)


def test_a_tampered_message_is_badsig() -> None:
    _query, wire = signed_query()
    tampered = wire[:2] + bytes([wire[2] ^ 0x01]) + wire[3:]  # flip RD
    assert failure_of(TsigGuard(KEYRING), tampered).error == dns.rcode.BADSIG


def test_badtime_answer_is_signed_and_carries_the_server_time() -> None:
    query, wire = signed_query()
    failure = failure_of(guard_at(3_600), wire)
    answer, _ = answer_tsig(failure)
    rdata = answer.tsig[0]
    assert answer.rcode() == dns.rcode.NOTAUTH
    assert rdata.error == dns.rcode.BADTIME and len(rdata.mac) == 32
    upper, lower = struct.unpack("!HI", rdata.other)
    server_time = (upper << 32) | lower
    assert abs(server_time - (time.time() + 3_600)) < 5
    assert mac_verifies(answer, query.mac)
    with pytest.raises(dns.tsig.PeerBadTime):
        dns.message.from_wire(answer.to_wire(), keyring=KEYRING, request_mac=query.mac)
