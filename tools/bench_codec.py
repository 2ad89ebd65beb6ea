"""`semdns bench codec CORPUS_DIR`: pattern-library compression on held-out documents.

For each domain (a sub-directory of *.txt documents), k-fold by document: a library is trained
on the other folds and measured on the held-out one. Ratios are total original octets over
total compressed octets per size bucket, for zstd without a dictionary, gzip -9, zstd with the
domain's library (`zstd+lib`: word table first stage + dictionary, semcodec2), the same trainer's
dictionary alone (`zstd+dict`: semcodec1, no first stage, the full size for the dictionary) and
zstd with another domain's library (trained on all of that domain), all zstd figures at the same
level and frame options; `zstd+plain` is the reference: a dictionary of the same size from plain
`zstandard.train_dictionary` on the same training folds. Speeds are MB/s with the domain library.
"""
from __future__ import annotations

import argparse
import gzip
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from codec.compress import DEFAULT_LEVEL, compress, decompress
from codec.library import PatternLibrary
from codec.train import DEFAULT_SIZE, train_library
from tools.progress import bar

BUCKETS: tuple[tuple[str, int, int], ...] = (("1-4KB", 1024, 4096), ("4-10KB", 4096, 10240), ("10-20KB", 10240, 20480))
METHODS = ("zstd", "gzip-9", "zstd+plain", "zstd+dict", "zstd+lib", "zstd+other")
GAINS = ("zstd+lib", "zstd+dict", "zstd+plain")  # reported as gains over zstd


@dataclass
class DomainResult:
    original: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    packed: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    docs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    octets: int = 0
    compress_s: float = 0.0
    decompress_s: float = 0.0
    library_size: int = 0

    def ratio(self, bucket: str, method: str) -> float:
        return self.original[bucket] / self.packed[bucket, method] if self.packed[bucket, method] else float("nan")


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("codec", help="pattern-library compression ratios on held-out documents")
    parser.add_argument("corpus", type=Path, help="directory with one sub-directory of *.txt per domain")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--level", type=int, default=DEFAULT_LEVEL)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="library octets")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle that makes the folds")
    parser.set_defaults(func=run)


def _bucket(size: int) -> str | None:
    return next((name for name, low, high in BUCKETS if low <= size < high), None)


def _plain_library(docs: list[bytes], size: int, level: int) -> PatternLibrary:
    samples: list[bytes | bytearray | memoryview] = list(docs)
    return PatternLibrary.from_dictionary(zstandard.train_dictionary(size, samples, level=level).as_bytes())


def _measure(result: DomainResult, docs: list[bytes], libraries: dict[str, PatternLibrary], level: int) -> None:
    library = libraries["zstd+lib"]
    by_id = {library.dict_id: library}
    for doc in docs:
        bucket = _bucket(len(doc))
        if bucket is None:
            continue
        result.docs[bucket] += 1
        result.original[bucket] += len(doc)
        result.packed[bucket, "zstd"] += len(compress(doc, None, level))
        result.packed[bucket, "gzip-9"] += len(gzip.compress(doc, compresslevel=9, mtime=0))
        started = time.perf_counter()
        payload = compress(doc, library, level)
        result.compress_s += time.perf_counter() - started
        started = time.perf_counter()
        restored = decompress(payload, by_id)
        result.decompress_s += time.perf_counter() - started
        if restored != doc:
            raise AssertionError("round trip is not byte-exact")
        result.octets += len(doc)
        result.packed[bucket, "zstd+lib"] += len(payload)
        for method in ("zstd+plain", "zstd+dict", "zstd+other"):
            result.packed[bucket, method] += len(compress(doc, libraries[method], level))


def run(args: argparse.Namespace) -> int:
    domains = sorted(p for p in args.corpus.iterdir() if p.is_dir())
    corpora = {d.name: [f.read_bytes() for f in sorted(d.glob("*.txt"))] for d in domains}
    names = list(corpora)
    full = {
        name: train_library(docs, args.size, args.level)
        for name, docs in bar(corpora.items(), args=args, desc="full libraries")
    }
    results: dict[str, DomainResult] = {}
    for position, name in enumerate(bar(names, args=args, desc="domains")):
        docs = corpora[name]
        order = list(range(len(docs)))
        random.Random(args.seed).shuffle(order)
        other = full[names[(position + 1) % len(names)]]
        result = results[name] = DomainResult(library_size=len(full[name].data))
        for fold in range(args.folds):
            held = [docs[i] for k, i in enumerate(order) if k % args.folds == fold]
            train = [docs[i] for k, i in enumerate(order) if k % args.folds != fold]
            libraries = {
                "zstd+lib": train_library(train, args.size, args.level),
                "zstd+dict": train_library(train, args.size, args.level, words=False),
                "zstd+plain": _plain_library(train, args.size, args.level),
                "zstd+other": other,
            }
            _measure(result, held, libraries, args.level)
    print(f"\nheld-out ratios (original/compressed), {args.folds}-fold by document (seed {args.seed}), zstd level "
          f"{args.level}, library <= {args.size} octets; 'dict' = dictionary alone, 'lib' = word table + dictionary, "
          f"'other' = library of the next domain")
    header = (f"{'domain':<10}{'bucket':<9}{'docs':>5}" + "".join(f"{m:>12}" for m in METHODS)
              + "".join(f"{m.removeprefix('zstd+') + '/zstd':>12}" for m in GAINS))
    print(header)
    print("-" * len(header))
    gains: dict[str, list[float]] = {method: [] for method in GAINS}
    for name, result in results.items():
        for bucket, _, _ in BUCKETS:
            if not result.docs[bucket]:
                continue
            bucket_gains = {m: result.ratio(bucket, m) / result.ratio(bucket, "zstd") for m in GAINS}
            if bucket == BUCKETS[0][0]:
                for method, gain in bucket_gains.items():
                    gains[method].append(gain)
            cells = "".join(f"{result.ratio(bucket, m):>12.2f}" for m in METHODS)
            print(f"{name:<10}{bucket:<9}{result.docs[bucket]:>5}{cells}"
                  + "".join(f"{gain:>11.3f}x" for gain in bucket_gains.values()))
    print(f"\n{'domain':<10}{'library':>9}{'compress MB/s':>15}{'decompress MB/s':>17}")
    for name, result in results.items():
        print(f"{name:<10}{result.library_size:>9}{result.octets / 1e6 / result.compress_s:>15.1f}"
              f"{result.octets / 1e6 / result.decompress_s:>17.1f}")
    if gains["zstd+lib"]:
        mean = {method: sum(values) / len(values) for method, values in gains.items()}
        print(f"\naverage gain of the domain library over zstd without dictionary on 1-4 KB held-out documents, "
              f"over {len(gains['zstd+lib'])} domains: {mean['zstd+lib']:.3f}x "
              f"(dictionary alone, no word table: {mean['zstd+dict']:.3f}x; "
              f"plain zstd.train_dictionary: {mean['zstd+plain']:.3f}x)")
    return 0
