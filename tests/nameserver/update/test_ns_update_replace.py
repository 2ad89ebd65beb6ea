"""Found by the fuzzer (tests/nameserver/test_ns_fuzz.py): an UPDATE that deletes the last RRset
of a name and adds to that name again in the same message (dnspython's `replace`, the way an
engine re-registers) hit `assert node is not None` in `Draft.add`, a SERVFAIL from the catch-all."""
from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.update
import dns.zone

from nameserver.update.apply import apply_updates

ZONE = """$ORIGIN dyn.test.
$TTL 300
@ SOA ns1 hostmaster 2026010100 3600 600 86400 60
@ NS ns1
ns1 A 127.0.0.1
engine1 A 10.0.0.1
"""


def test_replacing_the_only_rrset_of_a_name_applies() -> None:
    zone = dns.zone.from_text(ZONE, relativize=False)
    update = dns.update.UpdateMessage("dyn.test.")
    update.replace("engine1.dyn.test.", 300, "A", "10.0.0.2")
    applied = apply_updates(zone, update.update)
    assert applied.zone is not None
    rdataset = applied.zone.get_rdataset(dns.name.from_text("engine1.dyn.test."), dns.rdatatype.A)
    assert rdataset is not None and [r.to_text() for r in rdataset] == ["10.0.0.2"]


def test_deleting_a_name_then_adding_to_it_applies() -> None:
    zone = dns.zone.from_text(ZONE, relativize=False)
    update = dns.update.UpdateMessage("dyn.test.")
    update.delete("engine1.dyn.test.")
    update.add("engine1.dyn.test.", 60, "TXT", '"back"')
    applied = apply_updates(zone, update.update)
    assert applied.zone is not None
    assert applied.zone.get_rdataset(dns.name.from_text("engine1.dyn.test."), dns.rdatatype.A) is None
    assert applied.zone.get_rdataset(dns.name.from_text("engine1.dyn.test."), dns.rdatatype.TXT) is not None
