"""The EDNS form of a semantic query (ARCHITECTURE §2): text and embedding options, hashed names.

Pure functions over option payloads (the bytes after OPTION-CODE and OPTION-LENGTH); the
nameserver and the SDK wrap them in dnspython `GenericOption`s.

TEXT_OPTION (65001)
    ``flags:u8 | payload``. Flag bit 0 (0x01): the payload is a zstd frame (with its content size)
    of the UTF-8 text, set when that is shorter; every other bit must be 0 (`UnknownFlag`). The
    text is sent exactly as typed; servers normalise it. Its size is bounded twice (`codec.text`):
    at most 65,000 octets of UTF-8, and at most 65,000 code points once decomposed (NFKD), checked
    before anything is normalised (`TextTooLarge`).

EMBEDDING_OPTION (65002)
    ``model:u16 | dim:u16 | scale:f32 | int8[dim]`` in network byte order: the query's sentence
    embedding quantised to int8 (value = int8 * scale). ``model`` is `model_tag(name)`, the first
    two octets of sha256 of the encoder's name: a server running another encoder ignores it.

Hashed name
    ``h-<32 base32 letters>.q.<zone>.``: the first 160 bits of sha256 over the UTF-8 of the
    normalised text, base32 (RFC 4648) in lowercase, so caches key on the text.

Choosing the form
    `query_form(text, zone)`: the QNAME form when the text's names fit 255 octets in *both* forms
    (``q`` and the longer ``explain``), else the EDNS form for both. One question, one name under a
    zone, whichever of its two queries a client sends.
"""
from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import zstandard

from codec.errors import BadEncoding, EmptyText, TextTooLarge, TextTooLong, Truncated, UnknownFlag
from codec.qname import FORMS, MAX_NAME, Form, canonical_zone, is_hashed_label, text_qnames
from codec.text import MAX_TEXT_OCTETS, normalize

__all__ = [
    "EMBEDDING_OPTION",
    "MAX_TEXT_OCTETS",
    "TEXT_OPTION",
    "Embedding",
    "QueryForm",
    "decode_embedding_option",
    "decode_text_option",
    "encode_embedding_option",
    "encode_text_option",
    "hashed_qname",
    "is_hashed_label",
    "model_tag",
    "query_form",
    "text_hash_label",
]

TEXT_OPTION = 65001
EMBEDDING_OPTION = 65002
FLAG_ZSTD = 0x01
_EMBED_HEADER = struct.Struct("!HHf")
_ZSTD_LEVEL = 9


@dataclass(frozen=True)
class Embedding:
    """A decoded embedding option: the encoder's tag and the dequantised float32 vector."""

    model: int
    vector: np.ndarray


@dataclass(frozen=True)
class QueryForm:
    """How one question travels under one zone: its name in each form (`q`, `explain`), and the
    TEXT_OPTION payload that goes with them (None: the QNAME form, the names carry the text)."""

    names: Mapping[str, str]
    option: bytes | None = None

    def name(self, form: Form) -> str:
        return self.names[form]


def query_form(text: str, zone: str) -> QueryForm:
    """The QNAME form of `text` under `zone` when its names fit 255 octets in every form, else the
    EDNS form (hashed names + the text option).

    Raises `EmptyText` (nothing left after normalisation), `TextTooLarge` (over a bound of
    `codec.text`), `BadEncoding` (lone surrogates, a zone that is not a domain name).
    """
    try:
        return QueryForm(text_qnames(text, zone))
    except TextTooLong:
        option = encode_text_option(text)
        return QueryForm({form: hashed_qname(text, zone, form) for form in FORMS}, option)


def text_hash_label(text: str) -> str:
    """`h-<base32(sha256(normalize(text))[:20])>`: the label standing for a text."""
    digest = hashlib.sha256(normalize(text).encode("utf-8")).digest()[:20]
    return "h-" + base64.b32encode(digest).decode("ascii").lower()


def hashed_qname(text: str, zone: str, form: Form = "q") -> str:
    """The QNAME of the EDNS form: `h-<hash>.<form>.<zone>.` (absolute, lowercase)."""
    if not normalize(text):
        raise EmptyText("the question is empty after normalisation")
    origin, octets = canonical_zone(zone)
    label = text_hash_label(text)
    if len(label) + 1 + len(form) + 1 + octets > MAX_NAME:
        raise BadEncoding(f"zone {zone!r} leaves no room for {form!r} and a hashed label")
    return f"{label}.{form}.{origin}" if origin != "." else f"{label}.{form}."


def encode_text_option(text: str) -> bytes:
    """The TEXT_OPTION payload for `text` (zstd-compressed when that is shorter)."""
    if not normalize(text):
        raise EmptyText("the question is empty after normalisation")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadEncoding(f"the question is not valid Unicode: {exc.reason} at {exc.start}") from None
    packed = zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_content_size=True).compress(raw)
    if len(packed) < len(raw):
        return bytes([FLAG_ZSTD]) + packed
    return b"\x00" + raw


def decode_text_option(payload: bytes) -> str:
    """The text of a TEXT_OPTION payload. Raises Truncated, UnknownFlag, BadEncoding, TextTooLarge
    (checked before the text is normalised), EmptyText."""
    if not payload:
        raise Truncated("text option: empty, expected a flags octet")
    flags, body = payload[0], payload[1:]
    if flags & ~FLAG_ZSTD:
        raise UnknownFlag(f"text option: unknown flag bits 0x{flags & ~FLAG_ZSTD:02x}")
    if flags & FLAG_ZSTD:
        body = _unzstd(body)
    if len(body) > MAX_TEXT_OCTETS:
        raise TextTooLarge(f"text option: {len(body)} octets of text, more than {MAX_TEXT_OCTETS}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadEncoding(f"text option: invalid UTF-8 at octet {exc.start}: {exc.reason}") from None
    try:
        normal = normalize(text)
    except TextTooLarge as exc:
        raise TextTooLarge(f"text option: {exc}") from None
    if not normal:
        raise EmptyText("text option: the question is empty after normalisation")
    return text


def _unzstd(body: bytes) -> bytes:
    try:
        params = zstandard.get_frame_parameters(body)
    except zstandard.ZstdError as exc:
        raise Truncated(f"text option: the zstd frame header is unreadable: {exc}") from None
    if params.content_size in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        raise BadEncoding("text option: the zstd frame must declare its content size")
    if params.content_size > MAX_TEXT_OCTETS:
        raise TextTooLarge(f"text option: {params.content_size} octets declared, more than {MAX_TEXT_OCTETS}")
    if params.dict_id:
        raise BadEncoding(f"text option: the zstd frame needs dictionary {params.dict_id}; none is used here")
    try:
        return zstandard.ZstdDecompressor().decompress(body)
    except zstandard.ZstdError as exc:
        raise Truncated(f"text option: the zstd frame is damaged or cut short: {exc}") from None


def model_tag(model_name: str) -> int:
    """The 16-bit tag naming an encoder in EMBEDDING_OPTION."""
    return int.from_bytes(hashlib.sha256(model_name.encode("utf-8")).digest()[:2], "big")


def encode_embedding_option(vector: np.ndarray | list[float], model: int) -> bytes:
    """The EMBEDDING_OPTION payload: int8 quantisation with one float32 scale."""
    vec = np.asarray(vector, dtype=np.float32).ravel()
    if not 0 < vec.size <= 0xFFFF or not np.all(np.isfinite(vec)):
        raise BadEncoding(f"embedding: need 1..65535 finite values, got {vec.size}")
    if not 0 <= model <= 0xFFFF:
        raise BadEncoding(f"embedding: model tag {model} does not fit 16 bits")
    peak = float(np.max(np.abs(vec)))
    scale = peak / 127.0 if peak > 0 else 0.0
    quant = (
        np.zeros(vec.size, dtype=np.int8) if scale == 0 else np.clip(np.rint(vec / scale), -127, 127).astype(np.int8)
    )
    return _EMBED_HEADER.pack(model, vec.size, scale) + quant.tobytes()


def decode_embedding_option(payload: bytes) -> Embedding:
    """Decode an EMBEDDING_OPTION payload. Raises Truncated or BadEncoding."""
    if len(payload) < _EMBED_HEADER.size:
        raise Truncated(f"embedding option: {len(payload)} octets, the header alone needs {_EMBED_HEADER.size}")
    model, dim, scale = _EMBED_HEADER.unpack_from(payload)
    body = payload[_EMBED_HEADER.size :]
    if len(body) != dim:
        raise Truncated(f"embedding option: declares {dim} values, carries {len(body)}")
    if dim == 0 or not np.isfinite(scale) or scale < 0:
        raise BadEncoding(f"embedding option: bad dimension {dim} or scale {scale}")
    with np.errstate(over="ignore"):  # a huge scale overflows to inf: the consumer's finiteness check refuses it
        vector = np.frombuffer(body, dtype=np.int8).astype(np.float32) * np.float32(scale)
    return Embedding(model=model, vector=vector)
