"""`semdns bench encoder`: one MiniLM run as the server makes it, by the text's length, on the
batch session (`--encoder-threads`, one thread on 2 cores) and on the lone session
(`--encoder-lone-threads`), the two taking turns run by run so that both meet the same load.

Per length: the median wall time of each, their ratio, and the CPU a run took (all the process's
threads: onnxruntime's pool threads spin during a run). Last, the CPU the lone session's threads
take in a 50 ms gap after a run: ~0 when they stop spinning with the run
(`session.force_spinning_stop`), ~50 ms when they do not.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import TYPE_CHECKING

import numpy as np

from routing.embedder import LONE_THREADS, QUERY_THREADS, ROUTING_LAYERS, ensure_onnx, open_session, unpadded_inputs

if TYPE_CHECKING:
    import onnxruntime

GAP = 0.003  # seconds between runs, as questions arriving one by one


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("encoder", help="one MiniLM run by text length, batch vs lone session")
    parser.add_argument("--lengths", default="8,16,24,32,48,64", help="token counts (default 8,16,24,32,48,64)")
    parser.add_argument("--runs", type=int, default=25, help="runs per length and session (default 25)")
    parser.add_argument("--threads", type=int, default=QUERY_THREADS, help=f"batch session (default {QUERY_THREADS})")
    parser.add_argument("--lone-threads", type=int, default=max(2, LONE_THREADS),
                        help=f"lone session (default {max(2, LONE_THREADS)})")
    parser.add_argument("--variant", choices=("int8", "fp32"), default="int8")
    parser.add_argument("--layers", type=int, default=ROUTING_LAYERS,
                        help=f"the graph of the model's first N layers (default {ROUTING_LAYERS}, routing's; 6: all)")
    parser.set_defaults(func=run)


def timed_run(session: onnxruntime.InferenceSession, inputs: dict[str, np.ndarray]) -> tuple[float, float]:
    """(wall ms, process CPU ms) of one run."""
    cpu, wall = time.process_time(), time.perf_counter()
    session.run(None, inputs)
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def run(args: argparse.Namespace) -> int:
    graph = ensure_onnx(args.variant, layers=args.layers)
    sessions = {"batch": open_session(graph, args.threads), "lone": open_session(graph, args.lone_threads)}
    rng = np.random.default_rng(7)
    print(f"{graph.name}: batch session {args.threads} thread(s), lone session {args.lone_threads}; "
          f"median of {args.runs} runs, {GAP * 1000:.0f} ms apart")
    print(f"{'tokens':>6}  {'batch ms':>9}  {'lone ms':>8}  {'ratio':>6}  {'batch CPU':>9}  {'lone CPU':>8}")
    for length in (int(n) for n in args.lengths.split(",")):
        walls: dict[str, list[float]] = {name: [] for name in sessions}
        cpus: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.runs):
            inputs = unpadded_inputs(rng.integers(1000, 29000, size=(1, length), dtype=np.int64))
            for name, session in sessions.items():
                time.sleep(GAP)
                wall, cpu = timed_run(session, inputs)
                walls[name].append(wall)
                cpus[name].append(cpu)
        batch, lone = (statistics.median(walls[name]) for name in sessions)
        print(f"{length:>6}  {batch:>9.2f}  {lone:>8.2f}  {lone / batch:>6.2f}  "
              f"{statistics.median(cpus['batch']):>9.2f}  {statistics.median(cpus['lone']):>8.2f}")
    inputs = unpadded_inputs(np.full((1, 48), 2000, dtype=np.int64))
    sessions["lone"].run(None, inputs)
    start = time.process_time()
    time.sleep(0.05)
    print(f"CPU in the 50 ms after a lone run: {(time.process_time() - start) * 1000:.2f} ms (spinning: ~50)")
    return 0
