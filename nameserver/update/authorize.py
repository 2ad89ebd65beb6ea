"""May this key make this UPDATE? The update policy (`zones.update_policy`) applied to one message.

Every record an UPDATE adds or deletes must be allowed, else the whole UPDATE is REFUSED with
EDE 18 (Prohibited) and a text saying which record and why; nothing changes. A record is allowed
by an explicit grant (`zone`, `name`, `subdomain`) of the key, or by the *engine rule* where the
key has it (its own zone, and zones of `engine` grants). The engine rule lets a key add and
remove exactly what an engine registration is (`engines.registration`), and only its own:

- at a service name `_llm._tcp.<domain>`: SRV records whose target the key owns, PTR records
  whose instance the key owns, and the deletion of those RRs one by one (never a whole RRset:
  it holds other engines' and the zonefile's records);
- at an instance name `<label>._llm._tcp.<domain>`: SRV (target the key owns) and TXT, when
  the key owns that name;
- at a target host name: A and AAAA, when the key owns that name;

where a key *owns* a name it created (`nameserver.update.owners`: first to add a record to a
name that held none), including names it creates in this very UPDATE: an instance name, or a
host name that an SRV of the same UPDATE points to (so an engine key cannot make up host names,
`www.<zone>` say, that no engine of its uses). Never under the engine
rule: NS, DS or any other type; names at or below a delegation (glue); routing profiles
(`_route`); the pattern library (`_codec`); the apex; wildcards; names holding zonefile records
or another key's. The SOA and the apex NS are refused before this (`apply.prescan`) for every key.
Deleting what the zone does not hold changes nothing and is allowed (an engine deregistering
after its lease expired).

Caps (`limit per-key`, `limit per-zone`): the records a key owns in a zone (at its names, and
the SRV/PTR at service names that point to them), and those every key owns together, may not
grow past the limits; an UPDATE that would is REFUSED (EDE 18) whole. Deleting always works.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import dns.edns
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from nameserver.errors import Refusal
from nameserver.update.owners import has_data, is_service
from zones.update_policy import UpdatePolicy

Owner = dns.name.Name | None
FORBIDDEN_LABELS = {b"_route": "routing profiles (_route)", b"_codec": "the pattern library (_codec)"}


def refused(text: str) -> Refusal:
    """An UPDATE the policy does not allow: REFUSED (RFC 2136 §3.3) with EDE 18 saying why."""
    return Refusal(dns.rcode.REFUSED, text, dns.edns.EDECode.PROHIBITED, text)


@dataclass(frozen=True)
class Change:
    """One thing an UPDATE does: add or delete an RR (`rdata`), delete an RRset or a name (ANY)."""

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    rdata: dns.rdata.Rdata | None
    adding: bool

    def __str__(self) -> str:
        what = "add" if self.adding else "delete"
        data = f" {self.rdata.to_text()}" if self.rdata is not None else ""
        return f"{what} {self.name} {dns.rdatatype.to_text(self.rdtype)}{data}"


def changes(updates: Iterable[dns.rrset.RRset]) -> list[Change]:
    out: list[Change] = []
    for rrset in updates:
        if rrset.deleting == dns.rdataclass.ANY:
            out.append(Change(rrset.name, rrset.rdtype, None, adding=False))
        else:
            out.extend(Change(rrset.name, rrset.rdtype, rdata, rrset.deleting is None) for rdata in rrset)
    return out


class Authorizer:
    """The policy's verdict on UPDATEs from one key to one zone (built per UPDATE)."""

    def __init__(self, policy: UpdatePolicy, key: dns.name.Name, zone: dns.zone.Zone,
                 owners: dict[dns.name.Name, Owner], engine: bool) -> None:
        self.policy = policy
        self.key = key
        self.zone = zone
        self.origin: dns.name.Name = zone.origin  # type: ignore[assignment]  # a served zone has one
        self.owners = owners
        self.engine = engine  # the key has the engine rule in this zone
        self.claimed: set[dns.name.Name] = set()

    def check(self, updates: Iterable[dns.rrset.RRset]) -> None:
        """Raise `refused(...)` for the first change the key may not make."""
        todo = changes(updates)
        targets = {c.rdata.target for c in todo  # type: ignore[union-attr]
                   if c.adding and c.rdtype == dns.rdatatype.SRV}
        self.claimed = {c.name for c in todo if c.adding and self._claimable(c.name)
                        and (is_service(c.name.parent()) or c.name in targets)}
        for change in todo:
            if self._granted(change) or self._noop(change):
                continue
            if not self.engine:
                raise refused(f"key {self.key} may not {change}: no grant covers it")
            reason = self._engine_rule(change)
            if reason is not None:
                raise refused(f"key {self.key} may not {change}: {reason}")

    def _granted(self, change: Change) -> bool:
        if change.rdtype != dns.rdatatype.ANY:
            return self.policy.explicit(self.key, self.origin, change.name, change.rdtype)
        node = self.zone.nodes.get(change.name)  # delete a name: every type it holds must be granted
        types = [r.rdtype for r in node.rdatasets] if node is not None else []
        return all(self.policy.explicit(self.key, self.origin, change.name, t) for t in types or [change.rdtype])

    def _noop(self, change: Change) -> bool:
        """A deletion of what the zone does not hold changes nothing (an engine deregistering
        after its lease expired, or twice): allowed to every key the zone accepts."""
        if change.adding:
            return False
        if change.rdtype == dns.rdatatype.ANY:
            return not has_data(self.zone, change.name)
        rdataset = self.zone.get_rdataset(change.name, change.rdtype)
        return rdataset is None or (change.rdata is not None and change.rdata not in rdataset)

    # --- the engine rule --------------------------------------------------------------------
    def owns(self, name: dns.name.Name) -> bool:
        return self.owners.get(name) == self.key or name in self.claimed

    def _claimable(self, name: dns.name.Name) -> bool:
        """A name this UPDATE may make the key's: no one's and empty (or of unknown owner)."""
        if self._structural(name) is not None or is_service(name):
            return False
        if name in self.owners:
            return self.owners[name] is None
        return not has_data(self.zone, name)

    def _structural(self, name: dns.name.Name) -> str | None:
        """Why no engine may own `name` at all, or None."""
        relative = name.relativize(self.origin)
        for label in relative.labels:
            if label.lower() in FORBIDDEN_LABELS:
                return f"{FORBIDDEN_LABELS[label.lower()]} need a granted key"
            if label == b"*":
                return "wildcards need a granted key"
        if name == self.origin:
            return "the apex needs a granted key"
        cut = self._cut(name)
        if cut is not None:
            return f"{name} is at or below the delegation {cut} (NS and glue need a granted key)"
        return None

    def _cut(self, name: dns.name.Name) -> dns.name.Name | None:
        candidate = name
        while candidate != self.origin and candidate.is_subdomain(self.origin):
            if self.zone.get_rdataset(candidate, dns.rdatatype.NS) is not None:
                return candidate
            candidate = candidate.parent()
        return None

    def _engine_rule(self, change: Change) -> str | None:
        name, rdtype = change.name, change.rdtype
        if rdtype in (dns.rdatatype.NS, dns.rdatatype.DS):
            return f"{dns.rdatatype.to_text(rdtype)} records (delegations) need a granted key"
        structural = self._structural(name)
        if structural is not None:
            return structural
        if is_service(name):
            return self._service(change)
        if is_service(name.parent()):
            return self._owned(change, {dns.rdatatype.SRV, dns.rdatatype.TXT}, "an instance name")
        if name.labels[0].startswith(b"_"):
            return f"{name}: names of services (a leading '_') other than _llm._tcp need a granted key"
        return self._owned(change, {dns.rdatatype.A, dns.rdatatype.AAAA}, "a target host name")

    def _service(self, change: Change) -> str | None:
        if change.rdata is None:
            return f"deleting every {dns.rdatatype.to_text(change.rdtype)} at the service name {change.name} " \
                   "needs a granted key (delete your own records one by one)"
        if change.rdtype == dns.rdatatype.SRV:
            target = change.rdata.target  # type: ignore[attr-defined]
            return None if self.owns(target) else f"its target: {self._whose(target)}"
        if change.rdtype == dns.rdatatype.PTR:
            target = change.rdata.target  # type: ignore[attr-defined]
            if target.parent() != change.name:
                return f"{target} is not an instance of {change.name}"
            return None if self.owns(target) else f"its instance: {self._whose(target)}"
        return f"only SRV and PTR records of the key's own engines may change at the service name {change.name}"

    def _owned(self, change: Change, types: set[dns.rdatatype.RdataType], what: str) -> str | None:
        name, rdtype = change.name, change.rdtype
        if not self.owns(name):
            return self._whose(name)
        if not change.adding:
            return None  # every record at a name the key owns is the key's
        if rdtype not in types:
            allowed = " ".join(sorted(dns.rdatatype.to_text(t) for t in types))
            return f"at {what} an engine key may add {allowed} only"
        if rdtype == dns.rdatatype.SRV:
            target = change.rdata.target  # type: ignore[union-attr]
            if not self.owns(target):
                return f"its target: {self._whose(target)}"
        return None

    def _whose(self, name: dns.name.Name) -> str:
        """Why `name` is not this key's."""
        owner = self.owners.get(name)
        if owner is not None:
            return f"{name} belongs to key {owner}"
        if has_data(self.zone, name):
            return f"{name} holds records this key did not add (the zonefile's: they need a granted key)"
        return f"{name} is not this key's"


# --- caps -----------------------------------------------------------------------------------
def held(zone: dns.zone.Zone, owners: dict[dns.name.Name, Owner]) -> dict[Owner, int]:
    """Records each key holds in `zone`: at the names it owns, and SRV/PTR at service names that
    point to them."""
    count: dict[Owner, int] = {}
    for name, owner in owners.items():
        node = zone.nodes.get(name)
        if node is not None:
            count[owner] = count.get(owner, 0) + sum(len(rdataset) for rdataset in node.rdatasets)
    for name, node in zone.nodes.items():
        if not is_service(name):
            continue
        for rdataset in node.rdatasets:
            if rdataset.rdtype in (dns.rdatatype.SRV, dns.rdatatype.PTR):
                for rdata in rdataset:
                    target = rdata.target
                    if target in owners:
                        count[owners[target]] = count.get(owners[target], 0) + 1
    return count


def check_caps(policy: UpdatePolicy, key: dns.name.Name, origin: dns.name.Name, before: dns.zone.Zone,
               after: dns.zone.Zone, owners_before: dict[dns.name.Name, Owner],
               owners_after: dict[dns.name.Name, Owner]) -> None:
    """Refuse an UPDATE that grows the key's records past `per-key` or the zone's past `per-zone`."""
    was, now = held(before, owners_before), held(after, owners_after)
    mine, limit = now.get(key, 0), policy.limits.per_key
    if mine > limit and mine > was.get(key, 0):
        raise refused(f"key {key} would hold {mine} records in {origin} (limit per-key {limit})")
    total, limit = sum(now.values()), policy.limits.per_zone
    if total > limit and total > sum(was.values()):
        raise refused(f"dynamic records in {origin} would number {total} (limit per-zone {limit})")
