"""Run a real `semdns serve` subprocess for a test, and always stop it.

    with running_server(zones_dir) as server:
        dig("@" + server.host, "-p", str(server.port), "SOA", "semantic.root")

The server listens on 127.0.0.1 with a port it picks itself (`--listen 127.0.0.1:0`; no race with
other tests); the handle reads the actual port from its `ready:` line. Extra flags go in
`extra_args` (e.g. `("--axfr-allow", "127.0.0.1/32")`; another `--listen` adds a listener, and
`server.addresses` lists them all). `server.log()` returns what the server wrote to stderr.
Response rate limiting is off (`--rrl-rate 0`: a test asks the same question from 127.0.0.1 far
faster than any client) unless `rate_limit=True`.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from helpers.guards import require
from helpers.processes import stop_process

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"^ready: listening on (?P<addresses>.+) \(udp\+tcp\)$")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class ServerStartError(RuntimeError):
    """The server exited or did not print its ready line in time; the message has its output."""


@dataclass
class ServerHandle:
    host: str
    port: int
    process: subprocess.Popen
    addresses: list[tuple[str, int]]
    stderr_path: Path
    stdout_lines: list[str] = field(default_factory=list)

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def reload(self) -> None:
        """Send SIGHUP (the server re-reads changed zonefiles)."""
        self.process.send_signal(signal.SIGHUP)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free for both UDP and TCP on `host` right now (prefer `--listen HOST:0`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise OSError(f"no free UDP+TCP port on {host}")


def semdns_command() -> list[str]:
    """How to run the CLI: the venv's `semdns` script, else `python -m tools.cli`."""
    script = Path(sys.executable).with_name("semdns")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tools.cli"]


def _parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


@contextmanager
def running_server(
    zones_dir: str | os.PathLike[str],
    extra_args: Sequence[str] = (),
    listen: str = "127.0.0.1:0",
    command: Sequence[str] | None = None,
    rate_limit: bool = False,
) -> Iterator[ServerHandle]:
    """Start `semdns serve --zones DIR --listen LISTEN *extra_args`, yield its handle, stop it."""
    if "--no-semantic" not in extra_args:
        require("model")  # the server loads the encoder for semantic routing
    argv = [*(command or semdns_command()), "serve", "--zones", str(zones_dir), "--listen", listen, *extra_args]
    if not rate_limit:
        argv += ["--rrl-rate", "0"]
    log_dir = Path(tempfile.mkdtemp(prefix="semdns-server-"))
    stderr_path = log_dir / "stderr.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    try:
        handle = _wait_ready(process, stderr_path)
        yield handle
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen, stderr_path: Path) -> ServerHandle:
    lines: list[str] = []
    ready = threading.Event()
    found: list[list[tuple[str, int]]] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            match = READY.match(lines[-1])
            if match and not found:
                found.append([_parse_address(a) for a in match["addresses"].split()])
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.wait(0.05):
        if time.monotonic() > deadline:
            break
    if not found:
        _stop(process)
        raise ServerStartError(
            f"semdns serve did not become ready (exit {process.poll()}):\n"
            + "\n".join(lines)
            + "\n"
            + stderr_path.read_text(errors="replace")
        )
    host, port = found[0][0]
    return ServerHandle(host, port, process, found[0], stderr_path, lines)


def _stop(process: subprocess.Popen) -> None:
    stop_process(process, STOP_TIMEOUT)
