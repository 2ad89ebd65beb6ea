"""Progress bars (issue 15 item 5): on standard error, only to a terminal, off with `--no-progress`
or `SEMDNS_NO_PROGRESS`; every benchmark takes the flag; a step bar draws nothing when no step runs."""
from __future__ import annotations

import argparse
import io
import sys

import pytest

from tools.cli import build_parser
from tools.progress import ENV, Steps, bar, wanted


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_go_to_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not wanted()  # not a terminal: a log file, a pipe, a test
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert wanted()
    assert not wanted(argparse.Namespace(no_progress=True))
    for _ in bar(range(3), desc="drawn"):
        pass
    assert "drawn" in terminal.getvalue()
    monkeypatch.setenv(ENV, "1")
    assert not wanted()


def test_a_step_bar_stays_silent_without_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Steps(desc="export", total=2):
        pass
    assert terminal.getvalue() == ""
    with Steps(desc="export", total=2) as step:
        step("export")
        step("verify")
    assert "verify" in terminal.getvalue() and "2/2" in terminal.getvalue()


@pytest.mark.parametrize("argv", [
    ["bench", "dns", "--no-progress"], ["bench", "route", "queries.jsonl", "--no-progress"],
    ["bench", "soak", "--no-progress"],
    ["codec", "train", "corpus", "--domain", "legal.semantic.root", "--no-progress"],
])
def test_long_commands_take_no_progress(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).no_progress
