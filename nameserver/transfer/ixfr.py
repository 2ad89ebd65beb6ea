"""Incremental zone transfer (IXFR, RFC 1995): what to answer, and the records of the answer.

No I/O: `plan()` reads the client's serial (the SOA in the query's authority section) and the
zone's history (`zones.history`) and decides:

    client serial >= ours (RFC 1982)           -> UP_TO_DATE: our SOA alone (RFC 1995 §2)
    the history leads from it to ours           -> INCREMENTAL: `incremental_rrsets(steps, soa)`
    no serial, unknown or too old a serial      -> FULL: the AXFR-style transfer (RFC 1995 §4)

The incremental answer is, in order: our SOA; per step the step's old SOA, its deletions, its new
SOA, its additions; our SOA again. The history keeps paths of at most 3x the zone's octets
(`zones.history`): a retrain's change (old library out, new in) still goes incrementally.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset

from zones.history import ZoneDiff, ZoneHistory, serial_rose


class Outcome(enum.Enum):
    UP_TO_DATE = "up-to-date"
    INCREMENTAL = "incremental"
    FULL = "full"


@dataclass(frozen=True)
class Plan:
    """The answer to one IXFR query: `outcome`, the client's serial (None: it sent none), the
    steps of an incremental answer and, for a full one, why."""

    outcome: Outcome
    client_serial: int | None
    serial: int
    steps: tuple[ZoneDiff, ...] = ()
    reason: str = ""

    @property
    def records(self) -> int:
        return sum(step.records for step in self.steps) + 2


def requested_serial(query: dns.message.Message, origin: dns.name.Name) -> int | None:
    """The serial of the SOA for `origin` in the query's authority section, or None."""
    for rrset in query.authority:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == origin and len(rrset):
            return rrset[0].serial
    return None


def plan(query: dns.message.Message, soa: dns.rrset.RRset, history: ZoneHistory) -> Plan:
    """What to answer to an IXFR `query` for the zone whose current SOA is `soa`."""
    origin, serial = soa.name, soa[0].serial
    client = requested_serial(query, origin)
    if client is None:
        return Plan(Outcome.FULL, None, serial, reason="no SOA in the query's authority section")
    if not serial_rose(client, serial):
        return Plan(Outcome.UP_TO_DATE, client, serial)
    steps = history.steps(origin, client, serial)
    if steps is None:
        return Plan(Outcome.FULL, client, serial, reason=f"serial {client} not in the history")
    return Plan(Outcome.INCREMENTAL, client, serial, steps)


def incremental_rrsets(steps: tuple[ZoneDiff, ...], soa: dns.rrset.RRset) -> list[dns.rrset.RRset]:
    """The answer records of an incremental transfer, in RFC 1995 §4 order."""
    rrsets: list[dns.rrset.RRset] = [soa]
    for step in steps:
        rrsets.append(step.old_soa)
        rrsets.extend(step.deleted)
        rrsets.append(step.new_soa)
        rrsets.extend(step.added)
    rrsets.append(soa)
    return rrsets
