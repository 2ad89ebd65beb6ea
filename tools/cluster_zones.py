"""Where each zone of a zonefile directory is served in the loopback layout: the address of its
own NS's in-zone A record (127.0.0.1 for semantic.root., 127.0.0.2 for legal., ...). Shared by
`semdns cluster up` and the namespaced cluster, which moves that glue to its namespaces."""
from __future__ import annotations

from pathlib import Path

import dns.rdatatype

from zones.loader import load_zone, origin_for, zone_files


def zone_addresses(zones_dir: Path) -> dict[str, list[Path]]:
    """address -> the zonefiles whose own NS records point at that address."""
    by_address: dict[str, list[Path]] = {}
    for path in zone_files(zones_dir):
        origin = origin_for(path)
        zone = load_zone(path, origin).zone
        ns = zone.get_rrset(origin, dns.rdatatype.NS)
        address = None
        for rd in ns or ():
            a = zone.get_rrset(rd.target, dns.rdatatype.A)
            if a is not None:
                address = a[0].address
                break
        if address is None:
            raise SystemExit(f"semdns cluster: {path}: no in-zone A record for the zone's NS; cannot place it")
        by_address.setdefault(address, []).append(path)
    return by_address
