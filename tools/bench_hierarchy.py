"""`semdns bench hierarchy`: the O(log G) claim, measured. Generated hierarchies of G leaf domains
(default 6, 36, 216, 600) under `gen.semantic.root.`, as a tree of branching `--branching` (6)
and, for comparison, flat (one node with G children). Every leaf has a keyword of its own and one
exemplar; every inner node's profile of a child carries the keywords of the leaves below it. Each
question names one leaf's keyword; `routing.descend` walks it down in-process.

Per G and layout: the depth, the hops per resolution (classifications = zone cuts a resolver
follows when each node is its own zone; DNS messages per resolution = hops + 1, the leaf's answer),
the share routed to the right leaf, and the median µs per walk (keyword stages: the encoder is
not run per question here; it builds the indexes). `--plot FILE.png` draws both (matplotlib, the
`bench` extra).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dns.name

from routing.classifier import Classifier
from routing.descend import descend
from routing.index import Encoder, IndexCache
from zones.loader import load_directory

APEX = "gen.semantic.root."
SOA = "@ 300 IN SOA ns1 hostmaster 1 3600 900 1209600 300\n@ 300 IN NS ns1\nns1 300 IN A 127.0.0.1\n"
# one keyword match (confidence 0.5) decides: every leaf has one keyword of its own
SETTINGS = '_route{node} 300 IN TXT "v=semroute1" "route-ttl=300" "th.keyword=0.45"\n'


def word(i: int) -> str:
    """A made-up keyword of letters only, unique per leaf (no digits: normalisation keeps words)."""
    letters = ""
    i += 26 * 26
    while i:
        i, r = divmod(i, 26)
        letters = chr(ord("a") + r) + letters
    return f"zor{letters}"


@dataclass(frozen=True)
class Tree:
    zone_text: str
    leaves: tuple[str, ...]  # absolute names, leaf i has keyword word(i)
    depth: int


def _chunks(values: list[str], size: int = 200) -> list[str]:
    out, line = [], ""
    for value in values:
        if line and len(line) + len(value) + 1 > size:
            out.append(line)
            line = ""
        line = f"{line},{value}" if line else value
    return out + ([line] if line else [])


def generate(leaves: int, branching: int | None) -> Tree:
    """The zonefile of a hierarchy of `leaves` leaves: a tree of `branching`, or flat (None)."""
    groups: list[tuple[str, list[int]]] = []  # (relative node name, leaf ids below it)
    lines = [f"$ORIGIN {APEX}\n", SOA]
    leaf_names: list[str] = [""] * leaves
    depth = 0

    def build(node: str, ids: list[int], level: int) -> None:
        nonlocal depth
        suffix = f".{node}" if node else ""
        lines.append(SETTINGS.format(node=suffix))
        if branching is None or len(ids) <= branching:
            parts = [[i] for i in ids]
        else:
            per = math.ceil(len(ids) / branching)
            parts = [ids[k:k + per] for k in range(0, len(ids), per)]
        for k, part in enumerate(parts):
            leaf = len(part) == 1 and (branching is None or len(ids) <= branching)
            label = f"d{part[0]}" if leaf else f"n{k}"
            child = f"{label}{suffix}"
            owner = f"{label}._route{suffix}"
            lines.append(f'{owner} 300 IN TXT "v=semroute1" "desc=topics {word(part[0])} to {word(part[-1])}"\n')
            for chunk in _chunks([word(i) for i in part]):
                lines.append(f'{owner} 300 IN TXT "kw={chunk}"\n')
            lines.append(f'{owner} 300 IN TXT "ex=a question about {" ".join(word(i) for i in part[:8])}"\n')
            lines.append(f"_llm._tcp.{child} 300 IN SRV 0 0 8000 engine.{child}\n"
                         f"engine.{child} 300 IN A 127.0.0.1\n")
            groups.append((child, part))
            if leaf:
                leaf_names[part[0]] = f"{child}.{APEX}"
                depth = max(depth, level + 1)
            else:
                build(child, part, level + 1)

    build("", list(range(leaves)), 0)
    return Tree("".join(lines), tuple(leaf_names), depth)


@dataclass(frozen=True)
class Row:
    leaves: int
    layout: str  # "tree" or "flat"
    depth: int
    hops: float  # mean classifications per resolution
    messages: float  # hops + 1: DNS queries when every node is its own zone
    correct: float  # share routed to the intended leaf
    walk_us: float  # median
    build_s: float  # compiling every index (the encoder embeds the profiles)


def measure(leaves: int, branching: int | None, encoder: Encoder, questions: int) -> Row:
    tree = generate(leaves, branching)
    with tempfile.TemporaryDirectory(prefix="semdns-hier-") as tmp:
        (Path(tmp) / f"{APEX}zone").write_text(tree.zone_text)
        catalog, problems = load_directory(Path(tmp))
    errors = [p for p in problems if p.is_error]
    if errors:
        raise RuntimeError(f"generated zone rejected: {errors[0]}")
    indexes, classifier, apex = IndexCache(encoder), Classifier(), dns.name.from_text(APEX)
    step = max(1, leaves // questions)
    picks = list(range(0, leaves, step))[:questions]
    start = time.perf_counter()
    for i in picks:  # warm: compile every index on the way (timed apart)
        descend(catalog, indexes, classifier, f"tell me about {word(i)}", apex, encoder)
    build = time.perf_counter() - start
    hops, times, right = [], [], 0
    for i in picks:
        text = f"what should I know about {word(i)} before I start"
        t0 = time.perf_counter()
        walk = descend(catalog, indexes, classifier, text, apex, encoder)
        times.append((time.perf_counter() - t0) * 1e6)
        hops.append(len(walk))
        final = walk[-1].decision.child if walk else None
        right += final is not None and final.to_text() == tree.leaves[i]
    mean_hops = statistics.mean(hops)
    return Row(leaves, "flat" if branching is None else "tree", tree.depth, mean_hops, mean_hops + 1,
               right / len(picks), statistics.median(times), build)


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("hierarchy", help="hops and time per resolution as the hierarchy grows")
    parser.add_argument("--leaves", default="6,36,216,600", help="values of G (default 6,36,216,600)")
    parser.add_argument("--branching", type=int, default=6)
    parser.add_argument("--questions", type=int, default=60, help="questions per G (spread over the leaves)")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the figures (matplotlib)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from routing.embedder import load_embedder

    encoder = load_embedder()
    rows = []
    for leaves in (int(v) for v in args.leaves.split(",")):
        for branching in (args.branching, None):
            rows.append(measure(leaves, branching, encoder, args.questions))
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(f"{'G':>5} {'layout':6} {'depth':>5} {'hops':>6} {'msgs':>6} {'right':>6} {'walk us':>9} {'build s':>8}")
        for r in rows:
            print(f"{r.leaves:>5} {r.layout:6} {r.depth:>5} {r.hops:>6.2f} {r.messages:>6.2f} {r.correct:>6.0%} "
                  f"{r.walk_us:>9.0f} {r.build_s:>8.1f}")
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")
    return 0


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for layout, style in (("tree", "o-"), ("flat", "s--")):
        sel = [r for r in rows if r.layout == layout]
        xs = [r.leaves for r in sel]
        left.plot(xs, [r.messages for r in sel], style, label=layout)
        right.plot(xs, [r.walk_us for r in sel], style, label=layout)
    for axis, title in ((left, "DNS messages per resolution"), (right, "routing time per question (µs, median)")):
        axis.set_xscale("log")
        axis.set_xlabel("leaf domains G")
        axis.set_title(title, fontsize=10)
        axis.grid(True, alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
