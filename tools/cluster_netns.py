"""The network-namespace layout of `semdns cluster up --netns`, as plain values and `ip` commands.

A cluster with id `ID` (4 hex digits) is one hub namespace `sdnsID-hub` holding a bridge `br0`
(address 10.53.0.1/16: the cluster's own management address) and one namespace per node
`sdnsID-NODE`, each joined to the bridge by a veth pair (`eth0` inside the node, `sID-N` on the
bridge) with a private address 10.53.1.N/16. Nothing is added to the caller's namespace: the only
addresses are those made here, inside namespaces made here, and `down_commands` deletes the
namespaces (which deletes their links and addresses).

No I/O here: `plan()` turns node names into a `Layout`, whose `up_commands()` / `down_commands()`
are argv lists; `run()` executes them and `call_in()` runs a function inside a namespace.
"""
from __future__ import annotations

import ctypes
import re
import subprocess
import threading
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

NETWORK = IPv4Network("10.53.0.0/16")
HUB_ADDRESS = IPv4Address("10.53.0.1")
FIRST_NODE = IPv4Address("10.53.1.1")
PREFIX = "sdns"
MAX_NODES = 250
NODE_NAME = re.compile(r"[a-z0-9]{1,6}")


class LayoutError(ValueError):
    """A layout that cannot be made (too many nodes, a bad id or node name)."""


@dataclass(frozen=True)
class Node:
    name: str  # e.g. "p0" (primary of zone 0)
    index: int
    namespace: str
    address: str
    host_veth: str  # the end on the bridge, in the hub namespace


@dataclass(frozen=True)
class Layout:
    cluster_id: str
    hub: str
    hub_address: str
    nodes: tuple[Node, ...]

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.hub, *(n.namespace for n in self.nodes))

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def up_commands(self) -> list[list[str]]:
        """`ip` argv lists that make the hub, the bridge and every node, in order."""
        prefix = NETWORK.prefixlen
        hub = ["ip", "-n", self.hub]
        cmds = [
            ["ip", "netns", "add", self.hub],
            [*hub, "link", "set", "lo", "up"],
            [*hub, "link", "add", "br0", "type", "bridge"],
            [*hub, "addr", "add", f"{self.hub_address}/{prefix}", "dev", "br0"],
            [*hub, "link", "set", "br0", "up"],
        ]
        for node in self.nodes:
            inside = ["ip", "-n", node.namespace]
            cmds += [
                ["ip", "netns", "add", node.namespace],
                [*inside, "link", "set", "lo", "up"],
                # both ends made inside the hub; one then moves into the node (nothing in ours)
                [*hub, "link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0",
                 "netns", node.namespace],
                [*hub, "link", "set", node.host_veth, "master", "br0"],
                [*hub, "link", "set", node.host_veth, "up"],
                [*inside, "addr", "add", f"{node.address}/{prefix}", "dev", "eth0"],
                [*inside, "link", "set", "eth0", "up"],
            ]
        return cmds

    def down_commands(self) -> list[list[str]]:
        """Delete every namespace of the layout (nodes first; their veths go with them)."""
        return [["ip", "netns", "delete", ns] for ns in (*(n.namespace for n in self.nodes), self.hub)]

    def partition_commands(self, name: str, isolate: bool = True) -> list[list[str]]:
        """Cut node `name` off the bridge (or join it again): its veth down or up."""
        return [["ip", "-n", self.hub, "link", "set", self.node(name).host_veth, "down" if isolate else "up"]]


def plan(cluster_id: str, names: Sequence[str]) -> Layout:
    """The layout of nodes `names` (unique, [a-z0-9]{1,6}) for a cluster id of 4 hex digits."""
    if len(cluster_id) != 4 or any(c not in "0123456789abcdef" for c in cluster_id):
        raise LayoutError(f"cluster id {cluster_id!r}: want 4 lowercase hex digits")
    if len(names) > MAX_NODES:
        raise LayoutError(f"{len(names)} nodes: at most {MAX_NODES}")
    if len(set(names)) != len(names):
        raise LayoutError("node names must be unique")
    nodes = []
    for index, name in enumerate(names):
        if not NODE_NAME.fullmatch(name):
            raise LayoutError(f"node name {name!r}: want 1-6 lowercase letters or digits")
        nodes.append(Node(name, index, f"{PREFIX}{cluster_id}-{name}", str(FIRST_NODE + index),
                          f"s{cluster_id}-{index}"))
    return Layout(cluster_id, f"{PREFIX}{cluster_id}-hub", str(HUB_ADDRESS), tuple(nodes))


def existing_namespaces() -> list[str]:
    """The names `ip netns list` shows."""
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def run(commands: Sequence[Sequence[str]], check: bool = True) -> list[str]:
    """Execute argv lists in order; with `check`, the first failure raises RuntimeError (with its
    stderr); without, failures are collected and returned."""
    failures = []
    for argv in commands:
        done = subprocess.run(list(argv), capture_output=True, text=True)
        if done.returncode != 0:
            message = f"{' '.join(argv)}: {done.stderr.strip()}"
            if check:
                raise RuntimeError(message)
            failures.append(message)
    return failures


def exec_prefix(namespace: str) -> list[str]:
    """The argv prefix that runs a command inside `namespace` (`ip netns exec` execs it: the
    process id is the command's own)."""
    return ["ip", "netns", "exec", namespace]


CLONE_NEWNET = 0x40000000


def call_in(namespace: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a new thread that has entered network namespace `namespace` (setns(2) is per
    thread for network namespaces): sockets it makes live there. Returns its result or raises its
    exception."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{namespace}") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {namespace}")
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{namespace}")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
