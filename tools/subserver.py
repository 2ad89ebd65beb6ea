"""`semdns serve` as a child process for the benchmarks that drive a real server from outside."""
from __future__ import annotations

import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

READY = re.compile(r"^ready: listening on \S+:(\d+)")


@contextmanager
def serving(zones: Path, log: Path, extra: Sequence[str] = (),
            semantic: bool = True) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`semdns serve --zones ZONES` with RRL off on a free port of 127.0.0.1 (plus `extra` flags);
    yields (port, process) once it is ready, its stderr in `log`; stops it after."""
    argv = [sys.executable, "-m", "tools.cli", "serve", "--zones", str(zones), "--listen", "127.0.0.1:0",
            "--rrl-rate", "0", *extra]
    if not semantic:
        argv.append("--no-semantic")
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = READY.match(line)
            if match:
                yield int(match[1]), proc
                return
        raise RuntimeError(f"semdns serve exited ({proc.wait()}) before it was ready:\n{log.read_text()}")
    finally:
        proc.terminate()
        proc.wait(30)
