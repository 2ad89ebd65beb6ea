"""Routing heads (`semhead1`): a node's learned decision, carried as zone data like a pattern library.

A head is a small classifier over the sentence vector of a question (MiniLM, `dims` values): a
softmax over the node's children, `linear` (one layer) or `mlp` (one ReLU layer of `hidden`
units, then one linear layer), calibrated by a temperature, plus the weight of the keyword prior
(the keyword matcher's shares, added to the logits before the temperature) and of the profiles'
similarity scores (`sim`: the staged scorer's exemplar/centroid/description scores over its
temperature, §4, added the same way; 0 when the head stands alone). Records, in the zone
that holds the node's `_route` data (a generated file `heads/<origin>heads` pulled in with
`$INCLUDE`):

* header, at ``_head._route.<node>.``::

      TXT "v=semhead1" "serial=<n>" "kind=linear|mlp" "dims=<d>" "hidden=<h>" "classes=<a>,<b>,..."
          "temp=<T>" "prior=<w>" "sim=<w>" "dtype=f16|f32" "size=<octets>" "sha256=<hex>" "chunks=<n>"

  optional informative keys: ``cv=<cross-validated accuracy>``, ``rows=<training questions>``.
* chunk ``i`` at ``<i>._head._route.<node>.``: ``TXT "c=<i>" "<base64>" ...`` (8 KiB of data per
  chunk, one RR per owner, character-strings of at most 255 octets: the `_codec` layout).

A node may also carry a *fast head*: the same format at ``_fast._head._route.<node>.`` (chunks at
``<i>._fast._head._route.<node>.``: names that readers of heads alone, or of profiles, pass over),
over the token encoder's vector (`routing.tokens`) instead of MiniLM's (its `sim` term scores the
profiles embedded by the same encoder), with one more key, required there and nowhere else:
``decide=<p>``, the probability at or above which it decides alone (below it the MiniLM head
decides, ARCHITECTURE §4).

The data is the layers' parameters, little-endian `dtype`, concatenated: linear `W[classes][dims]
b[classes]`; mlp `W1[hidden][dims] b1[hidden] W2[classes][hidden] b2[classes]`. `size` and
`sha256` cover the data. Verification order: version → keys and values → chunk count/order →
size → sha256 → parameter count. Class names are the children's first labels; that they are
children of the node is `zones.check`'s question. This module is pure: no model, no I/O.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Sequence

import dns.name
import dns.rdatatype
import dns.zone
import numpy as np

from common.names import zone_origin
from zones.errors import ZonesError

VERSION = "semhead1"
HEAD_LABEL = b"_head"
FAST_LABEL = b"_fast"  # `[<i>.]_fast._head._route.<node>`: the fast head (token encoder)
ROUTE_LABEL = b"_route"
ENCODER_DIMS = 384  # the sentence encoder's dimension (routing/embedder.py: DIMENSION)
KINDS = ("linear", "mlp")
DTYPES: dict[str, np.dtype] = {"f16": np.dtype("<f2"), "f32": np.dtype("<f4")}
CHUNK_OCTETS = 8192
STRING_OCTETS = 255
DEFAULT_TTL = 3600
_REQUIRED = ("v", "serial", "kind", "dims", "hidden", "classes", "temp", "prior", "sim", "dtype", "size", "sha256",
             "chunks")
_INFO = ("cv", "rows")  # informative keys
_OPTIONAL = _INFO + ("decide",)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CLASS = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class HeadError(ZonesError):
    """A `_head` record set that is not a valid semhead1 head: `owner` names the record at fault."""

    def __init__(self, owner: dns.name.Name | str, message: str) -> None:
        self.owner = str(owner)
        self.message = message
        super().__init__(f"{self.owner}: {message}")


@dataclass(frozen=True, eq=False)
class RouteHead:
    """A node's head: `layers` are float32 arrays (W, b) or (W1, b1, W2, b2)."""

    classes: tuple[str, ...]
    kind: str
    layers: tuple[np.ndarray, ...]
    temperature: float = 1.0
    prior: float = 0.0
    serial: int = 1
    dims: int = ENCODER_DIMS
    dtype: str = "f16"
    sim: float = 0.0
    info: dict[str, str] = field(default_factory=dict)  # cv=, rows=
    decide: float | None = None  # a fast head's: the probability at or above which it decides alone

    @property
    def hidden(self) -> int:
        return int(self.layers[0].shape[0]) if self.kind == "mlp" else 0

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """(m, classes) raw scores of m vectors (before prior and temperature)."""
        if self.kind == "mlp":
            w1, b1, w2, b2 = self.layers
            return np.maximum(vectors @ w1.T + b1, 0.0) @ w2.T + b2
        w, b = self.layers
        return vectors @ w.T + b

    def data(self) -> bytes:
        dtype = DTYPES[self.dtype]
        return b"".join(np.ascontiguousarray(layer, dtype=dtype).tobytes() for layer in self.layers)

    def header_strings(self) -> list[str]:
        data = self.data()
        chunks = max(1, -(-len(data) // CHUNK_OCTETS))
        strings = [
            f"v={VERSION}", f"serial={self.serial}", f"kind={self.kind}", f"dims={self.dims}",
            f"hidden={self.hidden}", f"classes={','.join(self.classes)}", f"temp={self.temperature:.6g}",
            f"prior={self.prior:.6g}", f"sim={self.sim:.6g}", f"dtype={self.dtype}", f"size={len(data)}",
            f"sha256={hashlib.sha256(data).hexdigest()}", f"chunks={chunks}",
        ]
        strings += [f"{key}={self.info[key]}" for key in _INFO if key in self.info]
        return strings + ([f"decide={self.decide:.6g}"] if self.decide is not None else [])

    def chunk_strings(self) -> list[list[str]]:
        data = self.data()
        records = []
        for index in range(max(1, -(-len(data) // CHUNK_OCTETS))):
            piece = base64.b64encode(data[index * CHUNK_OCTETS:(index + 1) * CHUNK_OCTETS]).decode()
            records.append([f"c={index}", *(piece[i:i + STRING_OCTETS] for i in range(0, len(piece), STRING_OCTETS))])
        return records

    @property
    def fast(self) -> bool:
        """A fast head (it has `decide`): its records live under `_fast._head._route`."""
        return self.decide is not None

    def to_zone_fragment(self, node: dns.name.Name, comment: Sequence[str] = (), ttl: int = DEFAULT_TTL) -> str:
        """Master-file text of the head's records (absolute owner names)."""
        lines = [f"; {line}" if line else ";" for line in comment]
        lines.append(f"{head_owner(node, self.fast)} {ttl} IN TXT " + " ".join(f'"{s}"' for s in self.header_strings()))
        for index, strings in enumerate(self.chunk_strings()):
            body = "\n    ".join(f'"{s}"' for s in strings)
            lines.append(f"{head_chunk_owner(node, index, self.fast)} {ttl} IN TXT (\n    {body} )")
        return "\n".join(lines) + "\n"


def _prefix(fast: bool) -> tuple[bytes, ...]:
    return (FAST_LABEL, HEAD_LABEL, ROUTE_LABEL) if fast else (HEAD_LABEL, ROUTE_LABEL)


def head_owner(node: dns.name.Name, fast: bool = False) -> dns.name.Name:
    """`_head._route.<node>.` (`_fast._head._route.<node>.`): where a node's (fast) head header lives."""
    return dns.name.Name(_prefix(fast) + node.labels)


def head_chunk_owner(node: dns.name.Name, index: int, fast: bool = False) -> dns.name.Name:
    return dns.name.Name((str(index).encode(),) + _prefix(fast) + node.labels)


def head_node(name: dns.name.Name, fast: bool = False) -> dns.name.Name | None:
    """The node of a `[<i>.]_head._route.<node>` name (`[<i>.]_fast._head._route.<node>` with
    `fast`), None for any other name."""
    prefix = list(_prefix(fast))
    labels = [part.lower() for part in name.labels]
    for at in (0, 1):
        if labels[at:at + len(prefix)] == prefix:
            return dns.name.Name(name.labels[at + len(prefix):])
    return None


def find_head_nodes(zone: dns.zone.Zone, fast: bool = False) -> list[dns.name.Name]:
    """Every (absolute) node of `zone` with a head (fast head) header or chunk, sorted."""
    origin = zone_origin(zone)
    nodes = {head_node(name.derelativize(origin), fast) for name in zone.nodes}
    return sorted(node for node in nodes if node is not None)


def _strings(zone: dns.zone.Zone, owner: dns.name.Name) -> list[list[str]]:
    rdataset = zone.get_rdataset(owner, dns.rdatatype.TXT)
    if rdataset is None:
        return []
    try:
        return [[raw.decode("ascii") for raw in rdata.strings] for rdata in rdataset]
    except UnicodeDecodeError:
        raise HeadError(owner, "character-string is not ASCII") from None


def _fields(owner: dns.name.Name, strings: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in strings:
        key, sep, value = item.partition("=")
        if not sep:
            raise HeadError(owner, f"{item[:40]!r} is not key=value")
        if key not in _REQUIRED and key not in _OPTIONAL:
            raise HeadError(owner, f"unknown key {key!r}")
        fields[key] = value
    if fields.get("v") != VERSION:
        raise HeadError(owner, f"format {fields.get('v')!r}, this reader knows {VERSION!r}")
    missing = [key for key in _REQUIRED if key not in fields]
    if missing:
        raise HeadError(owner, f"missing {', '.join(missing)}")
    return fields


def _number(owner: dns.name.Name, fields: dict[str, str], key: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(fields[key])
    except ValueError:
        raise HeadError(owner, f"{key}={fields[key]!r} is not a number") from None
    if not np.isfinite(value) or value < 0:
        raise HeadError(owner, f"{key}={fields[key]} must be a finite number >= 0")
    return value


def parse_head(zone: dns.zone.Zone, node: dns.name.Name, fast: bool = False) -> RouteHead | None:
    """The verified head of `node` in `zone` (its fast head with `fast`), None when it has none.
    Raises HeadError."""
    origin = zone_origin(zone)
    node = node.derelativize(origin)
    owner = head_owner(node, fast)
    records = _strings(zone, owner)
    if not records:
        if zone.get_node(head_chunk_owner(node, 0, fast)) is not None:
            raise HeadError(owner, "head chunks without a header")
        return None
    if len(records) > 1:
        raise HeadError(owner, f"{len(records)} header records (one expected)")
    fields = _fields(owner, records[0])
    kind = fields["kind"]
    if kind not in KINDS:
        raise HeadError(owner, f"kind={kind!r} (expected {' or '.join(KINDS)})")
    if fields["dtype"] not in DTYPES:
        raise HeadError(owner, f"dtype={fields['dtype']!r} (expected {' or '.join(DTYPES)})")
    serial, dims, hidden, size, chunks = (int(_number(owner, fields, key, int))
                                          for key in ("serial", "dims", "hidden", "size", "chunks"))
    temperature, prior, sim = (_number(owner, fields, key, float) for key in ("temp", "prior", "sim"))
    classes = tuple(fields["classes"].split(","))
    if len(classes) < 2 or len(set(classes)) != len(classes) or not all(_CLASS.fullmatch(c) for c in classes):
        raise HeadError(owner, f"classes={fields['classes'][:60]!r}: two or more distinct child labels expected")
    sha = fields["sha256"]
    if not _SHA256_HEX.fullmatch(sha) or dims == 0 or chunks == 0 or temperature == 0:
        raise HeadError(owner, "sha256, dims, chunks and temp must be set")
    if (kind == "mlp") != (hidden > 0):
        raise HeadError(owner, f"kind={kind} with hidden={hidden}")
    decide = _decide(owner, fields, fast)
    data = _data(zone, node, chunks, fast)
    if len(data) != size:
        raise HeadError(owner, f"reassembled {len(data)} octets, header says size={size}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha:
        raise HeadError(owner, f"sha256 of the data is {digest}, header says {sha}")
    shapes = [(len(classes), dims), (len(classes),)] if kind == "linear" else \
        [(hidden, dims), (hidden,), (len(classes), hidden), (len(classes),)]
    dtype = DTYPES[fields["dtype"]]
    expected = sum(int(np.prod(shape)) for shape in shapes) * dtype.itemsize
    if expected != size:
        raise HeadError(owner, f"{size} octets of data, but dims={dims} hidden={hidden} "
                               f"classes={len(classes)} need {expected}")
    flat = np.frombuffer(data, dtype=dtype).astype(np.float32)
    if not np.isfinite(flat).all():
        raise HeadError(owner, "parameters that are not finite")
    layers, at = [], 0
    for shape in shapes:
        count = int(np.prod(shape))
        layers.append(flat[at:at + count].reshape(shape))
        at += count
    info = {key: fields[key] for key in _INFO if key in fields}
    return RouteHead(classes, kind, tuple(layers), temperature, prior, serial, dims, fields["dtype"], sim, info,
                     decide)


def _decide(owner: dns.name.Name, fields: dict[str, str], fast: bool) -> float | None:
    """A fast head's `decide=` (required there, in (0, 1]); a head's must be absent."""
    if not fast:
        if "decide" in fields:
            raise HeadError(owner, "decide= belongs to a fast head (_fast._head._route) only")
        return None
    if "decide" not in fields:
        raise HeadError(owner, "a fast head needs decide=")
    decide = _number(owner, fields, "decide", float)
    if not 0.0 < decide <= 1.0:
        raise HeadError(owner, f"decide={fields['decide']} must be in (0, 1]")
    return decide


def _data(zone: dns.zone.Zone, node: dns.name.Name, chunks: int, fast: bool) -> bytes:
    parts = []
    for index in range(chunks):
        owner = head_chunk_owner(node, index, fast)
        records = _strings(zone, owner)
        if len(records) != 1:
            raise HeadError(owner, f"chunk {index} of {chunks}: {'missing' if not records else 'several records'}")
        strings = records[0]
        if not strings or strings[0] != f"c={index}":
            first = strings[0][:20] if strings else ""
            raise HeadError(owner, f"chunk {index}: first string {first!r} is not c={index}")
        try:
            parts.append(base64.b64decode("".join(strings[1:]), validate=True))
        except binascii.Error as exc:
            raise HeadError(owner, f"chunk {index}: not base64 ({exc})") from None
    if zone.get_node(head_chunk_owner(node, chunks, fast)) is not None:
        raise HeadError(head_chunk_owner(node, chunks, fast), f"a chunk beyond chunks={chunks}")
    return b"".join(parts)
