"""The lines of a master file as the editor sees them: where each record starts and ends.

`scan(text, origin)` walks a zonefile (or an included fragment) line by line and returns its
`Entry`s (one per resource record: its line range, owner, type, the tokens of its rdata with their
positions) and `Include`s (the `$INCLUDE` directives), understanding `$ORIGIN`, `$TTL`,
parentheses that continue a record over several lines, `;` comments, quoted strings and names
relative to the origin in effect. It never follows an include (the caller has the files) and it
parses nothing itself that dnspython can: names go through `dns.name.from_text`, rdata through
`dns.rdata.from_text` (`Entry.rdata`). No I/O: text in, values out.

The editing helpers here work on lists of lines (`str` with their line ends) and never touch a
line they were not asked to: `format_record` writes a new record in the columns of a model
record, `quote` writes a character-string, `replace_token` changes one token in place.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.ttl

from zones.errors import ZonesError

CLASSES = frozenset({"IN", "CH", "HS", "ANY", "NONE"})


class EditError(ZonesError):
    """An edit that cannot be made (the name is unknown, already there, the file is unreadable...)."""


@dataclass(frozen=True)
class Token:
    line: int  # 0-based index of the line in the file
    col: int
    text: str  # as written (quotes and escapes included)

    @property
    def end(self) -> int:
        return self.col + len(self.text)


@dataclass(frozen=True)
class Entry:
    """One resource record as written: lines [start, end) of `file`."""

    file: str
    start: int
    end: int
    owner: dns.name.Name  # absolute
    explicit_owner: bool  # False: the line starts with blank space (the previous owner)
    origin: dns.name.Name  # the $ORIGIN in effect
    ttl: int | None  # written on the record, else None
    rdtype: dns.rdatatype.RdataType
    head: tuple[Token, ...]  # owner (when written), TTL, class, type
    rdata_tokens: tuple[Token, ...]

    @property
    def rdata_text(self) -> str:
        return " ".join(token.text for token in self.rdata_tokens)

    def rdata(self) -> dns.rdata.Rdata:
        return dns.rdata.from_text(
            dns.rdataclass.IN, self.rdtype, self.rdata_text, origin=self.origin, relativize=False
        )

    def strings(self) -> list[str]:
        """The character-strings of a TXT record, decoded as UTF-8."""
        rdata = self.rdata()
        return [s.decode("utf-8", "replace") for s in getattr(rdata, "strings", ())]

    @property
    def one_line(self) -> bool:
        return self.end - self.start == 1


@dataclass(frozen=True)
class Include:
    """An `$INCLUDE path [origin]` line; `target` is the path relative to the directory root."""

    file: str
    line: int
    target: str
    origin: dns.name.Name


def _tokens(line: str, index: int) -> tuple[list[Token], int]:
    """The tokens of one physical line (parentheses and comments dropped) and its paren balance."""
    tokens: list[Token] = []
    depth = 0
    j, size = 0, len(line)
    while j < size:
        c = line[j]
        if c in " \t\r\n":
            j += 1
        elif c == ";":
            break
        elif c in "()":
            depth += 1 if c == "(" else -1
            j += 1
        elif c == '"':
            k = j + 1
            while k < size and line[k] not in '"\n':
                k += 2 if line[k] == "\\" else 1
            tokens.append(Token(index, j, line[j : min(k + 1, size)].rstrip("\n")))
            j = k + 1
        else:
            k = j
            while k < size and line[k] not in ' \t\r\n;()"':
                k += 2 if line[k] == "\\" else 1
            tokens.append(Token(index, j, line[j:k]))
            j = k
    return tokens, depth


def _is_ttl(text: str) -> bool:
    try:
        dns.ttl.from_text(text)
    except (dns.exception.DNSException, ValueError):
        return False
    return True


def resolve_path(including: str, path: str) -> str:
    """An include path relative to the including file's folder, as a path from the root."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(including), path))


def scan(text: str, origin: dns.name.Name, file: str = "") -> tuple[list[Entry], list[Include]]:
    """The records and includes of one file read with `origin` (see the module docstring)."""
    lines = text.splitlines(keepends=True)
    entries: list[Entry] = []
    includes: list[Include] = []
    last_owner = origin
    i = 0
    while i < len(lines):
        start = i
        tokens, depth = _tokens(lines[i], i)
        while depth > 0 and i + 1 < len(lines):
            i += 1
            more, delta = _tokens(lines[i], i)
            tokens += more
            depth += delta
        i += 1
        if not tokens:
            continue
        blank_owner = lines[start][:1] in (" ", "\t")
        first = tokens[0]
        try:
            if not blank_owner and first.text.startswith("$"):
                directive = first.text.upper()
                if directive == "$ORIGIN" and len(tokens) > 1:
                    origin = dns.name.from_text(tokens[1].text, origin)
                elif directive == "$INCLUDE" and len(tokens) > 1:
                    target = resolve_path(file, tokens[1].text)
                    given = dns.name.from_text(tokens[2].text, origin) if len(tokens) > 2 else origin
                    includes.append(Include(file, start, target, given))
                continue
            head = [] if blank_owner else [first]
            rest = tokens if blank_owner else tokens[1:]
            if not blank_owner:
                last_owner = origin if first.text == "@" else dns.name.from_text(first.text, origin)
            ttl = None
            k = 0
            while k < len(rest) - 1 and k < 2:
                if rest[k].text.upper() in CLASSES:
                    head.append(rest[k])
                elif _is_ttl(rest[k].text):
                    ttl = dns.ttl.from_text(rest[k].text)
                    head.append(rest[k])
                else:
                    break
                k += 1
            if k >= len(rest):
                continue
            rdtype = dns.rdatatype.from_text(rest[k].text)
            head.append(rest[k])
        except dns.exception.DNSException as exc:
            raise EditError(f"{file}:{start + 1}: cannot read this line: {exc}") from None
        entries.append(
            Entry(file, start, i, last_owner, not blank_owner, origin, ttl, rdtype,
                  tuple(head), tuple(rest[k + 1 :]))
        )
    return entries, includes


def quote(text: str) -> str:
    """`text` as one quoted character-string (UTF-8 kept, `"` and `\\` escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def relative_owner(owner: dns.name.Name, origin: dns.name.Name) -> str:
    if owner == origin:
        return "@"
    if owner.is_subdomain(origin):
        return owner.relativize(origin).to_text()
    return owner.to_text()


def format_record(
    owner: str, rdtype: str, rdata: str, ttl: int | None, model: Entry | None, lines: list[str]
) -> str:
    """One record line, in the columns of `model` (a record of the same file) when there is one."""
    head = f"{ttl} IN {rdtype} " if ttl is not None else f"IN {rdtype} "
    if model is None or not model.explicit_owner or len(model.head) < 2:
        return f"{owner} {head}{rdata}\n"
    line = lines[model.start]
    second = model.head[1]
    same = model.rdtype == dns.rdatatype.from_text(rdtype) and model.ttl == ttl
    if same and model.rdata_tokens and model.rdata_tokens[0].line == model.start:
        head = line[second.col : model.rdata_tokens[0].col]
    return f"{_pad(owner, line[: second.col])}{head}{rdata}\n"


def _pad(owner: str, model: str) -> str:
    """`owner` followed by blanks up to where `model` (a line's owner field) ends: with tabs when
    the model uses tabs (tab stops of 8), else spaces; at least one blank."""
    if "\t" not in model:
        return owner + " " * max(1, len(model) - len(owner))
    column = len(model.expandtabs(8))
    padded = owner + "\t"
    while len(padded.expandtabs(8)) < column:
        padded += "\t"
    return padded


def replace_token(line: str, token: Token, text: str) -> str:
    """`line` with `token` replaced by `text`, the columns after it kept where the spaces allow."""
    after = line[token.end :]
    spaces = len(after) - len(after.lstrip(" "))
    grow = len(text) - len(token.text)
    if after.strip() and spaces:
        if grow > 0:
            after = after[min(grow, spaces - 1) :]
        elif grow < 0:
            after = " " * -grow + after
    return line[: token.col] + text + after


def owner_prefix(line: str, owner: str) -> str:
    """A continuation line (blank owner) given its owner explicitly, columns kept if possible."""
    body = line.lstrip(" \t")
    indent = len(line) - len(body)
    if indent > len(owner) and "\t" not in line[:indent]:
        return owner + line[len(owner) :]
    return f"{owner} {body}"
