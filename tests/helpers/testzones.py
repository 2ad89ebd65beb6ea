"""Small zonefiles that exercise every kind of authoritative answer (written by the tests).

`write_test_zones(directory)` writes `sem.test.zone` (parent) and `child.sem.test.zone` (a hosted
child) into `directory` and returns it. What they hold, by name under `sem.test.`:
    www A/AAAA, alias -> alias2 -> www (CNAME chain), ext -> www.example.net. (leaves our zones),
    into-child -> x.child.sem.test. (crosses into the hosted child zone),
    into-sub -> host.sub.sem.test. (leads into a delegation), loop1 <-> loop2 (CNAME loop),
    *.wild A/TXT (wildcard), deep.ent.path A (so ent.path and path are empty non-terminals),
    sub NS ns1.sub + glue 127.0.0.2 (a delegation not hosted here),
    child NS ns1.child + glue (the cut for the hosted child zone), big TXT (> 1232 bytes),
    mx MX -> mail A, _llm._tcp SRV -> llm1 A, legal TXT (for case tests).
"""
from __future__ import annotations

from pathlib import Path

PARENT = "sem.test."
CHILD = "child.sem.test."
SERIAL = 2026112301

BIG_TXT = "\n".join(f'big TXT "{i:02d}-' + "x" * 180 + '"' for i in range(12))


def parent_zone(serial: int = SERIAL, www: str = "192.0.2.1") -> str:
    return f"""$ORIGIN sem.test.
$TTL 3600
@       SOA ns1.sem.test. hostmaster.sem.test. ( {serial} 3600 900 1209600 300 )
@       NS  ns1.sem.test.
ns1     A   127.0.0.1
www     A   {www}
www     AAAA 2001:db8::1
alias   CNAME alias2
alias2  CNAME www
ext     CNAME www.example.net.
into-child CNAME x.child.sem.test.
into-sub CNAME host.sub.sem.test.
loop1   CNAME loop2
loop2   CNAME loop1
*.wild  A   192.0.2.9
*.wild  TXT "wildcard"
deep.ent.path A 192.0.2.5
sub     NS  ns1.sub.sem.test.
ns1.sub A   127.0.0.2
child   NS  ns1.child.sem.test.
ns1.child A 127.0.0.3
mx      MX  10 mail.sem.test.
mail    A   192.0.2.25
_llm._tcp SRV 10 10 8110 llm1.sem.test.
_llm._tcp TXT "txtvers=1" "model=smollm2-135m-instruct"
llm1    A   127.0.0.1
legal   TXT "legal"
{BIG_TXT}
"""


def child_zone(serial: int = SERIAL) -> str:
    return f"""$ORIGIN child.sem.test.
$TTL 600
@       SOA ns1.child.sem.test. hostmaster.child.sem.test. ( {serial} 3600 900 1209600 60 )
@       NS  ns1.child.sem.test.
ns1     A   127.0.0.3
x       A   192.0.2.77
"""


def write_test_zones(directory: Path, serial: int = SERIAL, www: str = "192.0.2.1") -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{PARENT}zone").write_text(parent_zone(serial, www))
    (directory / f"{CHILD}zone").write_text(child_zone(serial))
    return directory
