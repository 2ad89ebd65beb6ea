"""An accepted dynamic UPDATE is announced to the secondaries with NOTIFY (RFC 1996), like a reload."""
from __future__ import annotations

import socket
from pathlib import Path

import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.update
from helpers.server import running_server
from helpers.testzones import write_test_zones

from zones.tsig import generate_key, load_keyring, write_key_file

KEY = "engine.sem.test."


def test_accepted_update_sends_notify_and_a_refused_one_does_not(tmp_path: Path) -> None:
    zones = write_test_zones(tmp_path / "zones")
    key_file = tmp_path / "keys.conf"
    write_key_file(key_file, generate_key(KEY))
    keyring = load_keyring(key_file)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as secondary:
        secondary.bind(("127.0.0.1", 0))
        secondary.settimeout(1.5)
        notify_to = f"127.0.0.1:{secondary.getsockname()[1]}"
        policy = tmp_path / "update-policy.conf"
        policy.write_text(f"grant {KEY} zone sem.test.;\n")  # a plain A record: beyond the engine rule
        flags = ["--no-semantic", "--tsig-keys", str(key_file), "--update-policy", str(policy), "--notify", notify_to]
        with running_server(zones, flags) as server:
            refused = dns.update.UpdateMessage("child.sem.test.", keyring=keyring, keyname=dns.name.from_text(KEY))
            refused.add("x.child.sem.test.", 60, "A", "192.0.2.9")  # the key may not update the child zone
            assert dns.query.tcp(refused, server.host, port=server.port, timeout=5).rcode() == dns.rcode.REFUSED
            try:
                wire = secondary.recv(65535)
                raise AssertionError(f"NOTIFY after a refused UPDATE: {dns.message.from_wire(wire).question}")
            except socket.timeout:
                pass
            secondary.settimeout(10.0)
            update = dns.update.UpdateMessage("sem.test.", keyring=keyring, keyname=dns.name.from_text(KEY))
            update.add("dyn.sem.test.", 60, "A", "192.0.2.8")
            assert dns.query.tcp(update, server.host, port=server.port, timeout=5).rcode() == dns.rcode.NOERROR
            wire, peer = secondary.recvfrom(65535)
            notify = dns.message.from_wire(wire)
            assert notify.opcode() == dns.opcode.NOTIFY and notify.question[0].name.to_text() == "sem.test."
            secondary.sendto(dns.message.make_response(notify).to_wire(), peer)
