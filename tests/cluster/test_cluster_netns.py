"""`semdns cluster up --netns` for real (root): two zones, each with its primary, our secondary and a
Knot or NSD secondary in network namespaces of their own; transfers and NOTIFY signed with the
cluster's key, an UPDATE at a primary reaches every secondary by NOTIFY + IXFR, and `down` leaves no
namespace, process or key behind. One cluster for the module; the CLI test makes its own."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.xfr
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
ZONES = ["semantic.root.", "legal.semantic.root."]


def alive(pid: int) -> bool:
    return isolated._alive(pid)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[isolated.State]:
    state = isolated.up(REPO / "zonefiles", tmp_path_factory.mktemp("netns"), only=ZONES, say=lambda _t: None)
    try:
        yield state
    finally:
        isolated.down(state)


def serial_at(state: isolated.State, address: str, zone: str) -> int | None:
    origin = dns.name.from_text(zone)
    return netns.call_in(state.layout.hub, lambda: asyncio.run(soa_serial(address, 53, origin)))


def test_every_secondary_serves_the_primarys_serial(cluster: isolated.State) -> None:
    require("external")
    layout = cluster.layout
    for plan in cluster.zones:
        primary = serial_at(cluster, layout.node(plan.primary).address, plan.zone)
        assert primary is not None
        for target in cluster.targets(plan):
            assert serial_at(cluster, target.address, plan.zone) == primary, (plan.zone, target)


def test_an_update_reaches_every_secondary_by_signed_notify_and_ixfr(cluster: isolated.State) -> None:
    results = isolated.propagation(cluster, rounds=2)
    assert len(results) == 2 * len(ZONES)
    for result in results:
        assert all(ms is not None and ms < 15_000 for ms in result.served_ms.values()), result
    for plan in cluster.zones:
        log = Path(cluster.runtime, f"primary-{plan.primary}.log").read_text()
        key = isolated.key_name(cluster.cluster_id)
        assert "IXFR" in log and "incremental" in log and f"key {key}." in log, log[-3000:]
        assert "acknowledged" in log and "BADSIG" not in log


def test_the_primary_refuses_an_unsigned_transfer(cluster: isolated.State) -> None:
    plan = cluster.zones[1]
    address = cluster.layout.node(plan.primary).address

    def axfr() -> int:
        query = dns.message.make_query(plan.zone, "AXFR")
        return dns.query.tcp(query, address, port=53, timeout=5).rcode()

    assert netns.call_in(cluster.layout.hub, axfr) in (dns.rcode.REFUSED, dns.rcode.NOTAUTH)


def test_keys_are_private_and_addresses_are_the_clusters_own(cluster: isolated.State) -> None:
    for path in (cluster.transfer_key, cluster.update_keys):
        assert Path(path).stat().st_mode & 0o777 == 0o600
    for config in Path(cluster.runtime).glob("*-k*/*.conf"):
        assert config.stat().st_mode & 0o777 == 0o600
    ours = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    assert "10.53." not in ours  # nothing added to the caller's namespace
    present = set(netns.existing_namespaces())
    assert set(cluster.layout.namespaces) <= present


def test_down_removes_every_namespace_process_and_key(cluster: isolated.State) -> None:
    assert isolated.down(cluster) == []
    assert not [p for p in cluster.processes if alive(p["pid"])]
    assert not set(cluster.layout.namespaces) & set(netns.existing_namespaces())
    assert not Path(cluster.transfer_key).exists()


def test_the_command_reports_propagation_and_down_undoes_it(tmp_path: Path) -> None:
    def semdns(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tools.cli", "cluster", *args, "--runtime", str(tmp_path)],
                              cwd=REPO, capture_output=True, text=True, timeout=300)

    try:
        up = semdns("up", "--netns", "--zone", "legal.semantic.root", "--measure", "2")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "UPDATE at the primary -> new serial answered by the secondary (ms)" in up.stdout
        assert "semdns        2" in up.stdout and "knot          2" in up.stdout, up.stdout
        assert "not served in time" not in up.stdout
    finally:
        down = semdns("down")
    assert down.returncode == 0 and "deleted 4 namespaces" in down.stdout, down.stdout + down.stderr
    assert not list(tmp_path.glob("netns-*/keys"))
