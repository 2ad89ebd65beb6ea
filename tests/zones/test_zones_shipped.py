"""The shipped zonefiles: accepted by BIND's named-checkzone and by our check, and true to
the hierarchy contract (zones, cuts, glue, engines, includes)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from zones.check import check_zone
from zones.loader import load_directory, load_zone, origin_for, zone_files

ZONEFILES = Path(__file__).resolve().parents[2] / "zonefiles"
SHIPPED = zone_files(ZONEFILES)
N = dns.name.from_text
LEAF_ZONES = ("contract.legal.semantic.root.", "diagnosis.medical.semantic.root.")
DOMAINS = ("legal", "medical", "code", "science", "creative", "finance")
ENGINE_PORTS = {
    "": 8100, "legal.": 8110, "contract.legal.": 8111, "litigation.legal.": 8112,
    "medical.": 8120, "diagnosis.medical.": 8121, "pharmacology.medical.": 8122,
    "code.": 8130, "review.code.": 8131, "debugging.code.": 8132,
    "science.": 8140, "physics.science.": 8141, "biology.science.": 8142,
    "creative.": 8150, "poetry.creative.": 8151, "fiction.creative.": 8152,
    "finance.": 8160, "investing.finance.": 8161, "tax.finance.": 8162,
}


def test_the_nine_zones_are_shipped() -> None:
    expected = {"semantic.root."} | {f"{d}.semantic.root." for d in DOMAINS} | {
        "contract.legal.semantic.root.", "diagnosis.medical.semantic.root."}
    assert {str(origin_for(p)) for p in SHIPPED} == expected


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_named_checkzone_accepts(path: Path) -> None:
    origin = str(origin_for(path))
    result = subprocess.run(
        ["named-checkzone", "-w", str(ZONEFILES), origin, path.name],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("OK")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_our_check_accepts_without_warnings(path: Path) -> None:
    assert [str(p) for p in check_zone(load_zone(path, origin_for(path)))] == []


def test_hierarchy_contract() -> None:
    catalog, problems = load_directory(ZONEFILES)
    assert problems == []
    zones = catalog.zones
    apex = zones[N("semantic.root.")]
    # every domain is delegated from the apex with glue, both kinds of cut below
    for i, domain in enumerate(DOMAINS, start=2):
        ns = apex.get_rdataset(N(f"{domain}.semantic.root."), "NS")
        assert [str(r.target) for r in ns] == [f"ns1.{domain}.semantic.root."]
        assert str(apex.get_rdataset(N(f"ns1.{domain}.semantic.root."), "A")[0]) == f"127.0.0.{i}"
    legal, medical = zones[N("legal.semantic.root.")], zones[N("medical.semantic.root.")]
    assert legal.get_rdataset(N("contract.legal.semantic.root."), "NS") is not None
    assert str(legal.get_rdataset(N("ns1.contract.legal.semantic.root."), "A")[0]) == "127.0.0.8"
    assert str(medical.get_rdataset(N("ns1.diagnosis.medical.semantic.root."), "A")[0]) == "127.0.0.9"
    # every engine: SRV with its port, DNS-SD TXT, A of the target, in the deepest zone
    for prefix, port in ENGINE_PORTS.items():
        service = N(f"_llm._tcp.{prefix}semantic.root.")
        zone = catalog.find(service)
        [srv] = zone.get_rdataset(service, "SRV")
        assert srv.port == port and srv.target == N(f"llm1.{prefix}semantic.root.")
        txt = b" ".join(b" ".join(r.strings) for r in zone.get_rdataset(service, "TXT"))
        assert b"txtvers=1" in txt and b"api=" in txt and b"model=" in txt
        assert zone.get_rdataset(srv.target, "A") is not None
    # every zone with children has routing profiles for them
    for node in ["semantic.root."] + [f"{d}.semantic.root." for d in DOMAINS]:
        assert zones[N(node)].get_rdataset(N(f"_route.{node}"), "TXT") is not None


def test_includes_follow_the_layout() -> None:
    for path in SHIPPED:
        origin = str(origin_for(path))
        text = path.read_text()
        assert f"$INCLUDE codec/{origin}codec {origin}" in text
        has_children = origin not in LEAF_ZONES
        assert (f"$INCLUDE routes/{origin}routes {origin}" in text) == has_children
