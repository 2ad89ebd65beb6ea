"""`semdns bench dns`: UDP queries per second, latency percentiles and AXFR time, ours vs NSD.

One run, same zones, same query file for every server:
- our server pinned to core 0 (`taskset -c 0`), with the wire cache on and off, and with it on and
  response rate limiting on (loopback exempt: every reply passes the limiter); NSD (when
  installed) pinned to the same core, `rrl-ratelimit: 0`, run in the foreground from a temp dir;
- dnsperf pinned to core 1 drives a mix of answers, referrals and NXDOMAIN for `--seconds`
  (throughput), then a rate-limited pass with per-query reports for the latency percentiles;
- AXFR of a generated 10,000-record zone, timed with a raw TCP client and with `dig`, medians of
  `--axfr-runs` runs.
Prints a table and the ratios ours/NSD. With `--metrics` our server also runs with its metrics on
(`--metrics`; with `--query-log /dev/null` too; without the wire cache), for the ratios on / off,
and the in-process cost of one answer (`DnsServer.respond`, CPU time) with each on and off.
With `--baseline DIR` (another checkout of the project, e.g. the last commit) its server runs too,
with the wire cache, for a before/after of the hot path in the same run. With `--flame SVG`, py-spy
samples ours (wire cache) during the first throughput run and writes a flame graph (native frames
included: the C of the UDP batches, the event loop).
Besides the wall-clock qps, each throughput run reads the CPU time (user + system, from /proc) the
server's processes spent on it: queries answered per CPU-second is the per-core figure, and the
one a loaded, shared machine disturbs least (a server that gets half a core answers half as many
queries, at the same cost each).
With `--workers 1,2` ours runs once per N (`serve --workers N`, with the wire cache and without) instead of the
default rows: N=1 pinned to core 0, N=2 to cores 0-1 (where dnsperf runs too: it shares a core),
NSD on core 0 as the reference; it prints the qps of each N, the ratio N=2/N=1, and the cores the
server kept busy (CPU seconds of the main and its workers a second of the run) with the qps a
busy core answers: on a 2-core box the load generator holds one of them, so that is where scaling
shows. dnsperf then uses at least 16 sockets and 400 queries in flight (the kernel spreads the
datagrams by a hash of the client's address and port: 4 sockets can all land on one process).
Never asserts on time.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Sequence

import dns.message

from tools.progress import bar

BENCH_ZONE = "bench.test."
AXFR_ZONE = "axfr.test."
HOSTS = 1000
AXFR_RECORDS = 10_000
READY = re.compile(r"^ready: listening on (\S+)")


@dataclass(frozen=True)
class PerfResult:
    qps: float
    per_cpu: float  # queries answered per CPU-second of the server's processes (user + system)
    lost: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    busy_cores: float = float("nan")  # the server's CPU seconds a second in the throughput run (when measured)


@dataclass(frozen=True)
class Row:
    server: str
    perf: PerfResult | None
    axfr_raw_ms: float | None
    axfr_dig_ms: float | None


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("dns", help="UDP qps, latency and AXFR time: ours vs NSD")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each throughput run")
    parser.add_argument("--latency-qps", type=int, default=5000, help="rate of the latency pass")
    parser.add_argument("--axfr-runs", type=int, default=7, help="AXFR repetitions (median)")
    parser.add_argument("--clients", type=int, default=4, help="dnsperf -c")
    parser.add_argument("--outstanding", type=int, default=200, help="dnsperf -q")
    parser.add_argument("--no-nsd", action="store_true", help="skip NSD even when installed")
    parser.add_argument("--plain", action="store_true",
                        help="run our servers with --no-semantic (the authoritative path alone)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all servers (figures: medians)")
    parser.add_argument("--metrics", action="store_true",
                        help="also run ours with metrics on (and with the query log too): the cost of observing")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also run the server of this checkout (wire cache on), for a before/after")
    parser.add_argument("--flame", type=Path, metavar="SVG",
                        help="write a py-spy flame graph (native frames too) of ours with the wire cache under "
                             "the throughput run of round 1 (needs py-spy: pip install '.[bench]')")
    parser.add_argument("--workers", type=worker_counts, metavar="N,N",
                        help="run ours once per N with `serve --workers N` (e.g. 1,2): N processes on cores 0..N-1")
    parser.set_defaults(func=run)


def worker_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: counts separated by commas, e.g. 1,2") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every count at least 1")
    return counts


# -- data ------------------------------------------------------------------------------------
def bench_zone() -> str:
    lines = [
        f"$ORIGIN {BENCH_ZONE}",
        "$TTL 3600",
        "@ SOA ns1 hostmaster ( 2026112301 3600 900 1209600 300 )",
        "@ NS ns1",
        "ns1 A 127.0.0.1",
        "sub NS ns1.sub",
        "ns1.sub A 127.0.0.2",
        "www CNAME host0",
    ]
    lines += [f"host{i} A 10.0.{i // 256}.{i % 256}" for i in range(HOSTS)]
    return "\n".join(lines) + "\n"


def axfr_zone() -> str:
    lines = [
        f"$ORIGIN {AXFR_ZONE}",
        "$TTL 3600",
        "@ SOA ns1 hostmaster ( 2026112301 3600 900 1209600 300 )",
        "@ NS ns1",
        "ns1 A 127.0.0.1",
    ]
    lines += [f"r{i} A 10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(AXFR_RECORDS - 3)]
    return "\n".join(lines) + "\n"


def query_file(path: Path) -> None:
    """60% answers, 20% referrals, 20% NXDOMAIN, interleaved."""
    lines = []
    for i in range(HOSTS):
        lines.append(f"host{i}.{BENCH_ZONE} A")
        lines.append(f"host{(i * 7) % HOSTS}.{BENCH_ZONE} A")
        lines.append(f"www.{BENCH_ZONE} A" if i % 2 else f"host{(i * 13) % HOSTS}.{BENCH_ZONE} A")
        lines.append(f"h{i}.sub.{BENCH_ZONE} A")
        lines.append(f"nx{i}.{BENCH_ZONE} A")
    path.write_text("\n".join(lines) + "\n")


# -- servers ---------------------------------------------------------------------------------
def free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise OSError("no free port")


def pin(core: int | str) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def cores(count: int) -> str:
    """`taskset` cores for `count` processes: 0..count-1, within the machine."""
    return f"0-{min(count, os.cpu_count() or 1) - 1}" if count > 1 else "0"


def wait_answering(port: int, timeout: float = 30.0) -> None:
    query = dns.message.make_query(BENCH_ZONE, "SOA").to_wire()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            try:
                sock.sendto(query, ("127.0.0.1", port))
                sock.recv(4096)
                return
            except OSError:
                time.sleep(0.1)
    raise RuntimeError(f"no server answering on 127.0.0.1:{port}")


@contextmanager
def process(argv: Sequence[str], log: Path, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def ours(
    zones: Path, port: int, log: Path, wire_cache: bool, tree: Path | None = None, extra: Sequence[str] = (),
    rrl: bool = False, on: str = "0",
) -> Callable[[], ContextManager[subprocess.Popen]]:
    """Our server on the cores `on`; from the checkout `tree` (its `tools.cli`, run from there) when
    given. Response rate limiting off, where the checkout has it (dnsperf is one client; NSD runs
    without it too); `rrl`: on at its default rate with loopback exempt, so every reply passes the
    limiter in Python (the C answers no wire cache hit itself) and none is limited."""
    argv = [*pin(on), sys.executable, "-m", "tools.cli", "serve", "--zones", str(zones),
            "--listen", f"127.0.0.1:{port}", *extra]
    if rrl:
        argv += ["--rrl-exempt", "127.0.0.0/8"]
    elif ((tree or Path(__file__).resolve().parents[1]) / "nameserver" / "rrl.py").exists():
        argv += ["--rrl-rate", "0"]
    if not wire_cache:
        argv.append("--no-wire-cache")
    return lambda: process(argv, log, cwd=tree)


def nsd_conf(work: Path, zones: Path, port: int) -> Path:
    conf = work / "nsd.conf"
    zone_blocks = "".join(
        f"zone:\n  name: {z.rstrip('.')}\n  zonefile: {zones / (z + 'zone')}\n  provide-xfr: 127.0.0.1 NOKEY\n"
        for z in (BENCH_ZONE, AXFR_ZONE)
    )
    conf.write_text(
        "server:\n"
        f"  ip-address: 127.0.0.1\n  port: {port}\n  username: \"\"\n  chroot: \"\"\n"
        f"  zonesdir: \"{work}\"\n  pidfile: \"{work}/nsd.pid\"\n  database: \"\"\n"
        f"  zonelistfile: \"{work}/zone.list\"\n  xfrdfile: \"{work}/xfrd.state\"\n  xfrdir: \"{work}\"\n"
        f"  logfile: \"{work}/nsd.log\"\n  server-count: 1\n  rrl-ratelimit: 0\n  verbosity: 0\n"
        "  hide-version: yes\n  tcp-count: 100\n"
        "remote-control:\n  control-enable: no\n" + zone_blocks
    )
    return conf


# -- measurements ----------------------------------------------------------------------------
def dnsperf_throughput(port: int, queries: Path, args: argparse.Namespace) -> tuple[float, float, int]:
    """(queries per second, % lost, queries completed) of a dnsperf run at full speed."""
    out = subprocess.run(
        [*pin(1), "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(args.seconds),
         "-c", str(args.clients), "-q", str(args.outstanding), "-t", "2"],
        capture_output=True, text=True, check=False,
    ).stdout
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out)
    completed = re.search(r"Queries completed:\s+(\d+)", out)
    if qps is None or completed is None:
        raise RuntimeError(f"dnsperf gave no figures:\n{out}")
    return float(qps[1]), float(lost[1]) if lost else 0.0, int(completed[1])


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and all its descendants (their threads included),
    from /proc: NSD answers from a child process, our `--workers` from several."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(member, 0.0) for member in tree)


def dnsperf_latencies(port: int, queries: Path, args: argparse.Namespace) -> list[float]:
    out = subprocess.run(
        [*pin(1), "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", "2",
         "-Q", str(args.latency_qps), "-v", "-t", "2"],
        capture_output=True, text=True, check=False,
    ).stdout
    return [float(m[1]) * 1000 for m in re.finditer(r"^> \S+ \S+ \S+ ([\d.]+)$", out, re.M)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def measure_perf(
    port: int, queries: Path, args: argparse.Namespace, pid: int, flame: Path | None = None
) -> PerfResult:
    """Throughput (and the CPU time the server process `pid` and its descendants spent on it: per
    query, and as the cores they kept busy), then
    latency percentiles; with `flame`, py-spy samples `pid` during the throughput run and writes
    its flame graph there."""
    dnsperf_throughput(port, queries, argparse.Namespace(**{**vars(args), "seconds": 1.0}))  # warm up
    with sampled(pid, flame, args.seconds):
        started, cpu = time.monotonic(), tree_cpu_seconds(pid)
        qps, lost, completed = dnsperf_throughput(port, queries, args)
        cpu, elapsed = tree_cpu_seconds(pid) - cpu, time.monotonic() - started
    lat = dnsperf_latencies(port, queries, args)
    per_cpu = completed / cpu if cpu > 0 else float("nan")
    return PerfResult(qps, per_cpu, lost, percentile(lat, 0.5), percentile(lat, 0.9), percentile(lat, 0.99),
                      cpu / elapsed)


@contextmanager
def sampled(pid: int, svg: Path | None, seconds: float) -> Iterator[None]:
    """py-spy recording process `pid` into the flame graph `svg` for `seconds` (None: nothing)."""
    if svg is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200",
            "--native", "--format", "flamegraph", "--output", str(svg)]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as recorder:
        yield
        _out, err = recorder.communicate(timeout=seconds + 60)
    if recorder.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
    print(f"bench dns: flame graph of ours (wire cache) in {svg}", file=sys.stderr)


def median_perf(results: list[PerfResult]) -> PerfResult:
    """Each figure's median over the rounds."""
    return PerfResult(*(statistics.median(getattr(r, f) for r in results) for f in PerfResult.__dataclass_fields__))


def axfr_raw(port: int, zone: str, expected: int) -> float:
    """Milliseconds from connect to the last record (counted from the headers' ANCOUNT)."""
    query = dns.message.make_query(zone, "AXFR").to_wire()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack("!H", len(query)) + query)
        buffer = bytearray()
        records = 0
        while records < expected:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError(f"AXFR stopped after {records} records")
            buffer += chunk
            while len(buffer) >= 2:
                (size,) = struct.unpack_from("!H", buffer)
                if len(buffer) < 2 + size:
                    break
                records += struct.unpack_from("!H", buffer, 2 + 6)[0]
                del buffer[: 2 + size]
    return (time.perf_counter() - start) * 1000


def axfr_dig(port: int, zone: str) -> float:
    start = time.perf_counter()
    subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "AXFR", zone], stdout=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - start) * 1000


def measure_axfr(port: int, runs: int) -> tuple[float, float]:
    expected = AXFR_RECORDS + 1  # the SOA comes twice
    axfr_raw(port, AXFR_ZONE, expected)  # warm up
    raw = statistics.median(axfr_raw(port, AXFR_ZONE, expected) for _ in range(runs))
    dug = statistics.median(axfr_dig(port, AXFR_ZONE) for _ in range(runs))
    return raw, dug


# -- the run ---------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    if args.workers:  # SO_REUSEPORT spreads by the client's address and port: 4 sockets may all hash to one
        args.clients, args.outstanding = max(args.clients, 16), max(args.outstanding, 400)
    if not shutil.which("dnsperf"):
        print("semdns bench dns: dnsperf is not installed", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="semdns-bench-dns-"))
    zones = work / "zones"
    zones.mkdir()
    (zones / f"{BENCH_ZONE}zone").write_text(bench_zone())
    (zones / f"{AXFR_ZONE}zone").write_text(axfr_zone())
    queries = work / "queries.txt"
    query_file(queries)
    rows: list[Row] = []
    plain = ("--no-semantic",) if args.plain else ()
    workers = {(n, cache): (workers_row(n, cache), work / f"ours-workers-{n}-{cache}.log")
               for cache in (True, False) for n in args.workers or ()}
    contenders: list[tuple[str, Callable[[int], Callable]]] = [
        ("semdns (wire cache)", lambda port: ours(zones, port, work / "ours-cache.log", True, extra=plain)),
        ("semdns (no wire cache)", lambda port: ours(zones, port, work / "ours-nocache.log", False, extra=plain)),
        (RRL_ON, lambda port: ours(zones, port, work / "ours-rrl.log", True, extra=plain, rrl=True)),
    ] if args.workers is None else [
        (row, workers_factory(zones, log, n, cache, plain)) for (n, cache), (row, log) in workers.items()
    ]
    if args.metrics:
        observed = (*plain, "--metrics", "127.0.0.1:0")
        logged = (*observed, "--query-log", os.devnull)
        contenders += [
            (METRICS, lambda port: ours(zones, port, work / "ours-metrics.log", True, extra=observed)),
            (METRICS_LOG, lambda port: ours(zones, port, work / "ours-metrics-log.log", True, extra=logged)),
            (METRICS_NOCACHE, lambda port: ours(zones, port, work / "ours-metrics-nc.log", False, extra=observed)),
        ]
    if args.baseline is not None:
        tree = args.baseline.resolve()
        contenders.append((BASELINE, lambda port: ours(zones, port, work / "base.log", True, tree, extra=plain)))
    nsd = shutil.which("nsd") or ("/usr/sbin/nsd" if Path("/usr/sbin/nsd").exists() else None)
    if nsd and not args.no_nsd:
        def start_nsd(port: int) -> Callable:
            conf = nsd_conf(work, zones, port)
            return lambda: process([*pin(0), nsd, "-d", "-c", str(conf)], work / "nsd.out")
        contenders.append(("nsd", start_nsd))
    perfs: dict[str, list[PerfResult]] = {name: [] for name, _factory in contenders}
    axfr: dict[str, tuple[float | None, float | None]] = {}
    progress = bar(args=args, total=args.repeat * len(contenders), desc="bench dns", unit="run")
    for round_ in range(args.repeat):
        for name, factory in contenders:  # interleaved, so that load from elsewhere hits all alike
            port = free_port()
            print(f"bench dns: {name} on 127.0.0.1:{port} (round {round_ + 1}) ...", file=sys.stderr, flush=True)
            with factory(port)() as proc:
                wait_answering(port)
                for row, log in workers.values():
                    if row == name:
                        wait_ready(log)  # the main answers before its workers are ready
                flame = args.flame if round_ == 0 and name == "semdns (wire cache)" else None
                perfs[name].append(measure_perf(port, queries, args, proc.pid, flame))
                if round_ == 0:
                    wants = name in ("semdns (wire cache)", "nsd")
                    axfr[name] = measure_axfr(port, args.axfr_runs) if wants else (None, None)
                if proc.poll() is not None:
                    print(f"bench dns: {name} exited early (code {proc.returncode})", file=sys.stderr)
            progress.update()
    progress.close()
    for name, _factory in contenders:
        rows.append(Row(name, median_perf(perfs[name]), *axfr[name]))
    print_table(rows, args)
    if args.workers is not None:
        print_workers(rows, args.workers)
    if args.metrics:
        print_observe_cost(zones)
    shutil.rmtree(work, ignore_errors=True)
    return 0


WORKERS_ROW = "semdns --workers"


def workers_row(count: int, cache: bool) -> str:
    return f"{WORKERS_ROW} {count}" + ("" if cache else " (no wire cache)")


def workers_factory(
    zones: Path, log: Path, count: int, cache: bool, plain: Sequence[str]
) -> Callable[[int], Callable]:
    return lambda port: ours(zones, port, log, cache, extra=(*plain, "--workers", str(count)), on=cores(count))


def wait_ready(log: Path, timeout: float = 120.0) -> None:
    """Wait for the `ready:` line (printed once every worker is ready; the main answers before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and "ready: listening on" in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"our server did not print its ready line within {timeout:g} s (see {log})")


def print_workers(rows: list[Row], counts: Sequence[int]) -> None:
    """qps per N, N/first N, and each against NSD; with the wire cache and without (where the
    server, not dnsperf, is the limit)."""
    by_name = {r.server: r for r in rows}
    nsd = by_name.get("nsd")
    shared = ", so from N=2 on it shares a core with ours" if (os.cpu_count() or 1) <= 2 else ""
    print(f"--workers N: ours on cores 0..N-1 (taskset), NSD on core 0, dnsperf on core 1{shared}")
    for cache in (True, False):
        first = by_name[workers_row(counts[0], cache)].perf
        for count in counts:
            perf = by_name[workers_row(count, cache)].perf
            if perf is None or first is None:
                continue
            against = f", {perf.qps / nsd.perf.qps:.0%} of NSD (1 core)" if nsd and nsd.perf and cache else ""
            print(f"--workers {count} ({'wire cache' if cache else 'no wire cache'}): {perf.qps:.0f} UDP qps, "
                  f"{perf.qps / first.qps:.2f}x --workers {counts[0]}{against}; {perf.busy_cores:.2f} cores busy, "
                  f"{perf.per_cpu:.0f} queries a CPU-second ({perf.per_cpu / first.per_cpu:.2f}x)")


def observe_cost(zones: Path, rounds: int = 15, queries: int = 20_000) -> dict[tuple[bool, str], float]:
    """Microseconds of CPU per `DnsServer.respond` over the bench queries, the least of `rounds`
    interleaved runs, by (wire cache, what observes: off, metrics, metrics+log). The query log's
    queue is emptied between runs and never drained (its writer thread's formatting is not counted)."""
    from nameserver.build import ObserveOptions, ServerOptions, build_server
    from nameserver.config import ServerConfig

    wires = [dns.message.make_query(f"host{i}.{BENCH_ZONE}", "A").to_wire() for i in range(50)]
    wires += [dns.message.make_query(f"nx{i}.{BENCH_ZONE}", "A").to_wire() for i in range(10)]
    best: dict[tuple[bool, str], float] = {}
    for cache in (True, False):
        servers = {}
        for kind in ("off", "metrics", "metrics+log"):
            observe = ObserveOptions(count=kind != "off", query_log=os.devnull if kind == "metrics+log" else None)
            config = ServerConfig(zones_dir=zones, wire_cache=cache, rrl_rate=0)
            runner = build_server(ServerOptions(config=config, semantic=None, observe=observe))
            runner.load()
            runner.chain.warm()
            if runner.server.query_log is not None:
                runner.server.query_log.max_queue = queries
            servers[kind] = runner.server
        count = queries if cache else queries // 4
        for _ in range(rounds):
            for kind, server in servers.items():
                if server.query_log is not None:
                    server.query_log._queue.clear()
                respond, client = server.respond, ("127.0.0.1", 5300)
                started = time.process_time()
                for i in range(count):
                    respond(wires[i % len(wires)], client, "udp")
                took = (time.process_time() - started) / count * 1e6
                best[(cache, kind)] = min(best.get((cache, kind), took), took)
    return best


def print_observe_cost(zones: Path) -> None:
    cost = observe_cost(zones)
    for cache in (True, False):
        off = cost[(cache, "off")]
        print(f"in-process respond(), {'wire cache' if cache else 'no wire cache'}: off {off:.2f} us/query, "
              + ", ".join(f"{kind} {cost[(cache, kind)]:.2f} us (+{cost[(cache, kind)] - off:.2f})"
                          for kind in ("metrics", "metrics+log")))


METRICS, METRICS_LOG = "semdns (cache, metrics)", "semdns (cache, metrics, log)"
METRICS_NOCACHE = "semdns (no cache, metrics)"
BASELINE = "baseline (wire cache)"
RRL_ON = "semdns (wire cache, RRL on)"
PERF_COLUMNS = (
    ("qps", "10.0f"), ("per_cpu", "11.0f"), ("lost", "7.2f"),
    ("p50_ms", "8.3f"), ("p90_ms", "8.3f"), ("p99_ms", "8.3f"),
)


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    def fmt(value: float | None, spec: str) -> str:
        width = int(spec.split(".")[0])
        return "-".rjust(width) if value is None else format(value, spec)

    print(f"query mix: 60% answers (incl. a CNAME), 20% referrals, 20% NXDOMAIN; {args.seconds:g} s per run, "
          f"median of {args.repeat} interleaved round(s); "
          f"server on core 0, dnsperf -c {args.clients} -q {args.outstanding} on core 1; "
          f"latency at {args.latency_qps} qps; AXFR {AXFR_RECORDS} records, median of {args.axfr_runs}")
    header = (
        f"{'server':<30}{'UDP qps':>10}{'q/CPU-s':>11}{'lost%':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}"
        f"{'AXFR raw ms':>13}{'AXFR dig ms':>13}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        p = row.perf
        perf = [fmt(None if p is None else getattr(p, f), spec) for f, spec in PERF_COLUMNS]
        print(f"{row.server:<30}{''.join(perf)}{fmt(row.axfr_raw_ms, '13.1f')}{fmt(row.axfr_dig_ms, '13.1f')}")
    by_name = {r.server: r for r in rows}
    reference = by_name.get("nsd")
    cached, plain = by_name.get("semdns (wire cache)"), by_name.get("semdns (no wire cache)")
    if reference and reference.perf and cached and cached.perf:
        ratio, per_core = cached.perf.qps / reference.perf.qps, cached.perf.per_cpu / reference.perf.per_cpu
        print(f"ours/NSD (wire cache): UDP qps {ratio:.0%}, queries per CPU-second {per_core:.0%} "
              "(target >= 90% per core)")
    if plain and plain.perf:
        print(f"no wire cache: {plain.perf.qps:.0f} qps (target >= 8000)")
    limited = by_name.get(RRL_ON)
    if limited and limited.perf and cached and cached.perf:
        print(f"RRL on (every reply through Python) / off: queries per CPU-second "
              f"{limited.perf.per_cpu / cached.perf.per_cpu:.0%}")
    for name, against in ((METRICS, cached), (METRICS_LOG, cached), (METRICS_NOCACHE, plain)):
        on = by_name.get(name)
        if on and on.perf and against and against.perf:
            print(f"{name} / {against.server}: UDP qps {on.perf.qps / against.perf.qps:.1%}, "
                  f"p50 {on.perf.p50_ms / against.perf.p50_ms:.2f}x, p99 {on.perf.p99_ms / against.perf.p99_ms:.2f}x")
    base = by_name.get(BASELINE)
    if base and base.perf and cached and cached.perf:
        print(f"wire cache, this tree / baseline: UDP qps {cached.perf.qps / base.perf.qps:.2f}x")
    if reference and cached and reference.axfr_raw_ms and cached.axfr_raw_ms and reference.axfr_dig_ms \
            and cached.axfr_dig_ms:
        print(f"AXFR time ours/NSD: raw {cached.axfr_raw_ms / reference.axfr_raw_ms:.2f}x, "
              f"dig {cached.axfr_dig_ms / reference.axfr_dig_ms:.2f}x (target <= 2x)")
