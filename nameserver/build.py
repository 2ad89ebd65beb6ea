"""Assembling a server from its options: the one place that wires the parts together.

    runner = build_server(ServerOptions(config=ServerConfig(zones_dir=Path("zonefiles"))))
    runner.load()                    # zones + the journal's registrations (raises ZoneLoadError)
    await runner.start()             # listeners, then the attachments (health probes)
    ...
    await runner.stop()

`semdns serve`, `semdns cluster`, the benchmarks and the tests all build their servers here, so
what runs in a test is what an operator runs. Parts a test or a bench wants to supply itself (an
encoder already loaded, a recursor with fake transports) are passed in; everything else comes
from the options.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nameserver.chain import Handler
from nameserver.config import (
    DEFAULT_ENCODER_DEADLINE,
    DEFAULT_ENCODER_QUEUE,
    LOOPBACK,
    Address,
    IPNetwork,
    ServerConfig,
)
from nameserver.errors import ConfigError
from nameserver.metrics import (
    ServerMetrics,
    engines_source,
    query_log_source,
    rrl_source,
    semantic_cache_source,
    wire_cache_source,
    zones_source,
)
from nameserver.metrics_http import MetricsExporter
from nameserver.querylog import QueryLog
from nameserver.resolver.handler import RecursionHandler, whole_seconds
from nameserver.resolver.hints import Hints
from nameserver.resolver.iterator import ResolverConfig
from nameserver.resolver.recursor import Recursor
from nameserver.resolver.rrcache import RRsetCache
from nameserver.runner import ServerRunner
from nameserver.update.dynamic import DynamicZones
from nameserver.update.handler import UpdateHandler
from nameserver.update.health import HealthMonitor, HealthSettings
from nameserver.update.journal import Journal
from routing.embedder import LONE_THREADS, MAX_POSITIONS, MAX_TOKENS, MIN_TOKENS, QUERY_THREADS
from zones.catalog import ZoneStore
from zones.tsig import load_keyring
from zones.update_policy import UpdatePolicy, load_update_policy

if TYPE_CHECKING:
    from routing.classifier import TokenVectors
    from routing.embedder import Embedder
    from routing.index import Encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SemanticOptions:
    """Semantic routing of the zones' questions (needs the [server] extra's encoder)."""

    encoder: Literal["int8", "fp32"] = "int8"
    threads: int = QUERY_THREADS  # onnxruntime threads of a run
    lone_threads: int = LONE_THREADS  # ... of a long question the encoder runs alone (`routing.embedder`)
    max_tokens: int = MAX_TOKENS  # word pieces of a question the encoder reads (the rest is cut)
    queue: int = DEFAULT_ENCODER_QUEUE  # texts waiting for the encoder at most; more are shed
    deadline: float = DEFAULT_ENCODER_DEADLINE  # seconds a question may wait for the encoder
    fast: bool = True  # the nodes' fast heads decide what they are sure of (token encoder, no model run)

    def __post_init__(self) -> None:
        if self.queue < 1 or self.deadline <= 0:
            raise ConfigError(f"encoder queue {self.queue} and deadline {self.deadline}: at least 1 and above 0")
        if not MIN_TOKENS <= self.max_tokens <= MAX_POSITIONS:
            raise ConfigError(f"encoder max tokens {self.max_tokens}: between {MIN_TOKENS} and {MAX_POSITIONS}")

    def load_encoder(self) -> Embedder:
        """MiniLM as these options set it up (variant, threads, lone threads, word pieces read): the
        servers', the cluster resolver's and the benches' (raises `EmbedderError`)."""
        from routing.embedder import load_embedder  # the [server] extra's packages, when used

        return load_embedder(self.encoder, threads=self.threads, lone_threads=self.lone_threads,
                             max_tokens=self.max_tokens)


@dataclass(frozen=True)
class DynamicOptions:
    """Signed UPDATE for engine registrations, their journal and their health probes."""

    tsig_keys: Path
    journal: Path | None = None  # default: `journal/` next to the key file
    health: HealthSettings = field(default_factory=HealthSettings)
    update_policy: Path | None = None  # grants and limits (`zones.update_policy`); None: the engine rule only
    probe_allow: tuple[IPNetwork, ...] = LOOPBACK  # addresses health probes may reach (cmd_serve: loopback + flags)

    @property
    def journal_dir(self) -> Path:
        return self.journal if self.journal is not None else self.tsig_keys.parent / "journal"


@dataclass(frozen=True)
class RecursionOptions:
    """Iterative resolution from root hints for names outside our zones (queries with RD)."""

    root_hints: Path | None = None  # None: the recursor must be given to `build_server`
    upstream_port: int = 53
    cache_size: int = 100_000
    query_timeout: float = 0.8
    resolve_timeout: float = 4.0
    cache_answers: bool = True  # rendered answers in the wire cache (needs the whole-seconds RRset clock)
    allow_recursion: tuple[IPNetwork, ...] = LOOPBACK  # clients served; the others get REFUSED (EDE 18)
    cache_bytes: int = 64 * 1024 * 1024  # the RRset cache's budget (`rrcache.entry_bytes`)

    def recursor(self) -> Recursor:
        if self.root_hints is None:
            raise ValueError("recursion needs root hints (or a recursor given to build_server)")
        config = ResolverConfig(port=self.upstream_port, query_timeout=self.query_timeout,
                                total_timeout=self.resolve_timeout)
        cache = RRsetCache(self.cache_size, clock=whole_seconds, max_bytes=self.cache_bytes)
        return Recursor(Hints.from_file(self.root_hints), config=config, cache=cache)


@dataclass(frozen=True)
class ObserveOptions:
    """What the server tells about its queries: Prometheus metrics over HTTP, a JSON-lines query log."""

    metrics: Address | None = None  # serve /metrics here (None: no endpoint)
    query_log: str | Path | None = None  # a file to append to, or "-" (standard output)
    count: bool = False  # keep the metrics even without an endpoint (benchmarks, tests)

    @property
    def counting(self) -> bool:
        return self.count or self.metrics is not None


@dataclass(frozen=True)
class ServerOptions:
    """Everything a server is built from. The defaults serve `config.zones_dir` with semantic
    routing, no UPDATE and no recursion."""

    config: ServerConfig = field(default_factory=ServerConfig)
    semantic: SemanticOptions | None = field(default_factory=SemanticOptions)  # None: plain DNS
    dynamic: DynamicOptions | None = None
    recursion: RecursionOptions | None = None
    observe: ObserveOptions = field(default_factory=ObserveOptions)


def build_server(options: ServerOptions, *, store: ZoneStore | None = None, encoder: Encoder | None = None,
                 tokens: TokenVectors | None = None, recursor: Recursor | None = None) -> ServerRunner:
    """The runner for `options`, with its chain handlers and attachments (not yet loaded or started).

    `encoder` replaces the one `options.semantic` would load (and `tokens`, the fast heads' token
    encoder, comes with it or not at all); `recursor` the one built from
    `options.recursion`'s hints (giving one turns recursion on). Raises `KeyFileError` for a bad
    TSIG key file, `HintsError` for bad root hints, `EmbedderError` when the encoder cannot load."""
    store = store if store is not None else ZoneStore()
    handlers: list[Handler] = []
    dynamic = _dynamic(options.dynamic, store)
    if dynamic is not None:
        handlers.append(UpdateHandler(dynamic))
    if options.semantic is not None and (options.config.zones_dir is not None or encoder is not None):
        handlers.append(_semantic(options.semantic, store, encoder, tokens))
    recursing: RecursionHandler | None = None
    config = options.config
    if recursor is not None or options.recursion is not None:
        recursion = options.recursion or RecursionOptions()
        recursing = RecursionHandler(recursor or recursion.recursor(), cache_answers=recursion.cache_answers,
                                     allow=recursion.allow_recursion)
        handlers.append(recursing)
        config = recursion_clients_exempt(config, recursion.allow_recursion)
    runner = ServerRunner(config, store=store, extra=handlers)
    if recursing is not None:
        runner.server.recursion_clients = recursing.allows  # its cached answers are theirs only
    if dynamic is not None:
        runner.after_load.append(dynamic.replay)  # registrations survive restarts and reloads
        dynamic.on_change = runner.notify  # an accepted UPDATE: NOTIFY, as a reload does
        assert options.dynamic is not None
        runner.attach(HealthMonitor(dynamic, options.dynamic.health))
    _observe(runner, options, dynamic, recursing)
    return runner


def recursion_clients_exempt(config: ServerConfig, allow: tuple[IPNetwork, ...]) -> ServerConfig:
    """`config` with the clients a resolver serves (`allow`, its `--allow-recursion` ACL) added to
    the RRL's exempt networks: a resolver does not rate-limit its own clients (Unbound's
    `ip-ratelimit` is off by default). RRL keeps a server from reflecting answers at third
    parties; the ACL already confines a resolver's answers to the networks its operator serves,
    and limiting those only turns a fast stub's repeat questions into resends and TCP retries
    (ARCHITECTURE §7.5)."""
    exempt = (*config.rrl_exempt, *(network for network in allow if network not in config.rrl_exempt))
    return replace(config, rrl_exempt=exempt)


def _observe(runner: ServerRunner, options: ServerOptions, dynamic: DynamicZones | None,
             recursing: RecursionHandler | None) -> None:
    """The metrics (and their endpoint) and the query log `options.observe` asks for."""
    observe = options.observe
    query_log = None
    if observe.query_log is not None:
        query_log = QueryLog(observe.query_log, log_questions=options.config.log_questions)
        runner.attach(query_log)
    metrics = None
    if observe.counting:
        metrics = ServerMetrics()
        server = runner.server
        metrics.add_source(zones_source(runner.store))
        if server.wirecache is not None:
            metrics.add_source(wire_cache_source(server.wirecache))
        if server.rrl is not None:
            metrics.add_source(rrl_source(server.rrl))
        if dynamic is not None:
            metrics.add_source(engines_source(dynamic.registry))
        routes = recursing.recursor.routes if recursing is not None else None
        if routes is not None:
            metrics.add_source(semantic_cache_source(routes.cache))
        if query_log is not None:
            metrics.add_source(query_log_source(query_log))
        if observe.metrics is not None:
            runner.attach(MetricsExporter(metrics, observe.metrics))
    runner.server.observe(metrics, query_log)


def _dynamic(options: DynamicOptions | None, store: ZoneStore) -> DynamicZones | None:
    if options is None:
        return None
    policy = load_update_policy(options.update_policy) if options.update_policy is not None else UpdatePolicy()
    return DynamicZones(store, load_keyring(options.tsig_keys), Journal(options.journal_dir), policy=policy,
                        probe_allow=options.probe_allow)


def _token_encoder() -> TokenVectors | None:
    """The fast heads' token encoder, or None (logged: the MiniLM heads decide everything) when
    its table cannot be built or read: the fast path is an optimisation, never a reason not to serve."""
    from routing.embedder import EmbedderError
    from routing.tokens import load_token_encoder

    try:
        return load_token_encoder()
    except EmbedderError as exc:
        log.warning("fast heads off: %s", exc)
        return None


def _semantic(options: SemanticOptions, store: ZoneStore, encoder: Encoder | None,
              tokens: TokenVectors | None) -> Handler:
    """The semantic handler; with no `encoder` given, MiniLM and (unless `options.fast` is off)
    the token encoder of the fast heads are loaded (a given encoder comes with its `tokens` or none)."""
    from nameserver.semantic.handler import SemanticHandler  # the [server] extra's packages, when used
    if encoder is None:
        encoder = options.load_encoder()
        tokens = _token_encoder() if options.fast else None
    return SemanticHandler(store, encoder, encoder_queue=options.queue, encoder_deadline=options.deadline,
                           tokens=tokens)
