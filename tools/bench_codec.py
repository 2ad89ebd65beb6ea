"""`semdns bench codec CORPUS_DIR`: pattern-library compression on held-out documents.

For each domain (a sub-directory of *.txt documents), k-fold by document: a library is trained
on the other folds and measured on the held-out one. Ratios are total original octets over
total compressed octets per size bucket, for zstd without a dictionary, gzip -9, zstd with the
domain's library (`zstd+lib`: word table first stage + dictionary, semcodec3, its trimmed frame;
the room the domain's content leaves is filled from all the other domains' documents, as the
shipped libraries are, unless `--no-fill`), the previous default (`zstd+prev`: the same trainer's
semcodec2 library of 64 KiB, standard frame, no fill), the same trainer's dictionary alone
(`zstd+dict`: semcodec1, no first stage, the full size for the dictionary, filled likewise) and
zstd with another domain's library (trained on all of that domain, without fill: the fill would
hold the measured domain's documents), all zstd figures
at the same level; `zstd+plain` is the reference: a dictionary of the same size from plain
`zstandard.train_dictionary` on the same training folds. `zstd` (no dictionary) and the semcodec1
and semcodec2 figures are standard frames (content size and checksum), as `codec.compress` makes
them.

Speeds: per domain, every held-out document is compressed and decompressed with its fold's library
(word table + dictionary), with its fold's previous default library, then without a dictionary
(plain zstd, the reference, same level), `--repeats` times over the whole set; MB/s of original
octets from the median time, in CPU time of this process (`time.process_time`: the cores are shared,
and wall time would count the other processes' turns). Compare them in one run (their ratios), not
runs on different machines: the first line printed says which CPU it was
(`tools.machine.describe_machine`).
"""
from __future__ import annotations

import argparse
import gzip
import random
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from codec.compress import DEFAULT_LEVEL, compress, decompress
from codec.library import WORDS, PatternLibrary
from codec.train import DEFAULT_SIZE, train_library
from tools.machine import describe_machine
from tools.progress import bar

BUCKETS: tuple[tuple[str, int, int], ...] = (("1-4KB", 1024, 4096), ("4-10KB", 4096, 10240), ("10-20KB", 10240, 20480))
METHODS = ("zstd", "gzip-9", "zstd+plain", "zstd+dict", "zstd+prev", "zstd+lib", "zstd+other")
GAINS = ("zstd+lib", "zstd+prev", "zstd+dict", "zstd+plain")  # reported as gains over zstd
PREVIOUS_SIZE = 64 * 1024  # the default library size before semcodec3


@dataclass
class DomainResult:
    original: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    packed: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    docs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    held: list[tuple[bytes, PatternLibrary]] = field(default_factory=list)  # (document, its fold's library)
    held_prev: list[tuple[bytes, PatternLibrary]] = field(default_factory=list)  # (document, its fold's zstd+prev)
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
    parser.add_argument("--repeats", type=int, default=7, help="timed passes over the held-out documents (median)")
    parser.add_argument("--no-fill", dest="fill", action="store_false",
                        help="train without the other domains' documents as fill (codec.train)")
    parser.set_defaults(func=run)


def _bucket(size: int) -> str | None:
    return next((name for name, low, high in BUCKETS if low <= size < high), None)


def _plain_library(docs: list[bytes], size: int, level: int) -> PatternLibrary:
    samples: list[bytes | bytearray | memoryview] = list(docs)
    return PatternLibrary.from_dictionary(zstandard.train_dictionary(size, samples, level=level).as_bytes())


def _previous_library(docs: list[bytes], level: int) -> PatternLibrary:
    library = train_library(docs, PREVIOUS_SIZE, level)
    return PatternLibrary.from_data(library.data, WORDS, library.table_octets) if library.word_table else library


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
        payload = compress(doc, library, level)
        if decompress(payload, by_id) != doc:
            raise AssertionError("round trip is not byte-exact")
        result.held.append((doc, library))
        result.held_prev.append((doc, libraries["zstd+prev"]))
        result.packed[bucket, "zstd+lib"] += len(payload)
        for method in ("zstd+plain", "zstd+dict", "zstd+prev", "zstd+other"):
            result.packed[bucket, method] += len(compress(doc, libraries[method], level))


def _speeds(held: list[tuple[bytes, PatternLibrary | None]], level: int, repeats: int) -> tuple[float, float]:
    """(compress, decompress) MB/s of original octets over `held`, from the median of `repeats` passes."""
    octets = sum(len(doc) for doc, _ in held)
    payloads = [(compress(doc, library, level), {library.dict_id: library} if library else {}) for doc, library in held]
    packing, unpacking = [], []
    for _ in range(repeats):
        started = time.process_time()
        for doc, library in held:
            compress(doc, library, level)
        packing.append(time.process_time() - started)
        started = time.process_time()
        for payload, by_id in payloads:
            decompress(payload, by_id)
        unpacking.append(time.process_time() - started)
    return octets / 1e6 / statistics.median(packing), octets / 1e6 / statistics.median(unpacking)


def run(args: argparse.Namespace) -> int:
    print(describe_machine(), flush=True)
    domains = sorted(p for p in args.corpus.iterdir() if p.is_dir())
    corpora = {d.name: [f.read_bytes() for f in sorted(d.glob("*.txt"))] for d in domains}
    names = list(corpora)
    fills = {name: [doc for other, docs in corpora.items() if other != name for doc in docs] if args.fill else []
             for name in names}
    full = {  # for zstd+other only: without fill, which would hold the measured domain's documents
        name: train_library(docs, args.size, args.level)
        for name, docs in bar(corpora.items(), args=args, desc="full libraries")
    }
    results: dict[str, DomainResult] = {}
    for position, name in enumerate(bar(names, args=args, desc="domains")):
        docs = corpora[name]
        order = list(range(len(docs)))
        random.Random(args.seed).shuffle(order)
        other = full[names[(position + 1) % len(names)]]
        result = results[name] = DomainResult()
        for fold in range(args.folds):
            held = [docs[i] for k, i in enumerate(order) if k % args.folds == fold]
            train = [docs[i] for k, i in enumerate(order) if k % args.folds != fold]
            libraries = {
                "zstd+lib": train_library(train, args.size, args.level, fill=fills[name]),
                "zstd+dict": train_library(train, args.size, args.level, words=False, fill=fills[name]),
                "zstd+prev": _previous_library(train, args.level),
                "zstd+plain": _plain_library(train, args.size, args.level),
                "zstd+other": other,
            }
            _measure(result, held, libraries, args.level)
            result.library_size = max(result.library_size, len(libraries["zstd+lib"].data))
    print(f"\nheld-out ratios (original/compressed), {args.folds}-fold by document (seed {args.seed}), zstd level "
          f"{args.level}, library <= {args.size} octets, {'filled with' if args.fill else 'without'} the other "
          f"domains' documents; 'dict' = dictionary alone, 'lib' = word table + dictionary, "
          f"'prev' = semcodec2 of {PREVIOUS_SIZE} octets (the previous default), 'other' = library of the next domain")
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
    print(f"\nspeed, MB/s of original octets in CPU time (median of {args.repeats} passes over each domain's "
          f"held-out documents, level {args.level}); 'prev' = with the previous default library, 'zstd' = without "
          f"a dictionary, the same documents in the same run")
    print(f"{'domain':<10}{'library':>9}{'lib compress':>14}{'prev compress':>15}{'zstd compress':>15}"
          f"{'lib decompress':>16}{'prev decompress':>17}{'zstd decompress':>17}")
    for name, result in results.items():
        lib_pack, lib_unpack = _speeds(list(result.held), args.level, args.repeats)
        prev_pack, prev_unpack = _speeds(list(result.held_prev), args.level, args.repeats)
        zstd_pack, zstd_unpack = _speeds([(doc, None) for doc, _ in result.held], args.level, args.repeats)
        print(f"{name:<10}{result.library_size:>9}{lib_pack:>14.1f}{prev_pack:>15.1f}{zstd_pack:>15.1f}"
              f"{lib_unpack:>16.1f}{prev_unpack:>17.1f}{zstd_unpack:>17.1f}")
    if gains["zstd+lib"]:
        mean = {method: sum(values) / len(values) for method, values in gains.items()}
        print(f"\naverage gain of the domain library over zstd without dictionary on 1-4 KB held-out documents, "
              f"over {len(gains['zstd+lib'])} domains: {mean['zstd+lib']:.3f}x "
              f"(previous default, semcodec2 of {PREVIOUS_SIZE} octets: {mean['zstd+prev']:.3f}x; "
              f"dictionary alone, no word table: {mean['zstd+dict']:.3f}x; "
              f"plain zstd.train_dictionary: {mean['zstd+plain']:.3f}x)")
    return 0
