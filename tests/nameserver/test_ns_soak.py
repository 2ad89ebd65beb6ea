"""`semdns bench soak` (issue 11 item 9), briefly: a semantic server under dnsperf for a few
seconds answers everything without SERVFAIL and the report has its figures."""
from __future__ import annotations

import pytest
from helpers.shipped import ZONEFILES

from tools.bench_soak import QUESTIONS, Sample, query_lines, slope
from tools.cli import main


def test_query_file_mixes_plain_semantic_and_missing_names() -> None:
    lines = query_lines()
    assert len({line for line in lines if line.endswith(".q.semantic.root. SRV")}) == len(QUESTIONS)
    assert any(line.startswith("nx-") for line in lines)
    assert any(line.endswith(" SOA") for line in lines)


def test_slope_is_least_squares_kib_a_minute() -> None:
    samples = [Sample(seconds, 1000 + 2 * seconds, 10) for seconds in (0.0, 30.0, 60.0, 90.0)]
    assert slope(samples) == pytest.approx(120.0)
    assert slope(samples[:1]) != slope(samples[:1])  # one sample: no slope (NaN)


@pytest.mark.model
def test_bench_soak_runs_briefly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "soak", "--zones", str(ZONEFILES), "--minutes", "0.1", "--axfr-every", "2",
                 "--sample-every", "1", "--qps", "100", "--tcp-qps", "20"]) == 0
    out = capsys.readouterr().out
    assert "SERVFAIL 0" in out
    assert "lost 0" in out
    assert "failed" in out and "0 failed" in out
    assert "Traceback 0  'handler failed' 0" in out
    assert "server alive at the end: yes" in out
