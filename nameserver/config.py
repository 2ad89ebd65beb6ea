"""The server's configuration: one small frozen dataclass, parsed in one place.

Every option has a default that works: `ServerConfig()` serves nothing on 127.0.0.1:5353.
"""
from __future__ import annotations

import importlib.metadata
import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import dns.exception
import dns.name
import dns.tsig

from nameserver.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = tuple[str, int]

DEFAULT_MAX_UDP = 1232
LOOPBACK: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
MAX_TXT_STRING = 255
# Response rate limiting (nameserver/rrl.py): 20 replies a second per prefix and response class
# (NSD allows 200/s per /24 over every class, BIND sets no default; per class, 20 is ample for any
# resolver and little for a reflector); slip 2 as BIND's and NSD's default (every second limited
# reply goes out truncated); a one-second burst.
DEFAULT_RRL_RATE = 20
DEFAULT_RRL_SLIP = 2
DEFAULT_RRL_WINDOW = 1.0
DEFAULT_RRL_TABLE = 100_000
# Encoder admission (nameserver/semantic/batcher.py). A 2-core box embeds a short question in
# 3-5 ms and a six-sentence one (the question, then its sentences) in ~30 ms: 64 queued texts are
# two full batches, ~0.2-0.3 s of work, so a question admitted at the tail still meets a 0.5 s
# deadline, and an answer never comes later than stock resolvers' first retry (~0.4-1 s) by much.
# After a burst, whatever still waits is shed within the deadline: the backlog is gone in 0.5 s.
DEFAULT_ENCODER_QUEUE = 64
DEFAULT_ENCODER_DEADLINE = 0.5
MAX_WORKERS = 64  # `--workers`: processes answering UDP (the main and MAX_WORKERS - 1 workers)


def default_version() -> str:
    """What CH TXT `version.bind.` answers by default: `semantic-dns <package version>`."""
    try:
        return f"semantic-dns {importlib.metadata.version('semantic-dns')}"
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "semantic-dns"


@dataclass(frozen=True)
class TransferRule:
    """One entry of the transfer ACL (`--allow-transfer [ZONE=]CIDR|key:NAME[+...]`): for `zone`
    (None: every zone without rules of its own), clients in `network` (None: any address)
    whose request is signed with `key` (None: signed or not). A CIDR and a key together mean
    "this key from this network"."""

    zone: dns.name.Name | None = None
    network: IPNetwork | None = None
    key: dns.name.Name | None = None

    def admits(self, host: str, key: dns.name.Name | None) -> bool:
        """True when a client at `host` whose request verified with `key` (None: unsigned) may transfer."""
        if self.network is not None and not address_in(host, (self.network,)):
            return False
        return self.key is None or self.key == key

    def __str__(self) -> str:
        items = [str(self.network)] if self.network is not None else []
        items += [f"key:{self.key}"] if self.key is not None else []
        return (f"{self.zone}=" if self.zone is not None else "") + "+".join(items)


DEFAULT_TRANSFER_ACL: tuple[TransferRule, ...] = tuple(TransferRule(network=n) for n in LOOPBACK)


@dataclass(frozen=True)
class NotifyTarget:
    """A secondary to NOTIFY (`--notify ADDR:PORT[+key:NAME]`), signed with `key` when given."""

    address: Address
    key: dns.name.Name | None = None


@dataclass(frozen=True)
class ServerConfig:
    """What `semdns serve` runs with (see `tools/cmd_serve.py` for the flags)."""

    zones_dir: Path | None = None
    listen: tuple[Address, ...] = (("127.0.0.1", 5353),)
    max_udp: int = DEFAULT_MAX_UDP
    wire_cache: bool = True
    wire_cache_entries: int = 50_000
    transfer_acl: tuple[TransferRule, ...] = DEFAULT_TRANSFER_ACL  # who may AXFR/IXFR (`allowed_transfer`)
    transfer_keys: Mapping[dns.name.Name, dns.tsig.Key] = field(default_factory=dict)  # --transfer-keys
    notify: tuple[Address, ...] = ()
    notify_keys: Mapping[Address, dns.name.Name] = field(default_factory=dict)  # targets NOTIFYed with TSIG
    notify_retries: int = 3
    notify_timeout: float = 1.0
    tcp_idle_timeout: float = 10.0
    tcp_max_connections: int = 256
    tcp_max_inflight: int = 64
    pid_file: Path | None = None
    uvloop: bool = True
    version: str = field(default_factory=default_version)  # CH TXT version.bind. / version.server.
    identity: str = field(default_factory=socket.gethostname)  # CH TXT id.server. / hostname.bind.
    hide_version: bool = False  # then those queries are REFUSED (EDE 18), as NSD's hide-version
    hide_identity: bool = False
    rrl_rate: int = DEFAULT_RRL_RATE  # UDP replies a second per client prefix and response class; 0: off
    rrl_window: float = DEFAULT_RRL_WINDOW  # seconds of `rrl_rate` a quiet bucket saves up (the burst)
    rrl_slip: int = DEFAULT_RRL_SLIP  # every Nth limited reply goes out truncated (TC=1); 0: drop all
    rrl_exempt: tuple[IPNetwork, ...] = ()  # clients never limited
    rrl_table_size: int = DEFAULT_RRL_TABLE  # buckets kept (least recently used prefix evicted)
    log_questions: bool = False  # name semantic questions in log lines (else a hash: logs leak prompts)
    tcp_max_per_address: int = 32  # connections open from one client address (tcp_max_connections in all)
    tcp_message_timeout: float = 5.0  # seconds from a TCP query's first byte to its last
    tcp_write_high_water: int = 64 * 1024  # unsent answer bytes at which a connection stops reading
    wire_cache_bytes: int = 64 * 1024 * 1024  # the wire cache's budget (keys + answers, approximate)
    workers: int = 1  # processes answering UDP on each listener (SO_REUSEPORT above 1; `nameserver.workers`)

    def __post_init__(self) -> None:
        if not 512 <= self.max_udp <= 65535:
            raise ConfigError(f"max-udp {self.max_udp}: must be within 512..65535")
        if not self.listen:
            raise ConfigError("listen: at least one address is needed")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"workers {self.workers}: must be within 1..{MAX_WORKERS}")
        if self.rrl_rate < 0 or self.rrl_slip < 0 or self.rrl_window <= 0 or self.rrl_table_size < 1:
            raise ConfigError("rrl: rate and slip at least 0, window above 0, table size at least 1")
        if self.rrl_rate and self.rrl_rate * self.rrl_window < 1:
            raise ConfigError(f"rrl: rate {self.rrl_rate} x window {self.rrl_window} s holds no whole reply")
        for rule in self.transfer_acl:
            if rule.key is not None and rule.key not in self.transfer_keys:
                raise ConfigError(f"allow-transfer {rule}: no key {rule.key} in the transfer keys (--transfer-keys)")
        for address, key in self.notify_keys.items():
            if key not in self.transfer_keys:
                raise ConfigError(
                    f"notify {format_address(address)}: no key {key} in the transfer keys (--transfer-keys)")
        for option, text in (("version", self.version), ("identity", self.identity)):
            if len(text.encode()) > MAX_TXT_STRING:
                raise ConfigError(f"{option} {text[:20]!r}...: at most {MAX_TXT_STRING} octets (one TXT string)")

    def transfer_allowed(self, zone: dns.name.Name, host: str, key: dns.name.Name | None) -> bool:
        """True when a client at `host`, its request verified with `key` (None: unsigned), may
        transfer `zone`: a rule for that zone admits it or, when the zone has no rules of its
        own, a rule for every zone does (like BIND's zone-level `allow-transfer`)."""
        rules = [r for r in self.transfer_acl if r.zone == zone] or [r for r in self.transfer_acl if r.zone is None]
        return any(rule.admits(host, key) for rule in rules)

    def notify_key(self, target: Address) -> dns.tsig.Key | None:
        """The key NOTIFYs to `target` are signed with, or None."""
        name = self.notify_keys.get(target)
        return None if name is None else self.transfer_keys[name]


def address_in(host: str, networks: tuple[IPNetwork, ...]) -> bool:
    """True when the client address `host` (scope id and IPv4-mapped form allowed) is in `networks`."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def parse_address(text: str, default_port: int = 53) -> Address:
    """`ADDR:PORT`, `[V6]:PORT`, a bare IPv4/IPv6 address, or `:PORT` (IPv4 loopback)."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ConfigError(f"address {text!r}: missing ']'")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"address {text!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    host = host or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"address {text!r}: {host!r} is not an IP address") from None
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ConfigError(f"address {text!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"address {text!r}: port {port} out of range")
    return host, port


def parse_network(text: str) -> IPNetwork:
    """A CIDR (`127.0.0.1/32`) or a bare address (a host network)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ConfigError(f"network {text!r}: not an address or CIDR") from None


def parse_transfer_rule(text: str) -> TransferRule:
    """`[ZONE=]ITEM[+ITEM]`, an ITEM being a CIDR (or a bare address) or `key:NAME`, at most one of
    each: `10.0.0.0/8`, `key:xfr-knot`, `legal.semantic.root=192.0.2.0/24+key:xfr-knot`."""
    zone_text, _, rest = text.strip().rpartition("=")
    zone = _name(zone_text, f"allow-transfer {text!r}: zone") if zone_text else None
    network: IPNetwork | None = None
    key: dns.name.Name | None = None
    for item in rest.split("+"):
        item = item.strip()
        if item.startswith("key:"):
            if key is not None:
                raise ConfigError(f"allow-transfer {text!r}: one key per rule (give several rules)")
            key = _name(item[4:], f"allow-transfer {text!r}: key")
        elif item:
            if network is not None:
                raise ConfigError(f"allow-transfer {text!r}: one network per rule (give several rules)")
            network = parse_network(item)
    if network is None and key is None:
        raise ConfigError(f"allow-transfer {text!r}: give a CIDR, key:NAME or both (CIDR+key:NAME)")
    return TransferRule(zone, network, key)


def parse_transfer_acl(texts: list[str] | tuple[str, ...]) -> tuple[TransferRule, ...]:
    """The transfer ACL of `--allow-transfer` flags: every zone without rules of its own keeps the
    default (loopback, no key) unless some rule is for every zone."""
    rules = tuple(parse_transfer_rule(t) for t in texts)
    if not any(rule.zone is None for rule in rules):
        rules += DEFAULT_TRANSFER_ACL
    return rules


def parse_notify(text: str, default_port: int = 53) -> tuple[Address, dns.name.Name | None]:
    """`ADDR:PORT[+key:NAME]`: a secondary to NOTIFY, and the key to sign with."""
    address_text, plus, key_text = text.partition("+")
    if plus and not key_text.strip().startswith("key:"):
        raise ConfigError(f"notify {text!r}: expected ADDR:PORT+key:NAME")
    key = _name(key_text.strip()[4:], f"notify {text!r}: key") if plus else None
    return parse_address(address_text, default_port), key


def _name(text: str, what: str) -> dns.name.Name:
    if not text.strip():
        raise ConfigError(f"{what}: empty name")
    try:
        return dns.name.from_text(text.strip())
    except dns.exception.DNSException as exc:
        raise ConfigError(f"{what} {text!r}: {exc}") from None


def format_address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
