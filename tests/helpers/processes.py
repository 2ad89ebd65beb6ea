"""Child processes of the tests: read their output until a ready line, and stop them for sure."""
from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from typing import Callable


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def read_until(process: subprocess.Popen, ready: Callable[[str], bool], timeout: float,
               output: list[str]) -> str | None:
    """The first stdout line for which `ready` holds, or None at EOF or after `timeout` seconds.

    Every line read goes to `output`, now and after the ready line too (a thread keeps draining
    stdout so that the child never blocks on a full pipe)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            return None
        if line is None:
            return None
        if ready(line):
            return line
    return None
