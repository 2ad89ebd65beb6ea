"""`semdns bench attack`'s packets are what its kinds say (the bench itself is run by hand)."""
from __future__ import annotations

import dns.message

from codec.edns_text import TEXT_OPTION, decode_text_option
from tools.bench_attack import repetitive_packets


def test_repetitive_packets_are_small_unique_and_64000_characters_long() -> None:
    packets = repetitive_packets(3)
    assert len(set(packets)) == 3 and all(len(packet) < 200 for packet in packets)
    for packet in packets:
        message = dns.message.from_wire(packet)
        (option,) = [o for o in message.options if o.otype == TEXT_OPTION]
        text = decode_text_option(option.data)
        assert len(text) > 64000 and text.startswith("sued in court sued in court")
