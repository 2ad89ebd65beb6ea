"""A dnsdist front for N `semdns serve` instances: the configuration (pure) and running it.

dnsdist listens on one address and spreads queries over the instances (`leastOutstanding`),
health-checking each every second with an SOA query for the apex (`mustResolve`: an answer that
is not NOERROR counts as a failure); an instance that fails a check is taken out until it answers
again. No packet cache in dnsdist: every query reaches an instance (their own caches apply).

    with running_front(("127.0.0.1", 5400), [("127.0.0.1", 5401), ("127.0.0.1", 5402)], workdir) as front:
        ...
"""
from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

Address = tuple[str, int]
START_TIMEOUT = 30.0
CHECK_NAME = "semantic.root."


def dnsdist_config(listen: Address, backends: Sequence[Address], check_name: str = CHECK_NAME,
                   check_interval: int = 1, acl: str = "127.0.0.0/8") -> str:
    """dnsdist's Lua configuration for `backends` behind `listen`."""
    lines = [
        f'setLocal("{listen[0]}:{listen[1]}")',
        f'setACL({{"{acl}"}})',
        "setServerPolicy(leastOutstanding)",
        "setVerboseHealthChecks(true)",
    ]
    for i, (host, port) in enumerate(backends):
        lines.append(
            f'newServer({{address="{host}:{port}", name="semdns{i}", checkName="{check_name}", '
            f'checkType="SOA", mustResolve=true, checkInterval={check_interval}, checkTimeout=500, '
            f'maxCheckFailures=1, rise=1, useClientSubnet=false}})'
        )
    return "\n".join(lines) + "\n"


@contextmanager
def running_front(listen: Address, backends: Sequence[Address], workdir: Path) -> Iterator[subprocess.Popen]:
    """dnsdist in the foreground (`--supervised`), stopped (TERM, then KILL) on exit."""
    if shutil.which("dnsdist") is None:
        raise RuntimeError("dnsdist is not installed (Debian package dnsdist; scripts/setup.sh)")
    config = workdir / "dnsdist.conf"
    config.write_text(dnsdist_config(listen, backends))
    check = subprocess.run(["dnsdist", "--check-config", "-C", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"dnsdist rejects {config}: {check.stdout}{check.stderr}")
    log = workdir / "dnsdist.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["dnsdist", "--supervised", "--disable-syslog", "-C", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_answering(ask: Callable[[], bool], process: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    """Poll `ask()` until it is true; RuntimeError when `process` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        if ask():
            return
        time.sleep(0.05)
    raise RuntimeError(f"no answer after {timeout:g} s")
