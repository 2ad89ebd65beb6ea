"""Configuration text for the namespaced cluster (`semdns cluster up --netns`): Knot and NSD as
TSIG-keyed secondaries, the update policy of the primaries, and the NS records a primary's zone
gets so that each secondary is one of its name servers. Pure functions: values in, text out.
"""
from __future__ import annotations

from dataclasses import dataclass

DNS_PORT = 53
NOTIFY_PORT = 5353  # our secondary's transfer agent hears NOTIFY here (its server has port 53)


@dataclass(frozen=True)
class Key:
    name: str  # without the final dot
    algorithm: str
    secret: str  # base64


def bind_key_block(key: Key) -> str:
    return f'key "{key.name}" {{\n\talgorithm {key.algorithm};\n\tsecret "{key.secret}";\n}};\n'


def knot_secondary(workdir: str, address: str, zone: str, primary: str, key: Key) -> str:
    """knotd secondary of `zone` on address:53, IXFR (AXFR fallback) from primary:53, everything
    signed with `key`; the NOTIFY it accepts must be signed too."""
    return f"""\
key:
  - id: {key.name}
    algorithm: {key.algorithm}
    secret: {key.secret}

server:
    rundir: "{workdir}"
    pidfile: "{workdir}/knot.pid"
    listen: {address}@{DNS_PORT}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1

log:
  - target: "{workdir}/knot.log"
    any: info

database:
    storage: "{workdir}"

control:
    listen: "{workdir}/knot.sock"

remote:
  - id: primary
    address: {primary}@{DNS_PORT}
    key: {key.name}

acl:
  - id: from_primary
    address: {primary}
    key: {key.name}
    action: notify

template:
  - id: default
    storage: "{workdir}"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes

zone:
  - domain: "{zone}"
    master: primary
    acl: [from_primary]
"""


def nsd_secondary(workdir: str, address: str, zone: str, primary: str, key: Key) -> str:
    """nsd secondary of `zone` on address:53, IXFR first (AXFR fallback) from primary:53, with `key`."""
    return f"""\
server:
    ip-address: {address}
    port: {DNS_PORT}
    do-ip4: yes
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{workdir}"
    database: ""
    zonelistfile: "{workdir}/zone.list"
    xfrdfile: "{workdir}/xfrd.state"
    xfrdir: "{workdir}"
    pidfile: "{workdir}/nsd.pid"
    logfile: "{workdir}/nsd.log"
    verbosity: 2
    rrl-ratelimit: 0

remote-control:
    control-enable: no

key:
    name: "{key.name}"
    algorithm: {key.algorithm}
    secret: "{key.secret}"

zone:
    name: "{zone}"
    zonefile: "{zone}zone"
    request-xfr: {primary}@{DNS_PORT} {key.name}
    allow-notify: {primary} {key.name}
    allow-axfr-fallback: yes
"""


def update_policy(grants: dict[str, str]) -> str:
    """An update policy granting each key (name) its zone: `{key: zone}`."""
    return "".join(f"grant {key}. zone {zone};\n" for key, zone in sorted(grants.items()))


def primary_args(
    zones_dir: str, address: str, transfer_key: str, update_keys: str, policy: str, journal: str,
    secondaries: list[tuple[str, int]], key_name: str, network: str, semantic: bool,
) -> list[str]:
    """The `semdns serve` arguments of a zone's primary: transfers and NOTIFY only with the key."""
    args = ["serve", "--zones", zones_dir, "--listen", f"{address}:{DNS_PORT}", "--encoder-threads", "1",
            "--transfer-keys", transfer_key, "--allow-transfer", f"{network}+key:{key_name}",
            "--tsig-keys", update_keys, "--update-policy", policy, "--journal", journal,
            "--rrl-exempt", network]
    for host, port in secondaries:
        args += ["--notify", f"{host}:{port}+key:{key_name}"]
    if not semantic:
        args.append("--no-semantic")
    return args
