"""The shipped `zonefiles/` hierarchy, served as a whole: the issue's by-hand checks."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from helpers.dnswire import dig, run_tool
from helpers.server import ServerHandle, running_server

ZONEFILES = Path(__file__).resolve().parents[3] / "zonefiles"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with running_server(ZONEFILES) as handle:
        yield handle


def test_soa_gives_the_serial(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "SOA", "semantic.root", "+short")
    assert out.split()[0] == "ns1.semantic.root." and len(out.split()[2]) == 10


def test_engines_of_legal_with_nslookup(server: ServerHandle) -> None:
    out = run_tool("nslookup", f"-port={server.port}", "-type=SRV", "_llm._tcp.legal.semantic.root", server.host)
    assert "8110 llm1.legal.semantic.root." in out


def test_hosted_child_zone_answers_and_nxdomain(server: ServerHandle) -> None:
    assert "8111" in dig(server.host, server.port, "SRV", "_llm._tcp.contract.legal.semantic.root", "+short")
    assert "status: NXDOMAIN" in dig(server.host, server.port, "A", "no-such-name.semantic.root")


def test_axfr_of_the_root_zone(server: ServerHandle) -> None:
    out = dig(server.host, server.port, "AXFR", "semantic.root")
    records = [line.split() for line in out.splitlines() if line and not line.startswith(";")]
    assert records[0][3] == "SOA" and records[-1][3] == "SOA" and len(records) > 10
