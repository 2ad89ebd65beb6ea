"""Knot and NSD as TSIG-keyed secondaries (RFC 8945) over loopback: with the right key each
transfers our zone (SOA queries, IXFR/AXFR all signed), a NOTIFY we sign with the key makes it
refresh at once; with a wrong secret it gets nothing (its zone stays empty, we log BADSIG)."""
from __future__ import annotations

import base64
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import dns.message
import dns.name
import dns.rcode
import dns.update
import pytest
from helpers.dnswire import tcp_exchange
from helpers.peers import PeerHandle, TsigSecret, running_knot_secondary, running_nsd_secondary
from helpers.server import REPO, ServerHandle, free_port, running_server

from zones.tsig import generate_key, parse_keyring, write_key_file

pytestmark = [pytest.mark.external]

ZONE = "legal.semantic.root."
KEY_NAME = "xfr-knot"
TRANSFER = parse_keyring(generate_key(KEY_NAME))
WRONG = parse_keyring(generate_key(KEY_NAME))
UPDATE = parse_keyring(generate_key(f"engine.{ZONE}"))


def secret(keyring: dict) -> TsigSecret:
    ((_name, key),) = keyring.items()
    return (KEY_NAME, "hmac-sha256", base64.b64encode(key.secret).decode())


def key_block(keyring: dict) -> str:
    ((name, key),) = keyring.items()
    return (f'key "{name.to_text(omit_final_dot=True)}" {{ algorithm hmac-sha256; '
            f'secret "{base64.b64encode(key.secret).decode()}"; }};\n')


Secondary = Callable[..., AbstractContextManager[PeerHandle]]
SECONDARIES = [pytest.param(running_knot_secondary, id="knot"), pytest.param(running_nsd_secondary, id="nsd")]


@contextmanager
def primary(keys: Path, notify_port: int) -> Iterator[ServerHandle]:
    """Our server: transfers only with the key from loopback, NOTIFY signed to `notify_port`."""
    write_key_file(keys / "transfer.key", key_block(TRANSFER))
    write_key_file(keys / "update.key", key_block(UPDATE))
    ((update_key, _secret),) = UPDATE.items()
    (keys / "policy.conf").write_text(f"grant {update_key} zone {ZONE};\n")  # plain A records need a grant
    args = ["--no-semantic", "--transfer-keys", str(keys / "transfer.key"), "--tsig-keys", str(keys / "update.key"),
            "--update-policy", str(keys / "policy.conf"), "--journal", str(keys / "journal"),
            "--allow-transfer", f"127.0.0.1/32+key:{KEY_NAME}",
            "--notify", f"127.0.0.1:{notify_port}+key:{KEY_NAME}"]
    with running_server(REPO / "zonefiles", args) as server:
        yield server


def our_serial(server: ServerHandle) -> int:
    query = dns.message.make_query(ZONE, "SOA")
    reply = dns.message.from_wire(tcp_exchange(server.host, server.port, query.to_wire()))
    return reply.answer[0][0].serial


def add_record(server: ServerHandle, label: str) -> None:
    """A signed UPDATE that raises the zone's serial (and makes the server NOTIFY)."""
    ((keyname, _key),) = UPDATE.items()
    update = dns.update.UpdateMessage(ZONE, keyring=UPDATE, keyname=keyname)
    update.add(label, 60, "A", "127.0.0.42")
    reply = dns.message.from_wire(tcp_exchange(server.host, server.port, update.to_wire()), keyring=UPDATE,
                                  request_mac=update.mac)
    assert reply.rcode() == dns.rcode.NOERROR


def wait_for(predicate, timeout: float, what: str, peer: PeerHandle) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:.0f}s\n{peer.describe()}")


@pytest.mark.parametrize("secondary", SECONDARIES)
def test_transfers_with_the_key_and_refreshes_on_a_signed_notify(tmp_path: Path, secondary: Secondary) -> None:
    port = free_port()
    with primary(tmp_path, port) as ours, \
            secondary(ZONE, (ours.host, ours.port), port=port, key=secret(TRANSFER)) as peer:
        assert peer.soa_serial(ZONE) == our_serial(ours)
        add_record(ours, "notified")
        serial = our_serial(ours)
        # the secondary's own refresh timer is an hour away (the zone's SOA): only the NOTIFY does this
        peer.wait_for_serial(ZONE, serial, timeout=15)
        reply = peer.query(f"notified.{ZONE}", "A")
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer, peer.describe()
        wait_for(lambda: "acknowledged" in ours.log(), 10, "our log shows the signed NOTIFY acknowledged", peer)
        assert f"signed message(s), key {KEY_NAME}." in ours.log()
        assert "BADSIG" not in ours.log()


@pytest.mark.parametrize("secondary", SECONDARIES)
def test_a_wrong_key_gets_nothing(tmp_path: Path, secondary: Secondary) -> None:
    with primary(tmp_path, free_port()) as ours, \
            secondary(ZONE, (ours.host, ours.port), key=secret(WRONG), wait_for_zone=False) as peer:
        wait_for(lambda: "BADSIG" in ours.log(), 20, "the secondary's signed request is refused BADSIG", peer)
        time.sleep(1.0)
        assert peer.soa_serial(ZONE) is None  # its zone stays empty
        assert peer.query(ZONE, "SOA").rcode() != dns.rcode.NOERROR, peer.describe()
        assert "signed message(s)" not in ours.log()
        if peer.name == "knotd":
            wait_for(lambda: "failed" in peer.log(), 10, "Knot logs the failed refresh", peer)


def test_the_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "k"
    write_key_file(path, key_block(TRANSFER))
    assert path.stat().st_mode & 0o777 == 0o600
