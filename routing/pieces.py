"""MiniLM's word pieces of a text, shared by the encoders that read it.

Routing reads a question twice: the token encoder (`routing.tokens`, a node's fast head) first,
then, when the fast head is not sure, MiniLM (`routing.embedder`) on its thread. Both read the
same pieces of the same tokenizer, so one `WordPieces` a tokenizer file serves both in a process
(`word_pieces`), and it remembers the pieces of the last `MEMO` single texts it read: a question
the fast head could not decide is tokenised once, not again on the model's thread just before
its run (~0.2 ms for a long question, on the path of every cold MiniLM route).

The pieces are those of the text's first `MAX_TEXT_CHARS` characters, without [CLS] and [SEP];
each encoder cuts them to what it reads. Safe to share between the event loop and the encoder
thread (the memo is locked; the tokenizer is never reconfigured after it is loaded).
"""
from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Sequence

# Characters of a text that routing reads: the encoders and the keyword matcher. A question may
# hold 65,000 octets in the EDNS form (a ~120-octet datagram when it repeats itself): read whole, it
# cost the event loop seconds while overlapping keyword matches were checked pairwise, and still
# ~25 ms of tokenising and ~15 ms of keyword matching a level, for word pieces no encoder reads.
# The routing corpus's longest question has 3,200.
MAX_TEXT_CHARS = 4096
MEMO = 32  # single texts whose pieces are remembered


class WordPieces:
    """`ids(text)`: the word-piece ids of one text (remembered); `batch(texts)`: of many."""

    def __init__(self, tokenizer_file: Path, memo: int = MEMO) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._memo: dict[str, list[int]] = {}
        self._size = memo
        self._lock = threading.Lock()

    def vocab_size(self) -> int:
        return int(self._tokenizer.get_vocab_size())

    def token_to_id(self, piece: str) -> int | None:
        return self._tokenizer.token_to_id(piece)

    def ids(self, text: str) -> list[int]:
        """The pieces of `text` (do not modify the list: it is the memo's)."""
        text = text[:MAX_TEXT_CHARS]
        with self._lock:
            found = self._memo.get(text)
        if found is not None:
            return found
        (ids,) = self._encode([text])
        with self._lock:
            if len(self._memo) >= self._size:
                del self._memo[next(iter(self._memo))]  # the oldest
            self._memo[text] = ids
        return ids

    def batch(self, texts: Sequence[str]) -> list[list[int]]:
        """The pieces of each text: remembered ones as they are, the others tokenised together
        (not remembered: a batch is the profiles' exemplars or a flood's questions)."""
        if len(texts) == 1:
            return [self.ids(texts[0])]
        cut = [text[:MAX_TEXT_CHARS] for text in texts]
        with self._lock:
            found = [self._memo.get(text) for text in cut]
        fresh = iter(self._encode([text for text, ids in zip(cut, found) if ids is None]))
        return [ids if ids is not None else next(fresh) for ids in found]

    def _encode(self, texts: list[str]) -> list[list[int]]:
        if len(texts) == 1:  # `encode_batch` hands even one text to its thread pool
            return [self._tokenizer.encode(texts[0], add_special_tokens=False).ids]
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts, add_special_tokens=False)]


@functools.lru_cache(maxsize=None)
def word_pieces(tokenizer_file: Path) -> WordPieces:
    """The process's `WordPieces` of `tokenizer_file` (one per file: its encoders share it)."""
    return WordPieces(tokenizer_file)
