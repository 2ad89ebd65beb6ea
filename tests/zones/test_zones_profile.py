"""Parsing `_route` TXT records into RoutingProfile / RouteSettings, and their syntax errors."""
from __future__ import annotations

import dns.name
import dns.zone
import pytest

from zones.profile import ProfileSyntaxError, RouteSettings, find_route_nodes, parse_profiles

HEAD = """$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster 2026112301 3600 900 1209600 300
@ IN NS ns1
ns1 IN A 127.0.0.1
"""

GOOD = HEAD + """
_route IN TXT "v=semroute1" "route-ttl=120" "th.keyword=0.7" "th.embed=0.4" "th.margin=0.05"
cats._route IN TXT "v=semroute1" "desc=All about cats"
cats._route IN TXT "kw=cat,kitten, purr" "kw=litter box"
cats._route IN TXT "ex=Why does my cat knock things off the table?"
dogs._route IN TXT "v=semroute1" "desc=Dogs" "kw=dog,puppy" "ex=How often should a puppy eat?" "th.embed=0.6"
_route.sub IN TXT "v=semroute1"
a._route.sub IN TXT "v=semroute1" "kw=alpha"
"""


def zone_of(text: str) -> dns.zone.Zone:
    return dns.zone.from_text(text, relativize=False)


ORIGIN = dns.name.from_text("example.test.")


def test_parse_settings_and_profiles() -> None:
    table = parse_profiles(zone_of(GOOD), ORIGIN)
    assert table.node == ORIGIN
    assert table.settings == RouteSettings(route_ttl=120, keyword_threshold=0.7, embed_threshold=0.4,
                                           margin_threshold=0.05)
    cats, dogs = table.profiles
    assert cats.child == dns.name.from_text("cats.example.test.")
    assert cats.description == "All about cats"
    assert cats.keywords == ("cat", "kitten", "litter box", "purr")
    assert cats.exemplars == ("Why does my cat knock things off the table?",)
    assert cats.embed_threshold is None
    assert dogs.embed_threshold == 0.6


def test_relativized_zone_and_relative_node() -> None:
    zone = dns.zone.from_text(GOOD, relativize=True)
    table = parse_profiles(zone, dns.name.empty)
    assert [str(p.child) for p in table.profiles] == ["cats.example.test.", "dogs.example.test."]


def test_find_route_nodes_lists_every_node() -> None:
    nodes = find_route_nodes(zone_of(GOOD))
    assert nodes == [ORIGIN, dns.name.from_text("sub.example.test.")]
    sub = parse_profiles(zone_of(GOOD), nodes[1])
    assert [p.child.labels[0] for p in sub.profiles] == [b"a"]
    assert sub.settings == RouteSettings()


def test_zone_without_profiles() -> None:
    zone = zone_of(HEAD)
    assert find_route_nodes(zone) == []
    assert parse_profiles(zone, ORIGIN).profiles == ()


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ('x._route IN TXT "v=semroute1" "colour=blue" "kw=a"', "unknown key 'colour'"),
        ('x._route IN TXT "kw=a"', "missing v=semroute1"),
        ('x._route IN TXT "v=semroute2" "kw=a"', "unsupported version"),
        ('x._route IN TXT "v=semroute1" "just words"', "is not key=value"),
        ('x._route IN TXT "v=semroute1" "kw=a,,b"', "empty keyword"),
        ('x._route IN TXT "v=semroute1" "ex="', "empty ex="),
        ('x._route IN TXT "v=semroute1" "desc=only a description"', "at least one kw= or ex="),
        ('x._route IN TXT "v=semroute1" "kw=a" "th.embed=1.5"', "outside 0..1"),
        ('x._route IN TXT "v=semroute1" "kw=a" "th.embed=high"', "is not a number"),
        ('x._route IN TXT "v=semroute1" "kw=a" "route-ttl=60"', "unknown key 'route-ttl'"),
        ('_route IN TXT "v=semroute1" "route-ttl=-5"', "is not a TTL"),
        ('_route IN TXT "v=semroute1" "kw=a"', "unknown key 'kw'"),
    ],
)
def test_syntax_errors_name_the_owner(record: str, needle: str) -> None:
    zone = zone_of(HEAD + record + "\n")
    with pytest.raises(ProfileSyntaxError) as info:
        parse_profiles(zone, ORIGIN)
    assert needle in info.value.message
    assert info.value.owner.endswith("_route.example.test.")


def test_too_deep_route_name_is_an_error() -> None:
    zone = zone_of(HEAD + 'a.b._route IN TXT "v=semroute1" "kw=a"\n')
    with pytest.raises(ProfileSyntaxError, match="at most one label"):
        find_route_nodes(zone)


def test_shipped_apex_profiles_parse() -> None:
    from pathlib import Path

    from zones.loader import load_zone

    root = Path(__file__).resolve().parents[2] / "zonefiles"
    zone = load_zone(root / "semantic.root.zone").zone
    table = parse_profiles(zone, dns.name.from_text("semantic.root."))
    labels = sorted(p.child.labels[0].decode() for p in table.profiles)
    assert labels == ["code", "creative", "finance", "legal", "medical", "science"]
    assert all(20 <= len(p.exemplars) <= 50 and p.description for p in table.profiles)
