"""`semdns zone add-.../remove-.../bump-serial` (in this process; once as a subprocess) on a copy of `zonefiles/`:
the result loads and checks, every line the edit is not about stays byte for byte, serials rise,
`--dry-run` prints the diff and changes nothing, a breaking edit is refused with file:line."""
from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.shipped import ZONEFILES, shipped_serial

from tools.cli import main
from zones.loader import load_checked, zone_files

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SERIAL_LINE = re.compile(r"^\s+\d+\s+; serial")


def semdns(*args: str) -> subprocess.CompletedProcess[str]:
    """`semdns zone ARGS` in this process (the dry-run test runs the real command)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["zone", *args])
    return subprocess.CompletedProcess(["semdns", "zone", *args], code, out.getvalue(), err.getvalue())


def semdns_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "tools.cli", "zone", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    copy = tmp_path / "zonefiles"
    shutil.copytree(ZONEFILES, copy)
    return copy


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def digest(directory: Path) -> str:
    return hashlib.sha256(repr(sorted(tree(directory).items())).encode()).hexdigest()


def line_changes(before: bytes, after: bytes) -> tuple[list[str], list[str]]:
    """Lines removed and lines added (byte-exact lines, ends kept): all else is untouched."""
    old, new = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    removed: list[str] = []
    added: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += old[i1:i2]
            added += new[j1:j2]
    return removed, added


def edited(before: dict[str, bytes], after: dict[str, bytes]) -> dict[str, tuple[list[str], list[str]]]:
    keys = set(before) | set(after)
    return {k: line_changes(before.get(k, b""), after.get(k, b"")) for k in sorted(keys)
            if before.get(k) != after.get(k)}


def assert_loads(directory: Path) -> None:
    for path in zone_files(directory):
        loaded, problems = load_checked(path)
        assert loaded is not None, [str(p) for p in problems]


def only_serial(change: tuple[list[str], list[str]]) -> bool:
    removed, added = change
    return len(removed) == len(added) == 1 and bool(SERIAL_LINE.match(removed[0])) and bool(SERIAL_LINE.match(added[0]))


def test_add_exemplar_and_keyword_touch_one_line_each_and_bump_the_serial(zones: Path) -> None:
    before = tree(zones)
    result = semdns("add-exemplar", str(zones), "legal.semantic.root", "Can my landlord keep my deposit for paint?")
    assert result.returncode == 0, result.stderr
    assert f"semantic.root.: serial {shipped_serial('semantic.root.')} -> " in result.stdout
    result = semdns("add-keyword", str(zones), "contract.legal.semantic.root", "escrow", "bill of sale")
    assert result.returncode == 0, result.stderr
    changes = edited(before, tree(zones))
    assert set(changes) == {"semantic.root.zone", "routes/semantic.root.routes", "legal.semantic.root.zone",
                            "routes/legal.semantic.root.routes"}
    assert only_serial(changes["semantic.root.zone"]) and only_serial(changes["legal.semantic.root.zone"])
    assert changes["routes/semantic.root.routes"] == (
        [], ['legal._route    IN TXT "ex=Can my landlord keep my deposit for paint?"\n'])
    assert changes["routes/legal.semantic.root.routes"] == (
        [], ['contract._route   IN TXT "kw=escrow,bill of sale"\n'])
    assert_loads(zones)


def test_remove_exemplar_and_keyword(zones: Path) -> None:
    before = tree(zones)
    ex = "What counts as a material breach of contract?"
    assert semdns("remove-exemplar", str(zones), "contract.legal.semantic.root", ex).returncode == 0
    result = semdns("remove-keyword", str(zones), "contract.legal.semantic.root", "eula", "fine print")
    assert result.returncode == 0, result.stderr
    removed, added = edited(before, tree(zones))["routes/legal.semantic.root.routes"]
    assert f'contract._route   IN TXT "ex={ex}"\n' in removed and len(removed) == 3
    assert [line for line in added if "eula" in line or "fine print" in line] == []
    assert all(line.startswith('contract._route   IN TXT "kw=') for line in added) and len(added) == 2
    assert "no keyword 'nope'" in semdns("remove-keyword", str(zones), "legal.semantic.root", "nope").stderr
    assert_loads(zones)


def test_add_and_remove_engine(zones: Path) -> None:
    before = tree(zones)
    result = semdns("add-engine", str(zones), "litigation.legal.semantic.root", "--port", "8113",
                    "--address", "127.0.0.9")
    assert result.returncode == 0, result.stderr
    removed, added = edited(before, tree(zones))["legal.semantic.root.zone"]
    assert added[1:] == ["_llm._tcp.litigation  300 IN  SRV 10 10 8113 llm2.litigation\n",
                         "llm2.litigation       300 IN  A   127.0.0.9\n"]
    assert_loads(zones)
    middle = tree(zones)
    result = semdns("remove-engine", str(zones), "litigation.legal.semantic.root", "--target", "llm2.litigation")
    assert result.returncode == 0, result.stderr
    removed, added = edited(middle, tree(zones))["legal.semantic.root.zone"]
    assert len(added) == 1 and removed[1:] == ["_llm._tcp.litigation  300 IN  SRV 10 10 8113 llm2.litigation\n",
                                               "llm2.litigation       300 IN  A   127.0.0.9\n"]
    assert_loads(zones)


def test_add_hosted_and_delegated_domains_then_remove_them(zones: Path) -> None:
    before = tree(zones)
    result = semdns("add-domain", str(zones), "pension.finance.semantic.root", "--desc", "Pensions and retirement",
                    "--kw", "pension", "--kw", "retirement", "--ex", "When can I draw my pension?",
                    "--engine-port", "8163", "--engine-address", "127.0.0.1")
    assert result.returncode == 0, result.stderr
    result = semdns("add-domain", str(zones), "travel.semantic.root", "--desc", "Travel", "--kw", "flight",
                    "--delegate", "127.0.0.9", "--engine-port", "8170", "--engine-address", "127.0.0.1")
    assert result.returncode == 0, result.stderr
    after = tree(zones)
    assert "travel.semantic.root.zone" in after
    changes = edited(before, after)
    assert changes["semantic.root.zone"][1][1:] == ["travel      IN  NS  ns1.travel.semantic.root.\n",
                                                    "ns1.travel  IN  A   127.0.0.9\n"]
    assert all(not removed or only_serial((removed, added[:1])) for removed, added in changes.values())
    assert '_llm._tcp.pension 300 IN  SRV 10 10 8163 llm1.pension\n' in changes["finance.semantic.root.zone"][1]
    assert_loads(zones)
    for child in ("travel.semantic.root", "pension.finance.semantic.root"):
        result = semdns("remove-domain", str(zones), child)
        assert result.returncode == 0, result.stderr
    back = edited(before, tree(zones))
    assert "travel.semantic.root.zone" not in tree(zones)
    assert all(only_serial(change) for change in back.values()), back  # all else exactly as shipped


def test_remove_delegated_domain_takes_its_zonefile_fragments_and_comments(zones: Path) -> None:
    before = tree(zones)
    result = semdns("remove-domain", str(zones), "contract.legal.semantic.root")
    assert result.returncode == 0, result.stderr
    after = tree(zones)
    assert "contract.legal.semantic.root.zone" not in after
    assert "codec/contract.legal.semantic.root.codec" not in after
    removed, _ = edited(before, after)["legal.semantic.root.zone"]
    assert "contract         IN  NS  ns1.contract.legal.semantic.root.\n" in removed
    assert any(line.startswith("; --- delegation: contract") for line in removed)
    assert "contract" not in "".join(after["routes/legal.semantic.root.routes"].decode().split("litigation")[1:2])
    assert "has zones of its own below it" in semdns("remove-domain", str(zones), "medical.semantic.root").stderr
    assert_loads(zones)


def test_bump_serial_is_date_based(zones: Path) -> None:
    result = semdns("bump-serial", str(zones), "semantic.root")
    assert result.returncode == 0, result.stderr
    new = int(result.stdout.split("->")[-1])
    assert new > shipped_serial("semantic.root.") and len(str(new)) == 10


def test_dry_run_prints_the_diff_and_changes_nothing(zones: Path) -> None:
    before = digest(zones)
    result = semdns_process("add-keyword", str(zones), "legal.semantic.root", "escrow", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "--- a/routes/semantic.root.routes\n+++ b/routes/semantic.root.routes\n" in result.stdout
    assert '\n+legal._route    IN TXT "kw=escrow"\n' in result.stdout
    old_serial = f"\n-                {shipped_serial('semantic.root.')}  ; serial"
    assert "--- a/semantic.root.zone" in result.stdout and old_serial in result.stdout
    assert digest(zones) == before


def test_an_edit_that_breaks_the_zone_is_refused_and_nothing_written(zones: Path) -> None:
    before = digest(zones)
    # an in-zone SRV target without an address: zones.check refuses it
    result = semdns("add-engine", str(zones), "litigation.legal.semantic.root", "--port", "8113")
    assert result.returncode == 1
    assert "refused" in result.stderr
    assert re.search(rf"{re.escape(str(zones / 'legal.semantic.root.zone'))}:\d+: .*has no A/AAAA", result.stderr)
    assert digest(zones) == before
    result = semdns("add-domain", str(zones), "tax.finance.semantic.root", "--desc", "again")
    assert result.returncode == 1 and "exists already" in result.stderr
    assert digest(zones) == before


def test_named_target_and_reload_pid_file(zones: Path, tmp_path: Path) -> None:
    waiter = subprocess.Popen(
        [sys.executable, "-c",
         "import signal,sys\nsignal.signal(signal.SIGHUP, lambda *a: sys.exit(7))\n"
         "print('ready', flush=True)\nsignal.pause()"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert waiter.stdout is not None and waiter.stdout.readline().strip() == "ready"
        pid_file = tmp_path / "semdns.pid"
        pid_file.write_text(f"{waiter.pid}\n")
        result = semdns("add-engine", str(zones), "litigation.legal.semantic.root", "--port", "8113",
                        "--target", "gpu.litigation", "--address", "127.0.0.9", "--reload-pid-file", str(pid_file))
        assert result.returncode == 0, result.stderr
        assert f"sent SIGHUP to {waiter.pid}" in result.stdout
        assert waiter.wait(timeout=30) == 7
    finally:
        if waiter.poll() is None:
            waiter.send_signal(signal.SIGKILL)
            waiter.wait()
    text = (zones / "legal.semantic.root.zone").read_text()
    assert "_llm._tcp.litigation  300 IN  SRV 10 10 8113 gpu.litigation\n" in text
    assert "gpu.litigation        300 IN  A   127.0.0.9\n" in text
