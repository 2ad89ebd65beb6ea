"""Our secondary's transfer agent (`semdns cluster secondary`): keeps a zonefile in step with a
primary by TSIG-signed IXFR (AXFR when the primary has no history for our serial), on every signed
NOTIFY and every `--refresh` seconds, and makes the `semdns serve` that reads the file reload
(SIGHUP to the pid in `--serve-pid-file`). The server answers on port 53; the agent hears NOTIFY on
its own port (5353) at the same address.

    semdns cluster secondary --zone legal.semantic.root. --primary 10.53.1.1 \\
        --key-file transfer.key --listen 10.53.1.2:5353 --zones-dir DIR --serve-pid-file PID

The transfer itself is dnspython's (`dns.xfr` / `dns.query.inbound_xfr`); this module only moves
bytes and files.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import cast

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.xfr
import dns.zone

from zones.tsig import load_keyring

log = logging.getLogger("semdns.secondary")
RETRY = 0.5
TIMEOUT = 5.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("secondary", help="keep a zonefile in step with a primary (IXFR + NOTIFY, TSIG)")
    parser.add_argument("--zone", required=True)
    parser.add_argument("--primary", required=True, metavar="ADDR[:PORT]")
    parser.add_argument("--key-file", type=Path, required=True, help="the transfer key (BIND key block, 0600)")
    parser.add_argument("--listen", required=True, metavar="ADDR:PORT", help="where NOTIFY is heard")
    parser.add_argument("--zones-dir", type=Path, required=True, help="the served directory; ZONE.zone goes here")
    parser.add_argument("--serve-pid-file", type=Path, help="SIGHUP the pid in this file after each change")
    parser.add_argument("--refresh", type=float, default=30.0, help="seconds between SOA checks (default 30)")
    parser.set_defaults(func=cmd_secondary)


class Secondary:
    """The zone as last transferred, and the transfer that brings it up to date."""

    def __init__(self, zone: str, primary: tuple[str, int], keyring: dict[dns.name.Name, dns.tsig.Key],
                 zones_dir: Path, serve_pid_file: Path | None) -> None:
        self.origin = dns.name.from_text(zone)
        self.primary = primary
        self.keyring = keyring
        self.keyname = next(iter(keyring))
        self.path = zones_dir / f"{self.origin.to_text()}zone"
        self.serve_pid_file = serve_pid_file
        self.zone: dns.zone.Zone | None = None

    @property
    def serial(self) -> int | None:
        if self.zone is None:
            return None
        soa = self.zone.get_rdataset(self.origin, dns.rdatatype.SOA)
        return soa[0].serial if soa else None

    def transfer(self) -> bool:
        """IXFR from our serial (AXFR the first time); True when the zone changed. Blocking."""
        zone = self._working_copy()
        before = self.serial
        query, _serial = dns.xfr.make_query(zone, keyring=self.keyring, keyname=self.keyname)
        dns.query.inbound_xfr(self.primary[0], zone, query=query, port=self.primary[1], timeout=TIMEOUT,
                              lifetime=TIMEOUT * 4)
        self.zone = zone
        if self.serial == before:
            return False
        self._write()
        return True

    def _working_copy(self) -> dns.zone.Zone:
        if self.zone is None:
            return dns.zone.Zone(self.origin)
        # an IXFR applies to a copy: a failed transfer leaves the served zone as it was
        return dns.zone.from_text(self.zone.to_text(relativize=False), self.origin, relativize=False,
                                  check_origin=False)

    def _write(self) -> None:
        assert self.zone is not None
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(self.zone.to_text(relativize=False))
        os.replace(tmp, self.path)
        log.info("%s: serial %s written to %s", self.origin, self.serial, self.path)
        if self.serve_pid_file is not None and self.serve_pid_file.exists():
            try:
                os.kill(int(self.serve_pid_file.read_text().split()[0]), signal.SIGHUP)
            except (ValueError, ProcessLookupError, IndexError):
                pass


class NotifyProtocol(asyncio.DatagramProtocol):
    """Answers signed NOTIFYs for the zone (signed, with the same key) and wakes the refresher."""

    def __init__(self, secondary: Secondary, wake: asyncio.Event) -> None:
        self.secondary = secondary
        self.wake = wake
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data, keyring=self.secondary.keyring)
        except dns.exception.DNSException as exc:
            log.warning("NOTIFY from %s refused: %s", addr[0], exc)
            return
        if query.opcode() != dns.opcode.NOTIFY or not query.had_tsig:
            return
        reply = dns.message.make_response(query)
        if not query.question or query.question[0].name != self.secondary.origin:
            reply.set_rcode(dns.rcode.NOTAUTH)
        else:
            log.info("NOTIFY from %s for %s", addr[0], self.secondary.origin)
            self.wake.set()
        assert self.transport is not None
        self.transport.sendto(reply.to_wire(), addr)


async def run(secondary: Secondary, listen: tuple[str, int], refresh: float) -> None:
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: NotifyProtocol(secondary, wake), local_addr=listen,
                                        family=socket.AF_INET)
    print(f"ready: NOTIFY on {listen[0]}:{listen[1]} for {secondary.origin}", flush=True)
    while True:
        try:
            await asyncio.wait_for(wake.wait(), refresh)
        except asyncio.TimeoutError:
            pass
        wake.clear()
        await _transfer_until_done(secondary)


async def _transfer_until_done(secondary: Secondary, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            await asyncio.to_thread(secondary.transfer)
            return
        except (dns.exception.DNSException, dns.xfr.TransferError, OSError, EOFError) as exc:
            if time.monotonic() > end:
                log.warning("%s: transfer failed: %s", secondary.origin, exc)
                return
            await asyncio.sleep(RETRY)


def _address(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(default_port))
    return host, int(port)


def cmd_secondary(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    keyring = load_keyring(args.key_file)
    secondary = Secondary(args.zone, _address(args.primary, 53), keyring, args.zones_dir, args.serve_pid_file)
    args.zones_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(_first_then_run(secondary, _address(args.listen, 5353), args.refresh))
    return 0


async def _first_then_run(secondary: Secondary, listen: tuple[str, int], refresh: float) -> None:
    await _transfer_until_done(secondary, deadline=120.0)
    if secondary.serial is None:
        raise SystemExit(f"semdns cluster secondary: no transfer of {secondary.origin} from {secondary.primary}")
    print(f"transferred: {secondary.origin} serial {secondary.serial}", flush=True)
    await run(secondary, listen, refresh)
