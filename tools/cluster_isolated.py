"""`semdns cluster up --netns` (root): each zone served by three hosts of its own, in network
namespaces: its primary (`semdns serve`, transfers and NOTIFY only with the cluster's TSIG key,
UPDATE with a per-zone key and a journal), one secondary of ours (`semdns serve` fed by the
`semdns cluster secondary` transfer agent: IXFR on NOTIFY), and one Knot (even zones) or NSD (odd
zones) secondary. The layout and addresses are `cluster_netns`'s, the configuration text
`cluster_render`'s; this module starts, waits for, measures and stops the processes.

State (`<runtime>/netns.json`): the cluster id, the nodes, the zones and every process started,
so `semdns cluster down` stops exactly those and deletes exactly those namespaces.
"""
from __future__ import annotations

import base64
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import dns.exception
import dns.message
import dns.name
import dns.query

from tools import cluster_netns as netns
from tools import cluster_render as render
from tools.cluster_probe import Propagation, Target, measure, send_notify, soa_serial
from tools.cluster_zones import zone_addresses
from zones.loader import origin_for, zone_files
from zones.tsig import generate_key, load_keyring, write_key_file

STATE = "netns.json"
REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 240.0
STOP_TIMEOUT = 10.0
AGENT_REFRESH = 5.0  # our secondaries also check the primary's serial this often (a missed NOTIFY)
THIRD_PARTY = ("knot", "nsd")  # zone i gets THIRD_PARTY[i % 2]


@dataclass(frozen=True)
class ZonePlan:
    zone: str  # with the final dot
    index: int
    primary: str  # node names
    ours: str
    third: str
    third_kind: str


@dataclass
class State:
    cluster_id: str
    runtime: str
    nodes: list[str]
    zones: list[ZonePlan]
    transfer_key: str
    update_keys: str
    processes: list[dict] = field(default_factory=list)  # node, role, pid, log, argv
    resolver: str | None = None  # the node of the stock Unbound, when asked for
    semantic: bool = False  # primaries and ours route semantically; Knot/NSD are then no name servers

    @property
    def layout(self) -> netns.Layout:
        return netns.plan(self.cluster_id, self.nodes)

    def save(self) -> None:
        Path(self.runtime, STATE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> State:
        raw = json.loads(path.read_text())
        raw["zones"] = [ZonePlan(**z) for z in raw["zones"]]
        return cls(**raw)

    def targets(self, plan: ZonePlan) -> list[Target]:
        layout = self.layout
        return [Target(plan.ours, "semdns", layout.node(plan.ours).address),
                Target(plan.third, plan.third_kind, layout.node(plan.third).address)]


def zone_plans(origins: list[str]) -> list[ZonePlan]:
    return [ZonePlan(origin, i, f"p{i}", f"s{i}", f"k{i}", THIRD_PARTY[i % 2]) for i, origin in enumerate(origins)]


def new_cluster_id() -> str:
    existing = set(netns.existing_namespaces())
    while True:
        cid = secrets.token_hex(2)
        if not any(ns.startswith(f"{netns.PREFIX}{cid}-") for ns in existing):
            return cid


def key_name(cluster_id: str) -> str:
    return f"xfr.{cluster_id}.cluster"


def update_key_name(zone: str) -> str:
    return f"update.{zone.rstrip('.')}"


# -- up ---------------------------------------------------------------------------------------

def up(zones_dir: Path, runtime: Path, semantic: bool = False, only: list[str] | None = None,
       say: Callable[[str], None] = print, resolver: bool = False) -> State:
    """Make the namespaces and start every process; on any failure, undo all of it and raise."""
    files = {origin_for(p).to_text(): p for p in zone_files(zones_dir)}
    wanted = [dns.name.from_text(z).to_text() for z in only] if only else sorted(files, key=lambda z: (len(z), z))
    missing = [z for z in wanted if z not in files]
    if missing:
        raise RuntimeError(f"no zonefile for {', '.join(missing)} in {zones_dir}")
    cid = new_cluster_id()
    home = runtime / f"netns-{cid}"
    home.mkdir(parents=True, exist_ok=True)
    plans = zone_plans(wanted)
    # with the resolver, also an empty host "e0" for an engine (or a stand-in) that registers by UPDATE
    nodes = [n for p in plans for n in (p.primary, p.ours, p.third)] + (["r0", "e0"] if resolver else [])
    keys = home / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    state = State(cid, str(home), nodes, plans, str(keys / "transfer.key"), str(keys / "update.key"),
                  resolver="r0" if resolver else None, semantic=semantic)
    write_key_file(state.transfer_key, generate_key(key_name(cid)))
    write_key_file(state.update_keys, "".join(generate_key(update_key_name(p.zone)) for p in plans))
    (keys / "update.policy").write_text(render.update_policy({update_key_name(p.zone): p.zone for p in plans}))
    state.save()
    layout = state.layout
    try:
        netns.run(layout.up_commands())
        say(f"namespaces: {len(layout.namespaces)} ({layout.hub} + {len(nodes)} nodes) on {netns.NETWORK}")
        _start(state, zones_dir, files, semantic, say)
    except BaseException:
        down(state)
        raise
    return state


def _start(state: State, zones_dir: Path, files: dict[str, Path], semantic: bool, say: Callable[[str], None]) -> None:
    layout = state.layout
    home = Path(state.runtime)
    network = str(netns.NETWORK)
    kname = key_name(state.cluster_id)
    started = []
    for plan in state.zones:  # the primaries first: the secondaries transfer from them
        node = layout.node(plan.primary)
        zdir = _zone_dir(home / f"zones-{plan.primary}", zones_dir, files[plan.zone],
                         zonefile_text(state, zones_dir, plan))
        notify = [(layout.node(plan.ours).address, render.NOTIFY_PORT), (layout.node(plan.third).address, 53)]
        args = render.primary_args(str(zdir), node.address, state.transfer_key, state.update_keys,
                                   str(home / "keys" / "update.policy"), str(home / f"journal-{plan.primary}"),
                                   notify, kname, network, semantic)
        started.append(_spawn(state, plan.primary, "primary", [*_semdns(), *args]))
    for process in started:
        _wait_log(process, "ready: listening on")
    say(f"primaries ready: {len(started)}")
    key = _key(state.transfer_key)
    later = []
    for plan in state.zones:
        ours, third = layout.node(plan.ours), layout.node(plan.third)
        primary = layout.node(plan.primary).address
        sdir = home / f"zones-{plan.ours}"
        sdir.mkdir(exist_ok=True)
        pid_file = home / f"serve-{plan.ours}.pid"
        agent = _spawn(state, plan.ours, "agent", [
            *_semdns(), "cluster", "secondary", "--zone", plan.zone, "--primary", primary, "--key-file",
            state.transfer_key, "--listen", f"{ours.address}:{render.NOTIFY_PORT}", "--zones-dir", str(sdir),
            "--serve-pid-file", str(pid_file), "--refresh", str(AGENT_REFRESH)])
        wdir = home / f"{plan.third_kind}-{plan.third}"
        wdir.mkdir(exist_ok=True)
        if plan.third_kind == "knot":
            config = wdir / "knot.conf"
            config.write_text(render.knot_secondary(str(wdir), third.address, plan.zone, primary, key))
            argv = ["knotd", "-c", str(config)]
        else:
            config = wdir / "nsd.conf"
            config.write_text(render.nsd_secondary(str(wdir), third.address, plan.zone, primary, key))
            argv = ["nsd", "-d", "-c", str(config)]
        os.chmod(config, 0o600)  # it holds the secret
        later.append((plan, agent, _spawn(state, plan.third, plan.third_kind, argv), sdir, pid_file))
    serves = []
    for plan, agent, _third, sdir, pid_file in later:
        _wait_log(agent, "ready: NOTIFY")
        args = ["serve", "--zones", str(sdir), "--listen", f"{layout.node(plan.ours).address}:53",
                "--encoder-threads", "1", "--pid-file", str(pid_file), "--rrl-exempt", network]
        if not semantic:
            args.append("--no-semantic")
        serves.append(_spawn(state, plan.ours, "secondary", [*_semdns(), *args]))
    for process in serves:
        _wait_log(process, "ready: listening on")
    for plan in state.zones:
        for target in state.targets(plan):
            _wait_serving(state, plan.zone, target)
    say(f"secondaries ready: {2 * len(state.zones)} (ours + {', '.join(sorted({p.third_kind for p in state.zones}))})")
    if state.resolver is not None:
        _start_resolver(state)
        say(f"resolver ready: Unbound at {layout.node(state.resolver).address}")


def _start_resolver(state: State) -> None:
    layout = state.layout
    node = layout.node(state.resolver or "r0")
    apex = min(state.zones, key=lambda p: len(p.zone))
    wdir = Path(state.runtime) / f"unbound-{node.name}"
    wdir.mkdir(exist_ok=True)
    config = wdir / "unbound.conf"
    stubs = [layout.node(n).address for n in name_servers(state, apex)]
    config.write_text(render.unbound_config(str(wdir), node.address, apex.zone, stubs, str(netns.NETWORK)))
    started = _spawn(state, node.name, "unbound", ["unbound", "-d", "-c", str(config)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if started.process.poll() is not None:
            raise RuntimeError(f"unbound exited: {(wdir / 'unbound.log').read_text(errors='replace')[-2000:]}"
                               f"{started.log.read_text(errors='replace')[-2000:]}")
        if resolve(state, apex.zone, "SOA") is not None:
            return
        time.sleep(0.1)
    raise RuntimeError("unbound does not answer after 30 s")


def resolve(state: State, name: str, rdtype: str, timeout: float = 2.0) -> dns.message.Message | None:
    """Ask the cluster's Unbound (RD set, from the hub); None on no answer in `timeout`."""
    address = state.layout.node(state.resolver or "r0").address

    def ask() -> dns.message.Message | None:
        try:
            return dns.query.udp(dns.message.make_query(name, rdtype), address, port=53, timeout=timeout)
        except (dns.exception.DNSException, OSError):
            return None

    return netns.call_in(state.layout.hub, ask)


def _key(path: str) -> render.Key:
    ((name, key),) = load_keyring(path).items()
    return render.Key(name.to_text(omit_final_dot=True), key.algorithm.to_text(omit_final_dot=True),
                      base64.b64encode(key.secret).decode())


def zonefile_text(state: State, zones_dir: Path, plan: ZonePlan) -> str:
    """The zone's file as its primary serves it here: `ns1` glue at the namespaced primaries, and
    NS + glue for the secondaries (ns2: ours, ns3: Knot/NSD but not with `semantic`) of the zone and
    of its children."""
    layout = state.layout
    primary_of = {p.zone: layout.node(p.primary).address for p in state.zones}
    moved = {old: primary_of[origin_for(f).to_text()] for old, files in zone_addresses(zones_dir).items()
             for f in files if origin_for(f).to_text() in primary_of}

    def secondaries(p: ZonePlan) -> list[tuple[str, str]]:
        return [(f"ns{i}", layout.node(n).address) for i, n in enumerate(name_servers(state, p)[1:], start=2)]

    extra = render.ns_records(plan.zone, secondaries(plan))
    for child in state.zones:
        if child.zone != plan.zone and _closest_parent(child.zone, state.zones) == plan.zone:
            extra += render.ns_records(child.zone, secondaries(child))
    path = next(f for f in zone_files(zones_dir) if origin_for(f).to_text() == plan.zone)
    return render.rewrite_zone(path.read_text(), moved, extra)


def name_servers(state: State, plan: ZonePlan) -> list[str]:
    """The nodes in the zone's NS set: primary, ours, and Knot/NSD, except with `semantic` (they
    cannot synthesise the semantic CNAMEs; they still transfer the zone)."""
    return [plan.primary, plan.ours] if state.semantic else [plan.primary, plan.ours, plan.third]


def _closest_parent(zone: str, plans: list[ZonePlan]) -> str | None:
    name = dns.name.from_text(zone)
    candidates = [p.zone for p in plans if p.zone != zone and name.is_subdomain(dns.name.from_text(p.zone))]
    return max(candidates, key=len) if candidates else None


def _zone_dir(target: Path, zones_dir: Path, zonefile: Path, text: str) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    (target / zonefile.name).write_text(text)
    for sub in zones_dir.iterdir():
        if sub.is_dir():
            (target / sub.name).symlink_to(sub.resolve(), target_is_directory=True)
    return target


def _semdns() -> list[str]:
    return [sys.executable, "-m", "tools.cli"]


@dataclass(frozen=True)
class Started:
    node: str
    process: subprocess.Popen
    log: Path


def _spawn(state: State, node: str, role: str, argv: list[str]) -> Started:
    log = Path(state.runtime) / f"{role}-{node}.log"
    namespace = state.layout.node(node).namespace
    with open(log, "wb") as out:
        process = subprocess.Popen([*netns.exec_prefix(namespace), *argv], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO)
    state.processes.append({"node": node, "role": role, "pid": process.pid, "log": str(log), "argv": argv})
    state.save()
    return Started(node, process, log)


def _wait_log(started: Started, text: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if text in started.log.read_text(errors="replace"):
            return
        if started.process.poll() is not None:
            raise RuntimeError(f"{started.node}: exited with {started.process.returncode}:\n"
                               f"{started.log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"{started.node}: not ready after {START_TIMEOUT:g} s; see {started.log}")


def _wait_serving(state: State, zone: str, target: Target, timeout: float = 60.0) -> None:
    import asyncio

    origin = dns.name.from_text(zone)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        serial = netns.call_in(state.layout.hub, lambda: asyncio.run(soa_serial(target.address, target.port, origin)))
        if serial is not None:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{target.kind} {target.name} ({target.address}) does not serve {zone} after {timeout:g} s")


# -- measure ----------------------------------------------------------------------------------

def propagation(state: State, zones: list[ZonePlan] | None = None, rounds: int = 1,
                timeout: float = 30.0) -> list[Propagation]:
    """UPDATE each zone's primary `rounds` times; ms until each secondary serves the new serial."""
    keyring = load_keyring(state.update_keys)
    layout = state.layout
    results = []
    for _ in range(rounds):
        for plan in zones or state.zones:
            name = dns.name.from_text(update_key_name(plan.zone))
            ring = {name: keyring[name]}
            primary = (layout.node(plan.primary).address, 53)
            targets = state.targets(plan)
            results.append(netns.call_in(layout.hub, lambda: measure(plan.zone, primary, ring, name.to_text(),
                                                                    targets, timeout)))
    return results


# -- faults -----------------------------------------------------------------------------------

def start_on(state: State, node: str, role: str, argv: list[str]) -> subprocess.Popen:
    """Start any command on `node` (recorded: `down` stops it too)."""
    return _spawn(state, node, role, argv).process


def process_of(state: State, node: str, role: str) -> dict:
    """The latest process record of `role` on `node`."""
    return [p for p in state.processes if p["node"] == node and p["role"] == role][-1]


def kill(state: State, node: str, role: str, sig: int = signal.SIGKILL) -> None:
    """Signal the process (`kill -9` by default) and wait until it is gone."""
    pid = process_of(state, node, role)["pid"]
    _signal(pid, sig)
    while _alive(pid):
        time.sleep(0.01)


def restart(state: State, node: str, role: str, ready: str = "ready: listening on") -> None:
    """Start the process again with the same command (its journal, keys and files are kept)."""
    record = process_of(state, node, role)
    started = _spawn(state, node, role, list(record["argv"]))
    _wait_log(started, ready)
    if role == "primary":  # a primary does not NOTIFY at start-up: Knot/NSD would wait the SOA retry (15 min)
        renotify(state, next(p for p in state.zones if p.primary == node))


def renotify(state: State, plan: ZonePlan) -> None:
    """Send the zone's secondaries a signed NOTIFY, as the primary does after a change."""
    keyring = load_keyring(state.transfer_key)
    layout = state.layout
    targets = [(layout.node(plan.ours).address, render.NOTIFY_PORT), (layout.node(plan.third).address, 53)]
    primary = layout.node(plan.primary).namespace  # Knot and NSD accept NOTIFY from the primary's address only
    for target in targets:
        netns.call_in(primary, functools.partial(send_notify, plan.zone, target, keyring))


def partition(state: State, node: str, isolate: bool = True) -> None:
    """Cut `node` off the bridge (its veth down), or join it again."""
    netns.run(state.layout.partition_commands(node, isolate))


# -- down -------------------------------------------------------------------------------------

def down(state: State) -> list[str]:
    """Stop every recorded process (SIGTERM, SIGKILL after a grace period), delete the namespaces;
    return what could not be undone (empty when all is gone)."""
    pids = [p["pid"] for p in state.processes]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.01)
    present = set(netns.existing_namespaces())
    failures = netns.run([c for c in state.layout.down_commands() if c[-1] in present], check=False)
    shutil.rmtree(Path(state.runtime) / "keys", ignore_errors=True)  # the secrets go with the cluster
    return failures


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie whose parent is not us counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
