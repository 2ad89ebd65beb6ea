"""Layout-preserving edits of a zone directory, as text: the core of `semdns zone add-...`.

`ZoneEdit(texts, today)` holds every file of a zone directory that a zone reads (`*.zone` files at
the top, and what they `$INCLUDE`; keys are paths relative to the directory, `/`-separated). Edits
change those texts line by line: a record is added as one new line in the columns of its
neighbours, removed with exactly its own lines (and the comment paragraph that introduced it when
nothing else is left there), and every other line stays byte for byte what it was. `changes()`
bumps the SOA serial of each zone whose files changed (RFC 1982; `next_serial`) and returns the
new texts (None: delete the file). The operations (domains, profiles, engines) are in
`zones.edit_ops`; reading, validating and writing files in `zones.edit_files`. No I/O here.
"""
from __future__ import annotations

import datetime
import re
from typing import Iterable, Mapping, Sequence

import dns.name
import dns.rdatatype

from zones.check import is_date_serial
from zones.edit_text import EditError, Entry, Include, format_record, owner_prefix, relative_owner, replace_token, scan
from zones.loader import ZONE_SUFFIX

SOA = dns.rdatatype.SOA
NewRecord = tuple[dns.name.Name, str, str, "int | None"]  # owner, type, rdata text, TTL


def next_serial(old: int, today: datetime.date) -> int:
    """The serial after `old`: today's YYYYMMDD00 (or old + 1 past it) for a date serial, else
    old + 1; modulo 2**32, so always newer than `old` in RFC 1982 arithmetic."""
    if is_date_serial(old):
        return max(int(today.strftime("%Y%m%d")) * 100, old + 1) % 2**32
    return (old + 1) % 2**32


def zonefile_origin(key: str) -> dns.name.Name | None:
    if "/" in key or not key.endswith(ZONE_SUFFIX):
        return None
    return dns.name.from_text(key[: -len(ZONE_SUFFIX)].rstrip(".") + ".")


def included_files(key: str, text: str) -> list[str]:
    """The files `key` pulls in with `$INCLUDE` (paths from the root), for the caller to read."""
    origin = zonefile_origin(key) or dns.name.root
    return [include.target for include in scan(text, origin, key)[1]]


class ZoneEdit:
    def __init__(self, texts: Mapping[str, str], today: datetime.date) -> None:
        self.before: dict[str, str] = dict(texts)
        self.files: dict[str, str | None] = dict(texts)
        self.today = today
        self.bumped: set[dns.name.Name] = set()
        self.created: set[dns.name.Name] = set()

    # --- reading ----------------------------------------------------------------------------
    def zones(self) -> dict[dns.name.Name, str]:
        """Every zone of the directory: origin -> its zonefile's key."""
        found = {}
        for key, text in self.files.items():
            origin = zonefile_origin(key)
            if origin is not None and text is not None:
                found[origin] = key
        return found

    def text(self, key: str) -> str:
        text = self.files.get(key)
        if text is None:
            raise EditError(f"{key}: no such file")
        return text

    def lines(self, key: str) -> list[str]:
        return self.text(key).splitlines(keepends=True)

    def zone_files(self, origin: dns.name.Name) -> list[tuple[str, dns.name.Name]]:
        """The files of a zone with the origin each is read with: the zonefile, then its includes."""
        key = self.zones().get(origin)
        if key is None:
            raise EditError(f"no zonefile for {origin}")
        result = [(key, origin)]
        seen = {key}
        queue = [key]
        while queue:
            current = queue.pop(0)
            read_with = dict(result)[current]
            for include in scan(self.text(current), read_with, current)[1]:
                if include.target not in seen:
                    seen.add(include.target)
                    result.append((include.target, include.origin))
                    queue.append(include.target)
        return result

    def entries(self, origin: dns.name.Name, key: str | None = None) -> list[Entry]:
        """The records of a zone (or of one of its files), in file order."""
        found: list[Entry] = []
        for file, read_with in self.zone_files(origin):
            if key is None or file == key:
                found += scan(self.text(file), read_with, file)[0]
        return found

    def includes(self, origin: dns.name.Name, key: str) -> list[Include]:
        read_with = dict(self.zone_files(origin))[key]
        return scan(self.text(key), read_with, key)[1]

    def zone_of(self, name: dns.name.Name, below: dns.name.Name | None = None) -> dns.name.Name:
        """The deepest zone whose origin encloses `name` (strictly above `below` when given)."""
        best: dns.name.Name | None = None
        for origin in self.zones():
            if name.is_subdomain(origin) and (below is None or origin != below):
                if best is None or len(origin) > len(best):
                    best = origin
        if best is None:
            raise EditError(f"{name} is in none of the zones of this directory")
        return best

    # --- writing ----------------------------------------------------------------------------
    def set_lines(self, key: str, lines: Sequence[str]) -> None:
        self.files[key] = "".join(lines)

    def create(self, key: str, text: str) -> None:
        if self.files.get(key) is not None:
            raise EditError(f"{key} exists already")
        self.files[key] = text
        origin = zonefile_origin(key)
        if origin is not None:
            self.created.add(origin)

    def delete(self, key: str) -> None:
        self.files[key] = None

    def add_records(
        self,
        key: str,
        records: Iterable[NewRecord],
        after: Entry | None = None,
        comment: Sequence[str] = (),
    ) -> None:
        """Insert `records` into file `key`: right after `after` (and the records that continue its
        owner), else as a new paragraph (a blank line, `comment` lines) after the file's last record."""
        lines = self.lines(key)
        entries = self._file_entries(key)
        if after is not None:
            position = after.end
            for entry in entries:  # never between a record and those that continue its owner
                if entry.start >= position:
                    if entry.explicit_owner:
                        break
                    position = entry.end
            in_effect = after.origin
            block: list[str] = []
        else:
            last = entries[-1] if entries else None
            position = last.end if last is not None else len(lines)
            in_effect = last.origin if last is not None else self._read_with(key)
            block = ["\n", *(f"; {c}\n" if c else ";\n" for c in comment)]
            if position and not lines[position - 1].endswith("\n"):
                lines[position - 1] += "\n"
        for owner, rdtype, rdata, ttl in records:
            model = self._model(entries, rdtype, ttl, after)
            block.append(format_record(relative_owner(owner, in_effect), rdtype, rdata, ttl, model, lines))
        lines[position:position] = block
        self.set_lines(key, lines)

    def _read_with(self, key: str) -> dns.name.Name:
        """The origin file `key` is read with (by the zone that reads it)."""
        for origin in self.zones():
            files = dict(self.zone_files(origin))
            if key in files:
                return files[key]
        raise EditError(f"{key} is not read by any zone")

    def _file_entries(self, key: str) -> list[Entry]:
        return scan(self.text(key), self._read_with(key), key)[0]

    @staticmethod
    def _model(entries: list[Entry], rdtype: str, ttl: int | None, after: Entry | None) -> Entry | None:
        """The record whose columns a new one copies: `after`, else the last of the same type and
        TTL, of the same type, of any type (written on one line with its owner)."""
        wanted = dns.rdatatype.from_text(rdtype)
        if after is not None and after.rdtype == wanted and after.explicit_owner:
            return after
        usable = [e for e in entries if e.explicit_owner and e.one_line]
        for keep in (lambda e: e.rdtype == wanted and e.ttl == ttl, lambda e: e.rdtype == wanted, bool):
            chosen = [e for e in usable if keep(e)]
            if chosen:
                return chosen[-1]
        return None

    def remove_entries(self, doomed: Iterable[Entry], mention: str | None = None) -> None:
        """Delete exactly the lines of `doomed`; a comment paragraph left with no record is
        deleted too when it mentions `mention` (the label of what is removed)."""
        by_file: dict[str, list[Entry]] = {}
        for entry in doomed:
            by_file.setdefault(entry.file, []).append(entry)
        for key, gone in by_file.items():
            lines = self.lines(key)
            dead: set[int] = set()
            for entry in gone:
                dead.update(range(entry.start, entry.end))
            self._keep_owners(key, gone, lines, dead)
            dead |= self._orphan_comments(lines, dead, mention)
            self.set_lines(key, [line for i, line in enumerate(lines) if i not in dead])

    def _keep_owners(self, key: str, gone: list[Entry], lines: list[str], dead: set[int]) -> None:
        """A kept record that inherited its owner from a deleted line gets the owner written out."""
        entries = self._file_entries(key)
        for index, entry in enumerate(entries):
            if entry.explicit_owner or entry.start in dead:
                continue
            previous = next((e for e in reversed(entries[:index]) if e.start not in dead), None)
            if previous is None or previous.owner != entry.owner:
                lines[entry.start] = owner_prefix(lines[entry.start], relative_owner(entry.owner, entry.origin))

    @staticmethod
    def _orphan_comments(lines: list[str], dead: set[int], mention: str | None) -> set[int]:
        """Lines to delete with `dead`: the blank line before a paragraph left empty, and a
        paragraph left with nothing but comments when one of them names `mention`."""
        more: set[int] = set()
        pattern = re.compile(rf"(?<![\w.-]){re.escape(mention)}(?![\w-])", re.IGNORECASE) if mention else None
        i = 0
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            left = [k for k in range(i, j) if k not in dead]
            if any(k in dead for k in range(i, j)) and all(lines[k].lstrip().startswith(";") for k in left):
                if left and pattern is not None and any(pattern.search(lines[k]) for k in left):
                    more.update(left)
                    left = []
                if not left:  # the paragraph is gone: so is the blank line that separated it
                    if i > 0 and not lines[i - 1].strip():
                        more.add(i - 1)
                    elif j < len(lines) and not lines[j].strip():
                        more.add(j)
            i = j
        return more

    def replace_entry(self, entry: Entry, rdata: str) -> None:
        """Give `entry` new rdata, on one line that keeps its owner/TTL/type columns and comment."""
        lines = self.lines(entry.file)
        first = lines[entry.start]
        if entry.rdata_tokens and entry.rdata_tokens[0].line == entry.start:
            prefix = first[: entry.rdata_tokens[0].col]
        else:
            prefix = first.rstrip("\n").split(";")[0].rstrip().rstrip("(").rstrip() + " "
        last = lines[entry.end - 1]
        comment = ""
        if entry.one_line and entry.rdata_tokens:
            tail = last[entry.rdata_tokens[-1].end :]
            if tail.lstrip().startswith(";"):
                comment = tail.rstrip("\n")
        lines[entry.start : entry.end] = [f"{prefix}{rdata}{comment}\n"]
        self.set_lines(entry.file, lines)

    # --- serials ----------------------------------------------------------------------------
    def bump_serial(self, origin: dns.name.Name) -> tuple[int, int]:
        """Raise the SOA serial of `origin` in place (the token only); returns (old, new)."""
        key = self.zones().get(origin)
        if key is None:
            raise EditError(f"no zonefile for {origin}")
        soa = next((e for e in self.entries(origin) if e.rdtype == SOA and e.owner == origin), None)
        if soa is None or len(soa.rdata_tokens) < 3:
            raise EditError(f"{key}: no SOA record for {origin}")
        token = soa.rdata_tokens[2]
        old = int(soa.rdata().serial)  # type: ignore[attr-defined]
        new = next_serial(old, self.today)
        lines = self.lines(soa.file)
        lines[token.line] = replace_token(lines[token.line], token, str(new))
        self.set_lines(soa.file, lines)
        self.bumped.add(origin)
        return old, new

    def serial(self, origin: dns.name.Name) -> int | None:
        soa = next((e for e in self.entries(origin) if e.rdtype == SOA and e.owner == origin), None)
        return int(soa.rdata().serial) if soa is not None else None  # type: ignore[attr-defined]

    def changed_zones(self) -> list[dns.name.Name]:
        """Zones (still there, not new) one of whose files differs from before."""
        changed = {key for key, text in self.files.items() if text != self.before.get(key)}
        result = []
        for origin in self.zones():
            if origin in self.created:
                continue
            if changed & {key for key, _ in self.zone_files(origin)}:
                result.append(origin)
        return sorted(result)

    def changes(self) -> dict[str, str | None]:
        """Bump every changed zone's serial once, then the files that differ (None: deleted)."""
        for origin in self.changed_zones():
            if origin not in self.bumped:
                self.bump_serial(origin)
        return {key: text for key, text in self.files.items() if text != self.before.get(key)}
