"""Knot's zone loader (what `kzonecheck` runs, via `knotc zone-check`) accepts every shipped zonefile,
$INCLUDEd routing profiles and pattern library included; and it does reject a broken copy."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.peers import knot_zone_check
from helpers.server import REPO

ZONEFILES = REPO / "zonefiles"
SHIPPED = sorted(ZONEFILES.glob("*.zone"))


def test_the_hierarchy_is_shipped() -> None:
    assert {path.name for path in SHIPPED} >= {"semantic.root.zone", "legal.semantic.root.zone"}


@pytest.mark.parametrize("zonefile", SHIPPED, ids=[path.name for path in SHIPPED])
def test_knot_accepts_shipped_zonefile(zonefile: Path) -> None:
    check = knot_zone_check(zonefile)
    assert check.ok, f"Knot rejects {zonefile.name} (origin {check.origin}):\n{check.output}"


def test_knot_rejects_a_broken_include(tmp_path: Path) -> None:
    zones = tmp_path / "zonefiles"
    shutil.copytree(ZONEFILES, zones)
    routes = zones / "routes" / "legal.semantic.root.routes"
    routes.write_text(routes.read_text() + "\nbroken IN SRV not-a-number\n")
    check = knot_zone_check(zones / "legal.semantic.root.zone")
    assert not check.ok, check.output
    assert "legal.semantic.root.routes" in check.output, check.output
