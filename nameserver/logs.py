"""Log lines a client's packet can cause: short, rate-limited, without the question (issue 11 item 7).

`packet_log(name)` is the logger (`<name>.packets`) for every line a packet can trigger. A
`RateLimit` filter on it lets through at most `BURST` lines of one kind (one call site) at once
and `PER_SECOND` a second after that; the next line let through says how many were suppressed.

`query_name(qname, log_questions)` is how such lines name a query: the question of a semantic
name (its labels left of `q`/`explain`) is replaced by a short hash unless the operator asked for
questions in the log (`--log-questions`). `HandlerFailures` reports handler bugs: a traceback
(one line per frame and the exception type, never its message) the first time a bug (type and place) is seen,
one line after that.
"""
from __future__ import annotations

import hashlib
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import dns.name
import dns.rdatatype

BURST = 5
PER_SECOND = 1.0
FORM_LABELS = (b"q", b"explain")


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    suppressed: int = 0


class RateLimit(logging.Filter):
    """Token bucket per kind of line (logger, format string): `burst` at once, `per_second` after."""

    def __init__(self, burst: int = BURST, per_second: float = PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.per_second = per_second
        self.clock = clock
        self._buckets: dict[tuple[str, object], _Bucket] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        bucket = self._buckets.setdefault((record.name, record.msg), _Bucket(float(self.burst), now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.per_second)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            bucket.suppressed += 1
            return False
        bucket.tokens -= 1.0
        if bucket.suppressed:
            record.msg, record.args = f"{record.getMessage()} ({bucket.suppressed} like it suppressed)", ()
            bucket.suppressed = 0
        return True


_LIMIT = RateLimit()


def packet_log(name: str) -> logging.Logger:
    """The rate-limited logger `<name>.packets` for lines a client's packet can cause."""
    log = logging.getLogger(f"{name}.packets")
    if _LIMIT not in log.filters:
        log.addFilter(_LIMIT)
    return log


def query_name(qname: dns.name.Name, log_questions: bool = False) -> str:
    """`qname` for a log line: a semantic question's labels become `<sha256:8 hex>` (the zone and
    the form stay) unless `log_questions`; other names as they are."""
    labels = [label.lower() for label in qname.labels]
    form = next((i for i, label in enumerate(labels) if label in FORM_LABELS), None)
    if log_questions or not form:
        return qname.to_text()
    digest = hashlib.sha256(b".".join(labels[:form])).hexdigest()[:8]
    return f"<question {digest}>." + dns.name.Name(qname.labels[form:]).to_text()


@dataclass
class HandlerFailures:
    """Reports exceptions escaping the chain (bugs): a traceback once per bug, one line after."""

    log: logging.Logger
    log_questions: bool = False
    _seen: set[tuple[str, str, int]] = field(default_factory=set)

    def report(self, exc: BaseException, qname: dns.name.Name, qtype: int, client: str) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        where = frames[-1] if frames else None
        bug = (type(exc).__name__, where.filename, where.lineno or 0) if where else (type(exc).__name__, "?", 0)
        rdtype = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))
        query = f"{query_name(qname, self.log_questions)} {rdtype} from {client}"
        if bug in self._seen:
            self.log.error("handler failed on %s: %s at %s:%d", query, *bug)
            return
        self._seen.add(bug)
        if self.log_questions:
            detail = "".join(traceback.format_exception(exc)).rstrip()
        else:
            detail = "".join(f"\n  {f.filename}:{f.lineno} in {f.name}" for f in frames) + f"\n{type(exc).__name__}"
        self.log.error("handler failed on %s (first time; later ones in one line):%s", query, detail)
