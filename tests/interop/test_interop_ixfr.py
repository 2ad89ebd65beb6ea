"""A Knot secondary follows our zone by IXFR: after the primary's zonefile is edited (serial bump),
reloaded and NOTIFY sent, Knot asks for IXFR, gets only the change, and serves exactly our data.
After `semdns codec train` rewrites the whole `_codec` library, Knot's IXFR gets that change (the
old chunks out, the new in) and serves the new library byte for byte; the next edit is incremental too."""
from __future__ import annotations

import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import dns.name
import dns.query
import dns.rdatatype
import dns.zone
import pytest
from helpers.peers import Address, PeerHandle, running_knot_secondary, soa_serial
from helpers.server import REPO, ServerHandle, free_port, running_server, semdns_command

pytestmark = [pytest.mark.external, pytest.mark.model]

ZONE = "legal.semantic.root."
WAIT = 20.0
WORDS = ("contract breach tort liability damages statute plaintiff defendant court appeal "
         "the of and to a in for negligence remedy clause").split()


def transfer(address: Address) -> dict[tuple[dns.name.Name, str], tuple[int, frozenset[str]]]:
    """Every RRset of the zone served at `address` (by AXFR), order-free and TTL-aware."""
    host, port = address
    zone = dns.zone.from_xfr(dns.query.xfr(host, ZONE, port=port, timeout=5.0, lifetime=20.0, relativize=False),
                             relativize=False)
    return {
        (name, dns.rdatatype.to_text(rdataset.rdtype)): (rdataset.ttl, frozenset(r.to_text() for r in rdataset))
        for name, node in zone.nodes.items()
        for rdataset in node.rdatasets
    }


def edit(zonefile: Path, old: int, new: int, find: str = "", replace: str = "", append: str = "") -> None:
    """Bump the SOA serial in the file's text, replace one piece of text, append lines."""
    text = zonefile.read_text()
    assert text.count(str(old)) == 1, f"serial {old} not found once in {zonefile}"
    text = text.replace(str(old), str(new))
    if find:
        assert find in text, f"{find!r} not in {zonefile}"
        text = text.replace(find, replace)
    zonefile.write_text(text + append)


def follow(primary: ServerHandle, peer: PeerHandle, serial: int, outcome: str, ixfrs: int, axfrs: int) -> None:
    """The secondary reaches `serial` (we logged `outcome` for its IXFR request), has now received
    `ixfrs` incremental and `axfrs` full transfers in all, and serves exactly what we serve."""
    primary.reload()
    assert peer.wait_for_serial(ZONE, serial, timeout=WAIT) == serial, primary.log()
    ours, theirs = transfer((primary.host, primary.port)), transfer(peer.address)
    assert ours == theirs, f"{peer.name} differs:\n{set(ours.items()) ^ set(theirs.items())}\n{peer.describe()}"
    assert re.search(rf"transfer: IXFR {re.escape(ZONE)} \d+ -> {serial} to 127\.0\.0\.1 \(tcp\): {outcome}",
                     primary.log()), primary.log()
    knot = wait_for_log(peer, rf"zone updated, .*serial \d+ -> {serial}")
    assert len(re.findall(r"IXFR, incoming, remote \S+, finished", knot)) == ixfrs, peer.describe()
    assert len(re.findall(r"AXFR, incoming, remote \S+, finished", knot)) == axfrs, peer.describe()


def wait_for_log(peer: PeerHandle, pattern: str) -> str:
    """The peer's log once `pattern` is in it (it may write it just after serving the serial)."""
    deadline = time.monotonic() + WAIT
    while not re.search(pattern, peer.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    knot = peer.log()
    assert re.search(pattern, knot), f"{pattern!r} not logged\n{peer.describe()}"
    return knot


def retrain(zones: Path, tmp_path: Path) -> int:
    """`semdns codec train` on a corpus of our own: rewrites the `_codec` fragment, bumps the
    serial (returned)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rnd = random.Random(5)
    for i in range(60):  # ~250 KB, numbers among the words: a full-size (128 KiB) library, like the one it replaces
        (corpus / f"doc{i}.txt").write_text(" ".join(f"{rnd.choice(WORDS)} {rnd.randrange(10**5)}" for _ in range(400)))
    done = subprocess.run(
        [*semdns_command(), "codec", "train", str(corpus), "--domain", ZONE, "--zonefiles", str(zones)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bumped = re.search(r"serial (\d+) -> (\d+)", done.stdout)
    assert bumped, done.stdout
    return int(bumped[2])


def test_knot_follows_edits_by_ixfr(tmp_path: Path) -> None:
    zones = tmp_path / "zonefiles"
    shutil.copytree(REPO / "zonefiles", zones)
    zonefile = zones / f"{ZONE}zone"
    peer_port = free_port()
    with running_server(zones, ["--notify", f"127.0.0.1:{peer_port}"]) as primary:
        old = soa_serial((primary.host, primary.port), ZONE)
        assert old is not None, primary.log()
        with running_knot_secondary(ZONE, (primary.host, primary.port), port=peer_port) as peer:
            assert peer.soa_serial(ZONE) == old, peer.describe()

            edit(zonefile, old, old + 1, append=f'\nixfr-added.{ZONE} 300 IN TXT "step one"\n')
            follow(primary, peer, old + 1, "incremental", ixfrs=1, axfrs=1)

            edit(zonefile, old + 1, old + 2, find='"step one"', replace='"step two"',
                 append=f"\nixfr-host.{ZONE} 600 IN A 192.0.2.44\n")
            follow(primary, peer, old + 2, "incremental", ixfrs=2, axfrs=1)
            reply = peer.query(f"ixfr-added.{ZONE}", "TXT")
            assert [b"".join(r.strings) for rrset in reply.answer for r in rrset] == [b"step two"], peer.describe()

            retrained = retrain(zones, tmp_path)
            follow(primary, peer, retrained, "incremental", ixfrs=3, axfrs=1)

            edit(zonefile, retrained, retrained + 1, find='"step two"', replace='"after the retrain"')
            follow(primary, peer, retrained + 1, "incremental", ixfrs=4, axfrs=1)
