"""Routing profiles: the `_route` TXT records of a zone, parsed into typed objects.

Records (see notes/hierarchy.md), every character-string `key=value`:
  `_route.<node>.`          zone-wide settings: `v=semroute1`, `route-ttl=`, `th.keyword=`,
                            `th.embed=`, `th.margin=`, `th.head=`, `th.exemplar=` (all optional but `v`);
  `<child>._route.<node>.`  one child's profile, merged over all its TXT RRs: `v=semroute1`,
                            `desc=`, `kw=<word or phrase>[,<more>]`, `ex=<exemplar>`, `th.embed=`.
`[<i>.]_head._route.<node>.` is the node's learned head (`zones.head`), skipped here.
Unknown keys, bad values and misplaced names raise `ProfileSyntaxError(owner, message)`.
This module is pure: no models, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.zone

from common.names import zone_origin
from zones.errors import ZonesError

ROUTE_LABEL = b"_route"
VERSION = "semroute1"

_SETTINGS_KEYS = frozenset({"v", "route-ttl", "th.keyword", "th.embed", "th.margin", "th.head", "th.exemplar"})
HEAD_LABEL = b"_head"  # `[<i>.]_head._route.<node>`: the node's learned head (zones.head), not a profile
_PROFILE_KEYS = frozenset({"v", "desc", "kw", "ex", "th.embed"})
_MAX_TTL = 2**31 - 1


class ProfileSyntaxError(ZonesError):
    """A `_route` record that does not follow the semroute1 format."""

    def __init__(self, owner: dns.name.Name | str, message: str) -> None:
        self.owner = str(owner)
        self.message = message
        super().__init__(f"{self.owner}: {message}")


@dataclass(frozen=True)
class RouteSettings:
    """Zone-wide routing settings of one node (`_route.<node>.`)."""

    route_ttl: int = 300
    keyword_threshold: float = 0.80
    embed_threshold: float = 0.30
    margin_threshold: float = 0.04
    head_threshold: float = 0.0  # below it a head's decision stops here (the general engine)
    exemplar_threshold: float = 1.0  # an exemplar this similar decides before the head (1: never)


@dataclass(frozen=True)
class RoutingProfile:
    """What one child of a route node is about."""

    child: dns.name.Name  # absolute, e.g. legal.semantic.root.
    description: str
    keywords: tuple[str, ...]
    exemplars: tuple[str, ...]
    embed_threshold: float | None = None  # per-child override of RouteSettings.embed_threshold


@dataclass(frozen=True)
class RouteTable:
    """All routing data of one node: its settings and its children's profiles (sorted by name)."""

    node: dns.name.Name
    settings: RouteSettings
    profiles: tuple[RoutingProfile, ...]


def find_route_nodes(zone: dns.zone.Zone) -> list[dns.name.Name]:
    """Every (absolute) node of `zone` that has `_route` data, sorted canonically."""
    nodes: set[dns.name.Name] = set()
    origin = zone_origin(zone)
    for name in zone.nodes:
        absolute = name.derelativize(origin)
        split = _split_route_name(absolute)
        if split is not None and _txt_strings(zone, absolute):
            nodes.add(split[1])
    return sorted(nodes)


def parse_profiles(zone: dns.zone.Zone, node: dns.name.Name) -> RouteTable:
    """Parse the settings and child profiles stored under `_route.<node>` in `zone`."""
    origin = zone_origin(zone)
    node = node.derelativize(origin)
    route_name = dns.name.Name((ROUTE_LABEL,) + node.labels)
    settings = RouteSettings()
    settings_strings = _txt_strings(zone, route_name)
    if settings_strings:
        settings = _parse_settings(route_name, settings_strings)
    profiles: list[RoutingProfile] = []
    for name in zone.nodes:
        absolute = name.derelativize(origin)
        split = _split_route_name(absolute)
        if split is None or split[1] != node:
            continue
        child_label, _ = split
        if child_label is None:
            continue
        strings = _txt_strings(zone, absolute)
        if strings:
            child = dns.name.Name((child_label,) + node.labels)
            profiles.append(_parse_profile(absolute, child, strings))
    profiles.sort(key=lambda p: p.child)
    return RouteTable(node=node, settings=settings, profiles=tuple(profiles))


def _split_route_name(name: dns.name.Name) -> tuple[bytes | None, dns.name.Name] | None:
    """(child label or None, node) for `[child.]_route.<node>`; None for names without `_route`."""
    labels = [label.lower() for label in name.labels]
    if ROUTE_LABEL not in labels:
        return None
    index = labels.index(ROUTE_LABEL)
    if HEAD_LABEL in labels[:index]:
        return None
    node = dns.name.Name(name.labels[index + 1 :])
    if index == 0:
        return None, node
    if index == 1:
        return name.labels[0].lower(), node
    raise ProfileSyntaxError(name, "a _route name has at most one label (the child) before _route")


def _txt_strings(zone: dns.zone.Zone, name: dns.name.Name) -> list[str]:
    """All character-strings of the TXT RRset at `name` (empty when there is none)."""
    rdataset = zone.get_rdataset(name, dns.rdatatype.TXT)
    if rdataset is None:
        return []
    strings: list[str] = []
    for rdata in rdataset:
        for raw in rdata.strings:
            try:
                strings.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ProfileSyntaxError(name, f"character-string is not UTF-8: {raw[:40]!r}") from exc
    return strings


def _key_values(owner: dns.name.Name, strings: list[str], allowed: frozenset[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in strings:
        key, sep, value = item.partition("=")
        if not sep:
            raise ProfileSyntaxError(owner, f"character-string {item[:40]!r} is not key=value")
        key = key.strip().lower()
        if key not in allowed:
            raise ProfileSyntaxError(owner, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        pairs.append((key, value.strip()))
    versions = {value for key, value in pairs if key == "v"}
    if not versions:
        raise ProfileSyntaxError(owner, f"missing v={VERSION}")
    if versions != {VERSION}:
        raise ProfileSyntaxError(owner, f"unsupported version {sorted(versions)} (expected v={VERSION})")
    return pairs


def _fraction(owner: dns.name.Name, key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ProfileSyntaxError(owner, f"{key}={value!r} is not a number") from None
    if not 0.0 <= number <= 1.0:
        raise ProfileSyntaxError(owner, f"{key}={value} is outside 0..1")
    return number


def _parse_settings(owner: dns.name.Name, strings: list[str]) -> RouteSettings:
    defaults = RouteSettings()
    values = {
        "route_ttl": defaults.route_ttl,
        "keyword_threshold": defaults.keyword_threshold,
        "embed_threshold": defaults.embed_threshold,
        "margin_threshold": defaults.margin_threshold,
        "head_threshold": defaults.head_threshold,
        "exemplar_threshold": defaults.exemplar_threshold,
    }
    fields = {"th.keyword": "keyword_threshold", "th.embed": "embed_threshold", "th.margin": "margin_threshold",
              "th.head": "head_threshold", "th.exemplar": "exemplar_threshold"}
    for key, value in _key_values(owner, strings, _SETTINGS_KEYS):
        if key == "route-ttl":
            if not value.isdigit() or int(value) > _MAX_TTL:
                raise ProfileSyntaxError(owner, f"route-ttl={value!r} is not a TTL (0..{_MAX_TTL})")
            values["route_ttl"] = int(value)
        elif key in fields:
            values[fields[key]] = _fraction(owner, key, value)
    return RouteSettings(**values)  # type: ignore[arg-type]


def _parse_profile(owner: dns.name.Name, child: dns.name.Name, strings: list[str]) -> RoutingProfile:
    descriptions: list[str] = []
    keywords: list[str] = []
    exemplars: list[str] = []
    embed_threshold: float | None = None
    for key, value in _key_values(owner, strings, _PROFILE_KEYS):
        if key == "desc":
            descriptions.append(value)
        elif key == "kw":
            words = [word.strip() for word in value.split(",")]
            if not all(words):
                raise ProfileSyntaxError(owner, f"empty keyword in kw={value[:40]!r}")
            keywords.extend(words)
        elif key == "ex":
            if not value:
                raise ProfileSyntaxError(owner, "empty ex=")
            exemplars.append(value)
        elif key == "th.embed":
            embed_threshold = _fraction(owner, key, value)
    if len(descriptions) > 1:
        raise ProfileSyntaxError(owner, "more than one desc=")
    if not keywords and not exemplars:
        raise ProfileSyntaxError(owner, "a profile needs at least one kw= or ex=")
    return RoutingProfile(
        child=child,
        description=descriptions[0] if descriptions else "",
        keywords=tuple(sorted(set(keywords))),
        exemplars=tuple(sorted(set(exemplars))),
        embed_threshold=embed_threshold,
    )
