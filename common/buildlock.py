"""`build_lock(target)`: one process at a time builds a cached file, the others wait for it.

A cluster starts many servers on one fresh cache at once; each would otherwise export the encoder
or build the token table itself, all of them competing for the same cores. The lock is an
advisory `flock` on `<target>.lock` beside the file, released when the holder exits even if it
dies; a caller checks again for the file once it holds the lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Hold the exclusive build lock of `target` (blocking until no other process holds it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.with_name(target.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
