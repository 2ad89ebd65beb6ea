"""Shared fixtures of the routing tests: the real encoder and the shipped zones, loaded once."""
from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from routing.classifier import Classifier
from routing.embedder import Embedder, load_embedder
from routing.index import IndexCache
from zones.catalog import ZoneCatalog
from zones.loader import load_directory

ZONEFILES = Path(__file__).resolve().parents[2] / "zonefiles"
APEX = dns.name.from_text("semantic.root.")


@pytest.fixture(scope="session")
def encoder() -> Embedder:
    return load_embedder("fp32")


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
