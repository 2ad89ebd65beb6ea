"""The peer runners themselves: NSD as a primary of the shipped zonefiles serves what ours serves,
and a peer that cannot start fails with its configuration and log in the message."""
from __future__ import annotations

import pytest
from helpers.peers import PeerStartError, query, running_nsd_primary, running_unbound
from helpers.server import REPO, running_server

ZONEFILES = REPO / "zonefiles"


@pytest.mark.external
@pytest.mark.model
def test_nsd_primary_serves_the_shipped_zones_like_ours() -> None:
    files = [ZONEFILES / "semantic.root.zone", ZONEFILES / "legal.semantic.root.zone"]
    with running_server(ZONEFILES) as ours, running_nsd_primary(*files) as nsd:
        for name, rdtype in [
            ("semantic.root.", "SOA"),
            ("_llm._tcp.semantic.root.", "SRV"),
            ("_llm._tcp.legal.semantic.root.", "TXT"),
            ("llm1.litigation.legal.semantic.root.", "A"),
        ]:
            expected = query((ours.host, ours.port), name, rdtype).answer
            got = nsd.query(name, rdtype).answer
            assert got == expected and expected, f"{rdtype} {name}: ours {expected}, nsd {got}\n{nsd.describe()}"


@pytest.mark.external
def test_a_peer_that_cannot_start_reports_its_configuration() -> None:
    with pytest.raises(PeerStartError) as failure:
        with running_unbound(stub_zone="semantic.root.", stub_addr=("not-an-address", 53)):
            pass
    message = str(failure.value)
    assert "unbound" in message and "stub-addr: not-an-address@53" in message, message
