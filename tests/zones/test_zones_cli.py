"""`semdns zone ...` run as a real subprocess."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import dns.name

from zones.tsig import load_keyring

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")

GOOD = (
    "$ORIGIN example.test.\n$TTL 300\n"
    "@ IN SOA ns1 hostmaster 2026112301 3600 900 1209600 300\n"
    "  IN NS ns1\nns1 IN A 127.0.0.1\n"
)


def semdns(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "tools.cli", "zone", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )


def test_check_good_directory_prints_one_summary_per_zone(tmp_path: Path) -> None:
    (tmp_path / "example.test.zone").write_text(GOOD)
    (tmp_path / "other.test.zone").write_text(GOOD.replace("example.test.", "other.test."))
    result = semdns("check", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "example.test.: serial 2026112301, 3 records, 1 file(s): OK",
        "other.test.: serial 2026112301, 3 records, 1 file(s): OK",
    ]


def test_check_bad_directory_prints_file_line_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "example.test.zone").write_text(GOOD + "child IN NS ns1.child\n")
    (tmp_path / "other.test.zone").write_text(GOOD.replace("example.test.", "other.test."))
    result = semdns("check", str(tmp_path))
    assert result.returncode == 1
    path = tmp_path / "example.test.zone"
    assert f"{path}:6: child.example.test.: name server ns1.child.example.test." in result.stdout
    assert "1 error(s)" in result.stderr


def test_warnings_alone_do_not_fail(tmp_path: Path) -> None:
    (tmp_path / "example.test.zone").write_text(GOOD.replace("2026112301", "7"))
    result = semdns("check", str(tmp_path))
    assert result.returncode == 0
    assert f"{tmp_path / 'example.test.zone'}:3: warning: serial 7" in result.stdout


def test_check_empty_directory_fails(tmp_path: Path) -> None:
    assert semdns("check", str(tmp_path)).returncode == 1


def test_keygen_writes_a_private_key_file(tmp_path: Path) -> None:
    out = tmp_path / "k.key"
    result = semdns("keygen", "engine-code", "-a", "hmac-sha512", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    keyring = load_keyring(out)
    assert keyring[dns.name.from_text("engine-code.")].algorithm == dns.name.from_text("hmac-sha512")


def test_reload_sends_sighup_to_the_pid_in_the_file(tmp_path: Path) -> None:
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
        result = semdns("reload", "--pid-file", str(pid_file))
        assert result.returncode == 0, result.stderr
        assert waiter.wait(timeout=30) == 7
    finally:
        if waiter.poll() is None:
            waiter.send_signal(signal.SIGKILL)
            waiter.wait()


def test_reload_with_bad_pid_files(tmp_path: Path) -> None:
    assert semdns("reload", "--pid-file", str(tmp_path / "absent.pid")).returncode == 1
    (tmp_path / "junk.pid").write_text("not a pid")
    assert semdns("reload", "--pid-file", str(tmp_path / "junk.pid")).returncode == 1


def test_keygen_makes_an_existing_file_private(tmp_path: Path) -> None:
    out = tmp_path / "k.key"
    out.write_text("old secret\n")
    out.chmod(0o644)
    result = semdns("keygen", "engine-code", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    assert "old secret" not in out.read_text()
    load_keyring(out)
