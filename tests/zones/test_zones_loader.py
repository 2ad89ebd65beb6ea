"""zones.loader: directives, include resolution, locations and parse errors."""
from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from zones.errors import ZoneFileError
from zones.loader import load_directory, load_zone, origin_for
from zones.source import Location

N = dns.name.from_text

HEAD = """$ORIGIN example.test.
$TTL 600
@ IN SOA ns1 hostmaster 2026112301 3600 900 1209600 300
  IN NS ns1
ns1 IN A 127.0.0.1
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_origin_ttl_and_nested_relative_includes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zonefile = write(
        tmp_path / "zones" / "example.test.zone",
        HEAD + "$INCLUDE sub/one.inc part.example.test.\nafter IN A 127.0.0.9\n",
    )
    write(tmp_path / "zones" / "sub" / "one.inc", "$TTL 60\nx IN A 127.0.0.2\n$INCLUDE deeper/two.inc\n")
    write(tmp_path / "zones" / "sub" / "deeper" / "two.inc", "\n\ny IN TXT \"hello\"\n")
    monkeypatch.chdir(tmp_path)  # somewhere else than the zonefile's directory
    loaded = load_zone(Path("zones/example.test.zone"))
    zone = loaded.zone
    assert zone.origin == N("example.test.")
    assert zone.get_rdataset(N("x.part.example.test."), "A").ttl == 60
    assert zone.get_rdataset(N("y.part.example.test."), "TXT") is not None
    # after the include, origin and $TTL are those of the including file again
    after = zone.get_rdataset(N("after.example.test."), "A")
    assert after is not None and after.ttl == 600
    assert [p.name for p in loaded.includes] == ["one.inc", "two.inc"]
    assert loaded.where(N("y.part.example.test.")) == Location("zones/sub/deeper/two.inc", 3)
    assert loaded.where(N("ns1.example.test."), dns.rdatatype.A) == Location("zones/example.test.zone", 5)
    assert loaded.owners[N("after.example.test.")] == Location("zones/example.test.zone", 7)
    assert len(loaded.source.stamps) == 3
    assert zonefile.exists()


def test_multiline_record_is_located_at_its_first_line(tmp_path: Path) -> None:
    text = (
        "$ORIGIN example.test.\n$TTL 600\n@ IN SOA ns1 hostmaster (\n  2026112301 3600\n  900 1209600 300 )\n"
        "  IN NS ns1\nns1 IN A 127.0.0.1\n"
    )
    loaded = load_zone(write(tmp_path / "example.test.zone", text))
    assert loaded.where(N("example.test."), dns.rdatatype.SOA).line == 3
    assert loaded.where(N("example.test."), dns.rdatatype.NS).line == 6


def test_syntax_error_reports_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "example.test.zone", HEAD + "bad IN A 300.1.2.3\n")
    with pytest.raises(ZoneFileError) as info:
        load_zone(path, N("example.test."))
    assert (info.value.file, info.value.line) == (str(path), 6)
    assert str(info.value).startswith(f"{path}:6: ")


def test_syntax_error_inside_include_points_at_the_included_file(tmp_path: Path) -> None:
    path = write(tmp_path / "example.test.zone", HEAD + "$INCLUDE extra.inc\n")
    inc = write(tmp_path / "extra.inc", "; comment\nok IN A 127.0.0.3\nbad IN BOGUSTYPE x\n")
    with pytest.raises(ZoneFileError) as info:
        load_zone(path)
    assert (info.value.file, info.value.line) == (str(inc), 3)
    assert "BOGUSTYPE" in info.value.message


def test_missing_include_is_reported_at_the_directive(tmp_path: Path) -> None:
    path = write(tmp_path / "example.test.zone", HEAD + "\n$INCLUDE nowhere.inc\n")
    with pytest.raises(ZoneFileError) as info:
        load_zone(path)
    assert (info.value.file, info.value.line) == (str(path), 7)
    assert "nowhere.inc" in info.value.message


def test_cname_beside_other_data_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "example.test.zone", HEAD + "www IN A 127.0.0.5\nwww IN CNAME ns1\n")
    with pytest.raises(ZoneFileError) as info:
        load_zone(path)
    assert info.value.line == 7
    assert "CNAME beside other data" in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ZoneFileError) as info:
        load_zone(tmp_path / "absent.zone", N("absent."))
    assert info.value.line == 0


def test_origin_for_file_names() -> None:
    assert origin_for(Path("zonefiles/legal.semantic.root.zone")) == N("legal.semantic.root.")


def test_load_directory_keeps_good_zones_and_reports_bad_ones(tmp_path: Path) -> None:
    write(tmp_path / "example.test.zone", HEAD)
    write(tmp_path / "broken.test.zone", "$ORIGIN broken.test.\n$TTL 60\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS\n")
    write(tmp_path / "notazone.txt", "garbage")
    catalog, problems = load_directory(tmp_path)
    assert set(catalog.zones) == {N("example.test.")}
    assert set(catalog.sources) == {N("example.test.")}
    assert catalog.find(N("a.b.example.test.")) is catalog.zones[N("example.test.")]
    errors = [p for p in problems if p.is_error]
    assert len(errors) == 1 and errors[0].file.endswith("broken.test.zone")
