"""Reading RFC 1035 master files into dnspython zones, remembering where each record came from.

`load_zone` parses one zonefile (with `$ORIGIN`, `$TTL`, `$INCLUDE`, `$GENERATE`) into a
non-relativized `dns.zone.Zone` and records, for every owner name, RRset and record, the
`file:line` that defined it first, so that checks can point at the line to fix.

`$INCLUDE` paths that are relative resolve against the directory of the file that contains the
directive (BIND's `named-checkzone -w <zonefile dir>` sees the same files). dnspython's reader
opens include paths as given, i.e. relative to the process's working directory; rather than
chdir (process-wide, not thread-safe), the tokenizer used here rewrites the path token of each
`$INCLUDE` into the resolved path before dnspython's reader sees it. Every tokenizer the reader
creates for an included file is replaced by the same kind, so nested includes resolve too.

`load_directory` loads and checks every `*.zone` file of a directory (the origin is the file
name minus `.zone`) into a `ZoneCatalog`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, cast

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.zone
import dns.zonefile

from common.rdataclasses import resolve_in_classes
from zones.catalog import ZoneCatalog
from zones.check import check_zone
from zones.errors import ZoneFileError, ZoneProblem
from zones.source import FileStamp, LoadedZone, Location, RdataKey, ZoneSource

resolve_in_classes()  # before a zone line is parsed (see common.rdataclasses)

ZONE_SUFFIX = ".zone"


class _Collector:
    """Accumulates locations while a zonefile is read."""

    def __init__(self) -> None:
        self.owners: dict[dns.name.Name, Location] = {}
        self.rrsets: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], Location] = {}
        self.records: dict[RdataKey, Location] = {}
        self.repeated: list[tuple[dns.name.Name, dns.rdatatype.RdataType, Location]] = []
        self.out_of_zone: dict[dns.name.Name, Location] = {}
        self.includes: list[Path] = []
        self.stamps: list[FileStamp] = []
        self.pending_include: tuple[Path, Location] | None = None

    def record(self, name: dns.name.Name, rdata: dns.rdata.Rdata, loc: Location) -> None:
        rdtype = rdata.rdtype
        self.owners.setdefault(name, loc)
        key = (name, rdtype)
        if key in self.rrsets and dns.rdatatype.is_singleton(rdtype):
            self.repeated.append((name, rdtype, loc))
        self.rrsets.setdefault(key, loc)
        self.records.setdefault((name, rdtype, rdata), loc)

    def include(self, path: Path, loc: Location) -> None:
        self.pending_include = (path, loc)
        self.includes.append(path)
        try:
            self.stamps.append(FileStamp.of(path))
        except OSError:
            pass  # the reader's open() fails next and reports it at `loc`


class _IncludeTokenizer(dns.tokenizer.Tokenizer):
    """A tokenizer that resolves the path of `$INCLUDE` against its own file's directory."""

    def __init__(
        self,
        f: Any,
        filename: str,
        idna_codec: dns.name.IDNACodec | None,
        on_include: Callable[[Path, Location], None],
    ) -> None:
        super().__init__(f, filename, idna_codec)
        self._on_include = on_include
        self._expect_path = False
        self.token_line = 1  # the line of the token `get` returned last

    def location(self) -> Location:
        """Where the last token read is (dnspython's `where()` can be one line further on)."""
        return Location(self.filename, self.token_line)

    def get(self, want_leading: bool = False, want_comment: bool = False) -> dns.tokenizer.Token:
        reread = self.ungotten_token is not None
        token = super().get(want_leading, want_comment)
        if not reread:
            # line_number counts every newline read, including one that ended the token (and
            # was pushed back) or that is the token (EOL): both belong after the token.
            ahead = token.is_eol() or self.ungotten_char == "\n"
            self.token_line = self.line_number - 1 if ahead else self.line_number
        if self._expect_path:
            self._expect_path = False
            if not token.is_eol_or_eof():
                path = Path(self.filename).parent / token.value
                self._on_include(path, self.location())
                return dns.tokenizer.Token(token.ttype, str(path), token.has_escape, token.comment)
        elif (
            want_leading
            and want_comment
            and token.is_identifier()
            and token.value.upper() == "$INCLUDE"
        ):
            # The reader asks for leading whitespace and comments only at the start of a line,
            # where directives are recognised: the next token is the path.
            self._expect_path = True
        return token


class _RecordingTransaction:
    """Wraps the zone's write transaction: notes the location of every record added."""

    def __init__(self, txn: Any, reader: "_Reader") -> None:
        self._txn = txn
        self._reader = reader

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._txn, attr)

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        loc = self._reader.record_location
        try:
            self._txn.add(name, ttl, rdata)
        except dns.zonefile.CNAMEAndOtherData:
            kind = dns.rdatatype.to_text(rdata.rdtype)
            raise ZoneFileError(
                loc.file, loc.line, f"{name}: CNAME beside other data ({kind}) is not allowed"
            ) from None
        except ValueError as exc:  # dnspython refuses e.g. an SOA away from the origin
            raise ZoneFileError(loc.file, loc.line, f"{name}: {exc}") from None
        self._reader.added += 1
        self._reader.collector.record(name, rdata, loc)


class _Reader(dns.zonefile.Reader):
    """dnspython's zonefile reader, with includes resolved and locations recorded."""

    def __init__(self, tok: _IncludeTokenizer, txn: Any, collector: _Collector) -> None:
        self.collector = collector
        self.record_location = tok.location()
        self.added = 0
        super().__init__(
            tok, dns.rdataclass.IN, cast(dns.transaction.Transaction, _RecordingTransaction(txn, self)),
            allow_include=True,
        )

    @property
    def tok(self) -> _IncludeTokenizer:
        return self._tok

    @tok.setter
    def tok(self, value: dns.tokenizer.Tokenizer) -> None:
        # dnspython creates a plain Tokenizer for each included file (before reading from it):
        # replace it with one that resolves nested includes relative to that file.
        if not isinstance(value, _IncludeTokenizer):
            value = _IncludeTokenizer(
                value.file, value.filename, value.idna_codec, self.collector.include
            )
        self._tok = value

    def _rr_line(self) -> None:
        self.record_location = self.tok.location()
        before = self.added
        super()._rr_line()
        name = self.last_name
        if (
            self.added == before
            and name is not None
            and self.zone_origin is not None
            and not name.is_subdomain(self.zone_origin)
        ):
            self.collector.out_of_zone.setdefault(name, self.record_location)

    def _generate_line(self) -> None:
        self.record_location = self.tok.location()
        super()._generate_line()


def _strip_location(message: str, loc: Location) -> str:
    prefix = f"{loc.file}:{loc.line}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def load_zone(path: Path, origin: dns.name.Name | None = None) -> LoadedZone:
    """Parse the zonefile at `path` (origin: given, else the file's first `$ORIGIN`).

    Raises `ZoneFileError(file, line, message)` for anything that prevents reading the zone:
    syntax errors, unreadable or missing (included) files, CNAME beside other data, an SOA
    away from the origin.
    """
    path = Path(path)
    collector = _Collector()
    try:
        collector.stamps.append(FileStamp.of(path))
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ZoneFileError(path, 0, f"cannot read zonefile: {exc.strerror or exc}") from None
    zone = dns.zone.Zone(origin, dns.rdataclass.IN, relativize=False)
    with handle:
        tok = _IncludeTokenizer(handle, str(path), None, collector.include)
        reader: _Reader | None = None
        try:
            with zone.writer(True) as txn:
                reader = _Reader(tok, txn, collector)
                reader.read()
        except ZoneFileError:
            raise
        except dns.zonefile.UnknownOrigin:
            raise ZoneFileError(
                path, 0, "no origin: give one or start the file with $ORIGIN"
            ) from None
        except dns.exception.DNSException as exc:
            current = reader.tok if reader is not None else tok
            message = _strip_location(str(exc), Location(current.filename, current.line_number))
            loc = current.location()
            raise ZoneFileError(loc.file, loc.line, message) from None
        except OSError as exc:
            # open() of an $INCLUDE target failed: report it at the directive.
            if collector.pending_include is None:
                raise ZoneFileError(path, 0, f"cannot read: {exc}") from None
            target, loc = collector.pending_include
            reason = exc.strerror or str(exc)
            raise ZoneFileError(
                loc.file, loc.line, f"cannot read $INCLUDE file {target}: {reason}"
            ) from None
        except UnicodeDecodeError as exc:
            current = reader.tok if reader is not None else tok
            raise ZoneFileError(current.filename, 0, f"not UTF-8 text: {exc}") from None
    return LoadedZone(
        zone=zone,
        path=path,
        includes=tuple(collector.includes),
        source=ZoneSource(path, tuple(collector.stamps)),
        owners=collector.owners,
        rrsets=collector.rrsets,
        records=collector.records,
        repeated_singletons=tuple(collector.repeated),
        out_of_zone=collector.out_of_zone,
    )


def origin_for(path: Path) -> dns.name.Name:
    """The origin a zonefile is named after: `legal.semantic.root.zone` -> `legal.semantic.root.`."""
    stem = path.name[: -len(ZONE_SUFFIX)] if path.name.endswith(ZONE_SUFFIX) else path.name
    return dns.name.from_text(stem.rstrip(".") + ".")


def zone_files(directory: Path) -> list[Path]:
    """The zonefiles of a directory: its `*.zone` files, sorted by name."""
    return sorted(p for p in Path(directory).glob(f"*{ZONE_SUFFIX}") if p.is_file())


def load_checked(path: Path) -> tuple[LoadedZone | None, list[ZoneProblem]]:
    """Load and check one zonefile; the zone is None when it failed to load or has errors."""
    try:
        loaded = load_zone(path, origin_for(path))
    except ZoneFileError as exc:
        return None, [exc.as_problem()]
    problems = check_zone(loaded)
    if any(p.is_error for p in problems):
        return None, problems
    return loaded, problems


def load_directory(directory: Path) -> tuple[ZoneCatalog, list[ZoneProblem]]:
    """Load and check every zonefile of `directory`.

    The catalog holds the zones that loaded without errors (with their sources, for reload);
    the problems list every error and warning found. A server should refuse to start when any
    problem is an error.
    """
    zones: dict[dns.name.Name, dns.zone.Zone] = {}
    sources: dict[dns.name.Name, ZoneSource] = {}
    problems: list[ZoneProblem] = []
    for path in zone_files(directory):
        loaded, found = load_checked(path)
        problems.extend(found)
        if loaded is not None:
            zones[loaded.origin] = loaded.zone
            sources[loaded.origin] = loaded.source
    return ZoneCatalog(zones=zones, sources=sources), problems
