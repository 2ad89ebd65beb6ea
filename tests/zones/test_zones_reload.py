"""zones.reload: only changed files are re-read; failures keep the old zone; serials tracked."""
from __future__ import annotations

import os
from pathlib import Path

import dns.name
import pytest

from zones.loader import load_directory
from zones.reload import reload, zone_serial

N = dns.name.from_text
A_ORIGIN, B_ORIGIN = N("a.test."), N("b.test.")


def zone_text(origin: str, serial: int, extra: str = "") -> str:
    return (
        f"$ORIGIN {origin}\n$TTL 300\n"
        f"@ IN SOA ns1 hostmaster {serial} 3600 900 1209600 300\n"
        "  IN NS ns1\nns1 IN A 127.0.0.1\n$INCLUDE extra.inc\n" + extra
    )


def write(path: Path, text: str) -> None:
    """Write and move the mtime forward, so a change is visible whatever the clock granularity."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    stamp = max(old + 1_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def zonedir(tmp_path: Path) -> Path:
    write(tmp_path / "a.test.zone", zone_text("a.test.", 2026112301))
    write(tmp_path / "b.test.zone", zone_text("b.test.", 2026112301))
    write(tmp_path / "extra.inc", "www IN A 127.0.0.2\n")
    return tmp_path


def test_nothing_changed_returns_the_same_catalog(zonedir: Path) -> None:
    catalog, problems = load_directory(zonedir)
    assert problems == []
    result = reload(zonedir, catalog)
    assert result.catalog is catalog and not result.changed
    assert result.problems == [] and result.serial_changes == []


def test_serial_rise_swaps_the_zone_and_is_reported(zonedir: Path) -> None:
    catalog, _ = load_directory(zonedir)
    old_b = catalog.zones[B_ORIGIN]
    write(zonedir / "a.test.zone", zone_text("a.test.", 2026112302, "new IN A 127.0.0.3\n"))
    result = reload(zonedir, catalog)
    assert result.changed and result.catalog.generation == catalog.generation + 1
    assert result.serial_changes == [(A_ORIGIN, 2026112301, 2026112302)]
    assert result.catalog.zones[A_ORIGIN].get_rdataset(N("new.a.test."), "A") is not None
    assert result.catalog.zones[B_ORIGIN] is old_b  # untouched zones are not re-read
    # and the old catalog is still intact for requests in flight
    assert catalog.zones[A_ORIGIN].get_rdataset(N("new.a.test."), "A") is None


def test_a_broken_zone_keeps_its_previous_version(zonedir: Path) -> None:
    catalog, _ = load_directory(zonedir)
    write(zonedir / "a.test.zone", zone_text("a.test.", 2026112302, "bad IN A not-an-address\n"))
    result = reload(zonedir, catalog)
    assert not result.changed and result.catalog is catalog
    assert zone_serial(result.catalog.zones[A_ORIGIN]) == 2026112301
    [problem] = result.problems
    assert problem.is_error and problem.file.endswith("a.test.zone") and problem.line == 7
    # fixing the file later is picked up
    write(zonedir / "a.test.zone", zone_text("a.test.", 2026112303))
    fixed = reload(zonedir, result.catalog)
    assert fixed.serial_changes == [(A_ORIGIN, 2026112301, 2026112303)]


def test_a_serial_going_backwards_is_an_error_and_keeps_the_zone(zonedir: Path) -> None:
    catalog, _ = load_directory(zonedir)
    write(zonedir / "a.test.zone", zone_text("a.test.", 2026112201, "new IN A 127.0.0.3\n"))
    result = reload(zonedir, catalog)
    assert result.catalog is catalog
    [problem] = result.problems
    assert problem.is_error and "backwards" in problem.message and problem.line == 3


def test_changed_content_with_the_same_serial_is_accepted_with_a_warning(zonedir: Path) -> None:
    catalog, _ = load_directory(zonedir)
    write(zonedir / "a.test.zone", zone_text("a.test.", 2026112301, "new IN A 127.0.0.3\n"))
    result = reload(zonedir, catalog)
    assert result.changed and result.serial_changes == []
    [problem] = result.problems
    assert problem.severity == "warning" and "serial" in problem.message


def test_a_changed_include_reloads_every_zone_that_uses_it(zonedir: Path) -> None:
    catalog, _ = load_directory(zonedir)
    write(zonedir / "extra.inc", "www IN A 127.0.0.9\n")
    result = reload(zonedir, catalog)
    assert result.changed
    for origin in (A_ORIGIN, B_ORIGIN):
        www = result.catalog.zones[origin].get_rdataset(dns.name.Name((b"www",) + origin.labels), "A")
        assert str(www[0]) == "127.0.0.9"


def test_new_files_add_zones_and_removed_files_drop_them(zonedir: Path) -> None:
    catalog, _ = load_directory(zonedir)
    write(zonedir / "c.test.zone", zone_text("c.test.", 2026112301))
    (zonedir / "b.test.zone").unlink()
    result = reload(zonedir, catalog)
    assert set(result.catalog.zones) == {A_ORIGIN, N("c.test.")}
    assert set(result.catalog.sources) == set(result.catalog.zones)
    assert result.serial_changes == []


def test_touching_a_file_without_changing_it_is_not_a_change(zonedir: Path) -> None:
    catalog, _ = load_directory(zonedir)
    path = zonedir / "a.test.zone"
    # rewrite identical bytes with a new mtime: the hash says nothing changed
    write(path, path.read_text())
    assert reload(zonedir, catalog).catalog is catalog
