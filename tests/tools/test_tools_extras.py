"""A command whose extra is not installed takes any arguments, options first too, and says what to
install instead of an argparse error."""
from __future__ import annotations

import argparse

import pytest

from tools.extras import register_missing


def test_a_missing_command_takes_its_options_and_explains(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="semdns")
    register_missing(parser.add_subparsers(dest="command", required=True), "serve",
                     ModuleNotFoundError("no ahocorasick", name="ahocorasick"))
    args = parser.parse_args(["serve", "--zones", "zonefiles", "-h"])
    assert args.arguments == ["--zones", "zonefiles", "-h"]
    assert args.func(args) == 2
    assert "needs the [server] extra: pip install '.[server]'" in capsys.readouterr().err
