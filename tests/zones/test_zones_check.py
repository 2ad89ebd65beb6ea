"""zones.check: each rule on a broken zone, reported at the right file:line."""
from __future__ import annotations

from pathlib import Path

import pytest

from zones.check import check_zone, is_date_serial
from zones.errors import ZoneFileError, ZoneProblem
from zones.loader import load_zone

SOA = "@ IN SOA ns1 hostmaster 2026112301 3600 900 1209600 300\n"
PREAMBLE = "$ORIGIN example.test.\n$TTL 300\n"  # lines 1-2
GOOD = PREAMBLE + SOA + "  IN NS ns1\nns1 IN A 127.0.0.1\n"  # SOA line 3, NS 4, A 5
ENGINE = (
    '_llm._tcp IN SRV 10 10 8100 llm1\n'
    '_llm._tcp IN TXT "txtvers=1" "model=m"\n'
    "llm1 IN A 127.0.0.1\n"
)


def problems_of(tmp_path: Path, text: str, include: str | None = None) -> list[ZoneProblem]:
    path = tmp_path / "example.test.zone"
    path.write_text(text)
    if include is not None:
        (tmp_path / "extra.inc").write_text(include)
    return check_zone(load_zone(path))


def only(problems: list[ZoneProblem], severity: str = "error") -> ZoneProblem:
    matching = [p for p in problems if p.severity == severity]
    assert len(matching) == 1, [str(p) for p in problems]
    return matching[0]


def test_good_zone_with_engine_is_clean(tmp_path: Path) -> None:
    assert problems_of(tmp_path, GOOD + ENGINE) == []


def test_missing_soa(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, PREAMBLE + "@ IN NS ns1\nns1 IN A 127.0.0.1\n"))
    assert "no SOA" in problem.message and problem.file.endswith("example.test.zone")


def test_second_soa_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = GOOD + "@ IN SOA ns1 hostmaster 2026112302 3600 900 1209600 300\n"
    problem = only(problems_of(tmp_path, text))
    assert problem.line == 6 and "second SOA" in problem.message


def test_soa_below_the_apex_is_refused_at_load(tmp_path: Path) -> None:
    text = GOOD + "sub IN SOA ns1 hostmaster 2026112301 3600 900 1209600 300\n"
    with pytest.raises(ZoneFileError) as info:
        problems_of(tmp_path, text)
    assert info.value.line == 6 and "SOA" in info.value.message


def test_missing_ns(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, PREAMBLE + SOA + "www IN A 127.0.0.1\n"))
    assert problem.line == 3 and "no NS" in problem.message


def test_in_zone_apex_name_server_without_address(tmp_path: Path) -> None:
    text = PREAMBLE + SOA + "  IN NS ns1\n  IN NS ns.elsewhere.test.\n"
    problem = only(problems_of(tmp_path, text))
    assert problem.line == 4 and "ns1.example.test." in problem.message


def test_delegation_without_glue(tmp_path: Path) -> None:
    text = GOOD + "child IN NS ns1.child\nother IN NS ns.elsewhere.test.\n"
    problem = only(problems_of(tmp_path, text))
    assert (problem.line, problem.severity) == (6, "error")
    assert "ns1.child.example.test." in problem.message and "glue" in problem.message


def test_data_below_a_delegation_point(tmp_path: Path) -> None:
    text = GOOD + "child IN NS ns1.child\nns1.child IN A 127.0.0.8\nwww.child IN TXT \"hidden\"\n"
    problem = only(problems_of(tmp_path, text))
    assert problem.line == 8 and "below the delegation point child.example.test." in problem.message


def test_data_at_a_delegation_point(tmp_path: Path) -> None:
    text = GOOD + "child IN NS ns1.child\nns1.child IN A 127.0.0.8\nchild IN MX 10 mail\n"
    problem = only(problems_of(tmp_path, text))
    assert problem.line == 8 and "at a delegation point" in problem.message


def test_stray_glue_is_a_warning(tmp_path: Path) -> None:
    text = GOOD + "child IN NS ns1.child\nns1.child IN A 127.0.0.8\nns2.child IN A 127.0.0.9\n"
    problems = problems_of(tmp_path, text)
    assert only(problems, "warning").line == 8
    assert not any(p.is_error for p in problems)


ROUTES = (
    '_route IN TXT "v=semroute1" "th.keyword=0.8"\n'  # include line 1
    'a._route IN TXT "v=semroute1" "desc=about a"\n'  # 2
    'a._route IN TXT "kw=alpha,aleph" "ex=what is a?"\n'  # 3
)
HOSTED = (  # child a is hosted in the zone: its engine lives here
    "_llm._tcp.a IN SRV 0 0 8101 llm1.a\n"
    '_llm._tcp.a IN TXT "txtvers=1"\n'
    "llm1.a IN A 127.0.0.1\n"
)


@pytest.mark.parametrize(
    ("include", "line", "needle"),
    [
        (ROUTES.replace('"th.keyword=0.8"', '"th.keyword=1.5"'), 1, "outside 0..1"),
        (ROUTES.replace('"th.keyword=0.8"', '"th.keywrd=0.5"'), 1, "unknown key"),
        (ROUTES.replace('"v=semroute1" "desc', '"v=semroute9" "desc'), 2, "version"),
        (ROUTES.replace('"v=semroute1" "desc', '"desc'), 2, "missing v=semroute1"),
        (ROUTES.replace('"kw=alpha,aleph" "ex=what is a?"', '"notkeyvalue"'), 2, "not key=value"),
        (ROUTES.replace('"kw=alpha,aleph" "ex=what is a?"', '"th.embed=0.5"'), 2, "at least one kw= or ex="),
        (ROUTES.replace('"desc=about a"', '"th.embed=0.5"'), 2, "without desc="),
    ],
)
def test_routing_profile_syntax(tmp_path: Path, include: str, line: int, needle: str) -> None:
    text = GOOD + HOSTED + "$INCLUDE extra.inc\n"
    problem = only(problems_of(tmp_path, text, include))
    assert problem.file.endswith("extra.inc")
    assert problem.line == line and needle in problem.message, str(problem)


def test_good_profiles_pass_and_unknown_child_warns(tmp_path: Path) -> None:
    assert problems_of(tmp_path, GOOD + HOSTED + "$INCLUDE extra.inc\n", ROUTES) == []
    problem = only(problems_of(tmp_path, GOOD + "$INCLUDE extra.inc\n", ROUTES), "warning")
    assert problem.line == 2 and "neither delegated nor hosted" in problem.message


def test_srv_target_without_address(tmp_path: Path) -> None:
    text = GOOD + '_llm._tcp IN SRV 10 10 8100 llm9\n_llm._tcp IN TXT "txtvers=1"\n'
    problem = only(problems_of(tmp_path, text))
    assert problem.line == 6 and "llm9.example.test." in problem.message


def test_engine_without_srv_and_bad_txt(tmp_path: Path) -> None:
    text = GOOD + '_llm._tcp.sub IN TXT "=nokey"\n'
    problems = problems_of(tmp_path, text)
    assert sorted((p.line, "SRV" in p.message, p.is_error) for p in problems) == [(6, False, True), (6, True, False)]
    # without SRV is a warning: a secondary transfers exactly that when the health monitor hides every
    # registered engine of a service, and the semantic answers fall back to an ancestor's engines


def test_serial_format_is_a_warning(tmp_path: Path) -> None:
    text = GOOD.replace("2026112301", "42")
    problem = only(problems_of(tmp_path, text), "warning")
    assert problem.line == 3 and "YYYYMMDDNN" in problem.message
    assert str(problem) == f"{problem.file}:3: warning: {problem.message}"


def test_is_date_serial() -> None:
    assert is_date_serial(2026112301)
    assert not is_date_serial(2026133101)
    assert not is_date_serial(1)


LIBRARY_HEADER = '_codec IN TXT "v=semcodec2" "id=7" "size={size}" "sha256={sha}" "chunks={chunks}" "table=10"\n'


def test_library_header_out_of_bounds_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = GOOD + LIBRARY_HEADER.format(size=10**9, sha="0" * 64, chunks=10**8)  # line 6
    problem = only(problems_of(tmp_path, text))
    assert problem.line == 6 and "_codec" in problem.message and "limit" in problem.message


def test_library_header_with_a_missing_chunk(tmp_path: Path) -> None:
    text = GOOD + LIBRARY_HEADER.format(size=9000, sha="0" * 64, chunks=2) + '0._codec IN TXT "c=0" "AAAA"\n'
    problem = only(problems_of(tmp_path, text))
    assert problem.line == 6 and "chunk 1 of 2 is missing" in problem.message
