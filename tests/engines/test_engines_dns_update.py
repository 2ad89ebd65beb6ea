"""UPDATE handling (RFC 2136 + TSIG), the journal and the health monitor, in-process.

The handler is driven with real wire messages built by dnspython's UpdateMessage; the server
transports are exercised by the end-to-end test."""
from __future__ import annotations

from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.update
import dns.zone
import pytest
from aiohttp import web

from engines.registration import ServiceInstance, TsigKey, build_update
from nameserver.edns import negotiate
from nameserver.request import Request, Response
from nameserver.update.dynamic import DynamicZones
from nameserver.update.handler import UpdateHandler
from nameserver.update.health import HealthMonitor, HealthSettings
from nameserver.update.journal import Journal
from zones.catalog import ZoneCatalog, ZoneStore
from zones.tsig import generate_key, parse_keyring

ORIGIN = dns.name.from_text("legal.semantic.root.")
ZONE_TEXT = """
@ 300 IN SOA ns1 hostmaster 2026010100 3600 600 86400 60
@ 300 IN NS ns1
ns1 300 IN A 127.0.0.2
contract 300 IN TXT "static"
"""


def make_zone() -> dns.zone.Zone:
    return dns.zone.from_text(ZONE_TEXT, origin=ORIGIN, relativize=False)


def make_key(name: str) -> TsigKey:
    ((keyname, key),) = parse_keyring(generate_key(name)).items()
    return TsigKey(name=keyname, algorithm=key.algorithm, secret=key.secret)


GOOD = make_key("engine.legal.semantic.root.")
OTHER_ZONE = make_key("engine.medical.semantic.root.")
UNKNOWN = make_key("engine.legal.semantic.root.")  # same name, other secret: BADSIG


@pytest.fixture
def setup(tmp_path: Path):
    store = ZoneStore(ZoneCatalog(zones={ORIGIN: make_zone()}))
    keyring = {**GOOD.keyring(), **OTHER_ZONE.keyring()}
    dynamic = DynamicZones(store, keyring, Journal(tmp_path / "journal"))
    return store, dynamic, UpdateHandler(dynamic)


async def not_reached(request: Request) -> Response:
    raise AssertionError("an UPDATE must not reach the next handler")


async def send(handler: UpdateHandler, message: dns.message.Message) -> dns.message.Message:
    wire = message.to_wire()
    parsed = dns.message.from_wire(wire, keyring=False)
    request = Request.of(parsed, wire, ("127.0.0.1", 5), "tcp", negotiate(parsed, "tcp", 1232))
    response = await handler.serve(request, not_reached)
    reply = response.message
    out = reply.to_wire()
    if reply.keyring is not None:  # a signed reply: it must verify with the request's key
        return dns.message.from_wire(out, keyring=message.keyring, request_mac=message.mac)
    return dns.message.from_wire(out, keyring=False)  # a TSIG error answer carries an unsigned TSIG


def instance(port: int = 8110) -> ServiceInstance:
    return ServiceInstance(domain=ORIGIN, instance=f"llm-{port}", port=port, addresses=("127.0.0.1",),
                           attributes=(("txtvers", "1"), ("model", "m")))


def srv_targets(store: ZoneStore) -> list[str]:
    rdataset = store.current.zones[ORIGIN].get_rdataset(dns.name.from_text("_llm._tcp", ORIGIN), "SRV")
    return sorted(f"{r.target}:{r.port}" for r in rdataset) if rdataset else []


def serial(store: ZoneStore) -> int:
    return store.current.zones[ORIGIN].get_rdataset(ORIGIN, "SOA")[0].serial


async def test_signed_update_applies_atomically(setup) -> None:
    store, _dynamic, handler = setup
    before_zone, before_generation, before_serial = store.current.zones[ORIGIN], store.current.generation, serial(store)
    reply = await send(handler, build_update(ORIGIN, instance(), GOOD, lease=60))
    assert reply.rcode() == dns.rcode.NOERROR and reply.had_tsig  # the answer is signed and verifies
    assert srv_targets(store) == ["llm-8110.legal.semantic.root.:8110"]
    assert serial(store) > before_serial
    assert store.current.generation == before_generation + 1
    assert before_zone.get_rdataset(dns.name.from_text("_llm._tcp", ORIGIN), "SRV") is None  # old copy untouched
    txt = store.current.zones[ORIGIN].get_rdataset(dns.name.from_text("llm-8110._llm._tcp", ORIGIN), "TXT")
    assert [s.decode() for s in txt[0].strings] == ["txtvers=1", "model=m"]
    # the same UPDATE again (a lease renewal) changes nothing: no serial bump
    renewed_serial = serial(store)
    assert (await send(handler, build_update(ORIGIN, instance(), GOOD, lease=60))).rcode() == dns.rcode.NOERROR
    assert serial(store) == renewed_serial
    # the engine's clean shutdown deletes exactly its records; static data stays
    assert (await send(handler, build_update(ORIGIN, instance(), GOOD, lease=None, delete=True))).rcode() == 0
    assert srv_targets(store) == []
    assert store.current.zones[ORIGIN].get_rdataset(dns.name.from_text("contract", ORIGIN), "TXT") is not None


@pytest.mark.parametrize(
    ("build", "rcode"),
    [
        (lambda: _unsigned(), dns.rcode.REFUSED),
        (lambda: build_update(ORIGIN, instance(), UNKNOWN, lease=60), dns.rcode.NOTAUTH),
        (lambda: build_update(ORIGIN, instance(), make_key("stranger"), lease=60), dns.rcode.NOTAUTH),
        (lambda: build_update(ORIGIN, instance(), OTHER_ZONE, lease=60), dns.rcode.REFUSED),
        (lambda: _signed(lambda u: u.add("x.medical.semantic.root.", 60, "A", "127.0.0.1")), dns.rcode.NOTZONE),
        (lambda: _signed(lambda u: u.replace("@", 60, "SOA", "ns1 h 2026010199 1 1 1 1")), dns.rcode.REFUSED),
        (lambda: _signed(lambda u: u.add("@", 60, "NS", "ns2")), dns.rcode.REFUSED),
        (lambda: _signed(lambda u: u.delete("@", "NS")), dns.rcode.REFUSED),
        (lambda: _signed(lambda u: (u.absent("contract"), u.add("new", 60, "A", "127.0.0.9"))), dns.rcode.YXDOMAIN),
        (lambda: _signed(lambda u: (u.present("nothing-here"), u.add("new", 60, "A", "127.0.0.9"))),
         dns.rcode.NXDOMAIN),
        (lambda: _signed(lambda u: (u.present("contract", "A"), u.add("new", 60, "A", "127.0.0.9"))),
         dns.rcode.NXRRSET),
        (lambda: _signed(lambda u: (u.absent("contract", "TXT"), u.add("new", 60, "A", "127.0.0.9"))),
         dns.rcode.YXRRSET),
        (lambda: _signed(lambda u: u.add("x", 60, "A", "127.0.0.1"), zone="medical.semantic.root."),
         dns.rcode.NOTAUTH),
    ],
)
async def test_refusals_leave_the_zone_unchanged(setup, build, rcode) -> None:
    store, _dynamic, handler = setup
    catalog = store.current
    reply = await send(handler, build())
    assert reply.rcode() == rcode
    assert store.current is catalog


async def test_prerequisites_that_hold(setup) -> None:
    store, _dynamic, handler = setup
    new = "llm-9._llm._tcp"  # an instance name: the engine rule lets the key make it its own
    update = _signed(lambda u: (u.present("contract", "TXT"), u.absent(new), u.add(new, 60, "TXT", '"txtvers=1"')))
    assert (await send(handler, update)).rcode() == dns.rcode.NOERROR
    assert store.current.zones[ORIGIN].get_rdataset(dns.name.from_text(new, ORIGIN), "TXT") is not None


async def test_journal_replay_restores_registrations(setup, tmp_path: Path) -> None:
    store, dynamic, handler = setup
    await send(handler, build_update(ORIGIN, instance(8110), GOOD, lease=60))
    await send(handler, build_update(ORIGIN, instance(8111), GOOD, lease=60))
    await send(handler, build_update(ORIGIN, instance(8110), GOOD, lease=None, delete=True))
    restarted = ZoneStore(ZoneCatalog(zones={ORIGIN: make_zone()}))
    replayed = DynamicZones(restarted, dynamic.keyring, Journal(tmp_path / "journal"))
    assert replayed.replay() == 3
    assert srv_targets(restarted) == srv_targets(store) == ["llm-8111.legal.semantic.root.:8111"]
    assert len(list(replayed.registry)) == 1


async def test_health_hides_and_restores_then_lease_expires(setup) -> None:
    store, dynamic, handler = setup
    healthy = {"ok": True}

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({}, status=200 if healthy["ok"] else 503)

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monitor = HealthMonitor(dynamic, HealthSettings(failures=2, timeout=1.0))  # driven by hand: check_once
    try:
        await send(handler, build_update(ORIGIN, instance(port), GOOD, lease=60))
        target = f"llm-{port}.legal.semantic.root.:{port}"
        await monitor.check_once()
        assert srv_targets(store) == [target]
        healthy["ok"] = False
        await monitor.check_once()
        assert srv_targets(store) == [target]  # one failure is tolerated
        await monitor.check_once()
        assert srv_targets(store) == []  # two: hidden
        await send(handler, build_update(ORIGIN, instance(port), GOOD, lease=60))  # renewal keeps it hidden
        assert srv_targets(store) == []
        healthy["ok"] = True
        await monitor.check_once()
        assert srv_targets(store) == [target]
        (registration,) = list(dynamic.registry)
        registration.expires = 0.0  # the lease runs out
        await monitor.check_once()
        assert srv_targets(store) == []
        assert store.current.zones[ORIGIN].get_node(dns.name.from_text(f"llm-{port}", ORIGIN)) is None
    finally:
        await monitor.stop()
        await runner.cleanup()


def wired(update: dns.update.UpdateMessage) -> list:
    """The update section as a server sees it (names made absolute by the wire form)."""
    return dns.message.from_wire(update.to_wire(), keyring=False).update


def _unsigned() -> dns.update.UpdateMessage:
    update = dns.update.UpdateMessage(ORIGIN)
    update.add("x", 60, "A", "127.0.0.1")
    return update


def _signed(fill, zone: str = "legal.semantic.root.") -> dns.update.UpdateMessage:
    update = dns.update.UpdateMessage(zone, keyring=GOOD.keyring(), keyname=GOOD.name, keyalgorithm=GOOD.algorithm)
    fill(update)
    return update


def test_draft_rules() -> None:
    """CNAME exclusivity, TTL applied to the whole RRset, serial per YYYYMMDDNN / RFC 1982."""
    import datetime

    from nameserver.update.apply import Draft, apply_updates

    zone = make_zone()
    update = _signed(lambda u: (u.add("alias", 60, "CNAME", "contract"), u.add("contract", 60, "CNAME", "ns1"),
                                u.add("alias", 60, "A", "127.0.0.7")))
    applied = apply_updates(zone, wired(update))
    new = applied.zone
    assert new.get_rdataset(dns.name.from_text("alias", ORIGIN), "CNAME") is not None
    assert new.get_rdataset(dns.name.from_text("alias", ORIGIN), "A") is None  # beside a CNAME: ignored
    assert new.get_rdataset(dns.name.from_text("contract", ORIGIN), "CNAME") is None  # beside TXT: ignored
    retimed = apply_updates(new, wired(_signed(lambda u: u.add("ns1", 30, "A", "127.0.0.3")))).zone
    ns1 = retimed.get_rdataset(dns.name.from_text("ns1", ORIGIN), "A")
    assert ns1.ttl == 30 and sorted(r.address for r in ns1) == ["127.0.0.2", "127.0.0.3"]
    assert zone.get_rdataset(dns.name.from_text("ns1", ORIGIN), "A").ttl == 300  # the original is untouched
    draft = Draft(zone)
    assert draft.bump_serial(datetime.date(2026, 11, 23)) == 2026112300
    assert draft.bump_serial(datetime.date(2026, 11, 23)) == 2026112301
    assert draft.bump_serial(datetime.date(2020, 1, 1)) == 2026112302
    assert apply_updates(zone, wired(_signed(lambda u: u.delete("nothing-here")))).zone is None  # no-op: no bump


async def test_a_key_updates_only_its_own_zone_not_an_ancestor(tmp_path: Path) -> None:
    # The key `engine.legal.semantic.root.` lies under `semantic.root.` too; it must not be able to
    # rewrite the apex zone (its delegations), only the deepest hosted zone holding its name.
    apex = dns.name.from_text("semantic.root.")
    apex_zone = dns.zone.from_text(
        "@ 300 IN SOA ns1 hostmaster 2026010100 3600 600 86400 60\n@ 300 IN NS ns1\nns1 300 IN A 127.0.0.1\n"
        "legal 300 IN NS ns1.legal\nns1.legal 300 IN A 127.0.0.2\n",
        origin=apex, relativize=False,
    )
    store = ZoneStore(ZoneCatalog(zones={ORIGIN: make_zone(), apex: apex_zone}))
    handler = UpdateHandler(DynamicZones(store, GOOD.keyring(), Journal(tmp_path / "journal")))
    catalog = store.current
    update = dns.update.UpdateMessage(apex, keyring=GOOD.keyring(), keyname=GOOD.name)
    update.add("evil", 60, "A", "127.0.0.66")
    assert (await send(handler, update)).rcode() == dns.rcode.REFUSED
    assert store.current is catalog
    assert (await send(handler, build_update(ORIGIN, instance(), GOOD, lease=60))).rcode() == dns.rcode.NOERROR
