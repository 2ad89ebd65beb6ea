"""dnsdist in front of our servers (`tools/cluster_front.py`): it forwards to them, health-checks
them (SOA of the apex every second), takes a killed one out within the documented 3 s and brings it
back when it answers again. Two plain (`--no-semantic`) instances with identities, one front."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import dns.message
import dns.query
import pytest
from helpers.guards import require
from helpers.server import free_port

from tools.cluster_front import dnsdist_config, running_front, wait_answering

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
FAILOVER = 3.0  # README: a dead instance stops getting queries within 3 s (1 s checks, 1 failure, 0.5 s timeout)


def identity(port: int) -> str | None:
    query = dns.message.make_query("id.server.", "TXT", "CH")
    try:
        reply = dns.query.udp(query, HOST, port=port, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return None
    return reply.answer[0][0].strings[0].decode() if reply.answer else None


def test_the_configuration_checks_every_backend() -> None:
    text = dnsdist_config((HOST, 5400), [(HOST, 5401), (HOST, 5402)])
    assert 'setLocal("127.0.0.1:5400")' in text
    assert text.count('checkName="semantic.root.", checkType="SOA", mustResolve=true') == 2
    assert 'address="127.0.0.1:5402", name="semdns1"' in text


def serve(port: int, name: str, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "serve", "--zones", str(REPO / "zonefiles"), "--no-semantic",
             "--listen", f"{HOST}:{port}", "--identity", name, "--rrl-exempt", "127.0.0.0/8"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[tuple[list[int], list[subprocess.Popen]]]:
    ports = [free_port(HOST), free_port(HOST)]
    processes = [serve(port, f"n{i}", tmp_path / f"serve-{i}.log") for i, port in enumerate(ports)]
    try:
        for process, port in zip(processes, ports):
            wait_answering(lambda port=port: identity(port) is not None, process, 60)
        yield ports, processes
    finally:
        for process in processes:
            stop(process)


@pytest.mark.external
def test_a_killed_instance_is_taken_out_and_comes_back(tmp_path: Path, backends) -> None:  # type: ignore[no-untyped-def]
    require("external")
    assert shutil.which("dnsdist"), "dnsdist is not installed: run scripts/setup.sh"
    ports, processes = backends
    front_port = free_port(HOST)
    with running_front((HOST, front_port), [(HOST, p) for p in ports], tmp_path) as front:
        wait_answering(lambda: identity(front_port) is not None, front)
        assert identity(front_port) in ("n0", "n1")
        processes[0].kill()
        processes[0].wait()
        killed = time.monotonic()
        # poll until every answer comes from the survivor
        while time.monotonic() - killed < FAILOVER + 5:
            if all(identity(front_port) == "n1" for _ in range(20)):
                break
            time.sleep(0.05)
        taken_out = time.monotonic() - killed
        log = (tmp_path / "dnsdist.log").read_text()
        assert taken_out <= FAILOVER, f"n0 still chosen after {taken_out:.1f} s\n{log}"
        processes[0] = serve(ports[0], "n0", tmp_path / "serve-0b.log")
        wait_answering(lambda: identity(ports[0]) == "n0", processes[0], 60)
        processes[1].kill()
        processes[1].wait()
        wait_answering(lambda: identity(front_port) == "n0", front, FAILOVER + 5)
