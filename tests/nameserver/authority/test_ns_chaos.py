"""CHAOS-class identification over real sockets: `version.bind.`, `version.server.`, `id.server.`
and `hostname.bind.` answer as NSD answers them, configurable (`--version`, `--identity`) and
hideable (`--hide-version`, `--hide-identity`: REFUSED with EDE 18)."""
from __future__ import annotations

import importlib.metadata
import socket
from pathlib import Path
from typing import Iterator

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import pytest
from helpers.dnswire import dig, tcp_exchange, udp_exchange
from helpers.server import ServerHandle, running_server
from helpers.testzones import write_test_zones

from nameserver.config import ServerConfig
from nameserver.errors import ConfigError
from tools.cli import build_parser
from tools.cmd_serve import config_from_args

VERSION_NAMES = ("version.bind.", "version.server.")
IDENTITY_NAMES = ("id.server.", "hostname.bind.")


@pytest.fixture(scope="module")
def zones_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_zones(tmp_path_factory.mktemp("zones"))


@pytest.fixture(scope="module")
def default(zones_dir: Path) -> Iterator[ServerHandle]:
    with running_server(zones_dir, ["--no-semantic"]) as handle:
        yield handle


@pytest.fixture(scope="module")
def configured(zones_dir: Path) -> Iterator[ServerHandle]:
    with running_server(
        zones_dir, ["--no-semantic", "--version", "v9 test build", "--identity", "ns-a.example"]
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def hidden(zones_dir: Path) -> Iterator[ServerHandle]:
    with running_server(zones_dir, ["--no-semantic", "--hide-version", "--hide-identity"]) as handle:
        yield handle


def chaos(server: ServerHandle, name: str, rdtype: str = "TXT", tcp: bool = False, **edns) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, dns.rdataclass.CH, **edns)
    query.flags = 0
    reply = (tcp_exchange if tcp else udp_exchange)(server.host, server.port, query.to_wire())
    return dns.message.from_wire(reply)


def texts(reply: dns.message.Message) -> list[str]:
    return [b"".join(r.strings).decode() for rrset in reply.answer for r in rrset]


def ede_codes(reply: dns.message.Message) -> list[int]:
    return [int(o.code) for o in reply.options if isinstance(o, dns.edns.EDEOption)]


def test_defaults_are_the_package_version_and_the_host_name(default: ServerHandle) -> None:
    version = f"semantic-dns {importlib.metadata.version('semantic-dns')}"
    for name in VERSION_NAMES:
        assert texts(chaos(default, name)) == [version]
    for name in IDENTITY_NAMES:
        assert texts(chaos(default, name)) == [socket.gethostname()]


def test_dig_sees_the_configured_texts(configured: ServerHandle) -> None:
    out = dig(configured.host, configured.port, "CH", "TXT", "version.bind", "+noall", "+answer")
    assert '"v9 test build"' in out and "\tCH\tTXT\t" in out
    out = dig(configured.host, configured.port, "CH", "TXT", "id.server", "+noall", "+answer")
    assert '"ns-a.example"' in out


def test_answer_shape_as_nsd(configured: ServerHandle) -> None:
    for tcp in (False, True):
        reply = chaos(configured, "HostName.BIND.", tcp=tcp, use_edns=0)
        assert reply.rcode() == dns.rcode.NOERROR and not reply.flags & dns.flags.AA
        (rrset,) = reply.answer
        assert rrset.name.to_text() == "HostName.BIND." and rrset.ttl == 0 and rrset.rdclass == dns.rdataclass.CH
        assert texts(reply) == ["ns-a.example"] and reply.edns == 0


def test_any_answers_the_txt(configured: ServerHandle) -> None:
    assert texts(chaos(configured, "version.server.", "ANY")) == ["v9 test build"]


def test_other_chaos_queries_are_refused_not_supported(configured: ServerHandle) -> None:
    for name, rdtype in (("version.bind.", "A"), ("authors.bind.", "TXT"), ("sem.test.", "SOA")):
        reply = chaos(configured, name, rdtype, use_edns=0)
        assert reply.rcode() == dns.rcode.REFUSED and ede_codes(reply) == [21], (name, rdtype)


def test_hidden_texts_are_refused_prohibited(hidden: ServerHandle) -> None:
    for name in VERSION_NAMES + IDENTITY_NAMES:
        reply = chaos(hidden, name, use_edns=0)
        assert reply.rcode() == dns.rcode.REFUSED and reply.answer == [] and ede_codes(reply) == [18]
        assert chaos(hidden, name).edns < 0  # no EDE without EDNS


def test_second_query_from_the_wire_cache_keeps_the_case(configured: ServerHandle) -> None:
    first = chaos(configured, "id.server.")
    again = chaos(configured, "ID.SERVER.")
    assert first.answer[0].name.to_text() == "id.server." and again.answer[0].name.to_text() == "ID.SERVER."
    assert texts(again) == ["ns-a.example"]


def test_flags_reach_the_config() -> None:
    args = build_parser().parse_args(["serve", "--zones", ".", "--version", "v1", "--hide-identity"])
    config = config_from_args(args)
    assert (config.version, config.hide_version, config.hide_identity) == ("v1", False, True)
    assert config.identity == socket.gethostname()


def test_a_text_longer_than_one_txt_string_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="identity"):
        ServerConfig(identity="x" * 256)
    assert ServerConfig(version="é" * 127).version  # 254 octets fit
