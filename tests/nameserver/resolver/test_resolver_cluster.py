"""`semdns cluster up/down`: the shipped zonefiles served one zone per loopback address, a
recursive resolver on 127.0.0.10, resolution across real `semdns serve` processes, and what
happens when one domain's server stops."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tools.cmd_cluster import free_port_on

REPO = Path(__file__).resolve().parents[3]
ADDRESSES = [f"127.0.0.{i}" for i in range(1, 11)]


def cluster_port() -> int:
    return free_port_on(ADDRESSES)


def semdns(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=180
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def ask(host: str, port: int, name: str) -> dns.message.Message:
    query = dns.message.make_query(name, "SRV", use_edns=0)
    return dns.query.udp(query, host, timeout=8.0, port=port)


@pytest.fixture
def cluster(tmp_path: Path):
    port = cluster_port()
    runtime = tmp_path / "runtime"
    up = semdns("cluster", "up", "--port", str(port), "--runtime", str(runtime), "--zones", str(REPO / "zonefiles"))
    state = runtime / "cluster.json"
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield port, runtime, json.loads(state.read_text())
    finally:
        if state.exists():
            members = json.loads(state.read_text())
            semdns("cluster", "down", "--runtime", str(runtime))
            for m in members:  # belt and braces: never leave a server behind
                if alive(m["pid"]):
                    os.kill(m["pid"], signal.SIGKILL)


@pytest.mark.model
def test_cluster_resolves_across_servers_and_survives_a_dead_domain(cluster) -> None:
    port, runtime, members = cluster
    roles = {m["address"]: m for m in members}
    assert roles["127.0.0.10"]["role"] == "resolver"
    assert roles["127.0.0.8"]["zones"] == ["contract.legal.semantic.root"]
    assert semdns("cluster", "status", "--runtime", str(runtime)).returncode == 0

    # through the resolver: root -> legal -> contract, three real servers
    reply = ask("127.0.0.10", port, "_llm._tcp.contract.legal.semantic.root.")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.RA
    assert reply.answer[0][0].port == 8111
    # the contract server alone does not know the legal zone: the hierarchy is really distributed
    direct = dns.query.udp(dns.message.make_query("_llm._tcp.legal.semantic.root.", "SRV"), "127.0.0.8", 3.0, port)
    assert direct.rcode() == dns.rcode.REFUSED

    os.kill(roles["127.0.0.2"]["pid"], signal.SIGTERM)  # the legal domain's server goes away
    deadline = time.monotonic() + 10
    while alive(roles["127.0.0.2"]["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    failed = ask("127.0.0.10", port, "_llm._tcp.litigation.legal.semantic.root.")
    assert failed.rcode() == dns.rcode.SERVFAIL
    ede = [o for o in failed.options if o.otype == dns.edns.OptionType.EDE]
    assert ede and ede[0].code == dns.edns.EDECode.NO_REACHABLE_AUTHORITY
    # cached delegations keep working; other domains are unaffected
    assert ask("127.0.0.10", port, "_llm._tcp.contract.legal.semantic.root.").rcode() == dns.rcode.NOERROR
    assert ask("127.0.0.10", port, "_llm._tcp.medical.semantic.root.").rcode() == dns.rcode.NOERROR

    assert semdns("cluster", "status", "--runtime", str(runtime)).returncode == 1
    down = semdns("cluster", "down", "--runtime", str(runtime))
    assert down.returncode == 0, down.stderr
    assert not any(alive(m["pid"]) for m in members)
