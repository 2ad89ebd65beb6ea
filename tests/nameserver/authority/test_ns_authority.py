"""Unit tests of the pure lookup (nameserver/authority/lookup.py) over the test zones."""
from __future__ import annotations

import dns.name
import dns.rdatatype as T
import dns.zone
import pytest
from helpers.testzones import child_zone, parent_zone

from nameserver.authority.lookup import Authority, Kind, ZoneIndexError
from zones.catalog import ZoneCatalog

N = dns.name.from_text


@pytest.fixture(scope="module")
def authority() -> Authority:
    zones = {
        N("sem.test."): dns.zone.from_text(parent_zone(), relativize=False),
        N("child.sem.test."): dns.zone.from_text(child_zone(), relativize=False),
    }
    return Authority(ZoneCatalog(zones=zones))


def types(rrsets) -> list[tuple[str, str]]:
    return [(r.name.to_text().lower(), T.to_text(r.rdtype)) for r in rrsets]


def test_exact_answer_is_authoritative(authority: Authority) -> None:
    result = authority.lookup(N("www.sem.test."), T.A)
    assert result.kind == Kind.SUCCESS and result.authoritative
    assert [r.to_text() for r in result.answer[0]] == ["192.0.2.1"]


def test_cname_chain_followed_across_zones(authority: Authority) -> None:
    result = authority.lookup(N("alias.sem.test."), T.A)
    assert types(result.answer) == [("alias.sem.test.", "CNAME"), ("alias2.sem.test.", "CNAME"), ("www.sem.test.", "A")]
    crossed = authority.lookup(N("into-child.sem.test."), T.A)
    assert types(crossed.answer) == [("into-child.sem.test.", "CNAME"), ("x.child.sem.test.", "A")]
    assert crossed.kind == Kind.SUCCESS


def test_cname_leaving_our_zones_and_loops_stop(authority: Authority) -> None:
    assert types(authority.lookup(N("ext.sem.test."), T.A).answer) == [("ext.sem.test.", "CNAME")]
    looped = authority.lookup(N("loop1.sem.test."), T.A)
    assert types(looped.answer) == [("loop1.sem.test.", "CNAME"), ("loop2.sem.test.", "CNAME")]


def test_referral_has_ns_glue_and_no_aa(authority: Authority) -> None:
    result = authority.lookup(N("host.sub.sem.test."), T.A)
    assert result.kind == Kind.DELEGATION and not result.authoritative
    assert result.answer == ()
    assert types(result.authority) == [("sub.sem.test.", "NS")]
    assert types(result.additional) == [("ns1.sub.sem.test.", "A")]


def test_nxdomain_and_nodata_carry_soa_with_negative_ttl(authority: Authority) -> None:
    nx = authority.lookup(N("nope.sem.test."), T.A)
    assert nx.kind == Kind.NAME_ERROR
    assert types(nx.authority) == [("sem.test.", "SOA")] and nx.authority[0].ttl == 300
    nodata = authority.lookup(N("www.sem.test."), T.MX)
    assert nodata.kind == Kind.NO_DATA and nodata.authority[0].ttl == 300
    child_nx = authority.lookup(N("nope.child.sem.test."), T.A)
    assert child_nx.authority[0].name == N("child.sem.test.") and child_nx.authority[0].ttl == 60


def test_empty_non_terminals_are_nodata(authority: Authority) -> None:
    for name in ("path.sem.test.", "ent.path.sem.test."):
        assert authority.lookup(N(name), T.A).kind == Kind.NO_DATA


def test_wildcard_synthesis(authority: Authority) -> None:
    result = authority.lookup(N("anything.wild.sem.test."), T.TXT)
    assert result.kind == Kind.SUCCESS
    assert types(result.answer) == [("anything.wild.sem.test.", "TXT")]
    assert authority.lookup(N("anything.wild.sem.test."), T.MX).kind == Kind.NO_DATA
    assert authority.lookup(N("a.b.wild.sem.test."), T.A).kind == Kind.SUCCESS  # RFC 4592: deeper too
    assert authority.lookup(N("wild.sem.test."), T.A).kind == Kind.NO_DATA  # the ENT itself


def test_additional_addresses_for_srv_and_mx(authority: Authority) -> None:
    srv = authority.lookup(N("_llm._tcp.sem.test."), T.SRV)
    assert types(srv.additional) == [("llm1.sem.test.", "A")]
    mx = authority.lookup(N("mx.sem.test."), T.MX)
    assert types(mx.additional) == [("mail.sem.test.", "A")]


def test_outside_every_zone_is_refused(authority: Authority) -> None:
    assert authority.lookup(N("example.com."), T.A).kind == Kind.REFUSED
    assert authority.lookup(N("www.sem.test."), T.A, qclass=3).kind == Kind.REFUSED  # CHAOS


def test_hosted_child_wins_but_ds_comes_from_the_parent(authority: Authority) -> None:
    assert authority.lookup(N("child.sem.test."), T.NS).authoritative
    ds = authority.lookup(N("child.sem.test."), T.DS)
    assert ds.kind == Kind.NO_DATA and ds.authority[0].name == N("sem.test.")


def test_relativized_zone_is_rejected() -> None:
    zone = dns.zone.from_text(child_zone(), relativize=True)
    with pytest.raises(ZoneIndexError, match="relativize=False"):
        Authority(ZoneCatalog(zones={N("child.sem.test."): zone}))


def test_indexes_of_unchanged_zones_are_reused(authority: Authority) -> None:
    catalog = authority.catalog.replacing({})
    again = Authority(catalog, previous=authority)
    assert again.indexes[N("sem.test.")] is authority.indexes[N("sem.test.")]
