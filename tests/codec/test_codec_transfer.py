"""The shipped legal library travels by zone transfer: our server's AXFR and a Knot secondary's
answers reassemble to the very library of the generated fragment (sha256), which decompresses
what the primary's copy compressed."""
from __future__ import annotations

from collections.abc import Iterator

import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest
from helpers.peers import running_knot_secondary
from helpers.server import REPO, ServerHandle, running_server

from codec.compress import compress, decompress
from codec.library import PatternLibrary, chunk_owner, from_txt_records, header_owner, parse_header

pytestmark = [pytest.mark.external, pytest.mark.model]

DOMAIN = "legal.semantic.root."
FRAGMENT = REPO / "zonefiles" / "codec" / f"{DOMAIN}codec"


@pytest.fixture(scope="module")
def ours() -> Iterator[ServerHandle]:
    with running_server(REPO / "zonefiles") as server:
        yield server


def library_in_zone(zone: dns.zone.Zone) -> PatternLibrary:
    origin = dns.name.from_text(DOMAIN)
    header = zone.find_rdataset(dns.name.from_text("_codec", origin), "TXT")[0].strings
    chunks = [
        zone.find_rdataset(dns.name.from_text(f"{i}._codec", origin), "TXT")[0].strings
        for i in range(parse_header(header).chunks)
    ]
    return from_txt_records(header, chunks)


def shipped_library() -> PatternLibrary:
    text = (f"$ORIGIN {DOMAIN}\n@ 300 IN SOA ns1 hostmaster 1 3600 900 1209600 300\n@ 300 IN NS ns1\n"
            + FRAGMENT.read_text())
    return library_in_zone(dns.zone.from_text(text, DOMAIN, relativize=False))


def txt_strings(address: tuple[str, int], owner: str) -> list[bytes]:
    reply = dns.query.tcp(dns.message.make_query(owner, "TXT"), address[0], port=address[1], timeout=5.0)
    rrset = reply.get_rrset(reply.answer, dns.name.from_text(owner), dns.rdataclass.IN, dns.rdatatype.TXT)
    assert rrset is not None and len(rrset) == 1, f"{owner}: {reply}"
    return list(rrset[0].strings)


def library_by_queries(address: tuple[str, int]) -> PatternLibrary:
    header = txt_strings(address, header_owner(DOMAIN))
    chunks = [txt_strings(address, chunk_owner(DOMAIN, i)) for i in range(parse_header(header).chunks)]
    return from_txt_records(header, chunks)


def test_axfr_from_our_server_carries_the_library(ours: ServerHandle) -> None:
    expected = shipped_library()
    xfr = dns.query.xfr(ours.host, DOMAIN, port=ours.port, timeout=5.0, lifetime=20.0, relativize=False)
    transferred = library_in_zone(dns.zone.from_xfr(xfr, relativize=False))
    assert transferred.sha256 == expected.sha256 and transferred.dict_id == expected.dict_id
    assert library_by_queries((ours.host, ours.port)) == expected


def test_knot_secondary_serves_the_same_library(ours: ServerHandle) -> None:
    expected = shipped_library()
    with running_knot_secondary(DOMAIN, (ours.host, ours.port)) as knot:
        served = library_by_queries(knot.address)
    assert served.sha256 == expected.sha256, "the Knot secondary serves another library"
    context = b"The tenant shall give the landlord written notice of any breach of the lease. " * 20
    assert decompress(compress(context, expected), {served.dict_id: served}) == context
