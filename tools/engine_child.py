"""`semdns engine` as a child process on a free loopback port, for the engine benchmarks."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys


class EngineChild:
    """A `semdns engine` subprocess on a free loopback port; yields its URL; always stopped."""

    def __init__(self, *args: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.cmd = [sys.executable, "-m", "tools.cli", "engine", "--listen", f"127.0.0.1:{self.port}",
                    "--domain", "bench.semantic.root.", *args]

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("engine ready:"):
                return f"http://127.0.0.1:{self.port}"
        self.process.wait()
        raise SystemExit(f"bench: engine did not start: {' '.join(self.cmd)}")

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def model_id(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{url}/v1/models") as resp:
        return json.load(resp)["data"][0]["id"]
