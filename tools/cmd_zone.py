"""`semdns zone`: check a zone directory, edit it, ask a running server to reload, make TSIG keys.

    semdns zone check DIR                 file:line problems; exit 1 on any error
    semdns zone reload --pid-file FILE    SIGHUP the server whose pid is in FILE
    semdns zone keygen NAME [-a ALG] [-o FILE]
    semdns zone add-domain DIR CHILD --desc TEXT [--kw WORD]... [--ex TEXT]... \
                [--delegate IP]... [--engine-port N --engine-address IP [--engine-attr K=V]...]
    semdns zone remove-domain DIR CHILD
    semdns zone add-exemplar|remove-exemplar DIR CHILD TEXT
    semdns zone add-keyword|remove-keyword DIR CHILD WORD...
    semdns zone add-engine DIR NODE --port N [--address IP]... [--target NAME] [--attr K=V]...
    semdns zone remove-engine DIR NODE [--target NAME] [--port N]
    semdns zone bump-serial DIR ZONE

The editing commands keep every comment and line they do not change (`zones.edit`), bump the
serial of each zone they change, load and check the result in a temporary copy, and only then
replace the files (atomically, one by one); `--dry-run` prints the unified diff instead. A server
run with `--watch` reloads by itself; else `--reload-pid-file FILE` sends it SIGHUP.
"""
from __future__ import annotations

import argparse
import datetime
import os
import signal
import sys
from pathlib import Path
from typing import Callable

import dns.exception
import dns.name

from zones import edit_domains, edit_ops
from zones.check import has_errors
from zones.edit import ZoneEdit
from zones.edit_files import read_texts, unified_diff, validate, write_changes
from zones.edit_text import EditError
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
    _register_edits(sub)


def _edit_parser(sub: argparse._SubParsersAction, name: str, help_text: str, what: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("directory", type=Path, metavar="DIR", help="the zone directory (e.g. zonefiles)")
    parser.add_argument("name", metavar=what)
    parser.add_argument("--dry-run", action="store_true", help="print the unified diff; change nothing")
    parser.add_argument("--reload-pid-file", type=Path, metavar="FILE",
                        help="then SIGHUP the server whose pid is in FILE (not needed with `serve --watch`)")
    return parser


def _register_edits(sub: argparse._SubParsersAction) -> None:
    add = _edit_parser(sub, "add-domain", "add a child domain: profile, delegation or hosted records, engine",
                       "CHILD")
    add.add_argument("--desc", required=True, help="the profile's desc= (what the domain is about)")
    add.add_argument("--kw", action="append", default=[], metavar="WORD", help="a keyword (repeatable)")
    add.add_argument("--ex", action="append", default=[], metavar="TEXT", help="an exemplar question (repeatable)")
    add.add_argument("--delegate", action="append", default=[], metavar="IP",
                     help="own zonefile, delegated with NS ns1.CHILD and this glue address (repeatable)")
    add.add_argument("--engine-port", type=int, metavar="N", help="a static engine (SRV port)")
    add.add_argument("--engine-address", action="append", default=[], metavar="IP", help="its address")
    add.add_argument("--engine-attr", action="append", default=[], metavar="K=V", help="DNS-SD TXT attribute")
    add.set_defaults(func=_edit_command(_add_domain))
    remove = _edit_parser(sub, "remove-domain", "remove a child domain and everything of it", "CHILD")
    remove.set_defaults(func=_edit_command(lambda e, a: edit_domains.remove_domain(e, a.name)))
    for verb, kind, func in (
        ("add-exemplar", "ex", lambda e, a: edit_ops.add_exemplars(e, a.name, a.values)),
        ("remove-exemplar", "ex", lambda e, a: edit_ops.remove_exemplars(e, a.name, a.values)),
        ("add-keyword", "kw", lambda e, a: edit_ops.add_keywords(e, a.name, a.values)),
        ("remove-keyword", "kw", lambda e, a: edit_ops.remove_keywords(e, a.name, a.values)),
    ):
        what = "exemplar questions (ex=)" if kind == "ex" else "keywords (kw=)"
        parser = _edit_parser(sub, verb, f"{verb.split('-')[0]} {what} of a child's routing profile", "CHILD")
        parser.add_argument("values", nargs="+", metavar="TEXT" if kind == "ex" else "WORD")
        parser.set_defaults(func=_edit_command(func))
    engine = _edit_parser(sub, "add-engine", "add a static engine: _llm._tcp.NODE SRV (+TXT) and its address",
                          "NODE")
    engine.add_argument("--port", type=int, required=True)
    engine.add_argument("--address", action="append", default=[], metavar="IP", help="the target's A/AAAA")
    engine.add_argument("--target", metavar="NAME", help="SRV target, relative to the zone's origin as in the "
                        "zonefile, or absolute with a final dot (default llm<N>.NODE, the first free N)")
    engine.add_argument("--priority", type=int, default=10)
    engine.add_argument("--weight", type=int, default=10)
    engine.add_argument("--attr", action="append", default=[], metavar="K=V",
                        help="DNS-SD TXT attribute, when NODE has no TXT yet (default api=openai-v1 path=/v1)")
    engine.set_defaults(func=_edit_command(_add_engine))
    drop = _edit_parser(sub, "remove-engine", "remove static engines of NODE (all, or one target/port)", "NODE")
    drop.add_argument("--target", metavar="NAME", help="only the SRV to this target (relative to the zone's origin, "
                      "as in the zonefile, or absolute with a final dot)")
    drop.add_argument("--port", type=int)
    drop.set_defaults(func=_edit_command(lambda e, a: edit_ops.remove_engine(e, a.name, a.target, a.port)))
    bump = _edit_parser(sub, "bump-serial", "raise a zone's SOA serial (YYYYMMDDnn, else +1)", "ZONE")
    bump.set_defaults(func=_edit_command(lambda e, a: e.bump_serial(_absolute(a.name))))


def _absolute(text: str) -> dns.name.Name:
    return dns.name.from_text(text.rstrip(".") + ".")


def _add_domain(edit: ZoneEdit, args: argparse.Namespace) -> None:
    engine = None
    if args.engine_port is not None:
        engine = edit_ops.EngineSpec(port=args.engine_port, addresses=tuple(args.engine_address),
                                     attributes=tuple(args.engine_attr))
    spec = edit_ops.DomainSpec(args.desc, tuple(args.kw), tuple(args.ex), tuple(args.delegate), engine)
    edit_domains.add_domain(edit, args.name, spec)


def _add_engine(edit: ZoneEdit, args: argparse.Namespace) -> None:
    spec = edit_ops.EngineSpec(port=args.port, addresses=tuple(args.address), target=args.target,
                               priority=args.priority, weight=args.weight, attributes=tuple(args.attr))
    edit_ops.add_engine(edit, args.name, spec)


Operation = Callable[[ZoneEdit, argparse.Namespace], object]


def _edit_command(operation: Operation) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return run_edit(args, operation)

    return run


def run_edit(args: argparse.Namespace, operation: Operation) -> int:
    """Read, edit (sans-IO), validate in a copy, then print the diff or write the files."""
    directory: Path = args.directory
    command = f"semdns zone {args.zone_command}"
    if not directory.is_dir():
        print(f"{command}: {directory}: not a directory", file=sys.stderr)
        return 1
    try:
        texts = read_texts(directory)
        before = ZoneEdit(texts, datetime.datetime.now(datetime.timezone.utc).date())
        edit = ZoneEdit(texts, before.today)
        operation(edit, args)
        changes = edit.changes()
    except (EditError, dns.exception.DNSException) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    if not changes:
        print("nothing to change")
        return 0
    problems = validate(directory, texts, changes)
    if has_errors(problems):
        print(f"{command}: refused, the result would not load (nothing written):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.dry_run:
        sys.stdout.write(unified_diff(texts, changes))
        return 0
    write_changes(directory, changes)
    for key in sorted(changes):
        print(f"{'deleted' if changes[key] is None else 'wrote'} {directory / key}")
    for origin in sorted(set(edit.zones()) & set(before.zones())):
        old, new = before.serial(origin), edit.serial(origin)
        if old != new:
            print(f"{origin}: serial {old} -> {new}")
    if args.reload_pid_file is not None:
        return run_reload(argparse.Namespace(pid_file=args.reload_pid_file))
    return 0


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
