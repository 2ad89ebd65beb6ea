"""zones.tsig: BIND key blocks, generated and read back, usable for signing with dnspython."""
from __future__ import annotations

from pathlib import Path

import dns.message
import dns.name
import dns.tsig
import dns.update
import pytest

from zones.errors import KeyFileError
from zones.tsig import generate_key, load_keyring, parse_keyring, write_key_file


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "hmac-sha512"])
def test_generated_key_round_trips_and_signs(tmp_path: Path, algorithm: str) -> None:
    path = tmp_path / "update.key"
    write_key_file(path, generate_key("engine-legal", algorithm))
    keyring = load_keyring(path)
    name = dns.name.from_text("engine-legal.")
    key = keyring[name]
    assert key.algorithm == dns.name.from_text(algorithm)
    assert len(key.secret) == {"hmac-sha256": 32, "hmac-sha512": 64}[algorithm]
    update = dns.update.UpdateMessage("legal.semantic.root.", keyring=keyring, keyname=name)
    update.add("llm2._llm._tcp", 60, "SRV", "10 10 8113 llm1")
    wire = update.to_wire()
    parsed = dns.message.from_wire(wire, keyring=keyring)
    assert parsed.had_tsig
    other = parse_keyring(generate_key("engine-legal", algorithm))
    with pytest.raises(dns.tsig.BadSignature):
        dns.message.from_wire(wire, keyring=other)


def test_two_keys_every_kind_of_comment_and_default_algorithm() -> None:
    text = (
        "# generated\n// by hand\n/* two keys */\n"
        + generate_key("a")
        + 'key b { secret "c2VjcmV0c2VjcmV0c2VjcmV0"; };\n'
    )
    keyring = parse_keyring(text)
    assert sorted(str(n) for n in keyring) == ["a.", "b."]
    assert keyring[dns.name.from_text("b.")].algorithm == dns.tsig.HMAC_SHA256


def test_two_generated_keys_differ() -> None:
    assert generate_key("k") != generate_key("k")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nothing here", "no key"),
        ('key "k" { algorithm hmac-sha256; };', "no secret"),
        ('key "k" { algorithm hmac-foo; secret "YQ=="; };', "unsupported algorithm"),
        ('key "k" { secret "not base64!"; };', "not base64"),
    ],
)
def test_bad_key_files(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.key"
    write_key_file(path, text)
    with pytest.raises(KeyFileError) as info:
        load_keyring(path)
    assert needle in str(info.value) and str(path) in str(info.value)


def test_unsupported_algorithm_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        generate_key("k", "hmac-md4")
    with pytest.raises(KeyFileError):
        load_keyring(tmp_path / "absent.key")



def test_secret_containing_comment_markers_is_kept() -> None:
    # Base64 secrets can contain "//" (random keys do, now and then); only real comments go.
    text = (
        '// engines of legal\nkey "k1" { algorithm hmac-sha256; # the usual\n'
        '  /* inline */ secret "AAAA////AAAA"; };\n'
    )
    key = parse_keyring(text)[dns.name.from_text("k1")]
    assert key.secret == b"\x00\x00\x00\xff\xff\xff\x00\x00\x00"


@pytest.mark.parametrize(("mode", "how"), [(0o644, "readable"), (0o640, "readable"), (0o604, "readable"),
                                           (0o620, "writable")])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, mode: int, how: str) -> None:
    path = tmp_path / "update.key"
    write_key_file(path, generate_key("engine-legal"))
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        load_keyring(path)
    assert f"key file {path} is {how} by others (mode {mode:04o}); chmod 600 it" in str(info.value)
    path.chmod(0o600)
    assert load_keyring(path)
    path.chmod(0o400)
    assert load_keyring(path)


def test_write_key_file_makes_an_existing_file_private(tmp_path: Path) -> None:
    path = tmp_path / "update.key"
    path.write_text("x" * 1000)
    path.chmod(0o666)
    write_key_file(path, generate_key("engine-legal"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert "xxx" not in path.read_text()


def test_the_engines_key_loader_refuses_a_readable_file(tmp_path: Path) -> None:
    from engines.registration import load_tsig

    path = tmp_path / "engine.key"
    write_key_file(path, generate_key("engine.legal.semantic.root."))
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others .mode 0644.; chmod 600 it"):
        load_tsig(path)


def test_engine_start_up_refuses_a_readable_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from tools import cmd_engine

    path = tmp_path / "engine.key"
    write_key_file(path, generate_key("engine.legal.semantic.root."))
    path.chmod(0o644)
    monkeypatch.setattr(cmd_engine, "_config", lambda args: None)  # no model needed to reach the key
    args = argparse.Namespace(server="127.0.0.1:5353", tsig_key=path, domain="legal.semantic.root.", lease=60,
                              ttl=30, instance=None, advertise=None)
    assert cmd_engine.run(args) == 2
    assert f"semdns engine: key file {path} is readable by others (mode 0644); chmod 600 it" in (
        capsys.readouterr().err)
