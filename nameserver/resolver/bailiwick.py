"""Bailiwick checks: keep only what a server may speak for, and type the response.

A server asked as an authority for `zone` may speak only for names at or below `zone`. Everything
else in its response is dropped before anything is cached or followed, which is what defeats the
classic cache-poisoning trick of unsolicited records in the additional or answer section.

`sanitize(response, zone, qname, rdtype)` walks the answer section from `qname` through CNAMEs
(answer records not on that chain are unsolicited and dropped), keeps referral NS only when they
point *down* towards `qname`, keeps glue only for those NS names, and returns a `Sanitized` value
whose `kind` says what the response means (CoreDNS' typify, in short).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

_ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)


class ReplyKind(enum.Enum):
    ANSWER = "answer"  # the chain reached an RRset of the asked type
    CNAME = "cname"  # the chain ends in a CNAME whose target the server did not answer for
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    REFERRAL = "referral"  # NS records for a zone strictly below the asked zone
    LAME = "lame"  # anything else: refused, not authoritative, upward or sideways referral


@dataclass(frozen=True)
class Sanitized:
    kind: ReplyKind
    authoritative: bool
    chain: tuple[dns.rrset.RRset, ...] = ()  # CNAMEs from qname, then the final RRset (ANSWER)
    soa: dns.rrset.RRset | None = None
    referral: dns.rrset.RRset | None = None  # the NS RRset of the child zone
    glue: tuple[dns.rrset.RRset, ...] = ()  # address records of the referral's NS names
    additional: tuple[dns.rrset.RRset, ...] = ()  # in-bailiwick addresses of answer targets
    dropped: int = 0  # how many RRsets were thrown away as out of bailiwick or unsolicited
    reason: str = ""  # why LAME

    @property
    def target(self) -> dns.name.Name | None:
        """The name a CNAME chain leads to when the server did not finish it."""
        if self.kind is ReplyKind.CNAME or (self.kind in (ReplyKind.NXDOMAIN, ReplyKind.NODATA) and self.chain):
            return self.chain[-1][0].target
        return None


def in_bailiwick(name: dns.name.Name, zone: dns.name.Name) -> bool:
    """Whether `name` is `zone` or below it."""
    return name.is_subdomain(zone)


def _walk_chain(
    answer: list[dns.rrset.RRset], zone: dns.name.Name, qname: dns.name.Name, rdtype: int
) -> tuple[list[dns.rrset.RRset], bool]:
    """The CNAME chain from `qname` inside the answer; True when it ends in the asked type."""
    by_key: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {
        (rr.name, rr.rdtype): rr for rr in answer if in_bailiwick(rr.name, zone)
    }
    chain: list[dns.rrset.RRset] = []
    name = qname
    seen: set[dns.name.Name] = set()
    while name not in seen:
        seen.add(name)
        final = by_key.get((name, rdtype))
        if final is not None:
            chain.append(final)
            return chain, True
        cname = by_key.get((name, dns.rdatatype.CNAME))
        if cname is None:
            break
        chain.append(cname)
        name = cname[0].target
    return chain, False


def _addresses_for(
    additional: list[dns.rrset.RRset], names: set[dns.name.Name], zone: dns.name.Name
) -> tuple[dns.rrset.RRset, ...]:
    return tuple(
        rr for rr in additional if rr.rdtype in _ADDRESS_TYPES and rr.name in names and in_bailiwick(rr.name, zone)
    )


def _targets(rrset: dns.rrset.RRset) -> set[dns.name.Name]:
    if rrset.rdtype in (dns.rdatatype.SRV, dns.rdatatype.MX, dns.rdatatype.NS):
        return {rd.target if hasattr(rd, "target") else rd.exchange for rd in rrset}
    return set()


def sanitize(response: dns.message.Message, zone: dns.name.Name, qname: dns.name.Name, rdtype: int) -> Sanitized:
    """Type `response` (from a server asked as authority for `zone`) and drop what it may not say."""
    rcode = response.rcode()
    aa = bool(response.flags & dns.flags.AA)
    total = len(response.answer) + len(response.authority) + len(response.additional)
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return Sanitized(ReplyKind.LAME, aa, dropped=total, reason=f"rcode {dns.rcode.to_text(rcode)}")
    if not in_bailiwick(qname, zone):
        return Sanitized(ReplyKind.LAME, aa, dropped=total, reason=f"{qname} is not in zone {zone}")

    chain, complete = _walk_chain(response.answer, zone, qname, rdtype)
    end = chain[-1][0].target if chain and not complete else qname
    soa = next(
        (
            rr
            for rr in response.authority
            if rr.rdtype == dns.rdatatype.SOA and in_bailiwick(rr.name, zone) and in_bailiwick(end, rr.name)
        ),
        None,
    )
    kept = len(chain) + (soa is not None)

    if complete:
        additional = _addresses_for(response.additional, _targets(chain[-1]), zone)
        kept += len(additional)
        return Sanitized(ReplyKind.ANSWER, aa, tuple(chain), soa, additional=additional, dropped=total - kept)
    if chain and not aa:
        return Sanitized(ReplyKind.LAME, aa, dropped=total, reason="non-authoritative CNAME")
    if rcode == dns.rcode.NXDOMAIN:
        if not aa:
            return Sanitized(ReplyKind.LAME, aa, dropped=total, reason="non-authoritative NXDOMAIN")
        return Sanitized(ReplyKind.NXDOMAIN, aa, tuple(chain), soa, dropped=total - kept)
    if chain and not in_bailiwick(end, zone):
        return Sanitized(ReplyKind.CNAME, aa, tuple(chain), dropped=total - len(chain))

    referral = next(
        (
            rr
            for rr in response.authority
            if rr.rdtype == dns.rdatatype.NS and rr.name != zone and in_bailiwick(rr.name, zone)
            and in_bailiwick(end, rr.name)
        ),
        None,
    )
    if referral is not None:
        glue = _addresses_for(response.additional, _targets(referral), zone)
        kept = len(chain) + 1 + len(glue)
        # with a chain, a CNAME into a delegated child: follow the target, starting at the referral
        kind = ReplyKind.CNAME if chain else ReplyKind.REFERRAL
        return Sanitized(kind, aa, tuple(chain), referral=referral, glue=glue, dropped=total - kept)
    if chain:
        return Sanitized(ReplyKind.CNAME, aa, tuple(chain), dropped=total - len(chain))
    if aa:
        return Sanitized(ReplyKind.NODATA, aa, soa=soa, dropped=total - kept)
    upward = any(rr.rdtype == dns.rdatatype.NS for rr in response.authority)
    reason = "upward or sideways referral" if upward else "not authoritative and no referral"
    return Sanitized(ReplyKind.LAME, aa, dropped=total, reason=reason)
