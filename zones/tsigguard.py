"""The server side of TSIG (RFC 8945): checking signed requests and signing their answers.

No I/O: `TsigGuard.check(wire)` takes a request's bytes and returns it parsed, its TSIG verified,
or raises `TsigFailure`; the clock is a parameter. dnspython computes every MAC
(`dns.message.from_wire` with a keyring, `Message.use_tsig`, `Renderer.add_multi_tsig`); this
module holds the policy around it, in RFC 8945 §5.2 order:

    key known, same algorithm?          no -> BADKEY  (NOTAUTH, unsigned TSIG: empty MAC)
    MAC verifies?                       no -> BADSIG  (NOTAUTH, unsigned TSIG: empty MAC)
    |now - time signed| <= 300 s?       no -> BADTIME (NOTAUTH, signed, our time in other data)
    (key, MAC) seen in the last 600 s?  yes -> BADTIME (a replay; NOTAUTH, signed)

The replay check covers what a captured message could abuse: UPDATEs (applied again after a
delete) and transfer requests (a key-only ACL would hand the zone to whoever replays one). Other
signed queries (a secondary's SOA refresh over UDP, which it may resend unchanged when an answer
is lost) are checked with `once=False`: they read public data.

The fudge is the server's (`SERVER_FUDGE`, 300 s, RFC 8945 §10's advice), whatever the request's
TSIG says: a signature made 10 hours ago with fudge 65535 is BADTIME. A request is accepted once:
the replay cache keeps (key name, MAC) of every accepted request until its time signed is more
than the fudge away (after that the time check refuses it anyway), at most `REPLAY_ENTRIES`
of them (the oldest dropped first; only messages signed with a known key get in).

Answers: `TsigFailure.response()` is the error answer (§5.3.2); `sign_reply` signs a one-message
answer to a verified request (§5.3); `StreamSigner` signs each message of a multi-message answer
(AXFR/IXFR over TCP, §5.3.1: the first one's digest covers the request MAC, each later one the
previous MAC).
"""
from __future__ import annotations

import io
import struct
import time
from collections import OrderedDict
from typing import Callable, Mapping

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.renderer
import dns.rrset
import dns.tsig

from zones.errors import ZonesError

SERVER_FUDGE = 300  # seconds; RFC 8945 §10 recommends 300
REPLAY_ENTRIES = 65536

Keyring = Mapping[dns.name.Name, dns.tsig.Key]
Clock = Callable[[], float]
ERROR_NAMES: dict[int, str] = {dns.rcode.BADSIG: "BADSIG", dns.rcode.BADKEY: "BADKEY", dns.rcode.BADTIME: "BADTIME"}


class TsigFailure(ZonesError):
    """A signed request that fails the checks: `error` (dns.rcode.BADKEY, BADSIG or BADTIME), why,
    the request as parsed (TSIG unverified), and for BADTIME the key that signed it."""

    def __init__(self, error: int, reason: str, query: dns.message.Message, key: dns.tsig.Key | None = None,
                 now: int = 0) -> None:
        super().__init__(f"TSIG {ERROR_NAMES.get(error, error)}: {reason}")
        self.error = error
        self.reason = reason
        self.query = query
        self.key = key
        self.now = now

    @property
    def name(self) -> str:
        return ERROR_NAMES.get(self.error, str(self.error))

    def response(self) -> dns.message.Message:
        """The answer (RFC 8945 §5.3.2): RCODE NOTAUTH and a TSIG whose error field says why;
        unsigned (empty MAC) for BADKEY/BADSIG, signed with the request's key for BADTIME, with
        our time (48 bits) in other data."""
        query = self.query
        reply = dns.message.make_response(query)  # the query's keyring is False: nothing signed
        reply.set_rcode(dns.rcode.NOTAUTH)
        assert query.keyname is not None and query.keyalgorithm is not None
        if self.error == dns.rcode.BADTIME and self.key is not None:
            sign_reply(query, reply, self.key, error=self.error, other=time_other(self.now))
            return reply
        rdata = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY, dns.rdatatype.TSIG, query.keyalgorithm, self.now, SERVER_FUDGE, b"",
            query.id, self.error, b"",
        )
        reply.tsig = dns.rrset.from_rdata(query.keyname, 0, rdata)
        return reply


def time_other(now: int) -> bytes:
    """A time as BADTIME's other data: 48 bits, network order."""
    return struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF)


class ReplayCache:
    """(key name, MAC) of accepted requests, each until its expiry; at most `size` entries."""

    def __init__(self, size: int = REPLAY_ENTRIES) -> None:
        if size < 1:
            raise ValueError("a replay cache holds at least one entry")
        self.size = size
        self._seen: OrderedDict[tuple[dns.name.Name, bytes], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, keyname: dns.name.Name, mac: bytes, expires: float, now: float) -> bool:
        """True when this (key, MAC) was accepted before and has not expired; else remember it."""
        self._expire(now)
        entry = (keyname, mac)
        if entry in self._seen:
            return True
        self._seen[entry] = expires
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return False

    def _expire(self, now: float) -> None:
        # Entries go in roughly in expiry order (time signed + fudge): drop from the front.
        while self._seen:
            entry, expires = next(iter(self._seen.items()))
            if expires >= now:
                return
            del self._seen[entry]


class TsigGuard:
    """Verifies the TSIG of requests against `keyring` with the server's fudge and a replay cache."""

    def __init__(self, keyring: Keyring, fudge: int = SERVER_FUDGE, replay: ReplayCache | None = None,
                 clock: Clock = time.time) -> None:
        self.keyring = keyring
        self.fudge = fudge
        self.replay = replay if replay is not None else ReplayCache()
        self.clock = clock

    def check(self, wire: bytes, once: bool = True) -> dns.message.Message:
        """`wire` parsed; when it carries a TSIG, verified (its `keyring` is then the key, and
        `sign_reply` signs its answer). `once`: refuse a replay (False for requests a client may
        resend unchanged and that read public data, like a UDP SOA query). Raises `TsigFailure`,
        or dnspython's errors (and ValueError) for a message it cannot parse."""
        query = dns.message.from_wire(wire, keyring=False)
        if not query.had_tsig:
            return query
        now = int(self.clock())
        keyname = query.keyname
        assert keyname is not None and query.tsig is not None
        rdata = query.tsig[0]
        key = self.keyring.get(keyname)
        if key is None:
            raise TsigFailure(dns.rcode.BADKEY, f"unknown key {keyname}", query, now=now)
        if key.algorithm != rdata.algorithm:
            raise TsigFailure(dns.rcode.BADKEY, f"key {keyname} is {key.algorithm}, not {rdata.algorithm}",
                              query, now=now)
        try:
            verified = dns.message.from_wire(wire, keyring={keyname: key})
        except dns.tsig.BadTime:  # raised only once the MAC verified: the time is ours to judge
            verified = query
            verified.keyring = key
        except (dns.tsig.BadSignature, dns.tsig.PeerError, dns.tsig.BadAlgorithm, dns.tsig.BadKey):
            raise TsigFailure(dns.rcode.BADSIG, f"the MAC of key {keyname} does not verify", query, now=now) from None
        skew = now - rdata.time_signed
        if abs(skew) > self.fudge:
            raise TsigFailure(dns.rcode.BADTIME, f"signed {skew:+d} s from our time (fudge {self.fudge} s)",
                              query, key, now)
        if once and self.replay.seen(keyname, rdata.mac, rdata.time_signed + self.fudge, now):
            raise TsigFailure(dns.rcode.BADTIME, f"a replay: key {keyname} and this MAC were seen before",
                              query, key, now)
        return verified


def sign_reply(query: dns.message.Message, reply: dns.message.Message, key: dns.tsig.Key | None = None,
               error: int = 0, other: bytes = b"") -> None:
    """Make `reply` signed (when rendered) with the key of the verified `query` (RFC 8945 §5.3)."""
    key = key if key is not None else query.keyring
    assert isinstance(key, dns.tsig.Key) and query.mac is not None
    reply.use_tsig(key, key.name, SERVER_FUDGE, None, error, other, key.algorithm)
    reply.request_mac = query.mac


def tsig_room(key: dns.tsig.Key) -> int:
    """Octets a TSIG record signed with `key` (no error, no other data) takes in a message."""
    rdata = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, SERVER_FUDGE,
        b"\0" * dns.tsig.mac_sizes[key.algorithm], 0, 0, b"",
    )
    out = io.BytesIO()
    dns.rrset.from_rdata(key.name, 0, rdata).to_wire(out)
    return len(out.getvalue())


class StreamSigner:
    """Signs the messages of one multi-message answer to a verified `query` (RFC 8945 §5.3.1)."""

    def __init__(self, query: dns.message.Message) -> None:
        key = query.keyring
        assert isinstance(key, dns.tsig.Key) and query.mac is not None
        self.key = key
        self.request_mac = query.mac
        self.id = query.id
        self._ctx: object | None = None
        self.room = tsig_room(key)  # octets the TSIG record takes in each message

    def sign(self, renderer: dns.renderer.Renderer) -> None:
        """Add the TSIG to a message whose header is written (reserve `room` octets first)."""
        self._ctx = renderer.add_multi_tsig(
            self._ctx, self.key.name, self.key, SERVER_FUDGE, self.id, 0, b"", self.request_mac,
            self.key.algorithm,
        )

