"""Run Debian's real DNS servers (Unbound, NSD, Knot) on loopback next to ours, for interop tests.

    with running_server(zones) as ours, running_unbound(stub_addr=(ours.host, ours.port)) as unbound:
        dig(unbound.host, unbound.port, "SOA", "semantic.root")

Every peer runs as the current user, in the foreground, from a fresh temporary directory holding its
generated configuration, state and log, on 127.0.0.1 and a free port picked at run time. The context
manager waits until the peer answers (a secondary: until it serves the zone's SOA), and always stops
it (SIGTERM, then SIGKILL) and removes the directory. A peer that exits or stays silent raises
`PeerStartError`, whose message carries the peer's command, configuration and log.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from helpers.guards import require
from helpers.processes import stop_process
from helpers.server import free_port
from zones.loader import load_zone

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.1
QUERY_TIMEOUT = 1.0

Address = tuple[str, int]
TsigSecret = tuple[str, str, str]  # key name, algorithm, base64 secret


class PeerStartError(RuntimeError):
    """A peer server exited or did not answer in time; the message has its configuration and log."""


class PeerTimeout(AssertionError):
    """A running peer did not reach the awaited state (e.g. a serial) in time; the message has its log."""


@dataclass(frozen=True)
class PeerHandle:
    """A running peer: where it listens, its process, its work directory and log."""

    name: str
    host: str
    port: int
    process: subprocess.Popen
    workdir: Path
    config_path: Path
    log_path: Path

    @property
    def address(self) -> Address:
        return (self.host, self.port)

    def log(self) -> str:
        """What the peer logged so far (its log file, plus stdout/stderr)."""
        parts = []
        for path in (self.log_path, self.workdir / "output.log"):
            if path.exists():
                parts.append(f"--- {path.name} ---\n{path.read_text(errors='replace')}")
        return "\n".join(parts) or "(no log)"

    def describe(self) -> str:
        """Command, configuration and log: the text to put in a failure message."""
        config = self.config_path.read_text(errors="replace") if self.config_path.exists() else "(none)"
        return (
            f"{self.name}: {' '.join(map(str, self.process.args))} (exit {self.process.poll()})\n"
            f"--- {self.config_path.name} ---\n{config}\n{self.log()}"
        )

    def query(self, name: str, rdtype: str, tcp: bool = False, rd: bool = False) -> dns.message.Message:
        """One dnspython query to the peer (UDP unless `tcp`; RD only when `rd`)."""
        return query(self.address, name, rdtype, tcp=tcp, rd=rd)

    def soa_serial(self, zone: str) -> int | None:
        """The serial the peer serves authoritatively for `zone`, or None when it does not."""
        return soa_serial(self.address, zone)

    def wait_for_serial(self, zone: str, serial: int, timeout: float = START_TIMEOUT) -> int:
        """Poll until the peer serves `zone` with a serial >= `serial`; return it (PeerTimeout if not)."""
        deadline = time.monotonic() + timeout
        seen: int | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PeerTimeout(f"{self.name} exited while waiting for serial {serial} of {zone}\n{self.describe()}")
            seen = self.soa_serial(zone)
            if seen is not None and seen >= serial:
                return seen
            time.sleep(POLL_INTERVAL)
        raise PeerTimeout(
            f"{self.name} still serves {zone} with serial {seen} after {timeout:.0f}s, expected >= {serial}\n"
            + self.describe()
        )


def query(
    address: Address, name: str, rdtype: str, tcp: bool = False, rd: bool = False, timeout: float = QUERY_TIMEOUT
) -> dns.message.Message:
    """One query with dnspython to `address` (host, port); raises dns.exception.Timeout."""
    message = dns.message.make_query(name, rdtype, want_dnssec=False)
    if not rd:
        message.flags &= ~dns.flags.RD
    host, port = address
    send = dns.query.tcp if tcp else dns.query.udp
    return send(message, host, port=port, timeout=timeout)


def soa_serial(address: Address, zone: str) -> int | None:
    """The serial of `zone` that `address` answers authoritatively (AA, NOERROR), else None."""
    try:
        reply = query(address, zone, "SOA")
    except (dns.exception.DNSException, OSError):
        return None
    if reply.rcode() != dns.rcode.NOERROR or not reply.flags & dns.flags.AA:
        return None
    rrset = reply.get_rrset(reply.answer, dns.name.from_text(zone), dns.rdataclass.IN, dns.rdatatype.SOA)
    return rrset[0].serial if rrset else None


def answers(address: Address) -> bool:
    """True once a server at `address` answers anything at all (here: CHAOS TXT version.bind)."""
    message = dns.message.make_query("version.bind.", "TXT", "CH")
    try:
        dns.query.udp(message, address[0], port=address[1], timeout=QUERY_TIMEOUT)
    except (dns.exception.DNSException, OSError):
        return False
    return True


# --- Unbound: a recursive resolver with a stub zone pointing at our server -----------------------

def unbound_config(workdir: Path, port: int, stub_zone: str, stub_addr: Address) -> str:
    stub_host, stub_port = stub_addr
    return f"""\
server:
    verbosity: 1
    use-syslog: no
    logfile: "{workdir}/unbound.log"
    log-queries: yes
    log-replies: yes
    directory: "{workdir}"
    chroot: ""
    username: ""
    pidfile: "{workdir}/unbound.pid"
    do-daemonize: no
    num-threads: 1
    interface: {HOST}
    port: {port}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    qname-minimisation: yes
    domain-insecure: "{stub_zone}"
    outgoing-range: 64
    num-queries-per-thread: 32

remote-control:
    control-enable: no

stub-zone:
    name: "{stub_zone}"
    stub-addr: {stub_host}@{stub_port}
"""


@contextmanager
def running_unbound(stub_zone: str = "semantic.root.", *, stub_addr: Address) -> Iterator[PeerHandle]:
    """Unbound as a recursive resolver whose stub zone `stub_zone` is served at `stub_addr`."""
    workdir = Path(tempfile.mkdtemp(prefix="semdns-unbound-"))
    port = free_port(HOST)
    config = workdir / "unbound.conf"
    config.write_text(unbound_config(workdir, port, stub_zone, stub_addr))
    with _running(
        "unbound", ["unbound", "-d", "-c", str(config)], workdir, config, workdir / "unbound.log", port,
        ready=lambda: answers((HOST, port)),
        check=["unbound-checkconf", str(config)],
    ) as handle:
        yield handle


# --- secondaries: NSD and Knot transfer a zone by AXFR from a primary --------------------------

def _nsd_server(workdir: Path, port: int, verbosity: int, options: Sequence[str] = ()) -> str:
    """The `server:` and `remote-control:` clauses of an NSD on HOST:port, everything in `workdir`,
    with extra `server:` lines `options` (e.g. `minimal-responses: yes`)."""
    extra = "".join(f"    {line}\n" for line in options)
    return f"""\
server:
    ip-address: {HOST}
    port: {port}
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
    verbosity: {verbosity}
    hide-version: no
    rrl-ratelimit: 0
    refuse-any: no
{extra}
remote-control:
    control-enable: no
"""


def nsd_secondary_config(
    workdir: Path, port: int, zone: str, primary: Address, key: TsigSecret | None = None,
) -> str:
    """NSD's configuration; with `key` (name, algorithm, base64 secret) its SOA queries and
    transfers are TSIG-signed and it accepts only NOTIFYs signed with the key."""
    host, primary_port = primary
    origin = dns.name.from_text(zone).to_text()
    keys, use = "", "NOKEY"
    if key is not None:
        name, algorithm, secret = key
        keys = f'\nkey:\n    name: "{name}"\n    algorithm: {algorithm}\n    secret: "{secret}"\n'
        use = name
    return _nsd_server(workdir, port, verbosity=2) + keys + f"""
zone:
    name: "{origin}"
    zonefile: "{origin}zone"
    request-xfr: AXFR {host}@{primary_port} {use}
    allow-notify: {host} {use}
    provide-xfr: {HOST} NOKEY
    allow-axfr-fallback: yes
"""


@contextmanager
def running_nsd_secondary(
    zone: str, primary: Address, port: int | None = None, key: TsigSecret | None = None, wait_for_zone: bool = True,
) -> Iterator[PeerHandle]:
    """NSD as a secondary of `zone`, transferring it by AXFR from `primary` (NOTIFY from there too).

    `port`: listen there (e.g. one the primary was told to NOTIFY); default: a free one. `key` and
    `wait_for_zone`: as for `running_knot_secondary`."""
    workdir = Path(tempfile.mkdtemp(prefix="semdns-nsd-"))
    port = port or free_port(HOST)
    config = workdir / "nsd.conf"
    config.write_text(nsd_secondary_config(workdir, port, zone, primary, key))

    def ready() -> bool:
        return soa_serial((HOST, port), zone) is not None if wait_for_zone else answers((HOST, port))

    with _running(
        "nsd", ["nsd", "-d", "-c", str(config)], workdir, config, workdir / "nsd.log", port,
        ready=ready,
        check=["nsd-checkconf", str(config)],
    ) as handle:
        yield handle


def knot_secondary_config(
    workdir: Path, port: int, zone: str, primary: Address, key: TsigSecret | None = None,
) -> str:
    """Knot's configuration; with `key` (name, algorithm, base64 secret) every exchange with the
    primary is TSIG-signed: its SOA queries and transfers, and the NOTIFYs it accepts."""
    host, primary_port = primary
    origin = dns.name.from_text(zone).to_text()
    keys = uses = ""
    if key is not None:
        name, algorithm, secret = key
        keys = f"key:\n  - id: {name}\n    algorithm: {algorithm}\n    secret: {secret}\n\n"
        uses = f"\n    key: {name}"
    return keys + f"""\
server:
    rundir: "{workdir}"
    pidfile: "{workdir}/knot.pid"
    listen: {HOST}@{port}
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
    address: {host}@{primary_port}{uses}

acl:
  - id: from_primary
    address: {host}{uses}
    action: notify
  - id: local_transfer
    address: {HOST}
    action: transfer

template:
  - id: default
    storage: "{workdir}"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
    semantic-checks: on

zone:
  - domain: "{origin}"
    master: primary
    acl: [from_primary, local_transfer]
"""


@contextmanager
def running_knot_secondary(
    zone: str, primary: Address, port: int | None = None, key: TsigSecret | None = None, wait_for_zone: bool = True,
) -> Iterator[PeerHandle]:
    """Knot DNS as a secondary of `zone`, transferring it from `primary` (NOTIFY from there too).

    Knot asks for IXFR first and falls back to AXFR. `port`: as for `running_nsd_secondary`.
    `key`: TSIG for everything exchanged with the primary. `wait_for_zone=False`: ready once Knot
    answers at all (a test that expects the transfer to fail)."""
    workdir = Path(tempfile.mkdtemp(prefix="semdns-knot-"))
    port = port or free_port(HOST)
    config = workdir / "knot.conf"
    config.write_text(knot_secondary_config(workdir, port, zone, primary, key))

    def ready() -> bool:
        return soa_serial((HOST, port), zone) is not None if wait_for_zone else answers((HOST, port))

    with _running(
        "knotd", ["knotd", "-c", str(config)], workdir, config, workdir / "knot.log", port,
        ready=ready,
        check=["knotc", "-c", str(config), "conf-check"],
    ) as handle:
        yield handle


# --- NSD as a primary for static zonefiles (e.g. a baseline for benchmarks) ---------------------

def nsd_primary_config(workdir: Path, port: int, zones: Sequence[tuple[str, Path]]) -> str:
    zone_sections = "".join(
        f'\nzone:\n    name: "{origin}"\n    zonefile: "{path}"\n    provide-xfr: {HOST} NOKEY\n'
        for origin, path in zones
    )
    return _nsd_server(workdir, port, verbosity=1) + zone_sections


@contextmanager
def running_nsd_primary(*zonefiles: str | Path) -> Iterator[PeerHandle]:
    """NSD serving shipped zonefiles (`<origin>zone`, $INCLUDEs resolved first) authoritatively."""
    workdir = Path(tempfile.mkdtemp(prefix="semdns-nsd-primary-"))
    port = free_port(HOST)
    zones = [_flatten_zonefile(Path(path), workdir) for path in zonefiles]
    config = workdir / "nsd.conf"
    config.write_text(nsd_primary_config(workdir, port, zones))
    first = zones[0][0] if zones else "."
    with _running(
        "nsd", ["nsd", "-d", "-c", str(config)], workdir, config, workdir / "nsd.log", port,
        ready=lambda: soa_serial((HOST, port), first) is not None,
        check=["nsd-checkconf", str(config)],
    ) as handle:
        yield handle


def _flatten_zonefile(path: Path, workdir: Path) -> tuple[str, Path]:
    """Load a shipped zonefile with the project's loader (relative $INCLUDEs resolved against its
    own directory, as the hierarchy contract says) and write it out whole: NSD needs no includes."""
    origin = path.name.removesuffix("zone")
    loaded = load_zone(path, dns.name.from_text(origin))
    flat = workdir / path.name
    loaded.zone.to_file(str(flat), relativize=False)
    return origin, flat


@contextmanager
def running_nsd_zonefile(origin: str, zonefile: Path, options: Sequence[str] = ()) -> Iterator[PeerHandle]:
    """NSD serving one zonefile authoritatively as written (not rewritten by our loader: NSD reads
    the same bytes we do), with extra `server:` lines `options`."""
    workdir = Path(tempfile.mkdtemp(prefix="semdns-nsd-zonefile-"))
    port = free_port(HOST)
    config = workdir / "nsd.conf"
    zone = f'\nzone:\n    name: "{origin}"\n    zonefile: "{zonefile.resolve()}"\n'
    config.write_text(_nsd_server(workdir, port, verbosity=1, options=options) + zone)
    with _running(
        "nsd", ["nsd", "-d", "-c", str(config)], workdir, config, workdir / "nsd.log", port,
        ready=lambda: soa_serial((HOST, port), origin) is not None,
        check=["nsd-checkconf", str(config)],
    ) as handle:
        yield handle


# --- Knot's zone loader as an offline checker --------------------------------------------------

@dataclass(frozen=True)
class ZoneCheck:
    """The verdict of Knot's zone loader (with semantic checks) on one zonefile."""

    origin: str
    ok: bool
    output: str


def knot_zone_check(zonefile: str | Path) -> ZoneCheck:
    """Check `<dir>/<origin>zone` as `kzonecheck` would: `knotc zone-check` with a generated
    configuration (the same loader and semantic checks; relative $INCLUDEs resolve against the
    including file's directory). kzonecheck itself is in knot-dnssecutils, which is not installed."""
    path = Path(zonefile).resolve()
    origin = path.name.removesuffix("zone")
    workdir = Path(tempfile.mkdtemp(prefix="semdns-kzonecheck-"))
    try:
        config = workdir / "knot.conf"
        config.write_text(
            f'server:\n    rundir: "{workdir}"\n'
            f'database:\n    storage: "{workdir}"\n'
            f'zone:\n  - domain: "{origin}"\n    file: "{path}"\n    semantic-checks: on\n'
        )
        done = subprocess.run(
            ["knotc", "-c", str(config), "zone-check", origin], capture_output=True, text=True, timeout=60
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return ZoneCheck(origin, done.returncode == 0, done.stdout + done.stderr)


# --- process handling shared by every peer -------------------------------------------------------

@contextmanager
def _running(
    name: str,
    argv: list[str],
    workdir: Path,
    config: Path,
    log_path: Path,
    port: int,
    ready: Callable[[], bool],
    check: list[str] | None = None,
) -> Iterator[PeerHandle]:
    require("external")
    try:
        if check is not None:
            _check_config(name, check, config)
        with open(workdir / "output.log", "wb") as output:
            process = subprocess.Popen(
                argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        handle = PeerHandle(name, HOST, port, process, workdir, config, log_path)
        try:
            _wait_ready(handle, ready)
            yield handle
        finally:
            _stop(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _check_config(name: str, check: list[str], config: Path) -> None:
    done = subprocess.run(check, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise PeerStartError(
            f"{name}: generated configuration rejected by {' '.join(check)}:\n{done.stdout}{done.stderr}\n"
            f"--- {config.name} ---\n{config.read_text()}"
        )


def _wait_ready(handle: PeerHandle, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise PeerStartError(f"{handle.name} exited during start-up\n{handle.describe()}")
        if ready():
            return
        time.sleep(POLL_INTERVAL)
    raise PeerStartError(f"{handle.name} did not become ready within {START_TIMEOUT:.0f}s\n{handle.describe()}")


def _stop(process: subprocess.Popen) -> None:
    stop_process(process, STOP_TIMEOUT)
