"""The shipped apex head, transferred by AXFR to a stock secondary (NSD, Knot) and read back from it,
decides exactly as the head in our zonefiles does (real encoder)."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Iterator

import dns.name
import dns.query
import dns.zone
import pytest
from helpers.peers import PeerHandle, running_knot_secondary, running_nsd_secondary
from helpers.server import REPO, ServerHandle, running_server

from routing.classifier import Classifier, classify
from routing.index import IndexCache
from zones.head import parse_head

pytestmark = [pytest.mark.external, pytest.mark.model]

ZONE = "semantic.root."
APEX = dns.name.from_text(ZONE)
QUESTIONS = (
    "Can my landlord keep the deposit for normal wear and tear?",
    "Why does my Rust borrow checker complain about a mutable reference in a loop?",
    "Write a limerick about a cat who learns to fly",
    "Is it safe to take ibuprofen with blood pressure medication?",
    "How do I report capital gains from crypto on my taxes?",
    "What causes the seasons on Earth?",
)
Secondary = Callable[..., AbstractContextManager[PeerHandle]]


@pytest.fixture(scope="module")
def ours() -> Iterator[ServerHandle]:
    with running_server(REPO / "zonefiles") as server:
        yield server


@pytest.mark.parametrize("secondary", [pytest.param(running_nsd_secondary, id="nsd"),
                                       pytest.param(running_knot_secondary, id="knot")])
def test_head_from_a_secondary_routes_the_same(ours: ServerHandle, secondary: Secondary, shipped, encoder) -> None:
    with secondary(ZONE, (ours.host, ours.port)) as peer:
        host, port = peer.address
        theirs = dns.zone.from_xfr(dns.query.xfr(host, ZONE, port=port, timeout=5.0, lifetime=20.0,
                                                 relativize=False), relativize=False)
    head = parse_head(theirs, APEX)
    assert head is not None and head.classes == ("code", "creative", "finance", "legal", "medical", "science")
    mine = IndexCache(encoder).get(shipped.zones[APEX], APEX)
    transferred = IndexCache(encoder).get(theirs, APEX)
    assert mine is not None and transferred is not None and transferred.head is not None
    for text in QUESTIONS:
        a = classify(Classifier(), mine, text, encoder)
        b = classify(Classifier(), transferred, text, encoder)
        assert (a.child, a.stage, a.confidence, a.candidates) == (b.child, b.stage, b.confidence, b.candidates)
