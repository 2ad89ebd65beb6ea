"""End to end through the real CLI: engines register themselves, answer, survive a server
restart, and when one dies its subdomain falls back to the parent's general engine.

Every process is a `semdns` subprocess on loopback (the server on a free port chosen here, so
that it comes back on the same one after the restart; engines on port 0), and `dig` does the
DNS queries a user would type. Everything started is stopped in `finally`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pytest
from helpers.processes import read_until, stop_process
from helpers.server import REPO, free_port, running_server, semdns_command

from codec import text_to_qname
from zones.tsig import write_key_file

pytestmark = pytest.mark.model

QUESTION = "Can I sue my neighbor in small claims court?"  # semantic.root -> legal -> litigation
SUBDOMAIN = "litigation.legal.semantic.root."  # hosted in the legal zone file (no cut)
PARENT = "legal.semantic.root."
PARENT_PORT = 8110  # the static engine of legal (hierarchy contract)
ONNX_DOMAIN = "finance.semantic.root."
HEALTH = ("--health-interval", "1", "--health-failures", "2")
BOUND = 2 * 1 + 1  # failures x interval + timeout (nameserver/update/health.py), in seconds
GIVE_UP = 10.0  # how long the test waits for the SRV to leave (generous beyond BOUND)
ENGINE_START = 120.0
READY = re.compile(r"^engine ready: http://127\.0\.0\.1:(?P<port>\d+)")


@dataclass
class Engine:
    process: subprocess.Popen[str]
    output: list[str]
    port: int = 0


def spawn_engine(*args: str) -> Engine:
    """`semdns engine ARGS --listen 127.0.0.1:0`; `wait_ready` reads the port it got."""
    argv = [*semdns_command(), "engine", "--listen", "127.0.0.1:0", "--threads", "1", *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    return Engine(process, [])


def wait_ready(engine: Engine) -> Engine:
    line = read_until(engine.process, lambda text: READY.match(text) is not None, ENGINE_START, engine.output)
    if line is not None:
        engine.port = int(READY.match(line)["port"])  # type: ignore[index]
        return engine
    raise AssertionError(f"engine did not start ({engine.process.args}):\n{''.join(engine.output)}")


def stop(process: subprocess.Popen) -> None:
    stop_process(process, timeout=15)


def semdns(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*semdns_command(), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"semdns {' '.join(args)}: exit {result.returncode}\n{result.stderr}"
    return result


def dig(port: int, *query: str) -> list[tuple[str, str, str]]:
    """(owner, type, data) of every answer record of `dig @127.0.0.1 -p PORT QUERY`."""
    result = subprocess.run([shutil.which("dig") or "dig", "@127.0.0.1", "-p", str(port), "+tcp", "+time=3",
                             "+tries=1", "+noall", "+answer", *query], capture_output=True, text=True, timeout=15)
    assert result.returncode == 0, result.stdout + result.stderr
    records = []
    for line in result.stdout.splitlines():
        fields = line.split(None, 4)
        if len(fields) == 5:
            records.append((fields[0], fields[3], fields[4]))
    return records


def srv(port: int, domain: str) -> list[str]:
    return sorted(data for _, rdtype, data in dig(port, "SRV", f"_llm._tcp.{domain}") if rdtype == "SRV")


def poll(predicate: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return predicate()


def zones_without_static_engines(tmp_path: Path) -> Path:
    """The shipped zones with litigation's static `_llm._tcp` SRV/TXT and its target's A removed:
    its engines then come only from registration, so what dig shows there is the registered engine
    (not a static record for a port nobody listens on) and, once that engine dies, nothing at all,
    which is what makes the answer fall back to the parent's general engine."""
    copy = tmp_path / "zones"
    shutil.copytree(REPO / "zonefiles", copy)
    legal = copy / f"{PARENT}zone"
    lines = legal.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not re.match(r"(_llm\._tcp|llm1)\.litigation\s", line)]
    assert len(lines) - len(kept) == 3, "expected litigation's static SRV, TXT and A in the legal zonefile"
    legal.write_text("".join(kept))
    return copy


def keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    """One key per engine (an engine's key file holds exactly one key) and the server's file with both."""
    legal, finance = tmp_path / "legal.key", tmp_path / "finance.key"
    semdns("zone", "keygen", f"engine.{PARENT}", "-o", str(legal))  # may update legal.semantic.root.
    semdns("zone", "keygen", f"engine.{ONNX_DOMAIN}", "-o", str(finance))
    server = tmp_path / "server.keys"
    write_key_file(server, legal.read_text() + finance.read_text())
    return legal, finance, server


def ask_json(port: int) -> dict:
    result = semdns("ask", QUESTION, "--server", f"127.0.0.1:{port}", "--max-tokens", "8", "--json", "--timeout", "5",
                    timeout=120)
    return json.loads(result.stdout)


def semantic_answer(port: int, rdtype: str = "SRV", form: str = "q") -> list[tuple[str, str, str]]:
    return dig(port, rdtype, text_to_qname(QUESTION, "semantic.root.", form))


def snapshot(zones: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(zones.rglob("*")) if p.is_file()}


def test_registered_engines_answer_survive_restart_and_fall_back(tmp_path: Path) -> None:
    zones = zones_without_static_engines(tmp_path)
    before = snapshot(zones)
    legal_key, finance_key, server_keys = keys(tmp_path)
    port = free_port()
    server_args: Sequence[str] = ("--tsig-keys", str(server_keys), "--journal", str(tmp_path / "journal"), *HEALTH)
    engines: list[Engine] = []
    try:
        with running_server(zones, server_args, listen=f"127.0.0.1:{port}"):
            assert srv(port, SUBDOMAIN) == []  # nothing static left there
            register = ("--server", f"127.0.0.1:{port}", "--lease", "60")
            # the engine's model name reaches the SDK through its DNS-SD instance TXT (PTR -> SRV + TXT)
            engines.append(spawn_engine("--backend", "llama", "--ctx", "512", "--domain", SUBDOMAIN,
                                        "--tsig-key", str(legal_key), *register))
            engines.append(spawn_engine("--backend", "onnx", "--domain", ONNX_DOMAIN,
                                        "--tsig-key", str(finance_key), *register))
            llama, onnx = (wait_ready(engine) for engine in engines)
            llama_srv = f"0 0 {llama.port} llm-{llama.port}.{SUBDOMAIN}"
            onnx_srv = f"0 0 {onnx.port} llm-{onnx.port}.{ONNX_DOMAIN}"
            assert srv(port, SUBDOMAIN) == [llama_srv]
            assert onnx_srv in srv(port, ONNX_DOMAIN)  # beside finance's static engine
            assert snapshot(zones) == before  # registered without any zonefile edit

            answer = ask_json(port)
            assert answer["engine"] == f"http://127.0.0.1:{llama.port}/v1"
            assert answer["route"]["domain"] == SUBDOMAIN
            assert answer["answer"].strip()

        with running_server(zones, server_args, listen=f"127.0.0.1:{port}") as server:
            # right after the restart, before any renewal (every lease/3 = 20 s): from the journal
            assert re.search(r"journal: [1-9]\d* registration updates replayed", server.log()), server.log()
            assert srv(port, SUBDOMAIN) == [llama_srv]
            assert onnx_srv in srv(port, ONNX_DOMAIN)

            llama.process.send_signal(signal.SIGKILL)  # no deregistration: the health probes must notice
            llama.process.wait(timeout=10)
            assert poll(lambda: srv(port, SUBDOMAIN) == [], GIVE_UP), (
                f"the dead engine's SRV was still served {GIVE_UP:g} s after kill -9 (bound {BOUND} s)\n{server.log()}")

            chain = semantic_answer(port)
            cnames = [data for _, rdtype, data in chain if rdtype == "CNAME"]
            assert cnames[-2] == text_to_qname(QUESTION, SUBDOMAIN)  # still routed to litigation ...
            assert cnames[-1] == f"_llm._tcp.{PARENT}"  # ... and answered by legal's general engine
            assert [data.split()[2] for _, rdtype, data in chain if rdtype == "SRV"] == [str(PARENT_PORT)]
            explained = " ".join(data for _, rdtype, data in semantic_answer(port, "TXT", "explain"))
            assert f"fallback=_llm._tcp.{PARENT}" in explained
            assert onnx_srv in srv(port, ONNX_DOMAIN)  # the healthy engine stays
    finally:
        for engine in engines:
            stop(engine.process)
