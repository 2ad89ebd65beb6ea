"""The markers keep their promise: `-m "not slow"` loads no model and starts no outside server,
because a test without `model` / `external` that tries either fails (`helpers.guards`)."""
from __future__ import annotations

import pytest
from helpers.guards import require
from helpers.peers import running_nsd_zonefile

from routing.embedder import load_embedder


def test_an_unmarked_test_may_not_load_the_encoder() -> None:
    with pytest.raises(AssertionError, match=r"mark it @pytest.mark.model"):
        load_embedder("int8")


def test_an_unmarked_test_may_not_start_a_peer(tmp_path) -> None:
    zonefile = tmp_path / "x.test.zone"
    zonefile.write_text("@ 300 IN SOA ns h 1 2 3 4 5\n@ 300 IN NS ns\nns 300 IN A 127.0.0.1\n")
    with pytest.raises(AssertionError, match=r"mark it @pytest.mark.external"):
        with running_nsd_zonefile("x.test.", zonefile):
            pass


@pytest.mark.model
def test_a_model_test_is_slow_and_may_load(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("slow") is not None
    require("model")
    with pytest.raises(AssertionError, match="external"):
        require("external")
