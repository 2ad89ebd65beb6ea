"""The trimmed zstd frame of `semcodec3` payloads: a standard frame less what a small payload can spare.

A `semcodec3` payload is one zstd frame (RFC 8878) in libzstd's magicless format, written without
Frame_Content_Size and without Content_Checksum: it starts with its frame header descriptor,
0x01, 0x02 or 0x03 (nothing set but the size of the dictionary id), then the Window_Descriptor, the
dictionary id (1, 2 or 4 octets) and the blocks. Against the standard frame of `semcodec2` that
saves 9 octets of a 1-4 KB payload (4 of magic, 4 of checksum, 1 of content size): +0.02x of gain
(`codec.train`). A standard frame starts with the magic 28 B5 2F FD, and 0x28 sets a reserved bit
of a frame header descriptor, so the two forms never collide.

What the dropped fields did is done otherwise: the dictionary id still names the library; the
output is bounded while decoding (`max_output_size`) instead of by a declared size; `check` walks
the block headers, so a cut frame or octets after it are refused before decoding (in C: a Python
walk and `zstandard.get_frame_parameters` cost a tenth of decoding a 2 KB payload). A damaged body
is no longer caught by a checksum, only by zstd's and the word table's own checks: payloads travel
inside TCP (HTTP), which checks them, and a frame whose blocks do not decode is still refused.
"""
from __future__ import annotations

from codec.errors import CorruptPayload

try:
    from codec import _wordtable as _native  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a source tree without the built module
    _native = None

MAGIC = b"\x28\xb5\x2f\xfd"
HEADER_OCTETS = {0x01: 3, 0x02: 4, 0x03: 6}  # descriptor -> descriptor + window descriptor + dictionary id
_RLE, _RESERVED = 1, 3  # block types
MAX_WINDOW_EXPONENT = 21  # of the Window_Descriptor: libzstd refuses windows over 2 GiB (a log over 31)


def is_trimmed(payload: bytes) -> bool:
    """Whether `payload` is in the trimmed form (else a standard frame, or not a frame at all)."""
    return not payload.startswith(MAGIC)


def trim(frame: bytes) -> bytes:
    """A standard frame with a dictionary, written without content size and checksum, as a trimmed frame."""
    if not frame.startswith(MAGIC) or len(frame) <= len(MAGIC) or frame[len(MAGIC)] not in HEADER_OCTETS:
        raise ValueError("only a standard frame with a dictionary id, no content size and no checksum is trimmed")
    return frame[len(MAGIC) :]


def check(payload: bytes) -> int:
    """The dictionary id of `payload`, when it is exactly one trimmed frame (header and block headers);
    else raise CorruptPayload. In C when the word table's module is built (`check_python` is the reference)."""
    if _native is None:  # pragma: no cover - a source tree without the built module
        return check_python(payload)
    try:
        return int(_native.check_frame(payload))
    except ValueError as exc:
        raise CorruptPayload(str(exc)) from None


def check_python(payload: bytes) -> int:
    """`check` in Python."""
    header = HEADER_OCTETS.get(payload[0]) if payload else None
    if header is None:
        raise CorruptPayload("not a zstd frame (standard or trimmed)")
    position = header
    while True:
        if position + 3 > len(payload):
            raise CorruptPayload("cut zstd frame")
        value = int.from_bytes(payload[position : position + 3], "little")
        kind = (value >> 1) & 3
        if kind == _RESERVED:
            raise CorruptPayload("damaged zstd frame: reserved block type")
        position += 3 + (1 if kind == _RLE else value >> 3)
        if value & 1:  # the last block
            break
    if position != len(payload):
        what = "cut zstd frame" if position > len(payload) else f"{len(payload) - position} octets after the zstd frame"
        raise CorruptPayload(what)
    if payload[1] >> 3 > MAX_WINDOW_EXPONENT:
        raise CorruptPayload("not a zstd frame: its window is too large")
    return int.from_bytes(payload[2:header], "little")
