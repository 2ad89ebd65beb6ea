"""`nameserver.logs`: the rate limit of packet-caused lines and how they name a question."""
from __future__ import annotations

import logging

import dns.name

from nameserver.logs import RateLimit, query_name


def record(message: str = "refused %s", *args: object) -> logging.LogRecord:
    return logging.LogRecord("nameserver.x.packets", logging.WARNING, __file__, 1, message, args or ("x",), None)


def test_rate_limit_lets_a_burst_through_then_says_how_many_it_suppressed() -> None:
    now = [0.0]
    limit = RateLimit(burst=3, per_second=1.0, clock=lambda: now[0])
    passed = [limit.filter(record()) for _ in range(100)]
    assert passed.count(True) == 3
    assert limit.filter(record("another kind %s")) is True  # each call site has its own budget
    now[0] += 1.0
    summary = record()
    assert limit.filter(summary) is True
    assert summary.getMessage() == "refused x (97 like it suppressed)"


def test_query_name_hides_the_question_unless_asked() -> None:
    name = dns.name.from_text("my-secret-question.q.legal.semantic.root.")
    hidden = query_name(name)
    assert "secret" not in hidden and hidden.endswith(".q.legal.semantic.root.")
    assert query_name(name, log_questions=True) == "my-secret-question.q.legal.semantic.root."
    assert query_name(dns.name.from_text("www.example.")) == "www.example."
    assert query_name(dns.name.from_text("q.semantic.root.")) == "q.semantic.root."
