"""Who may change what by DNS UPDATE: the update policy file (`semdns serve --update-policy FILE`).

Like BIND's `update-policy` and Knot's ACLs, in a small syntax of its own (statements end with
`;`, `#` and `//` start a comment, a statement may span lines):

    # key                           kind       where                        [types]
    grant admin.legal.semantic.root. zone      legal.semantic.root.;
    grant ops.legal.semantic.root.   subdomain _route.legal.semantic.root.  TXT;
    grant ops.legal.semantic.root.   name      contract.legal.semantic.root. NS DS;
    grant engine.semantic.root.      engine    legal.semantic.root.;
    limit per-key 64;      # records one key may hold in a zone (default 64)
    limit per-zone 1024;   # records every key together may hold in a zone (default 1024)

- `zone Z [types]`: any name in Z (the given types, or every type);
- `name N [types]`: the name N itself; `subdomain N [types]`: N and every name below it;
- `engine Z`: the engine rule in Z (what an engine registration needs, and only that: see
  `nameserver.update.authorize`). Every key has it, without a grant, in the zone its name lies
  in (the deepest hosted zone enclosing the key's name: `engine.legal.semantic.root.` in
  `legal.semantic.root.`); `engine` grants it in other zones too.

No grant lifts the SOA and the apex NS (never updatable). Names are absolute (a missing final
dot is added). A broken file is a `UpdatePolicyError` naming `file:line`. This module is sans-IO
but for `load_update_policy`, which reads the file and parses it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import dns.exception
import dns.name
import dns.rdatatype

from zones.errors import ZonesError

Kind = Literal["zone", "name", "subdomain", "engine"]
KINDS: tuple[Kind, ...] = ("zone", "name", "subdomain", "engine")
DEFAULT_PER_KEY = 64  # ten engine registrations (six records each) and a little spare
DEFAULT_PER_ZONE = 1024
LIMITS = ("per-key", "per-zone")

_COMMENT = re.compile(r"#.*|//.*")
_TOKEN = re.compile(r'"[^"]*"|;|[^\s;]+')


class UpdatePolicyError(ZonesError):
    """An update policy file that cannot be read or parsed (`file:line: message`)."""


@dataclass(frozen=True)
class Grant:
    """`grant <key> <kind> <where> [types];`: `types` None means every type."""

    key: dns.name.Name
    kind: Kind
    where: dns.name.Name
    types: frozenset[dns.rdatatype.RdataType] | None = None

    def covers(self, origin: dns.name.Name, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> bool:
        """Does this grant (other than `engine`) allow changing `rdtype` at `name` in zone `origin`?"""
        if self.types is not None and rdtype not in self.types:
            return False
        if self.kind == "zone":
            return self.where == origin
        if self.kind == "name":
            return name == self.where
        if self.kind == "subdomain":
            return name.is_subdomain(self.where)
        return False


@dataclass(frozen=True)
class Limits:
    per_key: int = DEFAULT_PER_KEY
    per_zone: int = DEFAULT_PER_ZONE


@dataclass(frozen=True)
class UpdatePolicy:
    """The grants and limits; with no file, no grant and the default limits (engine rule only)."""

    grants: tuple[Grant, ...] = ()
    limits: Limits = field(default_factory=Limits)

    def explicit(self, key: dns.name.Name, origin: dns.name.Name, name: dns.name.Name,
                 rdtype: dns.rdatatype.RdataType) -> bool:
        """Does a `zone`, `name` or `subdomain` grant let `key` change `rdtype` at `name`?"""
        return any(g.key == key and g.covers(origin, name, rdtype) for g in self.grants)

    def engine_zones(self, key: dns.name.Name) -> frozenset[dns.name.Name]:
        """The zones an `engine` grant names for `key` (its own zone aside: that one is implicit)."""
        return frozenset(g.where for g in self.grants if g.key == key and g.kind == "engine")

    def touches(self, key: dns.name.Name, origin: dns.name.Name) -> bool:
        """Does any grant of `key` reach into zone `origin` (so that it may send UPDATEs there)?"""
        for g in self.grants:
            if g.key != key:
                continue
            if g.kind in ("zone", "engine") and g.where == origin:
                return True
            if g.kind in ("name", "subdomain") and g.where.is_subdomain(origin):
                return True
            if g.kind == "subdomain" and origin.is_subdomain(g.where):  # a grant above the zone covers it
                return True
        return False


def parse_update_policy(text: str, source: str = "<string>") -> UpdatePolicy:
    """The policy in `text`; `source` names the file in error messages."""
    grants: list[Grant] = []
    limits: dict[str, int] = {}
    for line, words in _statements(text, source):
        where = f"{source}:{line}"
        if words[0] == "grant":
            grants.append(_grant(words, where))
        elif words[0] == "limit":
            if len(words) != 3 or words[1] not in LIMITS:
                raise UpdatePolicyError(f"{where}: expected 'limit per-key|per-zone N;', got {' '.join(words)!r}")
            if not words[2].isdigit() or int(words[2]) < 1:
                raise UpdatePolicyError(f"{where}: limit {words[1]} must be a whole number >= 1, not {words[2]!r}")
            limits[words[1]] = int(words[2])
        else:
            raise UpdatePolicyError(f"{where}: unknown statement {words[0]!r} (grant or limit)")
    return UpdatePolicy(tuple(grants), Limits(per_key=limits.get("per-key", DEFAULT_PER_KEY),
                                              per_zone=limits.get("per-zone", DEFAULT_PER_ZONE)))


def load_update_policy(path: str | Path) -> UpdatePolicy:
    """Read and parse a policy file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UpdatePolicyError(f"{path}: cannot read update policy: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_update_policy(text, str(path))


def _statements(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line of the first word, words) of each `;`-ended statement."""
    words: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        for token in _TOKEN.findall(_COMMENT.sub("", raw)):
            if token == ";":
                if not words:
                    raise UpdatePolicyError(f"{source}:{number}: empty statement (a stray ';')")
                yield start, words
                words = []
                continue
            if not words:
                start = number
            words.append(token.strip('"'))
    if words:
        raise UpdatePolicyError(f"{source}:{start}: statement {' '.join(words)!r} does not end with ';'")


def _grant(words: list[str], where: str) -> Grant:
    if len(words) < 4 or words[2] not in KINDS:
        raise UpdatePolicyError(
            f"{where}: expected 'grant KEY zone|name|subdomain|engine NAME [TYPES];', got {' '.join(words)!r}")
    kind: Kind = words[2]  # checked against KINDS just above
    key, target = _name(words[1], where), _name(words[3], where)
    if kind == "engine" and len(words) > 4:
        raise UpdatePolicyError(f"{where}: an engine grant takes no types (the engine rule fixes them)")
    types = frozenset(_type(t, where) for t in words[4:]) or None
    return Grant(key, kind, target, types)


def _name(text: str, where: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise UpdatePolicyError(f"{where}: bad name {text!r}: {exc}") from None


def _type(text: str, where: str) -> dns.rdatatype.RdataType:
    try:
        rdtype = dns.rdatatype.from_text(text)
    except dns.exception.DNSException:
        raise UpdatePolicyError(f"{where}: unknown record type {text!r}") from None
    if dns.rdatatype.is_metatype(rdtype) or rdtype == dns.rdatatype.SOA:
        raise UpdatePolicyError(f"{where}: {text} cannot be granted (meta-type or SOA)")
    return rdtype
