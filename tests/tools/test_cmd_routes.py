"""`semdns routes train` and `semdns routes check` on a small zone, with a bag-of-words stand-in for
the encoder (no model): train writes a checked head file (a head and a fast head), includes it and
bumps the serial; check
reports accuracy, confusions, the coverage curve, overlaps and the questions that moved."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.bagofwords import BagOfWords

import tools.cmd_routes
from tools.cli import main
from zones.check import check_zone
from zones.loader import load_zone

WORDS = {"alpha": ["river", "boat", "water", "fish", "bridge", "rain"],
         "beta": ["engine", "wheel", "road", "car", "fuel", "tyre"]}
ZONE = (
    "$ORIGIN example.test.\n$TTL 300\n"
    "@ IN SOA ns1 hostmaster 2026112301 3600 900 1209600 300\n  IN NS ns1\nns1 IN A 127.0.0.1\n"
    "alpha IN A 127.0.0.2\nbeta IN A 127.0.0.3\n"
    '_route IN TXT "v=semroute1" "th.head=0.5"\n'
    'alpha._route IN TXT "v=semroute1" "desc=water things" "kw=kayak" "ex=a canoe on a calm lake"\n'
    'beta._route IN TXT "v=semroute1" "desc=car things" "kw=gearbox" "ex=the gearbox grinds in second"\n'
)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setattr(tools.cmd_routes, "load_embedder", lambda variant: BagOfWords())
    monkeypatch.setattr(tools.cmd_routes, "load_token_encoder", BagOfWords)  # the fast heads' encoder
    monkeypatch.setenv("SEMDNS_CACHE", str(tmp_path / "cache"))  # vectors of the stand-in stay here
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "example.test.zone").write_text(ZONE)
    rng = np.random.default_rng(0)
    lines = [json.dumps({"text": " ".join(rng.choice(words, size=4)), "domain": domain, "subdomain": None})
             for domain, words in WORDS.items() for _ in range(30)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    return zones, corpus


def test_train_then_check(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zones, corpus = setup
    before = tmp_path / "before"
    shutil.copytree(zones, before)
    assert main(["routes", "train", str(corpus), "--zones", str(zones), "--apex", "example.test.",
                 "--min-rows", "5", "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "<- chosen" in out and "coverage-accuracy" in out
    zonefile = zones / "example.test.zone"
    text = zonefile.read_text()
    assert "$INCLUDE heads/example.test.heads example.test." in text and "2026112301" not in text
    heads = (zones / "heads" / "example.test.heads").read_text()
    assert '"v=semhead1"' in heads and '"classes=alpha,beta"' in heads
    # the same stand-in under both heads: the fast head is as accurate everywhere, so it decides from 0.5 up
    assert "fast head" in out and "decides at p >= 0.5" in out
    assert "_fast._head._route.example.test." in heads and '"decide=0.5"' in heads
    assert [p for p in check_zone(load_zone(zonefile)) if p.is_error] == []

    assert main(["routes", "check", str(corpus), "--zones", str(zones), "--apex", "example.test.",
                 "--against", str(before)]) == 0
    out = capsys.readouterr().out
    assert "== example.test.: 60 questions, accuracy" in out
    assert "stages: fast " in out  # routed as served: the fast head decides what it is sure of
    assert "confusion" in out and "coverage-accuracy of the head" in out and "overlap" in out
    assert "== moved since" in out and "top-level accuracy" in out


def test_train_needs_a_corpus(setup: tuple[Path, Path]) -> None:
    zones, _ = setup
    with pytest.raises(SystemExit):
        main(["routes", "train", "--zones", str(zones)])


@pytest.mark.model
def test_cached_vectors_are_kept_per_reading(encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`embed_all`'s cache is keyed by the encoder's graph and how it reads a text: an encoder
    told to read fewer word pieces, or running all six layers, does not get another's vectors
    back for the same corpus."""
    from routing.embedder import Embedder, ensure_onnx, model_dir
    from tools.routes_data import embed_all

    whole = Embedder(ensure_onnx("fp32"), model_dir() / "tokenizer.json")  # before SEMDNS_CACHE moves
    monkeypatch.setenv("SEMDNS_CACHE", str(tmp_path))
    texts = [" ".join(["tenant lease"] * 30) + " about my dog", "is a verbal contract binding?"]
    narrow = Embedder(encoder.path, model_dir() / "tokenizer.json", max_tokens=16)
    wide_vectors = embed_all(encoder, texts, cache_key="fp32")
    narrow_vectors = embed_all(narrow, texts, cache_key="fp32")
    whole_vectors = embed_all(whole, texts, cache_key="fp32")
    assert len(list(tmp_path.glob("vectors-*.npy"))) == 3
    assert float(whole_vectors[1] @ wide_vectors[1]) < 0.99
    assert float(wide_vectors[0] @ narrow_vectors[0]) < 0.99
    assert np.allclose(narrow_vectors, narrow.embed(texts), atol=1e-5)
    assert np.array_equal(embed_all(narrow, texts, cache_key="fp32"), narrow_vectors)  # read back
