"""The shipped hierarchy as tests use it: where its zonefiles are, its apex, and its serials (read
from the files, never hard-coded: `semdns routes train`, `semdns codec train` and `semdns zone`
edits bump them)."""
from __future__ import annotations

from pathlib import Path

import dns.name

from zones.loader import load_zone
from zones.reload import zone_serial

ZONEFILES = Path(__file__).resolve().parents[2] / "zonefiles"
APEX = dns.name.from_text("semantic.root.")


def shipped_serial(origin: str, directory: Path = ZONEFILES) -> int:
    """The SOA serial of zone `origin` (`legal.semantic.root.`) as written in `directory`."""
    serial = zone_serial(load_zone(directory / f"{origin.rstrip('.')}.zone").zone)
    assert serial is not None, origin
    return serial
