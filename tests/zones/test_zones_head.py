"""zones.head (semhead1): a head round-trips through master-file text; `zone check` refuses a
broken one at its line (bad sha256, wrong dims, unknown class, missing chunk)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import dns.name
import dns.zone
import numpy as np
import pytest

from zones.check import check_zone
from zones.errors import ZoneProblem
from zones.head import ENCODER_DIMS, HeadError, RouteHead, find_head_nodes, head_owner, parse_head
from zones.loader import load_zone
from zones.profile import parse_profiles

ORIGIN = dns.name.from_text("example.test.")
ZONE = (
    "$ORIGIN example.test.\n$TTL 300\n"
    "@ IN SOA ns1 hostmaster 2026112301 3600 900 1209600 300\n"
    "  IN NS ns1\nns1 IN A 127.0.0.1\n"
    "alpha IN A 127.0.0.2\nbeta IN A 127.0.0.3\n"
    '_route IN TXT "v=semroute1" "th.head=0.6"\n'
    'alpha._route IN TXT "v=semroute1" "desc=Alpha things" "kw=alpha"\n'
    'beta._route IN TXT "v=semroute1" "desc=Beta things" "kw=beta"\n'
)  # 10 lines: the head's header is line 11


def make_head(classes: tuple[str, ...] = ("alpha", "beta"), kind: str = "linear", dims: int = ENCODER_DIMS,
              seed: int = 0) -> RouteHead:
    rng = np.random.default_rng(seed)
    k = len(classes)
    if kind == "mlp":
        layers = (rng.normal(size=(16, dims)), rng.normal(size=16), rng.normal(size=(k, 16)), rng.normal(size=k))
    else:
        layers = (rng.normal(size=(k, dims)), rng.normal(size=k))
    return RouteHead(classes, kind, tuple(np.asarray(x, np.float32) for x in layers), 0.7, 1.5, 7,
                     dims, info={"cv": "0.9500", "rows": "100"})


def zone_text(head: RouteHead) -> str:
    return ZONE + head.to_zone_fragment(ORIGIN)


def problems(tmp_path: Path, text: str) -> list[ZoneProblem]:
    path = tmp_path / "example.test.zone"
    path.write_text(text)
    return check_zone(load_zone(path))


def errors(found: list[ZoneProblem]) -> list[ZoneProblem]:
    return [p for p in found if p.is_error]


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_round_trip(kind: str) -> None:
    head = make_head(kind=kind)
    zone = dns.zone.from_text(zone_text(head), ORIGIN, relativize=False)
    parsed = parse_head(zone, ORIGIN)
    assert parsed is not None
    assert (parsed.classes, parsed.kind, parsed.serial, parsed.hidden) == (head.classes, kind, 7, head.hidden)
    assert parsed.temperature == pytest.approx(0.7) and parsed.prior == pytest.approx(1.5)
    assert parsed.info == {"cv": "0.9500", "rows": "100"}
    vectors = np.random.default_rng(1).normal(size=(5, ENCODER_DIMS)).astype(np.float32)
    np.testing.assert_allclose(parsed.logits(vectors), head.logits(vectors), rtol=0.02, atol=0.3)
    assert find_head_nodes(zone) == [ORIGIN]


def test_big_head_is_chunked_in_order() -> None:
    head = make_head(classes=tuple(f"c{i}" for i in range(12)))  # 12 * 385 * 2 octets: 2 chunks
    assert len(head.chunk_strings()) == 2
    assert all(len(s) <= 255 for record in head.chunk_strings() for s in record)


def test_profiles_ignore_head_records() -> None:
    zone = dns.zone.from_text(zone_text(make_head()), ORIGIN, relativize=False)
    table = parse_profiles(zone, ORIGIN)
    assert [str(p.child) for p in table.profiles] == ["alpha.example.test.", "beta.example.test."]
    assert table.settings.head_threshold == 0.6


def test_good_head_checks_clean(tmp_path: Path) -> None:
    assert errors(problems(tmp_path, zone_text(make_head()))) == []


def test_bad_sha256_is_an_error_at_the_header_line(tmp_path: Path) -> None:
    text = zone_text(make_head())
    digest = text.split('"sha256=')[1][:64]
    text = text.replace(digest, ("0" if digest[0] != "0" else "1") + digest[1:])
    [problem] = errors(problems(tmp_path, text))
    assert problem.line == 11 and "sha256" in problem.message


def test_tampered_chunk_is_an_error(tmp_path: Path) -> None:
    text = zone_text(make_head())
    at = text.index('"c=0"') + 12
    text = text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]
    [problem] = errors(problems(tmp_path, text))
    assert "sha256" in problem.message or "base64" in problem.message


def test_wrong_dims_is_an_error(tmp_path: Path) -> None:
    [problem] = errors(problems(tmp_path, zone_text(make_head(dims=8))))
    assert problem.line == 11 and "dims=8" in problem.message


def test_unknown_class_and_unseen_child_are_warnings(tmp_path: Path) -> None:
    """A child removed after training (`semdns zone remove-domain`) leaves its class in the head:
    the router ignores it (routing.index.head_columns), so the zone still loads."""
    found = problems(tmp_path, zone_text(make_head(classes=("alpha", "gamma"))))
    assert errors(found) == []
    assert any(p.line == 11 and "gamma" in p.message and "ignored" in p.message and p.severity == "warning"
               for p in found)
    assert any("beta" in p.message and p.severity == "warning" for p in found)


def test_missing_chunk_is_an_error(tmp_path: Path) -> None:
    text = zone_text(make_head()).replace('"chunks=1"', '"chunks=2"')
    [problem] = errors(problems(tmp_path, text))
    assert "chunk 1 of 2: missing" in problem.message


def test_size_that_does_not_fit_the_shapes() -> None:
    head = make_head()
    text = zone_text(head).replace("hidden=0", "hidden=0").replace(f"dims={ENCODER_DIMS}", "dims=383")
    zone = dns.zone.from_text(text, ORIGIN, relativize=False)
    with pytest.raises(HeadError) as info:
        parse_head(zone, ORIGIN)
    assert info.value.owner == str(head_owner(ORIGIN)) and "need" in info.value.message


def test_unknown_version_and_key() -> None:
    for old, new in (("v=semhead1", "v=semhead9"), ('"rows=100"', '"colour=blue"')):
        zone = dns.zone.from_text(zone_text(make_head()).replace(old, new), ORIGIN, relativize=False)
        with pytest.raises(HeadError):
            parse_head(zone, ORIGIN)


def fast_text(decide: float = 0.8) -> str:
    """The zone with a head and a fast head (another seed: different parameters)."""
    fast = dataclasses.replace(make_head(seed=3), decide=decide)
    return zone_text(make_head()) + fast.to_zone_fragment(ORIGIN)


def test_fast_head_round_trip_beside_the_head() -> None:
    zone = dns.zone.from_text(fast_text(), ORIGIN, relativize=False)
    head, fast = parse_head(zone, ORIGIN), parse_head(zone, ORIGIN, fast=True)
    assert head is not None and fast is not None
    assert head.decide is None and not head.fast and fast.decide == pytest.approx(0.8) and fast.fast
    assert head_owner(ORIGIN, fast=True) == dns.name.from_text("_fast._head._route.example.test.")
    vectors = np.random.default_rng(1).normal(size=(3, ENCODER_DIMS)).astype(np.float32)
    assert not np.allclose(head.logits(vectors), fast.logits(vectors))  # each read from its own records
    assert find_head_nodes(zone, fast=True) == [ORIGIN] and find_head_nodes(zone) == [ORIGIN]
    # readers of profiles pass over a fast head's records
    children = [str(p.child) for p in parse_profiles(zone, ORIGIN).profiles]
    assert children == ["alpha.example.test.", "beta.example.test."]


def test_a_zone_with_a_fast_head_checks_clean(tmp_path: Path) -> None:
    assert errors(problems(tmp_path, fast_text())) == []


@pytest.mark.parametrize("edit, message", [
    (('"decide=0.8"', '"decide=1.5"'), "decide=1.5 must be in (0, 1]"),
    (('"decide=0.8"', ""), "a fast head needs decide="),
    (('"decide=0.8"', '"decide=zero"'), "is not a number"),
])
def test_a_broken_fast_head_is_an_error_at_its_line(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = fast_text().replace(*edit)
    header = 1 + next(n for n, line in enumerate(text.splitlines()) if line.startswith("_fast._head._route."))
    [problem] = errors(problems(tmp_path, text))
    assert problem.line == header and message in problem.message and "_fast._head._route" in problem.message


def test_decide_on_a_head_is_refused(tmp_path: Path) -> None:
    text = zone_text(make_head()).replace('"chunks=1"', '"chunks=1" "decide=0.5"')
    [problem] = errors(problems(tmp_path, text))
    assert problem.line == 11 and "decide= belongs to a fast head" in problem.message
