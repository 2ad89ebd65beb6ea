"""The `semdns` command: a thin dispatcher over one module per sub-command.

Each sub-command lives in `tools/cmd_<name>.py` and exposes
`register(subparsers: argparse._SubParsersAction) -> None`, which adds its parser and sets
`func=<callable(args) -> int>` as the default. Adding a command means adding a module and its
name to COMMANDS; nothing else changes here. A command whose imports need a package of an extra
that is not installed is listed anyway and says what to install (`tools.extras`).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from tools.extras import explain_missing, is_ours, register_missing

COMMANDS: tuple[str, ...] = (
    "serve",
    "zone",
    "encode",
    "codec",
    "engine",
    "ask",
    "trace",
    "cluster",
    "bench",
    "stats",
    "routes",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semdns", description="semantic-dns: a semantic nameserver")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tools.cmd_{name}")
        except ModuleNotFoundError as exc:
            if is_ours(exc):
                raise
            register_missing(sub, name, exc)  # an extra's package is missing
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:  # a package of an extra, imported when the command ran
        if is_ours(exc):
            raise
        return explain_missing(" ".join(filter(None, (args.command, getattr(args, "bench", None)))), exc)


if __name__ == "__main__":
    sys.exit(main())
