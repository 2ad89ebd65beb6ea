"""The edits `semdns zone` offers, on a `zones.edit.ZoneEdit`: domains, routing profiles, engines.

- `add_domain` / `remove_domain`: a child of a node, delegated (its own `<child>.zone`, NS + glue in
  the parent) or hosted in the parent's file (its `_llm._tcp` records there), with its routing
  profile `<label>._route.<parent>` TXT in the parent zone's routes file (`routes/<zone>routes`,
  made and `$INCLUDE`d when the zone has none). Removing takes every record at or below the child
  from the parent zone, its profile, and its zonefile with the fragments no other zone includes.
- `add_exemplars` / `remove_exemplars`, `add_keywords` / `remove_keywords`: `ex=` and `kw=` strings
  of a child's profile (one TXT record per exemplar, as the shipped files are written).
- `add_engine` / `remove_engine`: `_llm._tcp.<node>` SRV (+ DNS-SD TXT when there is none) and the
  target's A/AAAA; removing an engine drops its target's addresses when nothing else uses them.
Each raises `EditError` for what cannot be done; the caller validates the result (zones.check).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype

from zones.edit import NewRecord, ZoneEdit
from zones.edit_text import EditError, Entry, quote

TXT, SRV, NS, A, AAAA = (dns.rdatatype.TXT, dns.rdatatype.SRV, dns.rdatatype.NS,
                         dns.rdatatype.A, dns.rdatatype.AAAA)
ROUTE = b"_route"
LLM_TCP = (b"_llm", b"_tcp")
MAX_STRING = 255
ENGINE_TTL = 300


@dataclass(frozen=True)
class EngineSpec:
    port: int
    addresses: tuple[str, ...] = ()
    target: str | None = None  # as written in the zonefile (relative to its origin); default llm<N>.<node>
    priority: int = 10
    weight: int = 10
    attributes: tuple[str, ...] = ()  # DNS-SD TXT key=value (used when the node has no TXT yet)
    ttl: int = ENGINE_TTL


@dataclass(frozen=True)
class DomainSpec:
    description: str
    keywords: tuple[str, ...] = ()
    exemplars: tuple[str, ...] = ()
    ns_addresses: tuple[str, ...] = ()  # non-empty: delegate to ns1.<child> with this glue
    engine: EngineSpec | None = None
    extra: dict[str, str] = field(default_factory=dict)


def as_name(text: str | dns.name.Name) -> dns.name.Name:
    return text if isinstance(text, dns.name.Name) else dns.name.from_text(text.rstrip(".") + ".")


def profile_owner(child: dns.name.Name) -> dns.name.Name:
    if len(child) < 3:
        raise EditError(f"{child}: the root and top-level names have no parent node")
    return dns.name.Name(child.labels[:1] + (ROUTE,) + child.parent().labels)


def service_owner(node: dns.name.Name) -> dns.name.Name:
    return dns.name.Name(LLM_TCP + node.labels)


def address_type(address: str) -> str:
    try:
        return "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
    except ValueError:
        raise EditError(f"{address}: not an IPv4 or IPv6 address") from None


def check_string(key: str, value: str) -> str:
    text = f"{key}={value.strip()}"
    if not value.strip():
        raise EditError(f"{key}= needs a value")
    if len(text.encode()) > MAX_STRING:
        raise EditError(f"{key}= string is {len(text.encode())} octets; a TXT string holds {MAX_STRING}")
    return text


def keyword_strings(words: list[str]) -> list[str]:
    strings: list[str] = []
    current = "kw="
    for word in words:
        extra = word if current == "kw=" else "," + word
        if len((current + extra).encode()) > MAX_STRING:
            strings.append(current)
            current = "kw=" + word
        else:
            current += extra
    strings.append(current)
    return strings


# --- routing profiles ---------------------------------------------------------------------------
def _profile_entries(edit: ZoneEdit, child: dns.name.Name) -> tuple[dns.name.Name, list[Entry]]:
    owner = profile_owner(child)
    zone = edit.zone_of(owner)
    return zone, [e for e in edit.entries(zone) if e.owner == owner and e.rdtype == TXT]


def _existing_profile(edit: ZoneEdit, child: dns.name.Name) -> tuple[dns.name.Name, list[Entry]]:
    zone, entries = _profile_entries(edit, child)
    if not entries:
        raise EditError(f"{child} has no routing profile ({profile_owner(child)} TXT)")
    return zone, entries


def _last_with(entries: list[Entry], key: str) -> Entry:
    keyed = [e for e in entries if any(s.startswith(key + "=") for s in e.strings())]
    return (keyed or entries)[-1]


def add_exemplars(edit: ZoneEdit, child: str | dns.name.Name, exemplars: list[str]) -> None:
    child = as_name(child)
    _zone, entries = _existing_profile(edit, child)
    have = {s for e in entries for s in e.strings()}
    records: list[NewRecord] = []
    for exemplar in exemplars:
        text = check_string("ex", exemplar)
        if text in have:
            raise EditError(f"{child}: exemplar already there: {exemplar.strip()!r}")
        have.add(text)
        records.append((profile_owner(child), "TXT", quote(text), None))
    after = _last_with(entries, "ex")
    edit.add_records(after.file, records, after=after)


def remove_exemplars(edit: ZoneEdit, child: str | dns.name.Name, exemplars: list[str]) -> None:
    child = as_name(child)
    for exemplar in exemplars:
        _zone, entries = _existing_profile(edit, child)
        text = f"ex={exemplar.strip()}"
        holders = [e for e in entries if text in e.strings()]
        if not holders:
            raise EditError(f"{child}: no exemplar {exemplar.strip()!r} in its profile")
        for entry in reversed(holders):
            kept = [s for s in entry.strings() if s != text]
            if kept:
                edit.replace_entry(entry, " ".join(quote(s) for s in kept))
            else:
                edit.remove_entries([entry])


def add_keywords(edit: ZoneEdit, child: str | dns.name.Name, keywords: list[str]) -> None:
    child = as_name(child)
    _zone, entries = _existing_profile(edit, child)
    have = {w.strip().lower() for e in entries for s in e.strings() if s.startswith("kw=")
            for w in s[3:].split(",")}
    words: list[str] = []
    for keyword in keywords:
        word = keyword.strip()
        if not word or "," in word:
            raise EditError(f"{keyword!r}: a keyword is a non-empty word or phrase without commas")
        if word.lower() in have:
            raise EditError(f"{child}: keyword already there: {word!r}")
        have.add(word.lower())
        check_string("kw", word)
        words.append(word)
    rdata = " ".join(quote(s) for s in keyword_strings(words))
    after = _last_with(entries, "kw")
    edit.add_records(after.file, [(profile_owner(child), "TXT", rdata, None)], after=after)


def remove_keywords(edit: ZoneEdit, child: str | dns.name.Name, keywords: list[str]) -> None:
    child = as_name(child)
    _zone, entries = _existing_profile(edit, child)
    doomed = {k.strip().lower() for k in keywords}
    present = {w.strip().lower() for e in entries for s in e.strings() if s.startswith("kw=")
               for w in s[3:].split(",")}
    missing = sorted(doomed - present)
    if missing:
        raise EditError(f"{child}: no keyword {', '.join(repr(m) for m in missing)} in its profile")
    for entry in reversed(entries):  # bottom up: line numbers above stay valid
        strings = entry.strings()
        kept: list[str] = []
        for s in strings:
            if s.startswith("kw="):
                words = [w for w in s[3:].split(",") if w.strip().lower() not in doomed]
                if words:
                    kept.append("kw=" + ",".join(words))
            else:
                kept.append(s)
        if kept == strings:
            continue
        if kept:
            edit.replace_entry(entry, " ".join(quote(s) for s in kept))
        else:
            edit.remove_entries([entry])


# --- engines ------------------------------------------------------------------------------------
def _free_target(node: dns.name.Name, taken: set[dns.name.Name]) -> dns.name.Name:
    n = 1
    while dns.name.Name((f"llm{n}".encode(),) + node.labels) in taken:
        n += 1
    return dns.name.Name((f"llm{n}".encode(),) + node.labels)


def engine_records(edit: ZoneEdit, zone: dns.name.Name, node: dns.name.Name, spec: EngineSpec,
                   entries: list[Entry]) -> tuple[list[NewRecord], list[NewRecord], list[NewRecord]]:
    """The SRV, TXT (when the node has none) and address records of a new engine of `node`."""
    owner = service_owner(node)
    srvs = [e for e in entries if e.owner == owner and e.rdtype == SRV]
    taken = {e.owner for e in entries}
    target = (dns.name.from_text(spec.target, zone) if spec.target
              else _free_target(node, taken | {e.rdata().target for e in srvs}))  # type: ignore[attr-defined]
    if any(e.rdata().target == target for e in srvs):  # type: ignore[attr-defined]
        raise EditError(f"{owner}: an SRV for {target} is there already")
    if not 0 < spec.port < 65536:
        raise EditError(f"port {spec.port}: between 1 and 65535")
    rel = target.relativize(zone).to_text() if target.is_subdomain(zone) else target.to_text()
    srv: list[NewRecord] = [(owner, "SRV", f"{spec.priority} {spec.weight} {spec.port} {rel}", spec.ttl)]
    txt: list[NewRecord] = []
    if not any(e.owner == owner and e.rdtype == TXT for e in entries):
        attributes = list(spec.attributes) or ["api=openai-v1", "path=/v1"]
        for attribute in attributes:
            if "=" not in attribute or attribute.startswith("="):
                raise EditError(f"{attribute!r}: DNS-SD attributes are key=value")
        strings = ["txtvers=1", *[a for a in attributes if not a.startswith("txtvers=")]]
        txt = [(owner, "TXT", " ".join(quote(s) for s in strings), spec.ttl)]
    have = {(e.owner, e.rdtype, e.rdata_text) for e in entries}
    addresses: list[NewRecord] = [(target, address_type(a), a, spec.ttl) for a in spec.addresses]
    addresses = [r for r in addresses if (r[0], dns.rdatatype.from_text(r[1]), r[2]) not in have]
    if addresses and not target.is_subdomain(zone):
        raise EditError(f"{target} is outside the zone {zone}: its address belongs elsewhere")
    return srv, txt, addresses


def add_engine(edit: ZoneEdit, node: str | dns.name.Name, spec: EngineSpec) -> None:
    node = as_name(node)
    owner = service_owner(node)
    zone = edit.zone_of(owner)
    entries = edit.entries(zone)
    srv, txt, addresses = engine_records(edit, zone, node, spec, entries)
    srvs = [e for e in entries if e.owner == owner and e.rdtype == SRV]
    if not srvs:
        key = edit.zones()[zone]
        edit.add_records(key, srv + txt + addresses, comment=[f"engine of {node} (semdns zone add-engine)"])
        return
    targets = {e.rdata().target for e in srvs}  # type: ignore[attr-defined]
    edit.add_records(srvs[-1].file, srv + txt, after=srvs[-1])
    if addresses:
        entries = edit.entries(zone)
        near = [e for e in entries if e.owner in targets and e.rdtype in (A, AAAA)]
        near = near or [e for e in entries if e.owner == owner]
        edit.add_records(near[-1].file, addresses, after=near[-1])


def remove_engine(edit: ZoneEdit, node: str | dns.name.Name, target: str | None = None,
                  port: int | None = None) -> None:
    node = as_name(node)
    owner = service_owner(node)
    zone = edit.zone_of(owner)
    entries = edit.entries(zone)
    srvs = [e for e in entries if e.owner == owner and e.rdtype == SRV]
    wanted = dns.name.from_text(target, zone) if target else None
    doomed = [e for e in srvs
              if (wanted is None or e.rdata().target == wanted)  # type: ignore[attr-defined]
              and (port is None or e.rdata().port == port)]  # type: ignore[attr-defined]
    if not doomed:
        raise EditError(f"{owner}: no SRV record{' for ' + str(wanted) if wanted else ''}"
                        f"{' port ' + str(port) if port else ''}")
    gone = set(doomed)
    if len(doomed) == len(srvs):
        gone |= {e for e in entries if e.owner == owner and e.rdtype == TXT}
    gone |= _unused_addresses(entries, gone, {e.rdata().target for e in doomed})  # type: ignore[attr-defined]
    # the last engine of a node gone: so is a comment paragraph left naming the node
    mention = node.labels[0].decode() if len(doomed) == len(srvs) and len(node) > 1 else None
    edit.remove_entries(sorted(gone, key=lambda e: (e.file, e.start)), mention=mention)


def _unused_addresses(entries: list[Entry], gone: set[Entry], targets: set[dns.name.Name]) -> set[Entry]:
    used: set[dns.name.Name] = set()
    for e in entries:
        if e not in gone and e.rdtype in (SRV, NS, dns.rdatatype.MX, dns.rdatatype.CNAME):
            rdata = e.rdata()
            used.add(getattr(rdata, "target", None) or getattr(rdata, "exchange"))
    drop = targets - used
    other = {e.owner for e in entries if e.owner in drop and e.rdtype not in (A, AAAA)}
    return {e for e in entries if e.owner in drop - other and e.rdtype in (A, AAAA)}
