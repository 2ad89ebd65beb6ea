"""NOTIFY (RFC 1996) to secondaries: tell them a zone's serial rose, retrying a few times.

With a key (`--notify ADDR:PORT+key:NAME`) the NOTIFY is TSIG-signed (RFC 8945) and the
secondary's acknowledgement must verify with the same key (dnspython checks it)."""
from __future__ import annotations

import asyncio
import logging

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdatatype
import dns.tsig

from nameserver.config import Address, format_address

log = logging.getLogger(__name__)


def notify_message(origin: dns.name.Name, key: dns.tsig.Key | None = None) -> dns.message.Message:
    """A NOTIFY for `origin`: opcode NOTIFY, AA set, QTYPE SOA (RFC 1996 §3); signed with `key`."""
    message = dns.message.make_query(origin, dns.rdatatype.SOA)
    message.set_opcode(dns.opcode.NOTIFY)
    message.flags = (message.flags & ~dns.flags.RD) | dns.flags.AA
    if key is not None:
        message.use_tsig(key, key.name, algorithm=key.algorithm)
    return message


async def send_notify(
    origin: dns.name.Name, target: Address, retries: int = 3, timeout: float = 1.0,
    key: dns.tsig.Key | None = None,
) -> bool:
    """Send one NOTIFY and wait for its acknowledgement; True when the secondary answered."""
    host, port = target
    for attempt in range(1, retries + 1):
        query = notify_message(origin, key)
        try:
            reply = await dns.asyncquery.udp(query, host, port=port, timeout=timeout)
        except (dns.exception.Timeout, OSError, dns.exception.DNSException) as exc:
            log.info("notify %s to %s: attempt %d failed: %s", origin, format_address(target), attempt, exc)
            await asyncio.sleep(min(0.5 * attempt, 2.0))
            continue
        if reply.opcode() == dns.opcode.NOTIFY:
            log.info("notify %s to %s: acknowledged", origin, format_address(target))
            return True
        log.info("notify %s to %s: unexpected reply opcode %s", origin, format_address(target), reply.opcode())
        return False
    log.warning("notify %s to %s: no answer after %d attempts", origin, format_address(target), retries)
    return False
