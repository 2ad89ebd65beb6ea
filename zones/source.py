"""What a loaded zone is made of, apart from its records: the files it came from (`ZoneSource`,
`FileStamp`), where each record was written (`Location`), and the parsed zone with those
locations (`LoadedZone`). Plain data: the loader makes it, the checks and the catalog read it."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import dns.name
import dns.rdata
import dns.rdatatype
import dns.zone

from common.names import zone_origin


@dataclass(frozen=True)
class Location:
    """Where something was written: a file and a 1-based line (0: the file as a whole)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class FileStamp:
    """What a file looked like when it was read: enough to tell whether it changed since."""

    path: str
    mtime_ns: int
    size: int
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> "FileStamp":
        st = os.stat(path)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return cls(str(path), st.st_mtime_ns, st.st_size, digest)

    def changed(self) -> bool:
        """True when the file is gone or its content differs (mtime and size first, then hash)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        if (st.st_mtime_ns, st.st_size) == (self.mtime_ns, self.size):
            return False
        try:
            return hashlib.sha256(Path(self.path).read_bytes()).hexdigest() != self.sha256
        except OSError:
            return True


@dataclass(frozen=True)
class ZoneSource:
    """The files one zone was read from (the zonefile first, then its includes)."""

    path: Path
    stamps: tuple[FileStamp, ...]

    def changed(self) -> bool:
        return any(stamp.changed() for stamp in self.stamps)


RdataKey = tuple[dns.name.Name, dns.rdatatype.RdataType, dns.rdata.Rdata]


@dataclass(frozen=True)
class LoadedZone:
    """A parsed zone and where its data came from.

    `owners` maps each owner name to the first line that defined data there; `rrsets` does the
    same per (name, type) and `records` per individual record. `repeated_singletons` lists
    records that replaced an earlier SOA/CNAME/DNAME at the same name (dnspython keeps the last);
    `out_of_zone` lists names outside the origin that the reader ignored.
    """

    zone: dns.zone.Zone
    path: Path
    includes: tuple[Path, ...]
    source: ZoneSource
    owners: Mapping[dns.name.Name, Location] = field(default_factory=dict)
    rrsets: Mapping[tuple[dns.name.Name, dns.rdatatype.RdataType], Location] = field(
        default_factory=dict
    )
    records: Mapping[RdataKey, Location] = field(default_factory=dict)
    repeated_singletons: tuple[tuple[dns.name.Name, dns.rdatatype.RdataType, Location], ...] = ()
    out_of_zone: Mapping[dns.name.Name, Location] = field(default_factory=dict)

    @property
    def origin(self) -> dns.name.Name:
        return zone_origin(self.zone)

    def where(
        self,
        name: dns.name.Name | None = None,
        rdtype: dns.rdatatype.RdataType | None = None,
        rdata: dns.rdata.Rdata | None = None,
    ) -> Location:
        """The most precise known location of a record, RRset or name; else the zonefile."""
        if name is not None and rdtype is not None and rdata is not None:
            loc = self.records.get((name, rdtype, rdata))
            if loc is not None:
                return loc
        if name is not None and rdtype is not None:
            loc = self.rrsets.get((name, rdtype))
            if loc is not None:
                return loc
        if name is not None:
            loc = self.owners.get(name)
            if loc is not None:
                return loc
        return Location(str(self.path), 0)
