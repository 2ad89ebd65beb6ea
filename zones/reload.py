"""Reloading a zone directory into a new catalog, zone by zone, never losing a serving zone.

`reload(directory, current)` re-reads only the zonefiles whose file or includes changed (size,
mtime, then sha256), checks them, and builds the next catalog:
- a zone that fails to load or check keeps its previous version (the problems say why, and are
  logged);
- a serial that goes backwards (RFC 1982 arithmetic) is an error: the old version stays;
  changed content under an unchanged serial is accepted with a warning (secondaries will not
  see it);
- new files add zones, removed files drop theirs (zones without a source are left alone);
- the result carries a new catalog (generation + 1) only when something changed, else `current`.
`serial_changes` lists the accepted serial rises: the runner sends NOTIFY (RFC 1996) for them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.serial
import dns.zone

from common.names import zone_origin
from zones.catalog import ZoneCatalog
from zones.errors import ZoneProblem
from zones.loader import load_checked, origin_for, zone_files
from zones.source import LoadedZone, ZoneSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    catalog: ZoneCatalog
    problems: list[ZoneProblem]
    serial_changes: list[tuple[dns.name.Name, int, int]]  # (origin, old serial, new serial)
    changed: bool  # True when `catalog` is a new one (generation + 1)


def zone_serial(zone: dns.zone.Zone) -> int | None:
    soa = zone.get_rdataset(zone_origin(zone), dns.rdatatype.SOA)
    return soa[0].serial if soa else None


def _serial_problem(loaded: LoadedZone, old: int, new: int) -> ZoneProblem | None:
    loc = loaded.where(loaded.origin, dns.rdatatype.SOA)
    if dns.serial.Serial(new) < dns.serial.Serial(old):
        return ZoneProblem(
            loc.file,
            loc.line,
            f"serial went backwards ({old} -> {new}); keeping the loaded version",
        )
    if new == old:
        return ZoneProblem(
            loc.file,
            loc.line,
            f"content changed but the serial ({new}) did not: secondaries will not notice",
            "warning",
        )
    return None


def reload(directory: Path, current: ZoneCatalog) -> ReloadResult:
    """Re-read what changed in `directory` on top of `current` (see the module docstring)."""
    zones = dict(current.zones)
    sources: dict[dns.name.Name, ZoneSource] = dict(current.sources)
    problems: list[ZoneProblem] = []
    serial_changes: list[tuple[dns.name.Name, int, int]] = []
    swapped = False
    seen: set[dns.name.Name] = set()
    for path in zone_files(directory):
        origin = origin_for(path)
        seen.add(origin)
        source = sources.get(origin)
        if origin in zones and source is not None and source.path == path and not source.changed():
            continue
        loaded, found = load_checked(path)
        old = zones.get(origin)
        if loaded is not None and old is not None:
            old_serial, new_serial = zone_serial(old), zone_serial(loaded.zone)
            if old_serial is not None and new_serial is not None:
                serial_problem = _serial_problem(loaded, old_serial, new_serial)
                if serial_problem is not None:
                    found.append(serial_problem)
                    if serial_problem.is_error:
                        loaded = None
                elif new_serial != old_serial:
                    serial_changes.append((origin, old_serial, new_serial))
        problems.extend(found)
        if loaded is None:
            if old is not None:
                log.error("zone %s: keeping the previous version (%d problem(s))", origin, len(found))
            continue
        zones[origin] = loaded.zone
        sources[origin] = loaded.source
        swapped = True
        log.info("zone %s: loaded serial %s from %s", origin, zone_serial(loaded.zone), path)
    for origin, source in list(sources.items()):
        if origin not in seen:
            zones.pop(origin, None)
            del sources[origin]
            swapped = True
            log.info("zone %s: dropped (%s is gone)", origin, source.path)
    for problem in problems:
        (log.error if problem.is_error else log.warning)("%s", problem)
    if not swapped:
        return ReloadResult(current, problems, serial_changes, changed=False)
    catalog = ZoneCatalog(zones=zones, generation=current.generation + 1, sources=sources)
    return ReloadResult(catalog, problems, serial_changes, changed=True)
