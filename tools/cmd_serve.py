"""`semdns serve`: run the authoritative server on the zones of a directory.

Prints one line `ready: listening on ADDR:PORT ... (udp+tcp)` on stdout once every listener is
bound (tests and scripts wait for it). Refuses to start, listing `file:line: message` errors, when a
zone fails its check. SIGHUP reloads changed zonefiles; SIGTERM/SIGINT stop gracefully.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from nameserver.config import DEFAULT_MAX_UDP, LOOPBACK, ServerConfig, format_address, parse_address, parse_network
from nameserver.errors import NameserverError, ZoneLoadError
from nameserver.runner import ServerRunner

log = logging.getLogger("semdns.serve")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the authoritative nameserver")
    parser.add_argument("--zones", type=Path, required=True, help="directory of *.zone files")
    parser.add_argument(
        "--listen", action="append", default=[], metavar="ADDR:PORT",
        help="address to listen on, UDP and TCP (repeatable; [::1]:PORT for IPv6; default 127.0.0.1:5353)",
    )
    parser.add_argument(
        "--axfr-allow", action="append", default=[], metavar="CIDR",
        help="clients allowed to transfer zones (repeatable; default: loopback only)",
    )
    parser.add_argument(
        "--notify", action="append", default=[], metavar="ADDR:PORT",
        help="secondary to NOTIFY when a zone's serial rises on reload (repeatable)",
    )
    parser.add_argument("--max-udp", type=int, default=DEFAULT_MAX_UDP, help="largest UDP answer (default 1232)")
    parser.add_argument("--no-wire-cache", action="store_true", help="render every answer (no wire cache)")
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio event loop")
    parser.add_argument("--tcp-idle-timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--tcp-max-connections", type=int, default=256, help="default 256")
    parser.add_argument("--pid-file", type=Path, help="write the process id here while running")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The one place where flags become a `ServerConfig`."""
    return ServerConfig(
        zones_dir=args.zones,
        listen=tuple(parse_address(a) for a in args.listen) or (("127.0.0.1", 5353),),
        max_udp=args.max_udp,
        wire_cache=not args.no_wire_cache,
        axfr_allow=tuple(parse_network(n) for n in args.axfr_allow) or LOOPBACK,
        notify=tuple(parse_address(a) for a in args.notify),
        tcp_idle_timeout=args.tcp_idle_timeout,
        tcp_max_connections=args.tcp_max_connections,
        pid_file=args.pid_file,
        uvloop=not args.no_uvloop,
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        runner = ServerRunner(config)
        runner.load()
    except ZoneLoadError as exc:
        print(f"semdns serve: refusing to start, the zones have errors:\n{exc}", file=sys.stderr)
        return 1
    except NameserverError as exc:
        print(f"semdns serve: {exc}", file=sys.stderr)
        return 2
    if config.uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            log.info("uvloop not installed: using the default event loop")
    try:
        return asyncio.run(_serve(runner, config))
    except OSError as exc:
        print(f"semdns serve: cannot listen: {exc}", file=sys.stderr)
        return 2


async def _serve(runner: ServerRunner, config: ServerConfig) -> int:
    await runner.start()
    if config.pid_file is not None:
        config.pid_file.write_text(f"{os.getpid()}\n")
    zones = ", ".join(str(o) for o in sorted(runner.store.current.zones)) or "none"
    log.info("serving zones: %s", zones)
    print(f"ready: listening on {' '.join(format_address(a) for a in runner.addresses)} (udp+tcp)", flush=True)
    try:
        await runner.serve_forever()
    finally:
        await runner.stop()
        if config.pid_file is not None:
            config.pid_file.unlink(missing_ok=True)
    return 0
