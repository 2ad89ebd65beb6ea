"""The flood bench's report (`semdns bench engine --flood`): percentiles and verdicts, no engine."""
from __future__ import annotations

from collections import Counter

import pytest

from tools.bench_flood import percentile, print_report
from tools.cli import build_parser


def test_percentile() -> None:
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 0.5) == 51.0 and percentile(values, 0.99) == 100.0
    assert percentile([3.0], 0.99) == 3.0


def test_report_says_whether_the_targets_were_met(capsys: pytest.CaptureFixture[str]) -> None:
    print_report({"latencies": [0.002] * 99 + [0.5], "failures": 0, "listed": [True] * 5,
                  "statuses": Counter({"413": 7})})
    out = capsys.readouterr().out
    assert "p99 500.0" in out and "NOT met" in out and "stayed registered" in out and "'413': 7" in out
    print_report({"latencies": [0.002] * 200, "failures": 0, "listed": [True, False], "statuses": Counter()})
    out = capsys.readouterr().out
    assert "(target p99 <= 100: met)" in out and "WITHDRAWN" in out


def test_the_flood_options_parse() -> None:
    args = build_parser().parse_args(["bench", "engine", "--flood", "--seconds", "5", "--flood-max-body", "8000000"])
    assert args.flood and args.seconds == 5 and args.flood_clients == 3 and args.flood_max_body == 8_000_000
