"""What a test may start: a model (the MiniLM encoder, llama.cpp, an onnxruntime engine) only when
it is marked `model`, an outside server (NSD, Knot, Unbound) only when it is marked `external`.

`tests/conftest.py` sets the environment variables below for every test that lacks the marker
(children inherit them); the helpers that start such parts call `require`, so a test that loads a
model or starts a peer without saying so fails at once instead of slowing `-m "not slow"`."""
from __future__ import annotations

import os

FORBIDDEN = {"model": "SEMDNS_TEST_NO_MODEL", "external": "SEMDNS_TEST_NO_EXTERNAL"}
WHAT = {"model": "loads a model", "external": "starts an outside server"}


def require(kind: str) -> None:
    """Fail unless the running test is marked `kind`."""
    if os.environ.get(FORBIDDEN[kind]):
        raise AssertionError(f"this test {WHAT[kind]}: mark it @pytest.mark.{kind}")
