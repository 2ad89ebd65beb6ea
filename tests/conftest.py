"""Shared by every test directory: makes `tests/helpers` importable as `helpers`; tests marked
`model` or `external` are `slow` too, and the others may neither load a model nor start an
outside server (`helpers.guards`)."""
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from helpers.guards import FORBIDDEN, require  # noqa: E402  (needs the path above)

HEAVY_MARKERS = tuple(FORBIDDEN)
MODEL_FIXTURES = frozenset({"encoder", "embedder"})  # shared encoders: a test using one (even through
# another fixture) needs the model, though only the first such test loads it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)
        if any(item.get_closest_marker(name) for name in HEAVY_MARKERS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def declared_heavy_parts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forbid, for this test, the heavy parts it is not marked for (in this process and children)."""
    for kind, variable in FORBIDDEN.items():
        if request.node.get_closest_marker(kind) is None:
            monkeypatch.setenv(variable, "1")
    if request.node.get_closest_marker("model") is None:
        from routing.embedder import Embedder

        original = Embedder.__init__

        def guarded(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            require("model")
            original(self, *args, **kwargs)

        monkeypatch.setattr(Embedder, "__init__", guarded)
