"""A record of class ANY parsed before a zone's first AAAA (or A, SRV, HTTPS, ...) must not change
how IN records of that type are read (`common.rdataclasses`). Each case runs in a fresh interpreter:
dnspython's class cache lives as long as the process."""
from __future__ import annotations

import struct
import subprocess
import sys
import textwrap

import pytest

# one answer RR: root name, type AAAA (28), class ANY (255), TTL 0, 16 octets of rdata
POISON = struct.pack("!HHHHHH", 0x1234, 0x8400, 0, 1, 0, 0) + b"\x00" + struct.pack("!HHIH", 28, 255, 0, 16) + bytes(16)
ZONE = "$ORIGIN example.\\n$TTL 60\\n@ SOA a. b. 1 2 3 4 5\\n@ NS a.\\nwww AAAA 2001:db8::1\\n"


def run_fresh(imports: str) -> subprocess.CompletedProcess[str]:
    """Parse POISON with dnspython, then a zone holding an AAAA, in a new interpreter that first
    imports `imports` (our modules, or nothing)."""
    script = textwrap.dedent(f"""
        {imports}
        import dns.message, dns.zone
        dns.message.from_wire({POISON!r})
        zone = dns.zone.from_text("{ZONE}", relativize=False)
        print(type(zone.get_rdataset("www.example.", "AAAA")[0]).__name__)
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_without_the_guard_one_packet_breaks_the_next_aaaa() -> None:
    result = run_fresh("")
    assert result.returncode != 0 and "generic rdata" in result.stderr, (
        "dnspython no longer caches GenericRdata under (ANY, type): common.rdataclasses may go")


@pytest.mark.parametrize("module", ["zones.loader", "nameserver.wire", "sdk.library"])
def test_a_module_that_parses_resolves_the_classes_first(module: str) -> None:
    result = run_fresh(f"import {module}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "AAAA"
