"""Labelled questions for `semdns routes` and `semdns bench route`: reading them, and turning them
into per-node training sets (vectors, keyword shares, labels) for the route nodes of a catalog.

A line of a labelled file (the training corpus's shape): `{"text", "domain", "subdomain"}` (the
subdomain a child label or null; other keys ignored). A question's path is `[domain, subdomain]`
below the apex; a node at depth d learns from the questions whose path passes through it, labelled
by the path's next label (questions whose next label is none of the node's children are left out).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, cast

import dns.name
import numpy as np

from codec import normalize
from routing.index import Encoder, IndexCache, RoutingIndex
from zones.catalog import ZoneCatalog
from zones.profile import find_route_nodes


@dataclass(frozen=True)
class Labelled:
    text: str  # normalised, as the server sees it
    domain: str
    subdomain: str | None
    source: str = ""  # where the question comes from (`owner/repo` of the corpus's `source`), "" for ours

    @property
    def path(self) -> tuple[str, ...]:
        return (self.domain,) + ((self.subdomain,) if self.subdomain else ())


def load_labelled(path: Path, limit: int | None = None) -> list[Labelled]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                source = str(row.get("source") or "").split(":")[0]
                rows.append(Labelled(normalize(row["text"]), row["domain"], row.get("subdomain") or None, source))
    return rows[:limit] if limit else rows


@dataclass(frozen=True)
class NodeSet:
    """The questions one node learns from or is checked on."""

    node: dns.name.Name
    index: RoutingIndex
    classes: tuple[str, ...]  # the node's children's labels, in the index's order
    rows: np.ndarray  # indices into the labelled list
    labels: np.ndarray  # class index per row


def child_labels(index: RoutingIndex) -> tuple[str, ...]:
    return tuple(child.labels[0].decode().lower() for child in index.children)


def route_indexes(catalog: ZoneCatalog, indexes: IndexCache) -> list[tuple[dns.name.Name, dns.name.Name, RoutingIndex]]:
    """(zone origin, node, index) of every route node of the catalog, in name order."""
    found = []
    for origin, zone in sorted(catalog.zones.items()):
        for node in find_route_nodes(zone):
            index = indexes.get(zone, node)
            if index is not None:
                found.append((origin, node, index))
    return found


def node_set(node: dns.name.Name, index: RoutingIndex, apex: dns.name.Name, labelled: Sequence[Labelled]
             ) -> NodeSet | None:
    """The questions through `node` (None when `node` is not at or below `apex`)."""
    if not node.is_subdomain(apex):
        return None
    above = [label.decode().lower() for label in reversed(node.relativize(apex).labels)] if node != apex else []
    classes = child_labels(index)
    rows, labels = [], []
    for i, item in enumerate(labelled):
        path = item.path
        if len(path) > len(above) and list(path[:len(above)]) == above and path[len(above)] in classes:
            rows.append(i)
            labels.append(classes.index(path[len(above)]))
    return NodeSet(node, index, classes, np.asarray(rows, dtype=np.int64), np.asarray(labels, dtype=np.int64))


def keyword_shares(index: RoutingIndex, texts: Sequence[str]) -> np.ndarray:
    """(m, k) each text's keyword shares among the node's children (what the classifier adds)."""
    shares = np.zeros((len(texts), len(index.children)))
    for row, text in enumerate(texts):
        result = index.matcher.match(text)
        for child, score in result.scores.items():
            shares[row, cast(int, child)] = score
        total = shares[row].sum()
        if total:
            shares[row] /= total
    return shares


def embed_all(encoder: Encoder, texts: Sequence[str], batch: int = 64, cache_key: str | None = None) -> np.ndarray:
    """The vectors of `texts`; with `cache_key` (the encoder's variant), kept in the encoder cache
    directory under the sha256 of the texts, the encoder's graph file (its weights, form, layers
    and variant) and how it reads a text (`READING` and its `max_tokens`), so that a corpus is
    embedded once per encoder."""
    path = None
    if cache_key is not None:
        from routing.embedder import READING, Embedder, cache_dir

        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:24]
        if isinstance(encoder, Embedder):  # its graph file (weights, form, layers, variant) and reading
            encoder_key = f"{encoder.path.stem}-{READING}{encoder.max_tokens}"
        else:
            encoder_key = type(encoder).__name__
        path = cache_dir() / f"vectors-{cache_key}-{encoder_key}-{digest}.npy"
        if path.is_file():
            vectors = np.load(path)
            if vectors.shape[0] == len(texts):
                return vectors
    parts = [encoder.embed(list(texts[i:i + batch])) for i in range(0, len(texts), batch)]
    vectors = np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)
    if path is not None:
        np.save(path, vectors)
    return vectors
