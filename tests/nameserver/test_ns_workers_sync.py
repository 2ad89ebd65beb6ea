"""The parts of `--workers` without processes: what a worker forwards, the forward frame, the
catalog updates (only changed zones travel; the worker's unchanged zones stay the same objects)."""
from __future__ import annotations

import asyncio
import pickle

import dns.message
import dns.name
import dns.opcode
import dns.rdatatype
import dns.update
import dns.zone
import pytest

from nameserver.workers_channel import (
    CATALOG,
    ChannelError,
    forward_payload,
    frame,
    needs_main,
    parse_forward,
    read_frame,
)
from nameserver.workers_sync import CatalogFeed, CatalogUpdate, PublishingStore, apply
from zones.catalog import ZoneCatalog


def zone(origin: str, address: str = "192.0.2.1") -> dns.zone.Zone:
    text = f"@ 300 SOA ns hostmaster 1 3600 900 86400 300\n@ 300 NS ns\nns 300 A {address}\n"
    return dns.zone.from_text(text, origin, relativize=False)


def test_plain_queries_stay_in_the_worker_and_the_rest_go_to_the_main() -> None:
    assert not needs_main(dns.message.make_query("a.example.", "A").to_wire())
    assert not needs_main(dns.message.make_query("a.example.", "AXFR", use_edns=0).to_wire())
    assert needs_main(dns.update.UpdateMessage("example.").to_wire())
    notify = dns.message.make_query("example.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert needs_main(notify.to_wire())
    ixfr = dns.message.make_query("example.", "IXFR")
    ixfr.authority.append(zone("example.").find_rrset("example.", "SOA"))
    assert needs_main(ixfr.to_wire())
    assert not needs_main(b"\x00" * 11)  # too short for a header: the worker drops it as the main would


@pytest.mark.parametrize("client", [("127.0.0.1", 53000), ("::1", 1), ("fe80::1%lo", 65535)])
def test_a_forward_carries_listener_client_and_wire(client: tuple[str, int]) -> None:
    wire = dns.update.UpdateMessage("example.").to_wire()
    assert parse_forward(forward_payload(3, client, wire)) == (3, client, wire)


def test_frames_read_back_and_end_at_eof() -> None:
    async def read(data: bytes) -> list[tuple[bytes, bytes] | None]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return [await read_frame(reader) for _ in range(3)]

    assert asyncio.run(read(frame(CATALOG, b"xyz") + frame(b"R"))) == [(CATALOG, b"xyz"), (b"R", b""), None]
    assert asyncio.run(read(frame(CATALOG, b"xyz")[:-1])) == [None, None, None]  # a torn frame: the end
    with pytest.raises(ChannelError):
        asyncio.run(read(b"C\xff\xff\xff\xff"))


def test_only_changed_zones_travel_and_unchanged_ones_stay_the_same_objects() -> None:
    a, b = dns.name.from_text("a.example."), dns.name.from_text("b.example.")
    main = ZoneCatalog(zones={a: zone("a.example."), b: zone("b.example.")}, generation=1)
    feed = CatalogFeed()
    first = pickle.loads(feed.update(None, main))
    assert first.whole and set(first.zones) == {a, b}
    worker = apply(ZoneCatalog(zones={}), first)
    assert worker.generation == 1
    assert worker.zones[a].to_text() == main.zones[a].to_text()

    changed = main.replacing({a: zone("a.example.", "192.0.2.99")})
    second: CatalogUpdate = pickle.loads(feed.update(main, changed))
    assert not second.whole and set(second.zones) == {a}
    after = apply(worker, second)
    assert after.zones[b] is worker.zones[b]
    assert after.zones[a].find_rdataset("ns.a.example.", dns.rdatatype.A)[0].address == "192.0.2.99"
    assert after.generation == changed.generation

    removed = ZoneCatalog(zones={a: changed.zones[a]}, generation=changed.generation + 1)
    third = pickle.loads(feed.update(changed, removed))
    assert third.zones == {b: None} and set(apply(after, third).zones) == {a}


def test_a_zone_is_pickled_once_for_every_worker() -> None:
    a = dns.name.from_text("a.example.")
    catalog = ZoneCatalog(zones={a: zone("a.example.")})
    feed = CatalogFeed()
    one, two = pickle.loads(feed.update(None, catalog)), pickle.loads(feed.update(None, catalog))
    assert one.zones[a] is not None and one.zones[a] == two.zones[a]
    assert len(feed._pickles) == 1


def test_the_publishing_store_tells_its_subscribers_after_the_swap() -> None:
    store = PublishingStore()
    seen: list[int] = []
    store.subscribers.append(lambda: seen.append(store.current.generation))
    store.swap(ZoneCatalog(zones={}, generation=7))
    assert seen == [7]
