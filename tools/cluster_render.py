"""Configuration text for the namespaced cluster (`semdns cluster up --netns`): Knot and NSD as
TSIG-keyed secondaries, the update policy of the primaries, and the NS records a primary's zone
gets so that each secondary is one of its name servers. Pure functions: values in, text out.
"""
from __future__ import annotations

import re
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
            "--rrl-exempt", network, "--health-probe-allow", network]
    for host, port in secondaries:
        args += ["--notify", f"{host}:{port}+key:{key_name}"]
    if not semantic:
        args.append("--no-semantic")
    return args


GLUE = re.compile(r"^(?P<head>ns1(?:\.\S+)?\s+(?:\d+\s+)?IN\s+A\s+)(?P<old>127\.0\.0\.\d+)[ \t]*$", re.M)


def rewrite_zone(text: str, addresses: dict[str, str], extra: list[str]) -> str:
    """A zonefile for the namespaced cluster: the `ns1` glue moved from the loopback layout to the
    namespaces (`addresses`: old -> new), and `extra` records (absolute names) appended."""
    text = GLUE.sub(lambda m: m["head"] + addresses.get(m["old"], m["old"]), text)
    return text.rstrip("\n") + "\n\n; added by `semdns cluster up --netns`: the secondaries\n" + "".join(extra)


def ns_records(zone: str, servers: list[tuple[str, str]]) -> list[str]:
    """NS + glue for `zone`: `servers` are (label, address), e.g. ("ns2", "10.53.1.2")."""
    out = []
    for label, address in servers:
        out.append(f"{zone} 3600 IN NS {label}.{zone}\n")
        out.append(f"{label}.{zone} 3600 IN A {address}\n")
    return out


def unbound_config(workdir: str, address: str, stub_zone: str, stub_addrs: list[str], network: str) -> str:
    """A stock Unbound, recursive, whose stub zone `stub_zone` is served at `stub_addrs`:53."""
    stubs = "".join(f"    stub-addr: {a}@{DNS_PORT}\n" for a in stub_addrs)
    return f"""\
server:
    verbosity: 1
    use-syslog: no
    logfile: "{workdir}/unbound.log"
    directory: "{workdir}"
    chroot: ""
    username: ""
    pidfile: "{workdir}/unbound.pid"
    do-daemonize: no
    num-threads: 1
    interface: {address}
    port: {DNS_PORT}
    do-ip6: no
    access-control: {network} allow
    module-config: "iterator"
    qname-minimisation: yes
    domain-insecure: "{stub_zone}"
    private-domain: "{stub_zone}"

remote-control:
    control-enable: no

stub-zone:
    name: "{stub_zone}"
{stubs}"""
