"""`tools.machine.describe_machine`: the CPU line every benchmark prints."""
from __future__ import annotations

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
