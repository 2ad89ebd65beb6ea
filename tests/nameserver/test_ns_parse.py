"""`parse_query`'s shortcut for plain queries gives what `dns.message.from_wire` gives."""
from __future__ import annotations

import dns.flags
import dns.message
import pytest

from nameserver.errors import Rejected, parse_query


@pytest.mark.parametrize("name", ["www.sem.test.", "WwW.SeM.TeSt.", "."])
@pytest.mark.parametrize("edns", [False, 0, 1, "do", "option"])
@pytest.mark.parametrize("extra_flags", [0, dns.flags.RD | dns.flags.CD | dns.flags.AD])
def test_shortcut_equals_full_parse(name: str, edns, extra_flags: int) -> None:
    if edns == "do":
        query = dns.message.make_query(name, "TXT", want_dnssec=True, payload=4096)
    elif edns == "option":
        query = dns.message.make_query(name, "TXT", use_edns=0, options=[dns.edns.GenericOption(65001, b"x")])
    else:
        query = dns.message.make_query(name, "TXT", use_edns=edns)
    query.flags = dns.flags.Flag(extra_flags)
    wire = query.to_wire()
    fast, full = parse_query(wire), dns.message.from_wire(wire)
    assert fast == full
    assert (fast.id, fast.flags, fast.edns, fast.ednsflags, fast.payload, fast.options) == (
        full.id, full.flags, full.edns, full.ednsflags, full.payload, full.options)
    assert fast.question[0].name.to_text() == name


def test_trailing_junk_is_formerr() -> None:
    wire = dns.message.make_query("www.sem.test.", "A").to_wire() + b"junk"
    with pytest.raises(Rejected) as caught:
        parse_query(wire)
    assert caught.value.reply is not None and caught.value.reply[3] & 0xF == 1
