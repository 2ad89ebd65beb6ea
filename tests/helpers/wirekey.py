"""The wire cache's key in Python: the reference `nameserver/_hotpath.c`'s `locate` is held to."""
from __future__ import annotations

import struct

from nameserver.wire import QUESTION_START, plain_qname_end

OPT_FIXED = struct.Struct("!BHHIH")  # root owner, type 41, payload, ext-rcode/version/flags, RDLENGTH


def reference_locate(wire: bytes, tag: bytes, max_udp: int) -> tuple[bytes, int, int] | None:
    """(key, qname_end, size) as `_hotpath.locate` gives them, or None for a query not plain."""
    end = plain_qname_end(wire)
    if end < 0:
        return None
    key = tag + wire[2:QUESTION_START] + wire[QUESTION_START:end].lower() + wire[end:]
    payload = -1
    start = end + 4
    if wire[11] == 1 and len(wire) >= start + OPT_FIXED.size:
        owner, opt_type, size, _ttl, _rdlen = OPT_FIXED.unpack_from(wire, start)
        payload = size if not owner and opt_type == 41 else -1
    if payload >= 0:  # the size's two octets, at wire offset end + 7, leave the key
        at = end + 7 - 2 + len(tag)
        key = key[:at] + key[at + 2:]
    if tag == b"t":
        return key, end, 65535
    return key, end, max(512, min(payload, max_udp)) if payload >= 0 else 512
