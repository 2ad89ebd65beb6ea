"""`semdns encode` (a name only for text the SDK sends as a QNAME) and `semdns codec train` on a
corpus the test writes itself."""
from __future__ import annotations

import datetime
import os
import random
import subprocess
import sys
from pathlib import Path

import dns.name
import dns.zone

from codec import qname_to_text, text_to_qname
from codec.library import from_txt_records
from tools.cmd_codec import bump_serial, next_serial

ZONE = """$ORIGIN legal.semantic.root.
$TTL 3600
; a comment mentioning SOA 1999010101 must not be touched
@   IN  SOA ns1.legal.semantic.root. hostmaster.legal.semantic.root. (
            2020010101  ; serial, YYYYMMDDNN
            3600 900 1209600 300 )
    IN  NS  ns1.legal.semantic.root.
ns1 IN  A   127.0.0.2
$INCLUDE codec/legal.semantic.root.codec legal.semantic.root.
"""


def semdns(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], capture_output=True, text=True,
                          cwd=cwd or root, env=env, timeout=120)


def test_encode_prints_the_name() -> None:
    out = semdns("encode", "Is a verbal agreement legally binding?")
    assert out.returncode == 0, out.stderr
    name = out.stdout.strip()
    assert name.endswith(".q.semantic.root.")
    assert qname_to_text(name) == ("is a verbal agreement legally binding?", "semantic.root.")
    explain = semdns("encode", "--explain", "--zone", "legal.semantic.root", "what is a tort")
    assert explain.stdout.strip() == "what-is-a-tort.explain.legal.semantic.root."


def test_encode_too_long_says_use_edns_and_exits_2() -> None:
    out = semdns("encode", " ".join(["word"] * 80))
    assert out.returncode == 2
    assert "EDNS" in out.stderr and not out.stdout


def test_encode_exits_2_when_the_explain_name_would_not_fit() -> None:
    text = ("lease " * 60)[:233].rstrip()  # q name 251 octets under the apex, explain name 257
    assert len(dns.name.from_text(text_to_qname(text, "semantic.root.")).to_wire()) == 251
    for flags in ((), ("--explain",)):
        out = semdns("encode", *flags, text)
        assert out.returncode == 2, flags  # the SDK sends this question in the EDNS form
        assert "EDNS" in out.stderr and not out.stdout


def write_corpus(directory: Path) -> None:
    rnd = random.Random(4)
    words = "tenant landlord lease notice court breach damages party the of and to deposit".split()
    directory.mkdir()
    for i in range(20):
        (directory / f"doc{i}.txt").write_text(" ".join(rnd.choice(words) for _ in range(300)))


def test_codec_train_writes_fragment_bumps_serial_and_signals(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus")
    zonefiles = tmp_path / "zonefiles"
    (zonefiles / "codec").mkdir(parents=True)
    (zonefiles / "codec" / "legal.semantic.root.codec").write_text("")
    (zonefiles / "legal.semantic.root.zone").write_text(ZONE)
    sleeper = subprocess.Popen([sys.executable, "-c", "import signal,sys,time\n"
                                "signal.signal(signal.SIGHUP, lambda *a: sys.exit(7))\n"
                                "print('ready', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert sleeper.stdout.readline().strip() == "ready"
        (tmp_path / "server.pid").write_text(f"{sleeper.pid}\n")
        out = semdns("codec", "train", "--domain", "legal.semantic.root", str(tmp_path / "corpus"),
                     "--zonefiles", str(zonefiles), "--size", "8192", "--pid-file", str(tmp_path / "server.pid"))
        assert out.returncode == 0, out.stderr
        assert sleeper.wait(timeout=30) == 7
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
    fragment = (zonefiles / "codec" / "legal.semantic.root.codec").read_text()
    assert "Trained on 20 documents" in fragment
    zone_text = (zonefiles / "legal.semantic.root.zone").read_text()
    assert "1999010101" in zone_text and "2020010101" not in zone_text
    cwd = os.getcwd()
    os.chdir(zonefiles)  # dnspython resolves $INCLUDE against the working directory
    try:
        zone = dns.zone.from_file("legal.semantic.root.zone", "legal.semantic.root.", allow_include=True)
    finally:
        os.chdir(cwd)
    assert zone.get_soa().serial == next_serial(2020010101)
    header = zone.find_rdataset("_codec", "TXT")[0].strings
    chunks = [zone.find_rdataset("0._codec", "TXT")[0].strings]
    assert len(from_txt_records(header, chunks).data) <= 8192


def test_codec_train_fills_from_other_directories_without_the_corpus(tmp_path: Path) -> None:
    (tmp_path / "contexts").mkdir()
    write_corpus(tmp_path / "contexts" / "legal")
    rnd = random.Random(5)
    other = "patient dose clinic symptom therapy blood pressure chronic acute renal cardiac".split()
    (tmp_path / "contexts" / "medical").mkdir()
    for i in range(12):
        (tmp_path / "contexts" / "medical" / f"m{i}.txt").write_text(" ".join(rnd.choice(other) for _ in range(300)))
    zonefiles = tmp_path / "zonefiles"
    out = semdns("codec", "train", "--domain", "legal.semantic.root", str(tmp_path / "contexts" / "legal"),
                 "--fill", str(tmp_path / "contexts"), "--zonefiles", str(zonefiles), "--size", "65536")
    assert out.returncode == 0, out.stderr
    fragment = (zonefiles / "codec" / "legal.semantic.root.codec").read_text()
    assert "Trained on 20 documents" in fragment and "Filled from 12 other documents" in fragment
    assert '"v=semcodec3"' in fragment


def test_next_serial() -> None:
    today = datetime.date(2026, 11, 23)
    assert next_serial(2026010105, today) == 2026112300
    assert next_serial(2026112300, today) == 2026112301
    assert next_serial(2026112399, today) == 2026112400  # rolls on rather than regress


def test_bump_serial_edits_only_the_serial(tmp_path: Path) -> None:
    path = tmp_path / "z.zone"
    path.write_text(ZONE)
    old, new = bump_serial(path)
    assert old == 2020010101
    assert path.read_text() == ZONE.replace("2020010101", str(new))

