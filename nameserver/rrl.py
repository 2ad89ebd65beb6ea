"""Response rate limiting (RRL) of UDP replies, with no I/O: a reply and its client in, what to send.

A spoofed query makes us send its answer to the victim whose address it carries; a 60-octet
question for `_route` TXT comes back twenty times larger. RRL, as BIND, Knot and NSD do it, caps
how many replies of one kind a client prefix gets: every UDP reply takes a token from the bucket of
(client prefix, response class); a bucket refills at `rate` tokens a second and holds at most
`rate * window` (the burst). A reply finding its bucket empty is dropped, except every `slip`-th,
which goes out truncated (TC=1, no records): a real client behind the prefix retries over TCP
and gets its answer there, while a victim receives nothing larger than the query it never sent.
TCP is never limited (it cannot be spoofed); exempt networks are never limited either.

Prefixes are IPv4 /24 and IPv6 /56 (BIND's `ipv4-prefix-length` and `ipv6-prefix-length`
defaults). Response classes (`response_class`, read from the rendered reply):
- a positive answer: the owner of its last answer record and the QTYPE, i.e. the question for a
  plain answer and the chain's end for a CNAME chain (many semantic questions routed to one node
  share one bucket);
- NXDOMAIN, and NODATA or a referral: the owner of the first authority record (the zone's SOA,
  the child's NS), so random names under one zone share one bucket, as BIND and Knot do;
- any other RCODE (SERVFAIL, REFUSED, FORMERR, ...): one bucket per prefix, as BIND's
  `errors-per-second`.
The table keeps at most `max_buckets` buckets, least recently used prefix evicted first (one
prefix alone over the cap loses its oldest classes).

    limiter = RateLimiter(rate=20, window=1.0, slip=2)
    out = limiter.limit(reply, "192.0.2.7")    # the reply, a truncated one, or None: send nothing
"""
from __future__ import annotations

import enum
import functools
import ipaddress
import time
from collections import OrderedDict
from typing import Callable, Iterable

from nameserver.config import IPNetwork, ServerConfig
from nameserver.wire import authority_owner, last_answer_owner, question_end, truncated_reply

IPV4_PREFIX = 24
IPV6_PREFIX = 56
PREFIX_CACHE = 4096  # client addresses whose prefix (or exemption) is remembered
NOERROR, NXDOMAIN = 0, 3
ERRORS = b"R"  # the class of every error reply of a prefix


class Verdict(enum.Enum):
    """What to do with one reply."""

    SEND = "send"
    SLIP = "slip"  # send it truncated
    DROP = "drop"


class _Bucket:
    """Tokens left at `stamp` (seconds, the limiter's clock) and replies refused since it was made."""

    __slots__ = ("tokens", "stamp", "refused")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.refused = 0


def response_class(reply: bytes) -> bytes:
    """The bucket a rendered reply draws on, within its client's prefix (see the module doc)."""
    rcode = reply[3] & 0x0F
    if rcode == NOERROR and reply[6:8] != b"\x00\x00":
        end = question_end(reply)
        qtype = reply[end : end + 2] if end > 0 else b""
        return b"A" + (last_answer_owner(reply) or b"") + qtype
    if rcode == NXDOMAIN:
        return b"N" + (authority_owner(reply) or b"")
    if rcode == NOERROR:
        return b"E" + (authority_owner(reply) or b"")
    return ERRORS


class RateLimiter:
    """Token buckets by (client prefix, response class); one per server, shared by its UDP listeners."""

    def __init__(
        self,
        rate: float,
        *,
        window: float = 1.0,
        slip: int = 2,
        exempt: Iterable[IPNetwork] = (),
        max_buckets: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = rate * window
        self.slip = slip
        self.exempt = tuple(exempt)
        self.max_buckets = max_buckets
        self.clock = clock
        self._table: OrderedDict[bytes, dict[bytes, _Bucket]] = OrderedDict()
        self._size = 0
        self.prefix_of = functools.lru_cache(maxsize=PREFIX_CACHE)(self._prefix)
        self.dropped = self.slipped = 0  # replies held back (read by nameserver/metrics.py)

    @classmethod
    def from_config(cls, config: ServerConfig) -> RateLimiter | None:
        """The limiter `config` asks for; None when `rrl_rate` is 0 (off)."""
        if config.rrl_rate == 0:
            return None
        return cls(config.rrl_rate, window=config.rrl_window, slip=config.rrl_slip, exempt=config.rrl_exempt,
                   max_buckets=config.rrl_table_size)

    def __len__(self) -> int:
        """Buckets in the table."""
        return self._size

    @property
    def prefixes(self) -> int:
        """Client prefixes in the table."""
        return len(self._table)

    def limit(self, reply: bytes, host: str) -> bytes | None:
        """What to send for `reply` to a UDP client at `host`: the reply itself, its truncated
        form (a slip), or None (drop it)."""
        prefix = self.prefix_of(host)
        if prefix is None:
            return reply
        verdict = self.decide(prefix, response_class(reply))
        if verdict is Verdict.SEND:
            return reply
        if verdict is Verdict.SLIP:
            self.slipped += 1
            return truncated_reply(reply)
        self.dropped += 1
        return None

    def decide(self, prefix: bytes, kind: bytes) -> Verdict:
        """Take a token from the bucket of (`prefix`, `kind`), making it (full) when new."""
        now = self.clock()
        table = self._table
        classes = table.get(prefix)
        if classes is None:
            classes = table[prefix] = {}
        else:
            table.move_to_end(prefix)
        bucket = classes.get(kind)
        if bucket is None:
            bucket = classes[kind] = _Bucket(self.burst, now)
            self._size += 1
            if self._size > self.max_buckets:
                self._evict(prefix)
        tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return Verdict.SEND
        bucket.tokens = tokens
        bucket.refused += 1
        slip = self.slip
        return Verdict.SLIP if slip and bucket.refused % slip == 0 else Verdict.DROP

    def _evict(self, current: bytes) -> None:
        """Back to `max_buckets`: the least recently used prefixes go; `current` (the most recent)
        alone over the cap loses its oldest classes instead."""
        table = self._table
        while self._size > self.max_buckets:
            oldest, classes = next(iter(table.items()))
            if oldest == current:
                del classes[next(iter(classes))]
                self._size -= 1
            else:
                del table[oldest]
                self._size -= len(classes)

    def _prefix(self, host: str) -> bytes | None:
        """The key of `host`'s prefix (network address and length), or None when it is exempt."""
        address = ipaddress.ip_address(host.split("%", 1)[0])  # a socket's peer: always an address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.exempt):
            return None
        length = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
        network = ipaddress.ip_network((address, length), strict=False)
        return network.network_address.packed + bytes((length,))
