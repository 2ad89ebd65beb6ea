"""Shared by every test directory: makes `tests/helpers` importable as `helpers`; tests marked
`model` or `external` are `slow` too, and the others may neither load a model nor start an
outside server (`helpers.guards`)."""
import sys
from pathlib import Path
from typing import AsyncIterator

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from helpers.guards import FORBIDDEN, require  # noqa: E402  (needs the path above)

HEAVY_MARKERS = tuple(FORBIDDEN)
MODEL_FIXTURES = frozenset({"encoder", "embedder", "tokens"})  # shared encoders: a test using one (even through
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


# --- the shipped hierarchy and the real encoder, shared by the routing and semantic tests ----------
from helpers.shipped import ZONEFILES  # noqa: E402

from nameserver.build import ServerOptions, build_server  # noqa: E402
from nameserver.config import ServerConfig  # noqa: E402
from nameserver.semantic.handler import SemanticHandler  # noqa: E402
from routing.classifier import Classifier  # noqa: E402
from routing.embedder import Embedder, load_embedder  # noqa: E402
from routing.index import IndexCache  # noqa: E402
from routing.tokens import TokenEncoder, load_token_encoder  # noqa: E402
from zones.catalog import ZoneCatalog, ZoneStore  # noqa: E402
from zones.loader import load_directory  # noqa: E402


@pytest.fixture(scope="session")
def encoder() -> Embedder:
    return load_embedder("fp32")


@pytest.fixture(scope="session")
def tokens() -> TokenEncoder:
    """The fast heads' token encoder (its table built from the encoder on first use, then cached)."""
    return load_token_encoder()


@pytest.fixture(scope="session")
def shipped() -> ZoneCatalog:
    catalog, problems = load_directory(ZONEFILES)
    assert not [p for p in problems if p.is_error]
    return catalog


@pytest.fixture(scope="session")
def indexes(encoder: Embedder) -> IndexCache:
    return IndexCache(encoder)


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier()


@pytest.fixture(scope="module")
def shipped_handler(encoder: Embedder, shipped: ZoneCatalog) -> SemanticHandler:
    """A semantic handler over the shipped zones, its indexes compiled (one per test module)."""
    store = ZoneStore()
    store.swap(shipped)
    semantic = SemanticHandler(store, encoder)
    semantic.warm()
    return semantic


@pytest.fixture
async def shipped_server(shipped_handler: SemanticHandler) -> AsyncIterator[tuple[str, int]]:
    """A running server (loopback, free port) with `shipped_handler`'s store and encoder."""
    config = ServerConfig(zones_dir=ZONEFILES, listen=(("127.0.0.1", 0),), uvloop=False, wire_cache=False)
    runner = build_server(ServerOptions(config=config), store=shipped_handler.store, encoder=shipped_handler.encoder)
    await runner.start()
    try:
        yield runner.addresses[0]
    finally:
        await runner.stop()
