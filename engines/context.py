"""Decoding a request's compressed context (the `semdns_context` field) into prompt text.

The field is `{"dict_id": N, "encoding": "zstd+base64", "data": "<base64>"}`: the base64 of one
zstd frame made by `codec.compress.compress` with the domain's pattern library whose zstd
dictionary id is N (0: no dictionary). The frame names its dictionary too; the two must agree.
The engine learns its libraries over DNS (`engines.library_source`); `update` swaps them in as one
reference. Every failure is a `ContextError` (HTTP 400) naming the problem: unknown dictionary,
bad base64, corrupt frame, not UTF-8.
"""
from __future__ import annotations

import base64
import binascii
from typing import Mapping

from codec.compress import compress, decompress, payload_dict_id
from codec.errors import CorruptPayload, UnknownDictionary
from codec.library import PatternLibrary
from engines.errors import ContextError
from engines.schema import CONTEXT_FIELD, CompressedContext

ENCODING = "zstd+base64"
NO_DICTIONARY = 0
MAX_CONTEXT_BYTES = 1 << 20


class ContextDecoder:
    """Turns `CompressedContext` into text with the current libraries (zstd dict id -> library)."""

    def __init__(self, libraries: Mapping[int, PatternLibrary] | None = None) -> None:
        self._libraries: Mapping[int, PatternLibrary] = dict(libraries or {})

    @property
    def dict_ids(self) -> tuple[int, ...]:
        return tuple(sorted(self._libraries))

    def update(self, libraries: Mapping[int, PatternLibrary]) -> None:
        self._libraries = dict(libraries)

    def decode(self, context: CompressedContext) -> str:
        libraries = self._libraries
        if context.encoding != ENCODING:
            raise ContextError(
                f"{CONTEXT_FIELD}.encoding {context.encoding!r} is not supported (use {ENCODING!r})",
                param=f"{CONTEXT_FIELD}.encoding",
            )
        if context.dict_id != NO_DICTIONARY and context.dict_id not in libraries:
            raise _unknown(context.dict_id, libraries)
        try:
            raw = base64.b64decode(context.data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ContextError(
                f"{CONTEXT_FIELD}.data is not valid base64: {exc}", param=f"{CONTEXT_FIELD}.data"
            ) from exc
        try:
            framed_id = payload_dict_id(raw)
            if framed_id != context.dict_id:
                raise ContextError(
                    f"{CONTEXT_FIELD}: dict_id is {context.dict_id} but the zstd frame needs dictionary {framed_id}",
                    param=f"{CONTEXT_FIELD}.dict_id", code="corrupt_context",
                )
            text = decompress(raw, libraries, max_output=MAX_CONTEXT_BYTES)
        except UnknownDictionary:
            raise _unknown(context.dict_id, libraries) from None
        except CorruptPayload as exc:
            raise ContextError(f"{CONTEXT_FIELD}.data: {exc}", param=f"{CONTEXT_FIELD}.data",
                               code="corrupt_context") from exc
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContextError(f"{CONTEXT_FIELD}: decompressed context is not UTF-8", param=f"{CONTEXT_FIELD}.data",
                               code="corrupt_context") from exc


def encode_context(text: str, library: PatternLibrary | None = None) -> CompressedContext:
    """The client side: compress `text` (with `library` when given) into a `CompressedContext`."""
    data = base64.b64encode(compress(text.encode("utf-8"), library)).decode("ascii")
    return CompressedContext(dict_id=library.dict_id if library else NO_DICTIONARY, encoding=ENCODING, data=data)


def _unknown(dict_id: int, libraries: Mapping[int, PatternLibrary]) -> ContextError:
    known = ", ".join(str(i) for i in sorted(libraries)) or "none"
    return ContextError(
        f"{CONTEXT_FIELD}.dict_id {dict_id} is not a pattern library of this engine (known: {known})",
        param=f"{CONTEXT_FIELD}.dict_id", code="unknown_dictionary",
    )
