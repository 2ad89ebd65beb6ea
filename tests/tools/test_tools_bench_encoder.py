"""`semdns bench encoder`: its table, from real runs of the shipped encoder graph."""
from __future__ import annotations

import re

import pytest

from tools.cli import main


@pytest.mark.model
def test_prints_a_row_per_length_and_the_idle_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "encoder", "--lengths", "8,40", "--runs", "2", "--threads", "1",
                 "--lone-threads", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cpu: ")  # the machine line every bench prints
    assert "batch session 1 thread(s), lone session 2" in out
    rows = {int(m[1]): [float(v) for v in m[2].split()] for m in re.finditer(r"^ +(\d+) +([\d. ]+)$", out, re.M)}
    assert sorted(rows) == [8, 40]
    for batch, lone, ratio, batch_cpu, lone_cpu in rows.values():
        assert batch > 0 and lone > 0 and ratio == pytest.approx(lone / batch, abs=0.01)
        assert batch_cpu > 0 and lone_cpu > 0
    assert re.search(r"^CPU in the 50 ms after a lone run: [\d.]+ ms", out, re.M)
