"""The ONNX export of all-MiniLM-L6-v2 (whole, and its first `ROUTING_LAYERS` layers) agrees with
sentence-transformers; the batch API."""
from __future__ import annotations

import os

import numpy as np
import pytest

from routing.embedder import (
    DIMENSION,
    ROUTING_LAYERS,
    Embedder,
    _reference_vectors,
    ensure_onnx,
    min_cosine,
    model_dir,
    onnx_path,
    weights_digest,
)

SENTENCES = [
    "Can my neighbour's tree roots damaging my driveway be their liability?",
    "how many mg of melatonin is too much for a teenager",
    "Segmentation fault (core dumped) after calling free() twice",
    "A satellite orbits at 400 km; what is its period?",
    "Write a villanelle about a lighthouse keeper's last night.",
    "Should I move my emergency fund into treasury bills?",
    "x",
]


@pytest.mark.model
def test_onnx_matches_sentence_transformers(encoder) -> None:
    """The routing encoder is sentence-transformers' model cut to its first `ROUTING_LAYERS`
    layers; the whole graph (the ONNX engine's, the token table's) is the model as published."""
    reference = _reference_vectors(model_dir(), SENTENCES, ROUTING_LAYERS)
    got = encoder.embed(SENTENCES)
    assert got.shape == (len(SENTENCES), DIMENSION)
    assert min_cosine(got, reference) > 0.999
    whole = Embedder(ensure_onnx("fp32"), model_dir() / "tokenizer.json").embed(SENTENCES)
    assert min_cosine(whole, _reference_vectors(model_dir(), SENTENCES)) > 0.999
    assert min_cosine(got, whole) < 0.99  # the cut is real


@pytest.mark.model
def test_int8_variant_stays_close(encoder) -> None:
    int8 = Embedder(ensure_onnx("int8", layers=ROUTING_LAYERS), model_dir() / "tokenizer.json")
    assert onnx_path(variant="int8", layers=ROUTING_LAYERS).is_file()
    assert min_cosine(int8.embed(SENTENCES), encoder.embed(SENTENCES)) > 0.95


def test_batch_is_unit_length_and_padding_free(encoder) -> None:
    batch = encoder.embed(SENTENCES)
    assert batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = encoder.embed([SENTENCES[-1]])[0]
    assert float(alone @ batch[-1]) > 0.9999  # padding in the batch changes nothing
    assert encoder.embed([]).shape == (0, DIMENSION)


def test_cache_file_is_keyed_by_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SEMDNS_CACHE", str(tmp_path))
    path = onnx_path()
    assert path.parent == tmp_path
    digest = weights_digest(model_dir())
    assert path.name.startswith("minilm-") and path.stem == f"minilm-{digest}-fused"
    assert onnx_path(variant="int8", layers=5).stem == f"minilm-{digest}-fused-L5-int8"
    assert len(weights_digest(model_dir())) == 16


def test_runs_group_texts_of_similar_length() -> None:
    from routing.embedder import plan_runs

    assert plan_runs([]) == []
    assert plan_runs([10]) == [[0]]
    assert plan_runs([12, 10, 11], overhead=16) == [[1, 2, 0]]  # padding costs less than a run
    assert plan_runs([16, 91], overhead=16) == [[0], [1]]  # 91 padded twice costs more than a run
    lengths = [5, 90, 7, 88, 6, 92]
    runs = plan_runs(lengths, overhead=16)
    assert sorted(i for run in runs for i in run) == list(range(6))
    assert [sorted(lengths[i] for i in run) for run in runs] == [[5, 6, 7], [88, 90, 92]]


def test_mixed_lengths_embed_as_each_alone(encoder) -> None:
    texts = ["x", SENTENCES[0] * 4, "short one", SENTENCES[2] * 3]
    batch = encoder.embed(texts)
    alone = np.stack([encoder.embed([text])[0] for text in texts])
    assert min_cosine(batch, alone) > 0.9999


def test_read_pieces_keeps_the_rarest_in_their_order() -> None:
    """A text over the budget keeps its highest ids (the least frequent pieces) in their order;
    [UNK] and the other ids below the first word piece go first; of equal ids the later stay;
    nothing past the window counts; a text within the budget is read whole."""
    from routing.embedder import WINDOW, read_pieces

    assert read_pieces([2000, 1996, 3000], 3) == [2000, 1996, 3000]
    assert read_pieces([5, 2000, 1996, 100, 3000, 1996, 7], 3) == [2000, 3000, 1996]
    assert read_pieces([100, 1012, 1012], 2) == [1012, 1012]
    assert read_pieces([1996] * 6 + [9999], 2) == [1996, 9999]
    assert read_pieces([1996] * (WINDOW * 2) + [9999], 2) == [1996, 1996]


def test_a_long_text_is_read_without_its_frequent_pieces(encoder) -> None:
    """Over `MAX_TOKENS` word pieces, the encoder reads a text's rarest: a long question embeds
    as the same question without its function words, and a difference in a rare word past the
    first `MAX_TOKENS` pieces still shows; past the window nothing counts."""
    from routing.embedder import MAX_TOKENS, WINDOW

    assert MAX_TOKENS == 40
    words = ("tenant lease landlord deposit heater mould inspection notice court repairs eviction rent "
             "arrears contract clause breach damages boiler flat tenant lease landlord deposit inspection "
             "notice court repairs rent contract clause breach damages boiler").split()
    content = " ".join(words)
    wordy = " ".join(f"the {word} of" for word in words)  # the same pieces and 2 x 33 frequent ones
    assert len(encoder.pieces([content])[0]) == MAX_TOKENS  # every rare piece of `wordy` is read
    assert encoder.pieces([wordy]) == encoder.pieces([content])
    a, b = encoder.embed([content, wordy])
    assert float(a @ b) > 0.9999
    c, d = encoder.embed([wordy + " about my dog", wordy + " because of a broken boiler"])
    assert float(c @ d) < 0.999
    far = " ".join(["tenant lease"] * (WINDOW * (MAX_TOKENS - 2)))
    e, f = encoder.embed([far + " about my dog", far + " because of a broken boiler"])
    assert float(e @ f) > 0.9999


def test_max_tokens_cuts_where_it_is_told(encoder) -> None:
    """`max_tokens` (`semdns serve --encoder-max-tokens`) moves the budget: at 16 word pieces, two
    texts that differ only after the first 4 x 14 pieces (the window) embed alike; the default
    encoder reads on and tells them apart. Out of range, the encoder says so."""
    from routing.embedder import EmbedderError

    short = Embedder(encoder.path, model_dir() / "tokenizer.json", max_tokens=16)
    assert short.max_tokens == 16 and encoder.max_tokens == 40
    head = " ".join(["tenant lease"] * 30)  # 60 word pieces
    texts = [head + " about my dog", head + " because of a broken boiler"]
    a, b = short.embed(texts)
    assert float(a @ b) > 0.9999
    c, d = encoder.embed(texts)
    assert float(c @ d) < 0.99
    for bad in (7, 257):
        with pytest.raises(EmbedderError, match=f"8 to 256 tokens of a text, not {bad}"):
            Embedder(encoder.path, model_dir() / "tokenizer.json", max_tokens=bad)


@pytest.mark.model
def test_the_export_is_fused(encoder) -> None:
    """Each of the encoder's five layers runs as one attention node (`fuse_transformer`), in the fp32
    graph and in its int8 variant: unfused, a layer is ~40 small nodes, each a barrier for a
    second thread, and a long question took ~1.6x as long on two threads."""
    import collections

    import onnx

    for variant, attention in (("fp32", "Attention"), ("int8", "QAttention")):
        graph = onnx.load(str(ensure_onnx(variant, layers=ROUTING_LAYERS)))
        ops = collections.Counter(node.op_type for node in graph.graph.node)
        assert ops[attention] == 5, (variant, ops)
        assert ops["SkipLayerNormalization"] == 10 and ops["Softmax"] == 0, (variant, ops)
        name = onnx_path(variant=variant, layers=ROUTING_LAYERS).name
        assert name.endswith(("-fused-L5.onnx", "-fused-L5-int8.onnx"))


@pytest.mark.model
def test_a_session_spins_only_while_it_runs() -> None:
    """onnxruntime's pool threads spin while a run is under way and stop when it returns: left
    to spin, the second thread held a core between questions (~100 % of one)."""
    import time

    from routing.embedder import open_session, unpadded_inputs

    session = open_session(ensure_onnx("int8", layers=ROUTING_LAYERS), threads=2)
    options = session.get_session_options()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    feeds = unpadded_inputs(np.full((1, 48), 2000, dtype=np.int64))
    for _ in range(3):
        session.run(None, feeds)
    start = time.process_time()
    time.sleep(0.2)
    assert time.process_time() - start < 0.05  # spinning: ~0.2 s of a core here


def _thread_cpus() -> dict[int, str]:
    """Each thread of this process with the CPUs it may run on (`Cpus_allowed_list`)."""
    import glob

    found = {}
    for status in glob.glob("/proc/self/task/*/status"):
        fields = dict(line.split(":\t", 1) for line in open(status).read().splitlines() if ":\t" in line)
        found[int(status.split("/")[4])] = fields["Cpus_allowed_list"].strip()
    return found


@pytest.mark.model
def test_each_thread_of_a_lone_run_has_a_cpu_of_its_own() -> None:
    """Where the process may use two CPUs (as many as the lone run's threads), the lone session's
    pool thread stays on the second and the thread that calls `embed` runs a lone text on the
    first, then gets its CPUs back; with another count of CPUs, nothing is pinned."""
    from common.cores import usable_cpus

    cpus = usable_cpus()
    before = _thread_cpus()
    embedder = Embedder(ensure_onnx("int8", layers=ROUTING_LAYERS), model_dir() / "tokenizer.json", threads=1,
                        lone_threads=2)
    pinned_during: list[set[int]] = []
    lone = embedder._lone

    class Spy:
        def run(self, *args):
            pinned_during.append(os.sched_getaffinity(0))
            return lone.run(*args)

    embedder._lone = Spy()  # type: ignore[assignment]
    caller = os.sched_getaffinity(0)
    embedder.embed([" ".join(["the tenant may end the lease early"] * 6)])
    assert len(pinned_during) == 1 and os.sched_getaffinity(0) == caller
    new_threads = {tid: allowed for tid, allowed in _thread_cpus().items() if tid not in before}
    if len(cpus) == 2:
        assert embedder.lone_cpus == cpus and pinned_during == [{cpus[0]}]
        assert str(cpus[1]) in new_threads.values()  # the pool thread
    else:
        assert embedder.lone_cpus == () and pinned_during == [caller]


@pytest.mark.model
def test_a_long_text_alone_runs_on_more_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A single text of `LONE_MIN_TOKENS` or more, after the encoder had been idle `LONE_IDLE`,
    runs on the lone session; a shorter one, every batch, and a text right after another run, on
    the other; both give the same vectors."""
    import routing.embedder
    from routing.embedder import LONE_MIN_TOKENS

    embedder = Embedder(ensure_onnx("int8", layers=ROUTING_LAYERS), model_dir() / "tokenizer.json", threads=1,
                        lone_threads=2)
    used: list[str] = []

    class Spy:
        def __init__(self, name: str, session) -> None:
            self.name, self.session = name, session

        def run(self, *args):
            used.append(self.name)
            return self.session.run(*args)

    main, lone = embedder._session, embedder._lone
    assert lone is not main and lone.get_session_options().intra_op_num_threads == 2
    assert main.get_session_options().intra_op_num_threads == 1
    embedder._session, embedder._lone = Spy("main", main), Spy("lone", lone)  # type: ignore[assignment]
    long_text, short_text = SENTENCES[0] * 3, SENTENCES[1]
    assert len(embedder.pieces([long_text])[0]) >= LONE_MIN_TOKENS
    assert len(embedder.pieces([short_text])[0]) < LONE_MIN_TOKENS
    alone = embedder.embed([long_text])
    embedder.embed([short_text])
    batch = embedder.embed([long_text, long_text + " again"])
    monkeypatch.setattr(routing.embedder, "LONE_IDLE", 3600.0)
    embedder.embed([long_text])  # the encoder ran less than LONE_IDLE ago (as a flood's runs do)
    monkeypatch.setattr(routing.embedder, "LONE_IDLE", 0.0)
    embedder.embed([long_text])
    assert used == ["lone", "main", "main", "main", "lone"]
    assert float(alone[0] @ batch[0]) > 0.99  # int8: a batch's quantisation scales are its own
    one = Embedder(ensure_onnx("int8", layers=ROUTING_LAYERS), model_dir() / "tokenizer.json", threads=2,
                   lone_threads=2)
    assert one._lone is one._session  # no second session where it would not have more threads
