"""Sub-commands whose packages are not installed: `pip install .` gives the client side only
(ask, encode, trace, codec); the others need an extra. Such a command still shows in `--help`
and, when run, says which extra to install instead of failing on an import."""
from __future__ import annotations

import argparse
import sys

EXTRA_OF: dict[str, str] = {
    "serve": "server", "zone": "server", "cluster": "server", "engine": "engines",
    "bench dns": "server", "bench route": "server", "bench resolve": "server", "bench codec": "server",
    "bench engine": "engines",
}

OUR_PACKAGES = frozenset({"common", "codec", "sdk", "zones", "routing", "nameserver", "engines", "tools"})


def is_ours(error: ModuleNotFoundError) -> bool:
    """True when the missing module is one of the project's own (a bug, not a missing extra)."""
    return (error.name or "").split(".")[0] in OUR_PACKAGES


def explain_missing(command: str, error: ModuleNotFoundError) -> int:
    """Say which extra `command` needs (on stderr); the exit status 2."""
    extra = EXTRA_OF.get(command, "server")
    print(f"semdns {command}: the Python package {error.name!r} is not installed; this command needs "
          f"the [{extra}] extra: pip install '.[{extra}]' (or ./scripts/setup.sh for everything)",
          file=sys.stderr)
    return 2


def register_missing(subparsers: argparse._SubParsersAction, command: str, error: ModuleNotFoundError) -> None:
    """Add `command` (e.g. "serve", "bench route") as a parser that explains what is missing."""
    parser = subparsers.add_parser(command.split()[-1], help=f"(needs the [{EXTRA_OF.get(command, 'server')}] extra)",
                                   add_help=False, prefix_chars="\x00")  # no options: `--zones` is an argument
    parser.add_argument("arguments", nargs=argparse.REMAINDER)  # whatever follows, options included
    parser.set_defaults(func=lambda _args: explain_missing(command, error))
