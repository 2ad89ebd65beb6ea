"""`common.names.name_key`: a cheap dict key that keeps dnspython's case-insensitive name equality."""
from __future__ import annotations

import dns.name

from common.names import name_key


def test_names_equal_in_dns_have_one_key_and_others_differ() -> None:
    names = ["legal.semantic.root.", "LEGAL.Semantic.ROOT.", "legal.semantic.root", "a\\.b.c.", "a.b.c.",
             "semantic.root.", "."]
    parsed = [dns.name.from_text(text) for text in names]
    for a in parsed:
        for b in parsed:
            assert (name_key(a) == name_key(b)) == (a == b), (a, b)
    memo = {name_key(parsed[0]): "legal"}
    assert memo[name_key(parsed[1])] == "legal"
