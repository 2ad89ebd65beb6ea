"""`semdns serve`: run the authoritative server on the zones of a directory.

Prints one line `ready: listening on ADDR:PORT ... (udp+tcp)` on stdout once every listener is
bound (tests and scripts wait for it), after `metrics: http://ADDR:PORT/metrics` with `--metrics`.
Refuses to start, listing `file:line: message` errors, when a zone fails its check. SIGHUP reloads
changed zonefiles (and so does a change of the files themselves with `--watch`); SIGTERM/SIGINT stop
gracefully.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TypedDict

from common.errors import SemanticDnsError
from nameserver.build import (
    DynamicOptions,
    ObserveOptions,
    RecursionOptions,
    SemanticOptions,
    ServerOptions,
    build_server,
)
from nameserver.config import (
    DEFAULT_ENCODER_DEADLINE,
    DEFAULT_ENCODER_QUEUE,
    DEFAULT_MAX_UDP,
    DEFAULT_RRL_RATE,
    DEFAULT_RRL_SLIP,
    DEFAULT_RRL_TABLE,
    DEFAULT_RRL_WINDOW,
    LOOPBACK,
    MAX_WORKERS,
    ServerConfig,
    format_address,
    parse_address,
    parse_network,
    parse_notify,
    parse_transfer_acl,
)
from nameserver.errors import ZoneLoadError
from nameserver.metrics_http import MetricsExporter, parse_metrics_address
from nameserver.runner import ServerRunner
from nameserver.update.health import HealthSettings
from nameserver.watch import ZoneWatcher
from nameserver.workers import WorkerPool, WorkerStartError
from nameserver.workers_sync import PublishingStore
from routing.embedder import LONE_MIN_TOKENS, LONE_THREADS, MAX_POSITIONS, MAX_TOKENS, MIN_TOKENS, QUERY_THREADS
from zones.errors import KeyFileError
from zones.tsig import load_keyring

log = logging.getLogger("semdns.serve")


def _thread_count(text: str) -> int:
    count = int(text)
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"{count}: between 1 and 64")
    return count


def token_count(text: str) -> int:
    """An argparse type: a count of word pieces the encoder may be told to read."""
    count = int(text)
    if not MIN_TOKENS <= count <= MAX_POSITIONS:
        raise argparse.ArgumentTypeError(f"{count}: between {MIN_TOKENS} and {MAX_POSITIONS}")
    return count


def _worker_count(text: str) -> int:
    count = int(text)
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{count}: between 1 and {MAX_WORKERS}")
    return count


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the authoritative nameserver")
    parser.add_argument("--zones", type=Path, help="directory of *.zone files (optional with --recursive)")
    parser.add_argument(
        "--listen", action="append", default=[], metavar="ADDR:PORT",
        help="address to listen on, UDP and TCP (repeatable; [::1]:PORT for IPv6; default 127.0.0.1:5353)",
    )
    parser.add_argument(
        "--allow-transfer", "--axfr-allow", dest="allow_transfer", action="append", default=[],
        metavar="[ZONE=]CIDR|key:NAME[+...]",
        help="who may AXFR/IXFR: a network, a TSIG key (from --transfer-keys), or both (CIDR+key:NAME: "
        "this key from this network); ZONE= makes the rule that zone's own (repeatable; default: "
        "loopback, no key)",
    )
    parser.add_argument(
        "--transfer-keys", type=Path, metavar="FILE",
        help="BIND-style key file (mode 0600) of the keys that sign transfers and NOTIFYs",
    )
    parser.add_argument(
        "--notify", action="append", default=[], metavar="ADDR:PORT[+key:NAME]",
        help="secondary to NOTIFY when a zone's serial rises (repeatable; +key:NAME signs it)",
    )
    parser.add_argument("--max-udp", type=int, default=DEFAULT_MAX_UDP, help="largest UDP answer (default 1232)")
    parser.add_argument("--no-wire-cache", action="store_true", help="render every answer (no wire cache)")
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio event loop")
    parser.add_argument("--tcp-idle-timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--tcp-max-connections", type=int, default=256, help="default 256")
    parser.add_argument("--tcp-max-per-address", type=int, default=32, metavar="N",
                        help="TCP connections open from one client address (default 32)")
    parser.add_argument("--tcp-message-timeout", type=float, default=5.0, metavar="S",
                        help="seconds a TCP query may take from its first byte to its last (default 5)")
    parser.add_argument("--tcp-write-high-water", type=int, default=64 * 1024, metavar="BYTES",
                        help="unsent answer bytes at which a TCP connection stops reading queries (default 65536)")
    parser.add_argument("--wire-cache-bytes", type=int, default=64 * 1024 * 1024, metavar="BYTES",
                        help="the wire cache's budget, keys and answers (default 67108864: 64 MiB)")
    parser.add_argument("--pid-file", type=Path, help="write the process id here while running (the main's)")
    parser.add_argument("--workers", type=_worker_count, default=1, metavar="N",
                        help="processes answering UDP queries on every --listen address (default 1); above 1 "
                        "the main starts N-1 workers that share its ports (SO_REUSEPORT) and hand it what "
                        "only it answers (UPDATE, NOTIFY, IXFR); TCP, metrics and the query log stay in the main")
    parser.add_argument("--watch", action="store_true",
                        help="reload the zones by itself 0.5 s after their files (or includes) stop changing "
                        "(default off: reload on SIGHUP / `semdns zone reload`, as BIND, NSD and Knot do)")
    parser.add_argument(
        "--encoder", choices=("int8", "fp32"), default="int8",
        help="MiniLM ONNX variant for semantic routing (default int8: same accuracy, ~2x faster)",
    )
    parser.add_argument(
        "--encoder-threads",
        type=_thread_count,
        default=QUERY_THREADS,
        metavar="N",
        help=f"onnxruntime threads for one embedding run (default {QUERY_THREADS} here: 2, "
        "or 1 where the event loop would have no core of its own)",
    )
    parser.add_argument(
        "--encoder-lone-threads",
        type=_thread_count,
        default=LONE_THREADS,
        metavar="N",
        help=f"onnxruntime threads for a question of {LONE_MIN_TOKENS}+ tokens that the encoder runs alone, "
        f"nothing else waiting (default {LONE_THREADS} here: 2 where there are 2 cores; the tail of cold "
        "routes; 1: never a second thread)",
    )
    parser.add_argument(
        "--encoder-max-tokens",
        type=token_count,
        default=MAX_TOKENS,
        metavar="N",
        help=f"word pieces of a question the encoder reads at most (default {MAX_TOKENS}): a longer question's least "
        "frequent ones; fewer shorten a long question's route, more read more of it (README, \"The SDK's resolve\")",
    )
    parser.add_argument(
        "--encoder-queue", type=int, default=DEFAULT_ENCODER_QUEUE, metavar="N",
        help=f"texts that may wait for the encoder (default {DEFAULT_ENCODER_QUEUE}: two batches, ~0.3 s "
        "of work on 2 cores); questions beyond are routed by keywords or the general engine (EDE 0)",
    )
    parser.add_argument(
        "--encoder-deadline", type=float, default=DEFAULT_ENCODER_DEADLINE, metavar="S",
        help=f"seconds a question may wait for the encoder (default {DEFAULT_ENCODER_DEADLINE:g}); "
        "then it is answered like one beyond the queue",
    )
    parser.add_argument("--no-fast-heads", action="store_true",
                        help="every question the keywords leave goes to the MiniLM head (default: a node's fast "
                        "head, over the token encoder, decides what cross-validation found it as sure of)")
    parser.add_argument("--no-semantic", action="store_true", help="plain authoritative server: no semantic routing")
    parser.add_argument("--log-questions", action="store_true",
                        help="write semantic questions into log lines (default: a hash; questions are private)")
    observe = parser.add_argument_group("observability (off unless asked)")
    observe.add_argument("--metrics", metavar="ADDR:PORT",
                         help="serve Prometheus metrics at http://ADDR:PORT/metrics (a bare PORT: on 127.0.0.1)")
    observe.add_argument("--query-log", metavar="FILE|-",
                         help="append one JSON line per answered query to FILE (-: standard output); "
                              "semantic questions hashed unless --log-questions")
    chaos = parser.add_argument_group(
        "identification (CHAOS TXT version.bind, version.server, id.server, hostname.bind)")
    chaos.add_argument("--version", metavar="TEXT",
                       help='what version.bind answers (default "semantic-dns <package version>")')
    chaos.add_argument("--identity", metavar="TEXT",
                       help="what id.server and hostname.bind answer (default: the host name)")
    chaos.add_argument("--hide-version", action="store_true", help="REFUSE version.bind / version.server (EDE 18)")
    chaos.add_argument("--hide-identity", action="store_true", help="REFUSE id.server / hostname.bind (EDE 18)")
    dynamic = parser.add_argument_group("dynamic registration (DNS UPDATE) and engine health")
    dynamic.add_argument("--tsig-keys", type=Path, metavar="FILE",
                         help="BIND-style key file (`semdns zone keygen`); "
                         "enables signed UPDATE for zones the key names lie in")
    dynamic.add_argument("--journal", type=Path, metavar="DIR",
                         help="keep accepted UPDATEs here and replay them at start (default: next to --tsig-keys)")
    dynamic.add_argument("--update-policy", type=Path, metavar="FILE",
                         help="grants and limits for UPDATE keys "
                         "(`grant KEY zone|name|subdomain|engine NAME [TYPES];`, `limit per-key|per-zone N;`); "
                         "without it a key may only register engines in its own zone")
    dynamic.add_argument("--health-probe-allow", action="append", default=[], metavar="CIDR",
                         help="addresses besides loopback that registered engines may be health-probed at "
                         "(repeatable); a registration at any other address is REFUSED")
    dynamic.add_argument("--health-interval", type=float, default=2.0, metavar="S",
                         help="seconds between /health probes of registered engines (default 2)")
    dynamic.add_argument("--health-failures", type=int, default=2, metavar="N",
                         help="failed probes before an engine leaves the SRV answers (default 2)")
    recursive = parser.add_argument_group("recursive mode")
    recursive.add_argument("--recursive", action="store_true", help="resolve iteratively from --root-hints")
    recursive.add_argument("--root-hints", metavar="FILE", help="NS + A records of the resolution root")
    recursive.add_argument("--upstream-port", type=int, default=53, metavar="PORT",
                           help="port of the authoritative servers (default 53; the cluster uses its own)")
    recursive.add_argument("--cache-size", type=int, default=100_000, metavar="N", help="RRsets kept (LRU)")
    recursive.add_argument("--cache-bytes", type=int, default=64 * 1024 * 1024, metavar="BYTES",
                           help="the RRset cache's budget (LRU; default 67108864: 64 MiB)")
    recursive.add_argument("--query-timeout", type=float, default=0.8, metavar="S", help="per query to one server")
    recursive.add_argument("--resolve-timeout", type=float, default=4.0, metavar="S",
                           help="per whole resolution")
    recursive.add_argument("--allow-recursion", action="append", default=[], metavar="CIDR",
                           help="clients whose queries are resolved (repeatable; default: loopback only; "
                                "the others get REFUSED, EDE 18)")
    rrl = parser.add_argument_group("response rate limiting (UDP replies per client /24 or /56 and response class)")
    rrl.add_argument("--rrl-rate", type=int, default=DEFAULT_RRL_RATE, metavar="N",
                     help=f"replies a second per prefix and response class (default {DEFAULT_RRL_RATE}; "
                          "0 turns limiting off)")
    rrl.add_argument("--rrl-window", type=float, default=DEFAULT_RRL_WINDOW, metavar="S",
                     help=f"seconds of the rate a quiet client may burst (default {DEFAULT_RRL_WINDOW:g})")
    rrl.add_argument("--rrl-slip", type=int, default=DEFAULT_RRL_SLIP, metavar="N",
                     help=f"every Nth limited reply goes out truncated, for a retry over TCP "
                          f"(default {DEFAULT_RRL_SLIP}; 0: drop all)")
    rrl.add_argument("--rrl-exempt", action="append", default=[], metavar="CIDR",
                     help="clients never limited (repeatable)")
    rrl.add_argument("--rrl-table-size", type=int, default=DEFAULT_RRL_TABLE, metavar="N",
                     help=f"buckets kept, least recently used prefix evicted (default {DEFAULT_RRL_TABLE})")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The one place where flags become a `ServerConfig` (raises `KeyFileError` for a bad
    `--transfer-keys` file, `ConfigError` for a bad flag)."""
    notifies = [parse_notify(text) for text in args.notify]
    return ServerConfig(
        zones_dir=args.zones,
        listen=tuple(parse_address(a) for a in args.listen) or (("127.0.0.1", 5353),),
        max_udp=args.max_udp,
        wire_cache=not args.no_wire_cache,
        transfer_acl=parse_transfer_acl(args.allow_transfer),
        transfer_keys=load_keyring(args.transfer_keys) if args.transfer_keys is not None else {},
        notify=tuple(address for address, _key in notifies),
        notify_keys={address: key for address, key in notifies if key is not None},
        tcp_idle_timeout=args.tcp_idle_timeout,
        tcp_max_connections=args.tcp_max_connections,
        pid_file=args.pid_file,
        uvloop=not args.no_uvloop,
        hide_version=args.hide_version,
        hide_identity=args.hide_identity,
        rrl_rate=args.rrl_rate,
        rrl_window=args.rrl_window,
        rrl_slip=args.rrl_slip,
        rrl_exempt=tuple(parse_network(n) for n in args.rrl_exempt),
        rrl_table_size=args.rrl_table_size,
        log_questions=args.log_questions,
        tcp_max_per_address=args.tcp_max_per_address,
        tcp_message_timeout=args.tcp_message_timeout,
        tcp_write_high_water=args.tcp_write_high_water,
        wire_cache_bytes=args.wire_cache_bytes,
        workers=args.workers,
        **identification(args),
    )


class Identification(TypedDict, total=False):
    version: str
    identity: str


def identification(args: argparse.Namespace) -> Identification:
    """`--version` / `--identity` where given (the config's defaults otherwise)."""
    given = Identification()
    if args.version is not None:
        given["version"] = args.version
    if args.identity is not None:
        given["identity"] = args.identity
    return given


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    """The one place where flags become the server's options (`nameserver.build`)."""
    dynamic = None
    if args.tsig_keys is not None:
        health = HealthSettings(interval=args.health_interval, failures=args.health_failures)
        probe_allow = LOOPBACK + tuple(parse_network(n) for n in args.health_probe_allow)
        dynamic = DynamicOptions(tsig_keys=args.tsig_keys, journal=args.journal, health=health,
                                 update_policy=args.update_policy, probe_allow=probe_allow)
    recursion = None
    if args.recursive:
        recursion = RecursionOptions(root_hints=Path(args.root_hints), upstream_port=args.upstream_port,
                                     cache_size=args.cache_size, cache_bytes=args.cache_bytes,
                                     query_timeout=args.query_timeout, resolve_timeout=args.resolve_timeout,
                                     allow_recursion=tuple(parse_network(n) for n in args.allow_recursion) or LOOPBACK)
    semantic = None if args.no_semantic else SemanticOptions(encoder=args.encoder, threads=args.encoder_threads,
                                                            lone_threads=args.encoder_lone_threads,
                                                            max_tokens=args.encoder_max_tokens,
                                                            queue=args.encoder_queue, deadline=args.encoder_deadline,
                                                            fast=not args.no_fast_heads)
    observe = ObserveOptions(metrics=parse_metrics_address(args.metrics) if args.metrics else None,
                             query_log=args.query_log)
    return ServerOptions(config=config_from_args(args), semantic=semantic, dynamic=dynamic, recursion=recursion,
                         observe=observe)


def run(args: argparse.Namespace) -> int:
    if args.zones is None and not args.recursive:
        print("semdns serve: give --zones DIR (authoritative) and/or --recursive --root-hints FILE", file=sys.stderr)
        return 2
    if args.recursive and not args.root_hints:
        print("semdns serve: --recursive needs --root-hints FILE (NS + A records of the root)", file=sys.stderr)
        return 2
    try:
        options = options_from_args(args)
        several = options.config.workers > 1
        runner = build_server(options, store=PublishingStore() if several else None)
        if several:
            runner.attach(WorkerPool(runner, options))  # started once the main's listeners are bound
        runner.load()
        if args.watch and args.zones is not None:
            runner.attach(ZoneWatcher(args.zones, runner.reload, lambda: runner.store.current))
    except KeyFileError as exc:
        print(f"semdns serve: {exc}", file=sys.stderr)
        return 2
    except ZoneLoadError as exc:
        print(f"semdns serve: refusing to start, the zones have errors:\n{exc}", file=sys.stderr)
        return 1
    except SemanticDnsError as exc:
        print(f"semdns serve: {exc}", file=sys.stderr)
        return 2
    if options.config.uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            log.info("uvloop not installed: using the default event loop")
    try:
        return asyncio.run(_serve(runner, options.config))
    except OSError as exc:
        print(f"semdns serve: cannot listen: {exc}", file=sys.stderr)
        return 2
    except WorkerStartError as exc:
        print(f"semdns serve: the workers did not start: {exc}", file=sys.stderr)
        return 2


async def _serve(runner: ServerRunner, config: ServerConfig) -> int:
    await runner.start()
    zones = ", ".join(str(o) for o in sorted(runner.store.current.zones)) or "none"
    log.info("serving zones: %s", zones)

    def announce() -> None:  # signals are handled from here on: SIGHUP reloads
        if config.pid_file is not None:
            config.pid_file.write_text(f"{os.getpid()}\n")
        for exporter in (a for a in runner.attachments if isinstance(a, MetricsExporter)):
            print(f"metrics: {exporter.url}", flush=True)
        print(f"ready: listening on {' '.join(format_address(a) for a in runner.addresses)} (udp+tcp)", flush=True)

    try:
        await runner.serve_forever(on_ready=announce)
    finally:
        await runner.stop()
        if config.pid_file is not None:
            config.pid_file.unlink(missing_ok=True)
    return 0
