"""Stock secondaries (NSD, Knot) transfer our zones by AXFR and serve exactly what we serve, and
follow a serial bump announced by our NOTIFY after a SIGHUP reload."""
from __future__ import annotations

import hashlib
import shutil
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable, Iterator

import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest
from helpers.peers import Address, PeerHandle, query, running_knot_secondary, running_nsd_secondary, soa_serial
from helpers.server import REPO, ServerHandle, free_port, running_server

pytestmark = [pytest.mark.external, pytest.mark.model]

ZONE = "legal.semantic.root."
ORIGIN = dns.name.from_text(ZONE)
CODEC = dns.name.from_text("_codec", ORIGIN)
ENGINE = dns.name.from_text("_llm._tcp", ORIGIN)

Secondary = Callable[..., AbstractContextManager[PeerHandle]]
SECONDARIES = [pytest.param(running_nsd_secondary, id="nsd"), pytest.param(running_knot_secondary, id="knot")]

RRsets = dict[tuple[dns.name.Name, str], tuple[int, frozenset[str]]]


@pytest.fixture(scope="module")
def ours() -> Iterator[ServerHandle]:
    with running_server(REPO / "zonefiles") as server:
        yield server


def transfer(address: Address, zone: str = ZONE) -> dns.zone.Zone:
    """The whole zone by AXFR over TCP from `address`."""
    host, port = address
    return dns.zone.from_xfr(
        dns.query.xfr(host, zone, port=port, timeout=5.0, lifetime=20.0, relativize=False), relativize=False
    )


def rrsets(zone: dns.zone.Zone) -> RRsets:
    """Every RRset of a zone as (owner, type) -> (TTL, set of rdata texts): order-free, TTL-aware."""
    return {
        (name, dns.rdatatype.to_text(rdataset.rdtype)): (rdataset.ttl, frozenset(r.to_text() for r in rdataset))
        for name, node in zone.nodes.items()
        for rdataset in node.rdatasets
    }


def rrset_diff(mine: RRsets, theirs: RRsets) -> str:
    lines = [f"only ours:   {key} {mine[key]}" for key in sorted(mine.keys() - theirs.keys())]
    lines += [f"only theirs: {key} {theirs[key]}" for key in sorted(theirs.keys() - mine.keys())]
    lines += [
        f"differs:     {key} ours {mine[key]} theirs {theirs[key]}"
        for key in sorted(mine.keys() & theirs.keys())
        if mine[key] != theirs[key]
    ]
    return "\n".join(lines)


def codec_names(zone: dns.zone.Zone) -> list[dns.name.Name]:
    """Owner names at or under `_codec.<origin>`, in DNSSEC canonical order."""
    return sorted(name for name in zone.nodes if name.is_subdomain(CODEC))


def served_txt_bytes(address: Address, names: list[dns.name.Name]) -> bytes:
    """The TXT character-strings served at `names` (queried one by one over TCP), concatenated in
    canonical order of names and of records: the pattern library reassembled, as a client sees it."""
    data = b""
    for name in names:
        reply = query(address, name.to_text(), "TXT", tcp=True)
        assert reply.rcode() == dns.rcode.NOERROR, f"TXT {name} at {address}: {dns.rcode.to_text(reply.rcode())}"
        for rrset in reply.answer:
            for rdata in sorted(rrset, key=lambda r: r.to_digestable()):
                data += b"".join(rdata.strings)
    return data


@pytest.mark.parametrize("secondary", SECONDARIES)
def test_secondary_transfers_and_serves_the_zone_identically(ours: ServerHandle, secondary: Secondary) -> None:
    ours_address = (ours.host, ours.port)
    with secondary(ZONE, ours_address) as peer:
        serial = soa_serial(ours_address, ZONE)
        assert serial is not None, ours.log()
        assert peer.soa_serial(ZONE) == serial, peer.describe()

        mine, theirs = transfer(ours_address), transfer(peer.address)
        diff = rrset_diff(rrsets(mine), rrsets(theirs))
        assert not diff, f"{peer.name} serves a different {ZONE}:\n{diff}\n{peer.describe()}"

        names = codec_names(mine)
        assert codec_names(theirs) == names, peer.describe()
        ours_digest = hashlib.sha256(served_txt_bytes(ours_address, names)).hexdigest()
        theirs_digest = hashlib.sha256(served_txt_bytes(peer.address, names)).hexdigest()
        assert theirs_digest == ours_digest, f"_codec library differs ({len(names)} names)\n{peer.describe()}"

        for rdtype in ("SRV", "TXT"):
            expected = query(ours_address, ENGINE.to_text(), rdtype).answer
            got = query(peer.address, ENGINE.to_text(), rdtype).answer
            assert got == expected and expected, f"{rdtype} {ENGINE}: ours {expected}, {peer.name} {got}"


def bump_serial(zonefile: Path, old: int, new: int) -> None:
    """Raise the SOA serial in the file's text and add one record the secondary must then serve."""
    text = zonefile.read_text()
    assert text.count(str(old)) == 1, f"serial {old} not found once in {zonefile}"
    text = text.replace(str(old), str(new))
    zonefile.write_text(text + f'\ninterop-bump.{ZONE} 300 IN TXT "serial={new}"\n')


@pytest.mark.parametrize("secondary", SECONDARIES)
def test_secondary_follows_serial_bump_after_notify(tmp_path: Path, secondary: Secondary) -> None:
    zones = tmp_path / "zonefiles"
    shutil.copytree(REPO / "zonefiles", zones)
    peer_port = free_port()
    with running_server(zones, extra_args=("--notify", f"127.0.0.1:{peer_port}")) as primary:
        primary_address = (primary.host, primary.port)
        old = soa_serial(primary_address, ZONE)
        assert old is not None, primary.log()
        with secondary(ZONE, primary_address, port=peer_port) as peer:
            assert peer.soa_serial(ZONE) == old, peer.describe()

            new = old + 1
            bump_serial(zones / f"{ZONE}zone", old, new)
            primary.reload()
            # The refresh timer is an hour: only the NOTIFY can make the secondary ask this soon.
            assert peer.wait_for_serial(ZONE, new, timeout=20.0) == new, primary.log()
            assert soa_serial(primary_address, ZONE) == new, primary.log()

            reply = query(peer.address, f"interop-bump.{ZONE}", "TXT")
            texts = [b"".join(r.strings) for rrset in reply.answer for r in rrset]
            assert texts == [f"serial={new}".encode()], f"{reply}\n{peer.describe()}"
