"""A client's embedding (option 65002) is used only when it is from our encoder, has 384 finite
values and unit length; anything else is ignored (the text is embedded here), never an error."""
from __future__ import annotations

import struct
from typing import Sequence

import dns.edns
import dns.message
import numpy as np
import pytest

from codec.edns_text import EMBEDDING_OPTION, encode_embedding_option, model_tag
from nameserver import edns
from nameserver.request import Request
from nameserver.semantic.handler import SemanticHandler
from routing.embedder import MODEL_NAME
from zones.catalog import ZoneStore

TAG = model_tag(MODEL_NAME)


class _NoEncoder:
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise AssertionError("not needed")


def unit(size: int = 384) -> np.ndarray:
    vec = np.random.default_rng(3).normal(size=size).astype(np.float32)
    return vec / np.linalg.norm(vec)


def request_with(payload: bytes) -> Request:
    query = dns.message.make_query("x.q.semantic.root.", "SRV", use_edns=0,
                                   options=[dns.edns.GenericOption(EMBEDDING_OPTION, payload)])
    return Request.of(query, query.to_wire(), ("127.0.0.1", 5353), "udp", edns.negotiate(query, "udp", 1232))


@pytest.mark.parametrize("payload", [
    encode_embedding_option(unit(7), TAG),  # 7 dimensions
    encode_embedding_option(unit(), TAG)[:8] + b"\x7f" * 384,  # every value at its peak: norm >> 1
    encode_embedding_option(3 * unit(), TAG)[:4] + struct.pack("!f", 1.0) + encode_embedding_option(unit(), TAG)[8:],
    encode_embedding_option(unit(), model_tag("another-encoder")),
    encode_embedding_option(unit(), model_tag("all-MiniLM-L6-v2")),  # all six layers (a resolver of stop 26)
], ids=["7-dimensions", "all-peaks", "scaled-up", "other-model", "other-depth"])
def test_a_malformed_client_vector_is_ignored(payload: bytes) -> None:
    handler = SemanticHandler(ZoneStore(), _NoEncoder())
    assert handler._embedding(request_with(payload)) is None


def test_a_valid_client_vector_is_used() -> None:
    handler = SemanticHandler(ZoneStore(), _NoEncoder())
    vector = handler._embedding(request_with(encode_embedding_option(unit(), TAG)))
    assert vector is not None and vector.shape == (384,) and float(vector @ unit()) > 0.999
