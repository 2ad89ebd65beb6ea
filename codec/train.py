"""Training a domain's pattern library (at most 128 KiB: word table + zstd dictionary) from its documents.

First stage (`semcodec2`, `codec.wordtable`): a table of the domain's frequent words (with their
leading space), learnt by expected saving from words found in at least two documents, replaces
them with one- or two-octet codes. The dictionary is then trained on the documents as the table
encodes them, in the octets the stored table leaves. `words=False` trains the dictionary alone
(`semcodec1`), as before.

Content selection ("document-frequency cover"): like zstd's COVER, the dictionary is built from
segments of the corpus chosen greedily by the value of the d-mers (8-octet substrings) they
contain, each d-mer counted once. Unlike zstd's fastCover, which counts every occurrence, a
d-mer is worth the number of documents that contain it: what many documents share is what
unseen documents will share, while a phrase repeated inside one long document is not. The best
segment ends up last (nearest, cheapest offsets).

Entropy tables (cross-fitted): libzstd measures the Huffman/FSE statistics by compressing
samples against the content (`codec.zdict`). Measured on the training documents themselves they
describe documents whose own text was chosen *because of them* (long, certain matches), not an
unseen document. So the tables come from a second, smaller run: content chosen from all but
every STATS_FOLDS-th document, statistics measured on those held-out documents; they are then
put in front of the content chosen from the whole corpus (`codec.zdict.with_content`).

Dictionary ids are taken in 32768..65535 (RFC 8878 keeps lower ids for registration): a frame
then names its dictionary in 2 octets instead of 4 (+0.004x on 1-4 KB documents).

Measured with `semdns bench codec` (5-fold, 1-4 KB held-out documents, six dev domains, mean
gain over zstd without dictionary at the same level): dictionary alone 1.432x with the old
weighting (df - 1, singletons 0.05) and in-sample tables, 1.444x with the current ones, 1.449x
with 2-octet ids; word table + dictionary 1.525x (seed 0; 10-fold seed 1: 1.528x against 1.448x;
5-fold seed 2: 1.525x against 1.446x; 3-fold seed 3: 1.507x against 1.436x). The word table wins
in every domain, most where prose dominates (legal +0.13x, science +0.14x, creative +0.06x)
and least on code (+0.004x). Those figures are with 25 one-octet codes (the controls); the
current table adds the 64 UTF-8 continuation octets as one-octet codes (89) and gives them to
the most frequent words (not by occurrences x length): 1.540x (seed 0), 1.543x (10-fold seed 1),
1.519x (3-fold seed 3); the extra codes alone, still ranked by occurrences x length, gave 1.540x,
1.540x, 1.514x; trading the two-octet leads 0xC0/0xC1 for two more one-octet codes then gave
1.513x (seed 3, against 1.514x).

Tried without gain (within +-0.005) on the dictionary: d-mers of 6 or 10 octets, segments of 128
or 512, sqrt/log/square of the frequency, samples cut to 1-2 KB for the statistics, statistics
at levels 3/9/22, using the whole 64 KiB (no header reserve). Mixing in other domains' documents
("parent" English) costs 0.1x. Even the whole training corpus as an unbounded dictionary with
cross-fitted tables reaches only ~1.49x, so content selection has little left to give.
On the word table (earlier prototypes, 5-fold seed 0): words without their leading space
(about 1.48x), only the twelve non-UTF-8 lead octets without one-octet control codes (about
1.506x), the table stored uncompressed (-0.01x), words of two octets (-0.005x), ranking by
document frequency (+0.001x, noise), 2048 words instead of the whole code space (same).

The figures above are at zstd level 19. Contexts are now compressed at level 9
(`codec.compress.DEFAULT_LEVEL`, for speed) and the entropy tables measured there: 1.523x (seed 0)
against 1.540x at 19; libraries of 128 KiB gave 1.541x at level 9 (semcodec2).

`semcodec3` (issue 17; 5-fold seed 0, level 9, gains over plain zstd with its standard frame, all
measured in one harness): 1.523x before. The trimmed frame (`codec.frame`: no magic, checksum nor
content size) +0.021x (seeds 1 and 2 alike); 128 KiB instead of 64 KiB (the readers' default bound)
+0.019x, now the default: finance, legal and medical then hold their whole training corpus and
leave room. Fill (`fill`): that room takes content chosen from the other domains' documents,
farthest from the end (finance 1.466 -> 1.535, legal 1.766 -> 1.804, medical 1.834 -> 1.885;
+0.027x; any single other domain gives most of it, so it is general English, not shared documents),
and the codes a domain's table leaves go to the fill's words (+0.015x on those three, +0.008 code,
+0.002 creative): ~1.60x in all, see README. Payload anatomy at 128 KiB (1-4 KB, per document): ~120
sequences at ~21 bits (offsets into the dictionary are most of it) weigh more than the ~200-500
literals at ~7 bits; the frame and block headers 7 octets.

Tried for semcodec3 without gain: zstd levels 10-19 (+0.001 to +0.017x at 10-19, compression 6-18
MB/s here, below the 20 MB/s target); at level 9 strategy btultra with minMatch 4 and searchLog 2
(+0.010x, half the speed), btlazy2 (+0.004x, 0.6x the speed), the hash-chain match finder instead
of the row one (+0.005x, 0.75x the speed), minMatch 6 (-0.13x), searchLog 6 (+0.001x); parameters
other than a level cannot be set through `zstandard` on a precomputed dictionary without losing
~4.5% (its explicit-parameters path), so a tuned level would need libzstd directly. Two-word phrases
as table entries (500 of them: -0.007x: they break dictionary matches), digits and underscores in
words (+0.0005x), two-octet codes lead-major or with a permuted low octet (-0.005x, -0.0006x),
words in one training document only (-0.09x), in three (+0.001x), STATS_FOLDS 3 or 6, SEGMENT 128,
DMER 6 (within +-0.003x).

Training is deterministic: the same corpus gives the same bytes, sha256 and dictionary id.
"""
from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Sequence

import numpy as np

from codec.compress import DEFAULT_LEVEL
from codec.errors import TrainingError
from codec.library import PatternLibrary
from codec.wordtable import CAPACITY, WordTable, learn_table
from codec.zdict import finalize_dictionary, with_content

MAX_SIZE = 128 * 1024  # a reader's default bound (codec.library.LibraryLimits)
DEFAULT_SIZE = MAX_SIZE
MIN_CORPUS = 8
DMER = 8
SEGMENT = 256
STRIDE = 32
HEADER_RESERVE = 2048  # room for the magic, id and entropy tables libzstd prepends
STATS_FOLDS = 4  # every 4th document is held out to measure the entropy statistics
PRIVATE_IDS = (32768, 65536)  # RFC 8878: ids below 32768 are for registration; below 65536 take 2 octets
_FNV_PRIME = np.uint64(1099511628211)


def train_library(
    documents: Sequence[bytes],
    size: int = DEFAULT_SIZE,
    level: int = DEFAULT_LEVEL,
    progress: Callable[[int], object] | None = None,
    words: bool = True,
    fill: Sequence[bytes] = (),
) -> PatternLibrary:
    """Train a library of at most `size` octets from `documents`.

    With `words` (the default) a `semcodec3` library: a word table learnt from the documents,
    then a dictionary trained on the documents as the table encodes them, in the octets the
    table leaves; without, or when no word qualifies, a `semcodec1` dictionary alone.
    `fill`: other documents (other domains': general text) whose content fills the room the
    domain's own content leaves in the dictionary, farthest from its end, and whose words take
    the codes the domain's words leave; they never displace the domain's content nor words.
    `progress(n)` is told of every n octets of dictionary content chosen.
    """
    samples = [doc for doc in documents if doc]
    if len(samples) < MIN_CORPUS:
        raise TrainingError(f"need at least {MIN_CORPUS} non-empty documents, got {len(samples)}")
    if not 4096 <= size <= MAX_SIZE:
        raise TrainingError(f"library size {size} outside 4096..{MAX_SIZE} octets")
    table = learn_table(samples) if words else None
    if table is not None and fill:
        table = _with_fill_words(table, fill)
    if table is None or not table.words:
        return PatternLibrary.from_dictionary(train_dictionary(samples, size, level, progress, fill))
    stored = len(table.to_bytes())
    if size - stored < 4096:
        raise TrainingError(f"the word table takes {stored} of the {size} octets: no room for a dictionary")
    encoded = [table.encode(doc) for doc in samples]
    filler = [table.encode(doc) for doc in fill if doc]
    return PatternLibrary.with_table(table, train_dictionary(encoded, size - stored, level, progress, filler))


def _with_fill_words(table: WordTable, fill: Sequence[bytes]) -> WordTable:
    """`table` with the codes it leaves given to the fill's words (`learn_table` of the fill), after its own."""
    own = set(table.words)
    extra = [word for word in learn_table(fill).words if word not in own]
    return WordTable(table.words + tuple(extra[: CAPACITY - len(table.words)]))


def train_dictionary(
    samples: Sequence[bytes],
    size: int,
    level: int,
    progress: Callable[[int], object] | None = None,
    fill: Sequence[bytes] = (),
) -> bytes:
    """A full zstd dictionary of at most `size` octets: chosen content (then `fill`'s), cross-fitted tables."""
    content = select_content(samples, size - HEADER_RESERVE, progress)
    if len(content) < 1024:
        raise TrainingError(f"the {len(samples)} documents share too little to train on ({len(content)} octets)")
    content = _filled(content, fill, size - HEADER_RESERVE, progress)
    full = finalize_dictionary(content, samples, size, level, dictionary_id(content))
    return with_content(full, _held_out_tables(samples, size, level, fill) or full)


def _filled(
    content: bytes, fill: Sequence[bytes], budget: int, progress: Callable[[int], object] | None = None
) -> bytes:
    """`content` after what `fill`'s documents give to the room it leaves in `budget`."""
    room = budget - len(content)
    return select_content(fill, room, progress) + content if fill and room > 0 else content


def dictionary_id(content: bytes) -> int:
    """The id of a dictionary with this content: from its sha256, in the 2-octet private range."""
    low, high = PRIVATE_IDS
    return low + int.from_bytes(hashlib.sha256(content).digest()[:4], "big") % (high - low)


def _held_out_tables(samples: Sequence[bytes], size: int, level: int, fill: Sequence[bytes] = ()) -> bytes | None:
    """A dictionary whose entropy tables were measured on documents its content was not chosen from.

    None when the documents left after holding some out share too little to choose content from.
    """
    held = [doc for index, doc in enumerate(samples) if index % STATS_FOLDS == 0]
    rest = [doc for index, doc in enumerate(samples) if index % STATS_FOLDS != 0]
    content = select_content(rest, size - HEADER_RESERVE)
    if len(content) < 1024:
        return None
    return finalize_dictionary(_filled(content, fill, size - HEADER_RESERVE), held, size, level)


def _dmer_ids(documents: Sequence[bytes]) -> list[np.ndarray]:
    """Per document, a small integer id for the d-mer starting at each position."""
    hashes = []
    for doc in documents:
        octets = np.frombuffer(doc, dtype=np.uint8)
        if len(octets) < DMER:
            hashes.append(np.zeros(0, dtype=np.uint64))
            continue
        windows = np.lib.stride_tricks.sliding_window_view(octets, DMER).astype(np.uint64)
        value = np.zeros(len(windows), dtype=np.uint64)
        for column in range(DMER):
            value = (value * _FNV_PRIME) ^ windows[:, column]
        hashes.append(value)
    _, inverse = np.unique(np.concatenate(hashes), return_inverse=True)
    bounds = np.cumsum([0] + [len(h) for h in hashes])
    return [inverse[bounds[i] : bounds[i + 1]] for i in range(len(hashes))]


def _starts(length: int, span: int) -> list[int]:
    """Segment starts every STRIDE positions, plus the last full segment (documents' tails count)."""
    starts = list(range(0, max(1, length - span + 1), STRIDE))
    if length > span and starts[-1] != length - span:
        starts.append(length - span)
    return starts


def select_content(
    documents: Sequence[bytes], budget: int, progress: Callable[[int], object] | None = None
) -> bytes:
    """Up to about `budget` octets of corpus segments, most valuable last (see module doc)."""
    ids = _dmer_ids(documents)
    vocabulary = int(max((a.max() for a in ids if len(a)), default=-1)) + 1
    weight = np.zeros(vocabulary)  # document frequency of each d-mer, 0 once taken
    for doc_ids in ids:
        weight[np.unique(doc_ids)] += 1
    span = SEGMENT - DMER + 1
    candidates = [
        (doc, start, np.unique(doc_ids[start : start + span]))
        for doc, doc_ids in enumerate(ids)
        for start in _starts(len(doc_ids), span)
    ]
    heap = [(-float(weight[u].sum()), index) for index, (_, _, u) in enumerate(candidates)]
    heapq.heapify(heap)
    chosen: list[bytes] = []
    total = 0
    while heap and total < budget:
        _, index = heapq.heappop(heap)
        doc, start, unique = candidates[index]
        score = float(weight[unique].sum())
        if heap and score < -heap[0][0] - 1e-9:  # stale: its d-mers were taken meanwhile
            if score > 0:
                heapq.heappush(heap, (-score, index))
            continue
        if score <= 0:
            break
        useful = np.nonzero(weight[ids[doc][start : start + span]])[0]
        weight[unique] = 0.0
        piece = documents[doc][start + int(useful[0]) : start + int(useful[-1]) + DMER]
        chosen.append(piece)
        total += len(piece)
        if progress is not None:
            progress(len(piece))
    return b"".join(reversed(chosen))[-budget:]
