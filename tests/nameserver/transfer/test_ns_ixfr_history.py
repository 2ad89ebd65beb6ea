"""The zone-difference history behind IXFR (`zones/history.py`) and the IXFR plan (`nameserver/transfer/ixfr.py`):
differences computed by dnspython, applied back by dnspython, bounded, cleared when a serial does not rise."""
from __future__ import annotations

import dns.message
import dns.name
import dns.rdatatype
import dns.xfr
import dns.zone
import pytest

from nameserver.transfer import ixfr
from nameserver.update.apply import apply_updates
from zones.catalog import ZoneCatalog, ZoneStore
from zones.history import ZoneHistory, diff_zones, zone_octets

ORIGIN = dns.name.from_text("h.test.")


def zone(serial: int, body: str = "", ttl: int = 300) -> dns.zone.Zone:
    text = (
        f"$ORIGIN h.test.\n$TTL {ttl}\n"
        f"@ SOA ns1 hostmaster ( {serial} 3600 900 1209600 300 )\n@ NS ns1\nns1 A 127.0.0.1\n"
        + "\n".join(f"host{i} A 10.0.0.{i}" for i in range(20))
        + "\n"
        + body
    )
    return dns.zone.from_text(text, relativize=False)


def step(serial: int) -> tuple[dict[dns.name.Name, dns.zone.Zone], dict[dns.name.Name, dns.zone.Zone]]:
    """The catalogs before and after one serial step of ORIGIN (v A 192.0.2.<serial>)."""
    return {ORIGIN: zone(serial, f"v A 192.0.2.{serial}\n")}, {ORIGIN: zone(serial + 1, f"v A 192.0.2.{serial + 1}\n")}


def apply(old: dns.zone.Zone, history: ZoneHistory, to_serial: int) -> dns.zone.Zone:
    """`old` brought to `to_serial` by the IXFR records, applied with dnspython's inbound IXFR."""
    steps = history.steps(ORIGIN, old.get_rdataset(ORIGIN, "SOA")[0].serial, to_serial)
    assert steps is not None
    response = dns.message.make_response(dns.xfr.make_query(old, serial=steps[0].from_serial)[0])
    response.answer = ixfr.incremental_rrsets(steps, steps[-1].new_soa)
    received = old  # dns.zone.Zone is a transaction manager: the IXFR is applied in place
    with dns.xfr.Inbound(received, dns.rdatatype.IXFR, serial=steps[0].from_serial) as inbound:
        message = dns.message.from_wire(response.to_wire(), xfr=True, one_rr_per_rrset=True)
        assert inbound.process_message(message)
    return received


def test_diff_holds_only_the_change_and_dnspython_applies_it() -> None:
    old = zone(1, 'txt TXT "a" "b"\ngone A 192.0.2.1\n')
    new = zone(2, 'txt TXT "a" "c"\ncame A 192.0.2.2\n')
    diff = diff_zones(old, new)
    assert (diff.from_serial, diff.to_serial) == (1, 2)
    assert sorted(r.to_text() for r in diff.deleted) == [
        "gone.h.test. 300 IN A 192.0.2.1",
        'txt.h.test. 300 IN TXT "a" "b"',
    ]
    assert sorted(r.to_text() for r in diff.added) == [
        'came.h.test. 300 IN A 192.0.2.2',
        'txt.h.test. 300 IN TXT "a" "c"',
    ]
    history = ZoneHistory()
    history.record({ORIGIN: old}, {ORIGIN: new})
    assert apply(zone(1, 'txt TXT "a" "b"\ngone A 192.0.2.1\n'), history, 2) == new


def test_a_ttl_change_replaces_the_whole_rrset() -> None:
    old, new = zone(1, "x A 192.0.2.1\nx A 192.0.2.2\n"), zone(2, "x 60 A 192.0.2.1\nx 60 A 192.0.2.2\n")
    diff = diff_zones(old, new)
    assert [len(r) for r in diff.deleted] == [2] and [(len(r), r.ttl) for r in diff.added] == [(2, 60)]
    history = ZoneHistory()
    history.record({ORIGIN: old}, {ORIGIN: new})
    received = apply(zone(1, "x A 192.0.2.1\nx A 192.0.2.2\n"), history, 2)
    assert received == new and received.get_rdataset("x.h.test.", "A").ttl == 60


def test_several_steps_chain_and_any_start_serial_works() -> None:
    versions = [zone(s, f"v A 192.0.2.{s}\n" + (f"only{s} TXT \"{s}\"\n" if s % 2 else "")) for s in (1, 2, 3, 4)]
    store = ZoneStore(ZoneCatalog(zones={ORIGIN: versions[0]}))
    for version in versions[1:]:
        store.swap(store.current.replacing({ORIGIN: version}))
    assert store.history.serials(ORIGIN) == (1, 2, 3)
    for start in (1, 2, 3):
        steps = store.history.steps(ORIGIN, start, 4)
        assert steps is not None and [s.from_serial for s in steps] == list(range(start, 4))
        old = zone(start, f"v A 192.0.2.{start}\n" + (f"only{start} TXT \"{start}\"\n" if start % 2 else ""))
        assert apply(old, store.history, 4) == versions[-1]
    assert store.history.steps(ORIGIN, 7, 4) is None  # unknown serial
    assert store.history.steps(ORIGIN, 1, 3) is None  # not the current version


def test_serial_arithmetic_is_rfc1982_across_the_wrap() -> None:
    history = ZoneHistory()
    top, wrapped = 4294967295, 5
    history.record({ORIGIN: zone(top)}, {ORIGIN: zone(wrapped, "w A 192.0.2.5\n")})
    steps = history.steps(ORIGIN, top, wrapped)
    assert steps is not None and steps[0].to_serial == wrapped
    soa = dns.rrset.RRset(ORIGIN, dns.rdataclass.IN, dns.rdatatype.SOA)
    soa.update(zone(wrapped).get_rdataset(ORIGIN, "SOA"))
    query = dns.xfr.make_query(zone(top), serial=top)[0]
    assert ixfr.plan(query, soa, history).outcome is ixfr.Outcome.INCREMENTAL
    query = dns.xfr.make_query(zone(top), serial=6)[0]  # newer than ours, past the wrap
    assert ixfr.plan(query, soa, history).outcome is ixfr.Outcome.UP_TO_DATE


@pytest.mark.parametrize("second", [1, 0], ids=["same-serial", "serial-backwards"])
def test_a_change_without_a_serial_rise_clears_the_history(second: int) -> None:
    history = ZoneHistory()
    history.record({ORIGIN: zone(0)}, {ORIGIN: zone(1, "a A 192.0.2.1\n")})
    assert history.serials(ORIGIN) == (0,)
    history.record({ORIGIN: zone(1, "a A 192.0.2.1\n")}, {ORIGIN: zone(second, "b A 192.0.2.2\n")})
    assert history.serials(ORIGIN) == ()


def test_a_zone_that_goes_and_comes_back_starts_afresh() -> None:
    history = ZoneHistory()
    history.record({ORIGIN: zone(1)}, {ORIGIN: zone(2, "a A 192.0.2.1\n")})
    history.record({ORIGIN: zone(2, "a A 192.0.2.1\n")}, {})
    history.record({}, {ORIGIN: zone(3)})
    assert history.serials(ORIGIN) == () and history.steps(ORIGIN, 1, 3) is None


def test_bounded_by_version_count() -> None:
    history = ZoneHistory(max_versions=3)
    for serial in range(1, 8):
        history.record(*step(serial))
    assert history.serials(ORIGIN) == (5, 6, 7)


def test_bounded_by_octets_relative_to_the_zone() -> None:
    big = "\n".join(f"lib{i} TXT \"old-{i}\"" for i in range(40)) + "\n"
    rewritten = "\n".join(f"lib{i} TXT \"new-{i}\"" for i in range(40)) + "\n"
    # A rewrite of every library record (a retrain) weighs more than the whole zone (up to ~2x):
    new = zone(3, rewritten + "one A 192.0.2.1\n")
    assert zone_octets(new) < diff_zones(zone(2, big + "one A 192.0.2.1\n"), new).octets < 2.5 * zone_octets(new)
    for history, kept in ((ZoneHistory(), (1, 2)), (ZoneHistory(max_ratio=1.0), ())):
        history.record({ORIGIN: zone(1, big)}, {ORIGIN: zone(2, big + "one A 192.0.2.1\n")})
        assert history.serials(ORIGIN) == (1,)
        history.record({ORIGIN: zone(2, big + "one A 192.0.2.1\n")}, {ORIGIN: new})
        assert history.serials(ORIGIN) == kept  # the default keeps a retrain's change; ratio 1 sends AXFR
    # Small steps accumulate until they would outweigh the zone; the oldest go first.
    small = ZoneHistory(max_ratio=1.0)
    for serial in range(1, 30):
        small.record(*step(serial))
    kept = small.serials(ORIGIN)
    assert kept[-1] == 29 and 1 < len(kept) < 29
    steps = small.steps(ORIGIN, kept[0], 30)
    assert steps is not None and sum(s.octets for s in steps) <= 1.0 * zone_octets(zone(30, "v A 192.0.2.30\n"))


def test_copy_on_write_update_zones_diff_by_the_touched_nodes() -> None:
    base = zone(2026010100)
    update = dns.rrset.from_text("new.h.test.", 60, "IN", "A", "192.0.2.77")
    applied = apply_updates(base, [update])
    assert applied.zone is not None
    diff = diff_zones(base, applied.zone)
    assert [r.to_text() for r in diff.added] == ["new.h.test. 60 IN A 192.0.2.77"] and not diff.deleted
    assert diff.to_serial != diff.from_serial


def test_plan_without_a_client_soa_is_a_full_transfer() -> None:
    soa = dns.rrset.RRset(ORIGIN, dns.rdataclass.IN, dns.rdatatype.SOA)
    soa.update(zone(2).get_rdataset(ORIGIN, "SOA"))
    decision = ixfr.plan(dns.message.make_query(ORIGIN, "IXFR"), soa, ZoneHistory())
    assert decision.outcome is ixfr.Outcome.FULL and decision.client_serial is None
    query = dns.xfr.make_query(zone(1), serial=1)[0]
    decision = ixfr.plan(query, soa, ZoneHistory())
    assert decision.outcome is ixfr.Outcome.FULL and "1 not in the history" in decision.reason


def test_the_zone_size_kept_across_steps_is_the_size_counted_afresh() -> None:
    history = ZoneHistory()
    versions = [zone(1), zone(2, "a A 192.0.2.1\n"), zone(3, 'a A 192.0.2.1\nt TXT "x"\n', ttl=300),
                zone(4, 't TXT "longer text"\n', ttl=60)]
    for before, after in zip(versions, versions[1:]):
        history.record({ORIGIN: before}, {ORIGIN: after})
        assert history._sizes[ORIGIN] == (after, zone_octets(after))
