"""The sans-IO editor: the line scanner, serials, and edits that keep every other line as written."""
from __future__ import annotations

import datetime

import dns.name
import dns.rdatatype
import pytest

from zones import edit_ops
from zones.edit import ZoneEdit, next_serial
from zones.edit_text import EditError, Token, replace_token, scan

ORIGIN = dns.name.from_text("sem.test.")
TODAY = datetime.date(2026, 12, 3)
ZONE = """; sem.test. -- a test zone ; with "quotes"
$ORIGIN sem.test.
$TTL 300
@   IN SOA ns1 hostmaster (
        2026112301 ; serial
        3600 900 1209600 300 )
    IN NS ns1          ; the apex NS, owner inherited
ns1 IN A 127.0.0.1
    IN AAAA ::1
txt IN TXT "a;b" "c \\"d\\"" ; a comment
$ORIGIN sub.sem.test.
www 60 IN A 192.0.2.1
$INCLUDE routes/x.routes sem.test.
"""


def test_scan_understands_parentheses_inherited_owners_origins_and_comments() -> None:
    entries, includes = scan(ZONE, ORIGIN, "sem.test.zone")
    kinds = [(e.owner.to_text(), dns.rdatatype.to_text(e.rdtype), e.start, e.end) for e in entries]
    assert kinds == [
        ("sem.test.", "SOA", 3, 6), ("sem.test.", "NS", 6, 7), ("ns1.sem.test.", "A", 7, 8),
        ("ns1.sem.test.", "AAAA", 8, 9), ("txt.sem.test.", "TXT", 9, 10), ("www.sub.sem.test.", "A", 11, 12),
    ]
    assert entries[0].rdata().serial == 2026112301  # type: ignore[attr-defined]
    assert entries[4].strings() == ["a;b", 'c "d"']
    assert entries[5].ttl == 60 and not entries[1].explicit_owner
    assert [(i.target, i.origin.to_text()) for i in includes] == [("routes/x.routes", "sem.test.")]


def test_next_serial_is_date_based_or_plus_one() -> None:
    assert next_serial(2026112301, TODAY) == 2026120300
    assert next_serial(2026120300, TODAY) == 2026120301
    assert next_serial(2026120399, TODAY) == 2026120400  # nn overflows into tomorrow: still newer
    assert next_serial(2027010105, TODAY) == 2027010106  # a serial from the future only rises
    assert next_serial(7, TODAY) == 8
    assert next_serial(2**32 - 1, TODAY) == 0  # RFC 1982: 0 is newer than 2**32 - 1


def test_replace_token_keeps_the_comment_column() -> None:
    line = "        7  ; serial\n"
    token = Token(0, 8, "7")
    assert replace_token(line, token, "8") == "        8  ; serial\n"
    assert replace_token(line, token, "10") == "        10 ; serial\n"
    assert replace_token("        2026120300  ; serial\n", Token(0, 8, "2026120300"), "9") == \
        "        9           ; serial\n"


def edit(texts: dict[str, str]) -> ZoneEdit:
    return ZoneEdit(texts, TODAY)


def test_bump_serial_changes_one_token_only() -> None:
    e = edit({"sem.test.zone": ZONE, "routes/x.routes": ""})
    assert e.bump_serial(ORIGIN) == (2026112301, 2026120300)
    assert e.files["sem.test.zone"] == ZONE.replace("2026112301 ; serial", "2026120300 ; serial")


def test_removing_a_record_writes_out_the_owner_its_follower_inherited() -> None:
    e = edit({"sem.test.zone": ZONE.replace("$INCLUDE routes/x.routes sem.test.\n", "")})
    a = next(x for x in e.entries(ORIGIN) if x.rdtype == dns.rdatatype.A and x.owner.labels[0] == b"ns1")
    e.remove_entries([a])
    lines = e.files["sem.test.zone"].splitlines()  # type: ignore[union-attr]
    assert "ns1 IN A 127.0.0.1" not in lines
    assert "ns1 IN AAAA ::1" in lines  # was "    IN AAAA ::1"
    assert len(lines) == len(ZONE.splitlines()) - 2


ROUTES = """; profiles
_route IN TXT "v=semroute1"

; --- alpha: the first ---
alpha._route  IN TXT "v=semroute1" "desc=Alpha"
alpha._route  IN TXT "kw=one,two"
alpha._route  IN TXT "ex=What is one?"
"""


def profile_zone() -> dict[str, str]:
    zone = "$ORIGIN sem.test.\n$TTL 300\n@ IN SOA ns1 h 2026112301 3600 900 1209600 300\n  IN NS ns1\n" \
           "ns1 IN A 127.0.0.1\nalpha IN NS ns1.alpha\nns1.alpha IN A 127.0.0.2\n" \
           "$INCLUDE routes/sem.test.routes sem.test.\n"
    return {"sem.test.zone": zone, "routes/sem.test.routes": ROUTES}


def test_keywords_split_over_strings_of_255_octets_and_removal_rewrites_one_record() -> None:
    e = edit(profile_zone())
    words = [f"word{i:03d}" for i in range(40)]
    edit_ops.add_keywords(e, "alpha.sem.test", words)
    added = e.files["routes/sem.test.routes"].splitlines()[6]  # type: ignore[union-attr]
    assert added.startswith('alpha._route  IN TXT "kw=word000,') and '" "kw=' in added
    edit_ops.remove_keywords(e, "alpha.sem.test", ["two"])
    assert 'alpha._route  IN TXT "kw=one"' in e.files["routes/sem.test.routes"]  # type: ignore[operator]
    with pytest.raises(EditError, match="already there"):
        edit_ops.add_keywords(e, "alpha.sem.test", ["ONE"])


def test_removing_a_profile_takes_the_comment_paragraph_that_names_it() -> None:
    from zones.edit_domains import remove_domain

    e = edit(profile_zone())
    remove_domain(e, "alpha.sem.test")
    changes = e.changes()
    assert changes["routes/sem.test.routes"] == '; profiles\n_route IN TXT "v=semroute1"\n'
    assert "alpha" not in changes["sem.test.zone"]  # type: ignore[operator]
    assert "2026120300" in changes["sem.test.zone"]  # type: ignore[operator]


def test_removing_a_whole_paragraph_leaves_no_double_blank_line() -> None:
    zone = "$ORIGIN sem.test.\n@ 300 IN SOA ns1 h 1 3600 900 1209600 300\n  300 IN NS ns1\nns1 300 IN A 127.0.0.1\n" \
           "\na 300 IN NS ns1.a\nns1.a 300 IN A 127.0.0.2\n\nb 300 IN NS ns1.b\nns1.b 300 IN A 127.0.0.3\n"
    e = edit({"sem.test.zone": zone})
    e.remove_entries([x for x in e.entries(ORIGIN) if x.owner.is_subdomain(dns.name.from_text("a.sem.test."))])
    assert e.files["sem.test.zone"] == zone.replace("\na 300 IN NS ns1.a\nns1.a 300 IN A 127.0.0.2\n", "")


def test_the_scanner_finds_every_record_the_loader_reads_in_the_shipped_zones() -> None:
    from helpers.shipped import ZONEFILES

    from zones.edit_files import read_texts
    from zones.loader import load_zone, origin_for

    e = edit(read_texts(ZONEFILES))
    for origin, key in e.zones().items():
        loaded = load_zone(ZONEFILES / key, origin_for(ZONEFILES / key))
        scanned = {(x.owner, x.rdtype, x.rdata()) for x in e.entries(origin)}
        assert scanned == set(loaded.records), key
        for x in e.entries(origin):  # and where: the loader's file:line is the scanner's first line
            loc = loaded.records[(x.owner, x.rdtype, x.rdata())]
            assert (loc.file, loc.line) == (str(ZONEFILES / x.file), x.start + 1)


def test_a_new_record_takes_the_tabs_of_its_neighbours_and_add_then_remove_engine_restores_the_file() -> None:
    zone = "$ORIGIN sem.test.\n@\t300\tIN\tSOA\tns1 h 2026112301 3600 900 1209600 300\n\t300\tIN\tNS\tns1\n" \
           "ns1\t300\tIN\tA\t127.0.0.1\n"
    e = edit({"sem.test.zone": zone})
    edit_ops.add_engine(e, "sem.test", edit_ops.EngineSpec(port=8100, addresses=("127.0.0.1",)))
    text = e.files["sem.test.zone"]
    assert text is not None and "llm1\t300\tIN\tA\t127.0.0.1\n" in text
    assert "_llm._tcp\t300 IN SRV 10 10 8100 llm1\n" in text  # the first SRV: no model of its type
    edit_ops.remove_engine(e, "sem.test")
    assert e.files["sem.test.zone"] == zone
