"""TSIG keys (RFC 8945) for signing DNS UPDATE: generation and BIND-style key files.

`generate_key` writes the same block as BIND's `tsig-keygen`:

    key "engine-legal" {
            algorithm hmac-sha256;
            secret "base64...";
    };

`load_keyring` reads one or more such blocks (comments `#`, `//` and `/* */` allowed) into a
dnspython keyring `{dns.name.Name: dns.tsig.Key}`, ready for `dns.message.Message.use_tsig`,
`dns.update.UpdateMessage(keyring=...)` or the server's verifier (`zones.tsigguard`). It is the
one loader of the server and of the engines, and it refuses a key file that group or others may
read or write (`chmod 600 FILE`). `write_key_file` writes one with mode 0600, whatever mode an
existing file had.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path

import dns.exception
import dns.name
import dns.tsig
import dns.tsigkeyring

from zones.errors import KeyFileError

# Secret sizes as tsig-keygen picks them: the digest size of the algorithm's hash.
ALGORITHMS: dict[str, int] = {
    "hmac-sha1": hashlib.sha1().digest_size,
    "hmac-sha224": hashlib.sha224().digest_size,
    "hmac-sha256": hashlib.sha256().digest_size,
    "hmac-sha384": hashlib.sha384().digest_size,
    "hmac-sha512": hashlib.sha512().digest_size,
}

# A quoted string (kept: base64 secrets may contain "//") or a comment (dropped).
_COMMENTS = re.compile(r'(?P<quoted>"[^"]*")|/\*.*?\*/|//[^\n]*|#[^\n]*', re.DOTALL)
_KEY_BLOCK = re.compile(
    r'key\s+(?:"(?P<qname>[^"]+)"|(?P<name>[^\s{]+))\s*\{(?P<body>[^}]*)\}\s*;?',
    re.IGNORECASE,
)
_STATEMENT = re.compile(r'(?P<keyword>\w+)\s+(?:"(?P<qvalue>[^"]*)"|(?P<value>[^;\s]+))\s*;')


def generate_key(name: str, algorithm: str = "hmac-sha256") -> str:
    """A new random key as a BIND `key` block (what `tsig-keygen -a ALG NAME` prints)."""
    algorithm = algorithm.lower()
    if algorithm not in ALGORITHMS:
        raise KeyFileError(f"unsupported TSIG algorithm {algorithm!r} (use one of {', '.join(ALGORITHMS)})")
    try:
        key_name = dns.name.from_text(name).to_text(omit_final_dot=True)
    except dns.exception.DNSException as exc:
        raise KeyFileError(f"bad key name {name!r}: {exc}") from None
    secret = base64.b64encode(secrets.token_bytes(ALGORITHMS[algorithm])).decode("ascii")
    return f'key "{key_name}" {{\n\talgorithm {algorithm};\n\tsecret "{secret}";\n}};\n'


def parse_keyring(text: str, source: str = "<string>") -> dict[dns.name.Name, dns.tsig.Key]:
    """The keys of BIND `key` blocks in `text`; `source` names the file in error messages."""
    text = _COMMENTS.sub(lambda m: m.group("quoted") or "", text)
    textring: dict[str, tuple[str, str]] = {}
    for block in _KEY_BLOCK.finditer(text):
        name = block.group("qname") or block.group("name")
        fields = {
            m.group("keyword").lower(): m.group("qvalue") if m.group("qvalue") is not None else m.group("value")
            for m in _STATEMENT.finditer(block.group("body"))
        }
        if "secret" not in fields:
            raise KeyFileError(f"{source}: key {name!r} has no secret")
        algorithm = fields.get("algorithm", "hmac-sha256").lower()
        if algorithm not in ALGORITHMS:
            raise KeyFileError(f"{source}: key {name!r}: unsupported algorithm {algorithm!r}")
        try:
            base64.b64decode(fields["secret"], validate=True)
        except ValueError:
            raise KeyFileError(f"{source}: key {name!r}: secret is not base64") from None
        textring[name] = (algorithm, fields["secret"])
    if not textring:
        raise KeyFileError(f"{source}: no key \"name\" {{ algorithm ...; secret \"...\"; }}; block found")
    try:
        return dns.tsigkeyring.from_text(textring)
    except dns.exception.DNSException as exc:
        raise KeyFileError(f"{source}: {exc}") from None


def load_keyring(path: str | Path) -> dict[dns.name.Name, dns.tsig.Key]:
    """Read a key file (one or more BIND `key` blocks) into a dnspython keyring; a file that
    group or others may read or write is a `KeyFileError` (secrets stay the owner's)."""
    try:
        with open(path, encoding="utf-8") as handle:
            check_key_file_mode(path, os.fstat(handle.fileno()).st_mode)
            text = handle.read()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror or exc}") from None
    return parse_keyring(text, str(path))


def check_key_file_mode(path: str | Path, mode: int) -> None:
    """`KeyFileError` unless only the owner may read and write a key file of this `st_mode`."""
    if not stat.S_ISREG(mode):
        raise KeyFileError(f"key file {path} is not a regular file")
    perms = stat.S_IMODE(mode)
    if perms & 0o077:
        how = "readable" if perms & 0o044 else "writable"
        raise KeyFileError(f"key file {path} is {how} by others (mode {perms:04o}); chmod 600 it")


def write_key_file(path: str | Path, text: str) -> None:
    """Write `text` (key blocks) to `path` with mode 0600, also when the file existed with another
    mode (it is made private before a byte of the new secret is written)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write key file: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
