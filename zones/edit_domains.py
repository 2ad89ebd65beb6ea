"""Adding and removing a domain (a child of a routing node) in a `zones.edit.ZoneEdit`.

A delegated child gets its own zonefile `<child>.zone` (SOA, NS ns1.<child>, the name server's
address, its engine) and NS + glue in the parent zone; a hosted child lives in the parent's file
(its `_llm._tcp.<child>` records). Either way its routing profile `<label>._route.<parent>` goes
into the parent zone's routes file. Removal undoes all of that (see `zones.edit_ops`).
"""
from __future__ import annotations

import dns.name
import dns.rdatatype

from zones.edit import NewRecord, ZoneEdit
from zones.edit_ops import (
    DomainSpec,
    add_engine,
    address_type,
    as_name,
    check_string,
    engine_records,
    keyword_strings,
    profile_owner,
)
from zones.edit_text import EditError, Entry, quote
from zones.loader import ZONE_SUFFIX

NS = dns.rdatatype.NS
ROUTE = b"_route"


def _routes_file(edit: ZoneEdit, zone: dns.name.Name, node: dns.name.Name) -> str:
    """The file of `zone` that holds profiles (of `node`'s children first); made when none does."""
    profiles = [e for e in edit.entries(zone) if e.rdtype == dns.rdatatype.TXT and ROUTE in e.owner.labels]
    for entry in profiles:
        if entry.owner.labels[entry.owner.labels.index(ROUTE) + 1 :] == node.labels:
            return entry.file
    if profiles:
        return profiles[-1].file
    key = f"routes/{zone.to_text()}routes"
    edit.create(key, (
        f"; Routing profiles of the children of {zone} (included by ../{edit.zones()[zone]}).\n"
        "; Format: see ARCHITECTURE.md 7.1. Made by `semdns zone add-domain`.\n\n"
        '_route  IN TXT "v=semroute1"\n'
    ))
    zonefile = edit.zones()[zone]
    lines = edit.lines(zonefile)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines += ["; Routing profiles of this zone's children\n", f"$INCLUDE {key} {zone}\n"]
    edit.set_lines(zonefile, lines)
    return key


def _profile_records(child: dns.name.Name, spec: DomainSpec) -> list[NewRecord]:
    owner = profile_owner(child)
    head = ["v=semroute1", check_string("desc", spec.description)]
    records: list[NewRecord] = [(owner, "TXT", " ".join(quote(s) for s in head), None)]
    words = [w.strip() for w in spec.keywords if w.strip()]
    for word in words:
        if "," in word:
            raise EditError(f"{word!r}: a keyword is a word or phrase without commas")
        check_string("kw", word)
    if words:
        records += [(owner, "TXT", quote(s), None) for s in keyword_strings(words)]
    records += [(owner, "TXT", quote(check_string("ex", ex)), None) for ex in spec.exemplars]
    return records


def _child_zonefile(edit: ZoneEdit, child: dns.name.Name, parent_zone: dns.name.Name, spec: DomainSpec) -> str:
    serial = int(edit.today.strftime("%Y%m%d")) * 100 + 1
    c = child.to_text()
    glue = " ".join(spec.ns_addresses)
    lines = [
        f"; {c} -- {spec.description[:70]}\n",
        ";\n",
        f"; Delegated from {parent_zone} (NS ns1.{c}, glue {glue}).\n",
        "; Made by `semdns zone add-domain`; edit freely (comments and layout are kept by the\n",
        "; `semdns zone` commands).\n",
        "\n",
        f"$ORIGIN {c}\n",
        "$TTL 3600\n",
        "\n",
        f"@       IN  SOA ns1.{c} hostmaster.{c} (\n",
        f"                {serial}  ; serial, YYYYMMDDNN\n",
        "                3600        ; refresh (1 h)\n",
        "                900         ; retry (15 min)\n",
        "                1209600     ; expire (14 d)\n",
        "                300 )       ; negative TTL (5 min, RFC 2308)\n",
        "\n",
        f"        IN  NS  ns1.{c}\n",
        "\n",
        "; --- the zone's name server ---\n",
    ]
    lines += [f"ns1     IN  {address_type(a):<4}{a}\n" for a in spec.ns_addresses]
    return "".join(lines)


def add_domain(edit: ZoneEdit, child: str | dns.name.Name, spec: DomainSpec) -> None:
    child = as_name(child)
    node = child.parent()
    zone = edit.zone_of(child)
    if child in edit.zones():
        raise EditError(f"{child} exists already ({edit.zones()[child]})")
    entries = edit.entries(zone)
    owner = profile_owner(child)
    if any(e.owner.is_subdomain(child) or e.owner == owner for e in entries):
        raise EditError(f"{child} exists already in {edit.zones()[zone]} (records or a profile)")
    cuts = [e.owner for e in entries if e.rdtype == NS and e.owner != zone]
    if any(child.is_subdomain(cut) for cut in cuts):
        raise EditError(f"{child} is below a delegation of {zone}: add it in the child zone")
    label = child.labels[0].decode()
    profile = _profile_records(child, spec)
    routes = _routes_file(edit, zone, node)
    edit.add_records(routes, profile, comment=[f"--- {label}: {spec.description[:80]} ---"])
    zonefile = edit.zones()[zone]
    if spec.ns_addresses:
        ns = dns.name.Name((b"ns1",) + child.labels)
        rel = ns.relativize(zone).to_text()
        records: list[NewRecord] = [(child, "NS", ns.to_text(), None)]
        records += [(ns, address_type(a), a, None) for a in spec.ns_addresses]
        delegation = [e for e in edit.entries(zone, zonefile) if any(
            e.owner.is_subdomain(c) for c in cuts)]
        if delegation:
            edit.add_records(zonefile, records, after=delegation[-1])
        else:
            edit.add_records(zonefile, records, comment=[
                f"--- delegation: {child} ---", f"glue: {rel} lives inside the child zone"])
        key = child.to_text() + ZONE_SUFFIX.lstrip(".")
        edit.create(key, _child_zonefile(edit, child, zone, spec))
        if spec.engine is not None:
            add_engine(edit, child, spec.engine)
    elif spec.engine is not None:
        srv, txt, addresses = engine_records(edit, zone, child, spec.engine, edit.entries(zone))
        edit.add_records(zonefile, srv + txt + addresses,
                         comment=[f"{child} (hosted here): {spec.description[:60]}"])


def _fragments_only_of(edit: ZoneEdit, zone: dns.name.Name) -> list[str]:
    mine = [key for key, _ in edit.zone_files(zone)][1:]
    others = {key for origin in edit.zones() if origin != zone for key, _ in edit.zone_files(origin)}
    return [key for key in mine if key not in others]


def remove_domain(edit: ZoneEdit, child: str | dns.name.Name) -> None:
    child = as_name(child)
    zones = edit.zones()
    below = sorted(str(o) for o in zones if o != child and o.is_subdomain(child))
    if below:
        raise EditError(f"{child} has zones of its own below it ({', '.join(below)}): remove them first")
    label = child.labels[0].decode()
    found = False
    if len(child) >= 3:
        try:
            parent = edit.zone_of(child, below=child)
        except EditError:
            parent = None
        if parent is not None:
            owner = profile_owner(child)
            doomed: list[Entry] = [e for e in edit.entries(parent)
                                   if e.owner.is_subdomain(child) or e.owner == owner]
            if doomed:
                found = True
                edit.remove_entries(doomed, mention=label)
    if child in zones:
        found = True
        for key in _fragments_only_of(edit, child):
            edit.delete(key)
        edit.delete(zones[child])
    if not found:
        raise EditError(f"{child}: no zonefile, records or profile to remove")
