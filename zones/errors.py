"""Errors of the `zones` package, and the problems a zone check reports.

`ZonesError` is the root of every exception raised here. `ZoneProblem` is not an exception: it
is one finding of a check (`error` or `warning`), with the file and line to look at.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from common.errors import SemanticDnsError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ZoneProblem:
    """One finding about a zone, located at `file:line` (line 0: the file as a whole)."""

    file: str
    line: int
    message: str
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        prefix = "" if self.is_error else "warning: "
        return f"{self.file}:{self.line}: {prefix}{self.message}"


class ZonesError(SemanticDnsError):
    """Root of the exceptions raised by the zones package."""


class ZoneFileError(ZonesError):
    """A zonefile (or a file it includes) that cannot be read or parsed."""

    def __init__(self, file: str | Path, line: int, message: str) -> None:
        self.file = str(file)
        self.line = line
        self.message = message
        super().__init__(f"{self.file}:{self.line}: {message}")

    def as_problem(self) -> ZoneProblem:
        return ZoneProblem(self.file, self.line, self.message, "error")


class KeyFileError(ZonesError):
    """A TSIG key file that cannot be read or parsed."""
