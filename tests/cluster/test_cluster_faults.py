"""Faults in the namespaced cluster (root): one zone (legal.semantic.root.) with its primary, our
secondary and a Knot secondary, each in its own namespace. A partitioned secondary keeps serving
its copy and catches up once joined again (within the agent's 5 s refresh, or the next NOTIFY); a
primary killed (-9) right after an UPDATE, while the secondaries transfer, leaves them serving a
whole zone; restarted, it still has the registration (its journal) and the secondaries converge."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterator

import dns.message
import dns.name
import dns.query
import dns.rcode
import pytest
from helpers.guards import require

from tools import cluster_isolated as isolated
from tools import cluster_netns as netns
from tools.cluster_probe import soa_serial

pytestmark = [
    pytest.mark.external,
    pytest.mark.usefixtures("netns_capable"),
]

REPO = Path(__file__).resolve().parents[2]
ZONE = "legal.semantic.root."
CATCH_UP = isolated.AGENT_REFRESH + 5.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[isolated.State]:
    state = isolated.up(REPO / "zonefiles", tmp_path_factory.mktemp("faults"), only=[ZONE], say=lambda _t: None)
    try:
        yield state
    finally:
        assert isolated.down(state) == []


def serial_at(state: isolated.State, node: str) -> int | None:
    address = state.layout.node(node).address
    origin = dns.name.from_text(ZONE)
    return netns.call_in(state.layout.hub, lambda: asyncio.run(soa_serial(address, 53, origin)))


def wait_serial(state: isolated.State, node: str, serial: int, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        seen = serial_at(state, node)
        if seen is not None and seen >= serial:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{node} serves {serial_at(state, node)} after {timeout:g} s, want >= {serial}")


def txt_at(state: isolated.State, node: str, label: str) -> int:
    address = state.layout.node(node).address

    def ask() -> int:
        reply = dns.query.udp(dns.message.make_query(f"{label}.{ZONE}", "TXT"), address, port=53, timeout=1)
        return reply.rcode() if reply.answer or reply.rcode() != dns.rcode.NOERROR else -1

    return netns.call_in(state.layout.hub, ask)


def test_a_partitioned_secondary_serves_its_copy_and_catches_up(cluster: isolated.State) -> None:
    require("external")
    plan = cluster.zones[0]
    before = serial_at(cluster, plan.ours)
    isolated.partition(cluster, plan.ours)
    try:
        (result,) = isolated.propagation(cluster, timeout=2.0)
        assert result.served_ms[plan.ours] is None and result.served_ms[plan.third] is not None
    finally:
        isolated.partition(cluster, plan.ours, isolate=False)
    assert serial_at(cluster, plan.ours) == before  # its copy, unchanged, still answered
    wait_serial(cluster, plan.ours, result.serial, CATCH_UP)


def test_a_primary_killed_mid_transfer_loses_nothing_registered(cluster: isolated.State) -> None:
    plan = cluster.zones[0]
    (result,) = isolated.propagation(cluster, timeout=0.0)  # the UPDATE, then no waiting: transfers run
    isolated.kill(cluster, plan.primary, "primary")
    for node in (plan.ours, plan.third):  # a whole zone, old or new, never none
        serial = serial_at(cluster, node)
        assert serial is not None and serial <= result.serial
    isolated.restart(cluster, plan.primary, "primary")
    assert serial_at(cluster, plan.primary) == result.serial  # the journal kept the UPDATE
    assert txt_at(cluster, plan.primary, result.label) == dns.rcode.NOERROR
    for node in (plan.ours, plan.third):
        wait_serial(cluster, node, result.serial, CATCH_UP)
        assert txt_at(cluster, node, result.label) == dns.rcode.NOERROR
