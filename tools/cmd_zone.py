"""`semdns zone`: check a zone directory, ask a running server to reload, make TSIG keys.

    semdns zone check DIR                 file:line problems; exit 1 on any error
    semdns zone reload --pid-file FILE    SIGHUP the server whose pid is in FILE
    semdns zone keygen NAME [-a ALG] [-o FILE]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from zones.check import has_errors
from zones.errors import KeyFileError
from zones.loader import load_checked, zone_files
from zones.reload import zone_serial
from zones.tsig import ALGORITHMS, generate_key, write_key_file


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("zone", help="check zonefiles, reload a server, make TSIG keys")
    sub = parser.add_subparsers(dest="zone_command", required=True)

    check = sub.add_parser("check", help="load and validate every *.zone file of a directory")
    check.add_argument("directory", type=Path, metavar="DIR")
    check.set_defaults(func=run_check)

    reload = sub.add_parser("reload", help="make a running server re-read its zonefiles (SIGHUP)")
    reload.add_argument("--pid-file", type=Path, required=True, metavar="FILE",
                        help="the file the server wrote with `semdns serve --pid-file`")
    reload.set_defaults(func=run_reload)

    keygen = sub.add_parser("keygen", help="generate a TSIG key (BIND key-file format)")
    keygen.add_argument("name", metavar="NAME", help="key name, e.g. engine-legal")
    keygen.add_argument("-a", "--algorithm", default="hmac-sha256", choices=sorted(ALGORITHMS))
    keygen.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write the key here (mode 0600) instead of standard output")
    keygen.set_defaults(func=run_keygen)


def run_check(args: argparse.Namespace) -> int:
    paths = zone_files(args.directory)
    if not paths:
        print(f"{args.directory}: no *.zone files", file=sys.stderr)
        return 1
    errors = warnings = 0
    summaries: list[str] = []
    for path in paths:
        loaded, problems = load_checked(path)
        for problem in problems:
            print(problem)
        errors += sum(p.is_error for p in problems)
        warnings += sum(not p.is_error for p in problems)
        if loaded is not None and not has_errors(problems):
            zone = loaded.zone
            records = sum(len(rdataset) for _, rdataset in zone.iterate_rdatasets())
            summaries.append(
                f"{loaded.origin}: serial {zone_serial(zone)}, {records} records, "
                f"{1 + len(loaded.includes)} file(s): OK"
            )
    if errors:
        print(f"{errors} error(s), {warnings} warning(s) in {args.directory}", file=sys.stderr)
        return 1
    for line in summaries:
        print(line)
    return 0


def run_reload(args: argparse.Namespace) -> int:
    try:
        pid = int(args.pid_file.read_text().strip())
    except OSError as exc:
        print(f"{args.pid_file}: cannot read pid file: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError:
        print(f"{args.pid_file}: does not hold a process id", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        print(f"{args.pid_file}: no process {pid} (stale pid file?)", file=sys.stderr)
        return 1
    except PermissionError:
        print(f"{args.pid_file}: not allowed to signal process {pid}", file=sys.stderr)
        return 1
    print(f"sent SIGHUP to {pid}")
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    try:
        block = generate_key(args.name, args.algorithm)
    except KeyFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(block)
        return 0
    try:
        write_key_file(args.output, block)  # mode 0600, also over an existing file
    except KeyFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"wrote key {args.name!r} ({args.algorithm}) to {args.output}")
    return 0
