"""TSIG on a real server (RFC 8945): signed transfers (every message of a multi-message AXFR),
the transfer ACL by zone, network and key, the TSIG error answers (decoded from the wire), signed
answers to signed queries, UPDATE replay and fudge, `dig -y` / `kdig -y`, and the start-up check
of key-file permissions."""
from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path
from typing import Iterator

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
import dns.zone
import pytest
from helpers.dnswire import run_tool, tcp_connect, tcp_exchange, tcp_read, tcp_send, udp_exchange
from helpers.server import REPO, ServerHandle, running_server, semdns_command

from zones.tsig import generate_key, parse_keyring, write_key_file

ZONES = REPO / "zonefiles"
LEGAL = "legal.semantic.root."
MEDICAL = "medical.semantic.root."
XFR = parse_keyring(generate_key("xfr-test"))
OTHER = parse_keyring(generate_key("xfr-other"))
UPDATE = parse_keyring(generate_key("engine.legal.semantic.root."))
BOGUS = parse_keyring(generate_key("xfr-test"))  # the right name, another secret
STRANGER = parse_keyring(generate_key("xfr-stranger"))


def key_block(keyring: dict) -> str:
    ((name, key),) = keyring.items()
    secret = base64.b64encode(key.secret).decode()
    return f'key "{name.to_text(omit_final_dot=True)}" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'


def secret_of(keyring: dict) -> str:
    ((_name, key),) = keyring.items()
    return base64.b64encode(key.secret).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    keys = tmp_path_factory.mktemp("keys")
    write_key_file(keys / "transfer.key", key_block(XFR) + key_block(OTHER))
    write_key_file(keys / "update.key", key_block(UPDATE))
    (keys / "policy.conf").write_text(f"grant engine.legal.semantic.root. zone {LEGAL};\n")  # plain A records too
    args = ["--no-semantic", "--transfer-keys", str(keys / "transfer.key"), "--tsig-keys", str(keys / "update.key"),
            "--update-policy", str(keys / "policy.conf"),
            "--allow-transfer", "127.0.0.1/32+key:xfr-test",  # every zone: this key from this network
            "--allow-transfer", f"{MEDICAL}=127.0.0.0/8"]  # medical: loopback without a key
    with running_server(ZONES, args) as handle:
        yield handle


def signed(name: str, rdtype: str, keyring: dict) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    ((keyname, key),) = keyring.items()
    query.use_tsig(key, keyname)
    return query


def raw_tcp(server: ServerHandle, query: dns.message.Message) -> dns.message.Message:
    """The first answer over TCP, parsed without verifying its TSIG."""
    return dns.message.from_wire(tcp_exchange(server.host, server.port, query.to_wire()), keyring=False)


def test_signed_axfr_every_message_signed_and_verified(server: ServerHandle) -> None:
    ((keyname, _key),) = XFR.items()
    messages = list(dns.query.xfr(server.host, LEGAL, port=server.port, keyring=XFR, keyname=keyname,
                                  timeout=5.0, lifetime=20.0))
    assert len(messages) > 1  # the codec library makes several 16 KiB messages
    assert all(m.had_tsig for m in messages)  # dnspython verified each one, chained (RFC 8945 §5.3.1)
    assert messages[0].answer[0].rdtype == dns.rdatatype.SOA
    assert messages[-1].answer[-1].rdtype == dns.rdatatype.SOA


def test_each_message_of_the_stream_carries_its_own_tsig(server: ServerHandle) -> None:
    query = signed(LEGAL, "AXFR", XFR)
    with tcp_connect(server.host, server.port) as sock:
        tcp_send(sock, query.to_wire())
        first = dns.message.from_wire(tcp_read(sock), keyring=False)
        second = dns.message.from_wire(tcp_read(sock), keyring=False)
    for message in (first, second):
        assert message.id == query.id and message.tsig is not None
        assert message.tsig[0].error == 0 and len(message.tsig[0].mac) == 32


def test_unsigned_transfer_refused_where_the_rule_wants_a_key(server: ServerHandle) -> None:
    query = dns.message.make_query(LEGAL, "AXFR")
    reply = raw_tcp(server, query)
    assert reply.rcode() == dns.rcode.REFUSED and reply.tsig is None


def test_valid_key_not_in_the_acl_is_refused_signed(server: ServerHandle) -> None:
    query = signed(LEGAL, "AXFR", OTHER)
    wire = tcp_exchange(server.host, server.port, query.to_wire())
    reply = dns.message.from_wire(wire, keyring=OTHER, request_mac=query.mac)  # verifies
    assert reply.rcode() == dns.rcode.REFUSED and reply.had_tsig


def test_zone_rule_overrides_the_global_one(server: ServerHandle) -> None:
    zone = dns.zone.from_xfr(dns.query.xfr(server.host, MEDICAL, port=server.port, timeout=5.0, lifetime=20.0))
    assert zone.get_rdataset("@", "SOA") is not None


@pytest.mark.parametrize(("keyring", "error"), [(BOGUS, dns.rcode.BADSIG), (STRANGER, dns.rcode.BADKEY)])
def test_bogus_tsig_from_loopback_gets_notauth_and_no_zone(server: ServerHandle, keyring: dict, error: int) -> None:
    query = signed(MEDICAL, "AXFR", keyring)  # medical is open to loopback: the bad TSIG still fails
    reply = raw_tcp(server, query)
    assert reply.rcode() == dns.rcode.NOTAUTH and not reply.answer
    assert reply.tsig is not None and reply.tsig[0].error == error and reply.tsig[0].mac == b""


def test_signed_soa_query_gets_a_signed_answer(server: ServerHandle) -> None:
    query = signed(LEGAL, "SOA", XFR)
    wire = udp_exchange(server.host, server.port, query.to_wire())
    reply = dns.message.from_wire(wire, keyring=XFR, request_mac=query.mac)
    assert reply.rcode() == dns.rcode.NOERROR and reply.had_tsig and reply.answer
    # a UDP retry of the very same message (its answer was lost) is answered again: public data
    again = dns.message.from_wire(udp_exchange(server.host, server.port, query.to_wire()), keyring=XFR,
                                  request_mac=query.mac)
    assert again.rcode() == dns.rcode.NOERROR and again.had_tsig


def test_a_replayed_transfer_request_is_badtime(server: ServerHandle) -> None:
    query = signed(LEGAL, "AXFR", XFR)
    first = raw_tcp(server, query)
    assert first.rcode() == dns.rcode.NOERROR and first.answer
    replayed = raw_tcp(server, query)  # e.g. captured and sent again from elsewhere
    assert replayed.rcode() == dns.rcode.NOTAUTH and not replayed.answer
    assert replayed.tsig[0].error == dns.rcode.BADTIME and len(replayed.tsig[0].mac) == 32


def test_signed_ixfr_over_udp_is_signed(server: ServerHandle) -> None:
    query = dns.message.make_query(LEGAL, "IXFR")
    query.authority = [dns.rrset.from_text(LEGAL, 0, "IN", "SOA", "ns1. h. 4000000000 1 1 1 1")]
    ((keyname, key),) = XFR.items()
    query.use_tsig(key, keyname)
    wire = udp_exchange(server.host, server.port, query.to_wire())
    reply = dns.message.from_wire(wire, keyring=XFR, request_mac=query.mac)
    assert reply.had_tsig and reply.answer[0].rdtype == dns.rdatatype.SOA


def test_signed_incremental_ixfr_over_tcp(server: ServerHandle) -> None:
    soa = dns.message.from_wire(udp_exchange(server.host, server.port,
                                             dns.message.make_query(LEGAL, "SOA").to_wire())).answer[0][0]
    ((update_name, _key),) = UPDATE.items()
    update = dns.update.UpdateMessage(LEGAL, keyring=UPDATE, keyname=update_name)
    update.add("ixfr-step", 60, "A", "127.0.0.10")
    assert dns.message.from_wire(tcp_exchange(server.host, server.port, update.to_wire()), keyring=UPDATE,
                                 request_mac=update.mac).rcode() == dns.rcode.NOERROR
    ((keyname, _key),) = XFR.items()
    messages = list(dns.query.xfr(server.host, LEGAL, rdtype=dns.rdatatype.IXFR, serial=soa.serial,
                                  port=server.port, keyring=XFR, keyname=keyname, timeout=5.0, lifetime=20.0,
                                  relativize=False))
    assert messages and all(m.had_tsig for m in messages)  # each verified by dnspython
    records = [rrset for m in messages for rrset in m.answer]
    assert any(r.name.to_text().startswith("ixfr-step.") for r in records)
    assert len(records) < 10  # the increment, not the zone


def test_update_replay_after_delete_is_refused(server: ServerHandle) -> None:
    ((keyname, key),) = UPDATE.items()
    add = dns.update.UpdateMessage(LEGAL, keyring=UPDATE, keyname=keyname)
    add.add("replayed", 60, "A", "127.0.0.9")
    captured = add.to_wire()
    reply = dns.message.from_wire(tcp_exchange(server.host, server.port, captured), keyring=UPDATE,
                                  request_mac=add.mac)
    assert reply.rcode() == dns.rcode.NOERROR and reply.had_tsig  # success answers are signed
    delete = dns.update.UpdateMessage(LEGAL, keyring=UPDATE, keyname=keyname)
    delete.delete("replayed", "A")
    assert dns.message.from_wire(tcp_exchange(server.host, server.port, delete.to_wire()), keyring=UPDATE,
                                 request_mac=delete.mac).rcode() == dns.rcode.NOERROR
    replayed = dns.message.from_wire(tcp_exchange(server.host, server.port, captured), keyring=False)
    assert replayed.rcode() == dns.rcode.NOTAUTH and replayed.tsig[0].error == dns.rcode.BADTIME
    lookup = dns.message.from_wire(
        udp_exchange(server.host, server.port, dns.message.make_query(f"replayed.{LEGAL}", "A").to_wire()))
    assert lookup.rcode() == dns.rcode.NXDOMAIN


def test_update_signed_long_ago_with_a_huge_fudge_is_badtime(server: ServerHandle, monkeypatch) -> None:
    ((keyname, key),) = UPDATE.items()
    old = dns.update.UpdateMessage(LEGAL)
    old.add("old", 60, "A", "127.0.0.8")
    old.use_tsig(key, keyname, fudge=65535)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now - 36_000)  # dnspython signs at time.time()
    wire = old.to_wire()
    monkeypatch.undo()
    reply = dns.message.from_wire(tcp_exchange(server.host, server.port, wire), keyring=False)
    rdata = reply.tsig[0]
    assert reply.rcode() == dns.rcode.NOTAUTH and rdata.error == dns.rcode.BADTIME and len(rdata.other) == 6
    assert len(rdata.mac) == 32  # BADTIME answers are signed


def test_refused_update_after_a_valid_tsig_is_signed(server: ServerHandle) -> None:
    ((keyname, _key),) = UPDATE.items()
    update = dns.update.UpdateMessage(MEDICAL, keyring=UPDATE, keyname=keyname)  # not the key's zone
    update.add("x", 60, "A", "127.0.0.6")
    reply = dns.message.from_wire(tcp_exchange(server.host, server.port, update.to_wire()), keyring=UPDATE,
                                  request_mac=update.mac)  # verifies
    assert reply.rcode() == dns.rcode.REFUSED and reply.had_tsig


def test_update_with_a_bad_signature_is_badsig(server: ServerHandle) -> None:
    bogus = parse_keyring(generate_key("engine.legal.semantic.root."))
    ((keyname, _key),) = bogus.items()
    update = dns.update.UpdateMessage(LEGAL, keyring=bogus, keyname=keyname)
    update.add("bogus", 60, "A", "127.0.0.7")
    reply = dns.message.from_wire(tcp_exchange(server.host, server.port, update.to_wire()), keyring=False)
    assert reply.rcode() == dns.rcode.NOTAUTH and reply.tsig[0].error == dns.rcode.BADSIG


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_dig_and_kdig_with_a_key(server: ServerHandle, tool: str) -> None:
    good = run_tool(tool, f"@{server.host}", "-p", str(server.port), "-y", f"hmac-sha256:xfr-test:{secret_of(XFR)}",
                    "AXFR", LEGAL)
    assert "_codec" in good and "failure" not in good.lower() and "BADSIG" not in good, good[-2000:]
    bad = run_tool(tool, f"@{server.host}", "-p", str(server.port), "-y", f"hmac-sha256:xfr-test:{secret_of(BOGUS)}",
                   "AXFR", LEGAL)
    assert "_codec" not in bad
    assert "BADSIG" in bad or "NOTAUTH" in bad, bad[-2000:]


@pytest.mark.parametrize("flag", ["--transfer-keys", "--tsig-keys"])
def test_server_refuses_a_key_file_others_can_read(tmp_path: Path, flag: str) -> None:
    path = tmp_path / "keys"
    write_key_file(path, key_block(XFR))
    path.chmod(0o644)
    done = subprocess.run([*semdns_command(), "serve", "--zones", str(ZONES), "--no-semantic", flag, str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert f"key file {path} is readable by others (mode 0644); chmod 600 it" in done.stderr


def test_transfer_rules_parse_and_admit() -> None:
    from nameserver.config import ServerConfig, TransferRule, parse_notify, parse_transfer_acl, parse_transfer_rule

    rule = parse_transfer_rule(f"{LEGAL}=192.0.2.0/24+key:xfr-test")
    assert rule.zone == dns.name.from_text(LEGAL) and str(rule.network) == "192.0.2.0/24"
    assert rule.key == dns.name.from_text("xfr-test.") and str(rule) == f"{LEGAL}=192.0.2.0/24+key:xfr-test."
    assert rule.admits("192.0.2.9", rule.key) and not rule.admits("192.0.2.9", None)
    assert not rule.admits("198.51.100.1", rule.key)
    assert parse_transfer_rule("key:xfr-test") == TransferRule(key=dns.name.from_text("xfr-test."))
    # zone rules alone keep the default (loopback, no key) for every other zone
    keys = {**XFR}
    config = ServerConfig(transfer_acl=parse_transfer_acl([f"{LEGAL}=key:xfr-test"]), transfer_keys=keys)
    legal, medical = dns.name.from_text(LEGAL), dns.name.from_text(MEDICAL)
    assert not config.transfer_allowed(legal, "127.0.0.1", None)
    assert config.transfer_allowed(legal, "203.0.113.1", dns.name.from_text("xfr-test."))
    assert config.transfer_allowed(medical, "127.0.0.1", None)
    assert not config.transfer_allowed(medical, "203.0.113.1", None)
    assert ServerConfig().transfer_allowed(legal, "::1", None)  # the default: loopback, no key
    assert parse_notify("127.0.0.1:5300+key:xfr-test") == (("127.0.0.1", 5300), dns.name.from_text("xfr-test."))
    assert parse_notify("[::1]:53") == (("::1", 53), None)


@pytest.mark.parametrize("text", ["", "key:", "10.0.0.0/8+10.1.0.0/16", "key:a+key:b", "nonsense"])
def test_bad_transfer_rules(text: str) -> None:
    from nameserver.config import parse_transfer_rule
    from nameserver.errors import ConfigError

    with pytest.raises(ConfigError):
        parse_transfer_rule(text)


def test_a_rule_naming_an_unknown_key_is_a_config_error() -> None:
    from nameserver.config import ServerConfig, parse_transfer_acl
    from nameserver.errors import ConfigError

    with pytest.raises(ConfigError, match="no key xfr-nowhere"):
        ServerConfig(transfer_acl=parse_transfer_acl(["key:xfr-nowhere"]))
