"""`semdns cluster up|down|status`: the distributed hierarchy on one machine.

`up` starts one `semdns serve` per name-server address found in the zonefiles (each zone's own
`NS` + `A` records: 127.0.0.1 for semantic.root., 127.0.0.2 for legal., ... see
notes/hierarchy.md), every one on the same port and serving only its zone file(s), then a recursive
resolver on 127.0.0.10 (same port) whose root hints name the apex's servers. The processes,
their addresses and logs go to a state file in the runtime directory; `down` stops exactly those
processes (SIGTERM, then SIGKILL after a grace period).

    semdns cluster up --port 5300
    dig @127.0.0.10 -p 5300 SRV is-a-verbal-contract-bindingqm.q.semantic.root
    semdns ask --server 127.0.0.10:5300 "is a verbal contract binding?"
    semdns cluster down

`semdns cluster resolver --listen ADDR:PORT --root-hints FILE --upstream-port P` runs the recursive
resolver in the foreground (what `up` starts on 127.0.0.10).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import dns.name
import dns.rdatatype
import numpy as np

from nameserver.build import RecursionOptions, SemanticOptions, ServerOptions, build_server
from nameserver.config import ServerConfig, format_address, parse_address
from nameserver.resolver import Hints, HintsError, Recursor, ResolverConfig
from nameserver.resolver.handler import whole_seconds
from nameserver.resolver.rrcache import RRsetCache
from nameserver.runner import ServerRunner
from tools.cluster_zones import zone_addresses
from zones.errors import ZonesError
from zones.loader import load_zone, origin_for

if TYPE_CHECKING:
    from nameserver.semantic.batcher import EmbedBatcher
    from routing.index import Encoder

DEFAULT_PORT = 5300
RESOLVER_ADDRESS = "127.0.0.10"
START_TIMEOUT = 180.0  # nine servers each load the encoder and compile their indexes on 2 cores
STOP_TIMEOUT = 10.0
STATE = "cluster.json"
CLUSTER_ADDRESSES = tuple(f"127.0.0.{i}" for i in range(1, 11))  # nine zone servers + the resolver


@dataclass(frozen=True)
class Member:
    role: str  # "authority" or "resolver"
    address: str
    port: int
    pid: int
    zones: tuple[str, ...]
    log: str


def default_runtime() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"semdns-cluster-{os.getuid()}"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cluster", help="run the hierarchy as one server per zone on loopback")
    sub = parser.add_subparsers(dest="cluster_command", required=True)
    up = sub.add_parser("up", help="start one server per zone, plus a recursive resolver")
    up.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the one port of every server (default {DEFAULT_PORT})"
    )
    up.add_argument("--zones", type=Path, default=Path("zonefiles"), help="directory of *.zone files")
    up.add_argument("--runtime", type=Path, default=default_runtime(), help="state, logs and per-server zone dirs")
    up.add_argument("--resolver", default=RESOLVER_ADDRESS, help=f"resolver address (default {RESOLVER_ADDRESS})")
    up.add_argument("--no-resolver", action="store_true", help="start the authoritative servers only")
    up.add_argument("--semantic-cache", action="store_true", help="give the resolver a semantic route cache")
    up.add_argument("--netns", action="store_true",
                    help="(root) each zone's primary, a secondary of ours and a Knot/NSD secondary in network "
                         "namespaces of their own, kept in step by NOTIFY + IXFR with TSIG (tools/cluster_isolated)")
    up.add_argument("--zone", action="append", default=[], metavar="ZONE", help="--netns: only these zones")
    up.add_argument("--semantic", action="store_true", help="--netns: primaries and ours route semantically too")
    up.add_argument("--unbound", action="store_true", help="--netns: a stock Unbound in a namespace of its own")
    up.add_argument("--measure", type=int, default=1, metavar="ROUNDS",
                    help="--netns: UPDATE each primary ROUNDS times and report NOTIFY->served ms (0: skip)")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop every process `up` started")
    down.add_argument("--runtime", type=Path, default=default_runtime())
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="list the cluster's processes and whether they run")
    status.add_argument("--runtime", type=Path, default=default_runtime())
    status.set_defaults(func=cmd_status)
    resolver = sub.add_parser("resolver", help="run a recursive resolver in the foreground")
    resolver.add_argument("--listen", action="append", default=[], metavar="ADDR:PORT")
    resolver.add_argument("--root-hints", type=Path, required=True, metavar="FILE")
    resolver.add_argument("--upstream-port", type=int, default=53)
    resolver.add_argument("--cache-size", type=int, default=100_000)
    resolver.add_argument("--semantic-cache", action="store_true",
                          help="reuse routes of close questions (embeds with routing.embedder)")
    resolver.set_defaults(func=cmd_resolver)
    from tools import cluster_secondary

    cluster_secondary.register(sub)


# -- up ---------------------------------------------------------------------------------------

def free_port_on(addresses: Sequence[str] = CLUSTER_ADDRESSES, attempts: int = 50) -> int:
    """A port free for UDP and TCP on every address (probed and released; bind it right after).

    Raises RuntimeError when none of `attempts` random ports is free everywhere."""
    for _ in range(attempts):
        port = random.randint(20000, 60000)
        sockets: list[socket.socket] = []
        try:
            for address in addresses:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    sock = socket.socket(socket.AF_INET, kind)
                    sockets.append(sock)
                    sock.bind((address, port))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no port free on all of {', '.join(addresses)}")


def _zone_dir(runtime: Path, zones_dir: Path, address: str, files: list[Path]) -> Path:
    """A directory holding only these zonefiles (symlinks) plus the include subdirectories."""
    target = runtime / f"zones-{address}"
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        old.unlink()
    for path in files:
        (target / path.name).symlink_to(path.resolve())
    for sub in zones_dir.iterdir():
        if sub.is_dir():
            (target / sub.name).symlink_to(sub.resolve(), target_is_directory=True)
    return target


def _semdns() -> list[str]:
    return [sys.executable, "-m", "tools.cli"]


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*_semdns(), *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=Path(__file__).resolve().parents[1],
        )


def _wait_ready(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if "ready: listening on" in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {START_TIMEOUT:g} s; see {log}")


def hints_text(zones_dir: Path, by_address: dict[str, list[Path]]) -> str:
    """Root hints naming the servers of the apex (the zone with the fewest labels)."""
    apex_path = min((p for files in by_address.values() for p in files), key=lambda p: len(origin_for(p)))
    origin = origin_for(apex_path)
    zone = load_zone(apex_path, origin).zone
    lines = []
    for rd in zone.find_rrset(origin, dns.rdatatype.NS):
        lines.append(f"{origin} 3600 IN NS {rd.target}")
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            rrset = zone.get_rrset(rd.target, rdtype)
            for a in rrset or ():
                lines.append(f"{rd.target} 3600 IN {dns.rdatatype.to_text(rdtype)} {a.address}")
    return "\n".join(lines) + "\n"


def cmd_up(args: argparse.Namespace) -> int:
    if args.netns:
        from tools.cluster_report import netns_up

        return netns_up(args.zones, args.runtime, args.semantic, args.zone, args.measure, args.unbound)
    runtime: Path = args.runtime
    state_path = runtime / STATE
    if state_path.exists() and any(_alive(m.pid) for m in read_state(state_path)):
        print(f"semdns cluster: already up (state in {state_path}); run `semdns cluster down` first", file=sys.stderr)
        return 1
    runtime.mkdir(parents=True, exist_ok=True)
    try:
        by_address = zone_addresses(args.zones)
    except (ZonesError, OSError) as exc:
        print(f"semdns cluster: cannot read the zones: {exc}", file=sys.stderr)
        return 1
    members: list[Member] = []
    try:
        started = []
        for address, files in sorted(by_address.items()):  # start all, then wait for each
            zdir = _zone_dir(runtime, args.zones, address, files)
            log = runtime / f"serve-{address}.log"
            # one encoder thread each: nine servers share the machine's cores; the cluster's
            # resolver asks them from loopback, so loopback is not rate limited
            process = _spawn(["serve", "--zones", str(zdir), "--listen", f"{address}:{args.port}",
                              "--encoder-threads", "1", "--rrl-exempt", "127.0.0.0/8"], log)
            members.append(Member("authority", address, args.port, process.pid,
                                  tuple(p.name.removesuffix(".zone") for p in files), str(log)))
            _write_state(state_path, members)
            started.append((process, log, members[-1]))
        for process, log, member in started:
            _wait_ready(process, log)
            print(f"{member.address}:{member.port}  {' '.join(member.zones)}")
        if not args.no_resolver:
            hints = runtime / "root.hints"
            hints.write_text(hints_text(args.zones, by_address))
            log = runtime / "resolver.log"
            process = _spawn(["cluster", "resolver", "--listen", f"{args.resolver}:{args.port}",
                              "--root-hints", str(hints), "--upstream-port", str(args.port),
                              *(["--semantic-cache"] if args.semantic_cache else [])], log)
            members.append(Member("resolver", args.resolver, args.port, process.pid, (), str(log)))
            _write_state(state_path, members)
            _wait_ready(process, log)
            print(f"{args.resolver}:{args.port}  recursive resolver (root hints {hints})")
    except (RuntimeError, OSError) as exc:
        print(f"semdns cluster: a server failed to start: {exc}\nstopping the others", file=sys.stderr)
        _stop(members)
        state_path.unlink(missing_ok=True)
        return 1
    print(f"cluster up: {len(members)} processes; state in {state_path}")
    return 0


# -- down / status ----------------------------------------------------------------------------

def _write_state(path: Path, members: list[Member]) -> None:
    path.write_text(json.dumps([asdict(m) for m in members], indent=2))


def read_state(path: Path) -> list[Member]:
    """The members recorded in a cluster state file (`<runtime>/cluster.json`)."""
    return [Member(**{**m, "zones": tuple(m["zones"])}) for m in json.loads(path.read_text())]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(members: list[Member]) -> None:
    for member in members:
        if _alive(member.pid):
            os.kill(member.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for member in members:
        while _alive(member.pid) and time.monotonic() < deadline:
            _reap(member.pid)
            time.sleep(0.05)
        if _alive(member.pid):
            os.kill(member.pid, signal.SIGKILL)
            _reap(member.pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def cmd_down(args: argparse.Namespace) -> int:
    from tools.cluster_report import netns_down

    if netns_down(args.runtime) and not (args.runtime / STATE).exists():
        return 0
    state_path = args.runtime / STATE
    if not state_path.exists():
        print(f"semdns cluster: not up (no {state_path})", file=sys.stderr)
        return 1
    members = read_state(state_path)
    _stop(members)
    state_path.unlink()
    print(f"cluster down: stopped {len(members)} processes")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_path = args.runtime / STATE
    if not state_path.exists():
        print("cluster: down")
        return 1
    members = read_state(state_path)
    for m in members:
        state = "running" if _alive(m.pid) else "STOPPED"
        print(f"{m.address}:{m.port}  pid {m.pid}  {state}  {m.role}  {' '.join(m.zones)}")
    return 0 if all(_alive(m.pid) for m in members) else 1


# -- the resolver process ---------------------------------------------------------------------

def cmd_resolver(args: argparse.Namespace) -> int:
    try:
        hints = Hints.from_file(args.root_hints)
    except HintsError as exc:
        print(f"semdns cluster resolver: {exc}", file=sys.stderr)
        return 2
    routes = None
    if args.semantic_cache:
        from nameserver.resolver.routecache import RouteCache
        from nameserver.resolver.semcache import SemanticCache
        from routing.embedder import MODEL_NAME

        # the servers' encoder (int8, their threads), in their batcher: off the event loop, so a
        # new question's embedding (5 ms here) no longer holds up every other client's answer
        semantic = SemanticOptions()
        embed = BatchedEncoder(semantic.load_encoder(), semantic)
        routes = RouteCache(SemanticCache(), embed=embed, embed_model=MODEL_NAME)
    recursor = Recursor(hints, config=ResolverConfig(port=args.upstream_port),
                        cache=RRsetCache(args.cache_size, clock=whole_seconds), routes=routes)
    listen = tuple(parse_address(a) for a in args.listen) or ((RESOLVER_ADDRESS, 53),)
    options = ServerOptions(config=ServerConfig(listen=listen), semantic=None, recursion=RecursionOptions())
    runner = build_server(options, recursor=recursor)
    return asyncio.run(_run_resolver(runner, hints.apex))


class BatchedEncoder:
    """An encoder as the route cache's `embed`: one text's vector through an `EmbedBatcher` (made in
    the running loop on first use) with the servers' queue and deadline, which raises `Shed` when
    those are exceeded."""

    def __init__(self, encoder: Encoder, options: SemanticOptions) -> None:
        self.encoder, self.options = encoder, options
        self._batcher: EmbedBatcher | None = None

    async def __call__(self, text: str) -> np.ndarray:
        if self._batcher is None:
            from nameserver.semantic.batcher import EmbedBatcher  # the [server] extra's packages

            self._batcher = EmbedBatcher(self.encoder, max_queue=self.options.queue, deadline=self.options.deadline)
        return (await self._batcher.embed([text]))[0]


async def _run_resolver(runner: ServerRunner, apex: dns.name.Name) -> int:
    await runner.start()
    print(f"ready: listening on {' '.join(format_address(a) for a in runner.addresses)} (udp+tcp); "
          f"recursive from {apex}", flush=True)
    try:
        await runner.serve_forever()
    finally:
        await runner.stop()
    return 0
