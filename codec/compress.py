"""Context compression with a domain's pattern library.

The payload is one zstd frame (RFC 8878) that names its dictionary id (0 = none), so a receiver
knows which library it needs. A standard frame (no library, `semcodec1` and `semcodec2`) also
declares its content size and ends with an XXH64 checksum of it.

With a `semcodec2` or `semcodec3` library the frame's content is the text after the library's
word table (`codec.wordtable`): `compress` encodes before zstd, `decompress` decodes after, so the
frame covers the encoded text, and the payload still names its library by the dictionary id alone.
With a `semcodec3` library the frame is trimmed (`codec.frame`): no magic number, content size nor
checksum; `decompress` tells the two forms apart by their first octets and refuses a form other
than the one its library's version makes.

Speed: the (de)compression contexts are made once per library, level and thread (a
`zstandard` context must not be used by two threads at once) and reused; a payload is
decompressed in one call that also refuses a cut frame or octets after it.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import lru_cache

import zstandard

from codec import frame
from codec.errors import CorruptPayload, UnknownDictionary
from codec.library import TRIMMED, PatternLibrary

# zstd level of contexts, and the level the libraries' entropy tables are measured at (codec.train).
# Level 9 (lazy2), not 19 (btultra2): on 1-4 KB held-out documents with the domain library its
# payloads are 1-4% larger than level 19's, but it compresses 5-10x faster (19 runs at 2-8 MB/s
# here, below the 20 MB/s a client should spend on a context). `semdns bench codec --level N`.
DEFAULT_LEVEL = 9
MAX_OUTPUT = 16 * 1024 * 1024
FIRST_OUTPUT = 64 * 1024  # room a trimmed frame is decoded into first (`_decode_frame`): below glibc's mmap threshold


@lru_cache(maxsize=32)
def _compression_dict(library: PatternLibrary, level: int) -> zstandard.ZstdCompressionDict:
    cdict = zstandard.ZstdCompressionDict(library.dictionary, dict_type=zstandard.DICT_TYPE_FULLDICT)
    cdict.precompute_compress(level=level)
    return cdict


@lru_cache(maxsize=32)
def _decompression_dict(library: PatternLibrary) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(library.dictionary, dict_type=zstandard.DICT_TYPE_FULLDICT)


class _Contexts(threading.local):
    """This thread's compressors by (library, level) and decompressors by library (None: no dictionary)."""

    def __init__(self) -> None:
        self.compressors: dict[tuple[PatternLibrary | None, int], zstandard.ZstdCompressor] = {}
        self.decompressors: dict[PatternLibrary | None, zstandard.ZstdDecompressor] = {}


_CONTEXTS = _Contexts()
_CACHED = 16  # libraries a thread keeps contexts for; the oldest goes first


def _compressor(library: PatternLibrary | None, level: int) -> zstandard.ZstdCompressor:
    cache = _CONTEXTS.compressors
    compressor = cache.get((library, level))
    if compressor is None:
        cdict = None if library is None else _compression_dict(library, level)
        standard = not _trimmed(library)
        compressor = zstandard.ZstdCompressor(level=level, dict_data=cdict, write_checksum=standard,
                                              write_content_size=standard)
        if len(cache) >= _CACHED:
            del cache[next(iter(cache))]
        cache[library, level] = compressor
    return compressor


def _decompressor(library: PatternLibrary | None) -> zstandard.ZstdDecompressor:
    cache = _CONTEXTS.decompressors
    decompressor = cache.get(library)
    if decompressor is None:
        ddict = None if library is None else _decompression_dict(library)
        decompressor = zstandard.ZstdDecompressor(dict_data=ddict, format=_format(_trimmed(library)))
        if len(cache) >= _CACHED:
            del cache[next(iter(cache))]
        cache[library] = decompressor
    return decompressor


def compress(data: bytes, library: PatternLibrary | None, level: int = DEFAULT_LEVEL) -> bytes:
    """One zstd frame of `data`, with the library's dictionary (and word table) when given."""
    if library is not None and library.word_table is not None:
        data = library.word_table.encode(data)
    packed = _compressor(library, level).compress(data)
    return frame.trim(packed) if _trimmed(library) else packed


def _trimmed(library: PatternLibrary | None) -> bool:
    return library is not None and library.version == TRIMMED


def _format(trimmed: bool) -> int:
    return zstandard.FORMAT_ZSTD1_MAGICLESS if trimmed else zstandard.FORMAT_ZSTD1


def _header(payload: bytes) -> tuple[int, int | None]:
    """The dictionary id a payload names and the content size its frame declares (None: a trimmed
    frame, which is then also checked whole: `frame.check`). Raises CorruptPayload."""
    if frame.is_trimmed(payload):
        return frame.check(payload), None
    try:
        params = zstandard.get_frame_parameters(payload)
    except zstandard.ZstdError as exc:
        raise CorruptPayload(f"not a zstd frame: {exc}") from None
    return params.dict_id, params.content_size


def _decode_frame(decompressor: zstandard.ZstdDecompressor, payload: bytes, max_output: int, trimmed: bool) -> bytes:
    """The frame's content. A trimmed frame declares no size: it is decoded into FIRST_OUTPUT octets of
    room first, and again into `max_output` only when that fails (libzstd's buffer is allocated
    whole, and 16 MiB cost more than decoding a 1-4 KB payload: 40 against 300 MB/s; a first room of
    1 MiB, above glibc's mmap threshold, still cost half the speed: `semdns bench codec` decompressed
    held-out documents at 59-154 MB/s with it, 98-181 with 64 KiB)."""
    room = min(max_output, FIRST_OUTPUT) if trimmed else max_output
    while True:
        try:  # one frame, whole, nothing after it: a cut frame or trailing octets are errors here
            return decompressor.decompress(payload, max_output_size=room, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            if room == max_output:
                raise CorruptPayload(f"damaged zstd frame: {exc}") from None
        room = max_output


def payload_dict_id(payload: bytes) -> int:
    """The dictionary id a payload needs (0: none). Raises CorruptPayload."""
    return _header(payload)[0]


def decompress(
    payload: bytes, libraries_by_id: Mapping[int, PatternLibrary], max_output: int = MAX_OUTPUT
) -> bytes:
    """The original bytes of `payload` (at most `max_output` octets).

    Raises UnknownDictionary(id) or CorruptPayload.
    """
    dict_id, size = _header(payload)  # a trimmed frame is checked whole here: cut, trailing octets
    trimmed = size is None
    if size is not None:
        if size in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
            raise CorruptPayload("the zstd frame does not declare its content size")
        if size > max_output:
            raise CorruptPayload(f"the frame declares {size} octets, more than {max_output}")
    library = None
    if dict_id:
        library = libraries_by_id.get(dict_id)
        if library is None:
            raise UnknownDictionary(dict_id)
    if trimmed != _trimmed(library):
        form = "a trimmed" if trimmed else "a standard"
        raise CorruptPayload(f"{form} zstd frame names dictionary {dict_id}, whose library makes the other form")
    out = _decode_frame(_decompressor(library), payload, max_output, trimmed)
    if size is not None and len(out) != size:
        raise CorruptPayload(f"decoded {len(out)} octets, the frame declares {size}")
    if library is not None and library.word_table is not None:
        out = library.word_table.decode(out, max_output)
    return out
