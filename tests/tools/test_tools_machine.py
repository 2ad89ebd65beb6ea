"""`tools.machine.describe_machine`: the CPU line every benchmark prints."""
from __future__ import annotations

import argparse

import pytest

from tools.cli import build_parser
from tools.cmd_bench import BENCHES, PRINT_THEIR_OWN_MACHINE_LINE, _with_machine_line
from tools.machine import describe_machine

CPUINFO = """processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 9B14
flags		: fpu sse4_1 sse4_2 avx avx2 bmi2 avx512f avx512bw avx512_vnni amx_tile sha_ni ht

processor	: 1
model name	: AMD EPYC 9B14
flags		: fpu
"""


def test_names_the_model_and_the_flags_that_matter() -> None:
    line = describe_machine(CPUINFO)
    assert line.startswith("cpu: AMD EPYC 9B14 (")
    assert line.endswith("flags: sse4_2 avx avx2 bmi2 avx512f avx512bw avx512_vnni amx_tile sha_ni")


def test_without_cpuinfo_it_still_answers() -> None:
    assert describe_machine("").startswith("cpu: ")
    assert "flags: none listed" in describe_machine("")
    assert describe_machine().startswith("cpu: ")


def test_every_bench_prints_the_machine_line_first(capsys: pytest.CaptureFixture[str]) -> None:
    """`semdns bench <any>` starts with the CPU line (codec and resolve print it in their report)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    benches = next(a for a in commands["bench"]._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name in BENCHES:
        run = benches[name].get_default("func")
        wrapped = run.__name__ == "run_on_this_machine"
        assert wrapped == (name not in PRINT_THEIR_OWN_MACHINE_LINE), name
    assert _with_machine_line(lambda args: 7)(argparse.Namespace()) == 7
    assert capsys.readouterr().out.startswith("cpu: ")
