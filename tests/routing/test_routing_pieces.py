"""Word pieces (`routing.pieces`): one tokenizer a process for both encoders, a question read once."""
from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from routing.embedder import Embedder, model_dir
from routing.pieces import MAX_TEXT_CHARS, WordPieces, word_pieces
from routing.tokens import TokenEncoder

QUESTION = "My landlord kept the whole deposit after I moved out: can I take him to small claims court?"


def counted(pieces: WordPieces, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The texts each tokenizer call of `pieces` reads, from now on."""
    calls: list[list[str]] = []
    encode = pieces._encode

    def spy(texts: list[str]) -> list[list[int]]:
        calls.append(list(texts))
        return encode(texts)

    monkeypatch.setattr(pieces, "_encode", spy)
    return calls


def test_both_encoders_read_a_question_through_one_tokenizing(encoder: Embedder, tokens: TokenEncoder,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    shared = word_pieces(model_dir() / "tokenizer.json")
    calls = counted(shared, monkeypatch)
    question = f"{QUESTION} ({id(calls)})"  # a text no other test has read
    tokens.vector(question)  # a node's fast head
    encoder.embed([question])  # the fast head was not sure: MiniLM reads the same question
    assert calls == [[question]]
    assert encoder.pieces([question]) == encoder.pieces([question, "another one"])[:1]
    assert calls[1:] == [["another one"]]  # a batch tokenises only what is not remembered


def test_the_pieces_are_the_tokenizers_of_the_texts_first_characters() -> None:
    path = model_dir() / "tokenizer.json"
    reference = Tokenizer.from_file(str(path))
    reference.no_padding()  # the file pads and cuts to 128 pieces
    reference.no_truncation()
    pieces = WordPieces(path, memo=2)
    long = "contract " * 1000
    texts = [QUESTION, long, "", "日本語のテキスト"]
    want = [reference.encode(text[:MAX_TEXT_CHARS], add_special_tokens=False).ids for text in texts]
    assert [pieces.ids(text) for text in texts] == want
    assert pieces.batch(texts) == want
    assert len(pieces.ids(long)) < len(reference.encode(long, add_special_tokens=False).ids)
    assert len(pieces._memo) == 2  # the last two single texts, no more
