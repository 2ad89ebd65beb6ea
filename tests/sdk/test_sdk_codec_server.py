"""The SDK against a real `semdns serve` on loopback: the shipped legal library fetched over TCP,
and, on zones written here, faulty libraries, fallbacks, retries and the `semdns ask` output,
with a fake engine that decodes what the SDK sends."""
from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dns.zone
import pytest
from helpers.server import REPO, ServerHandle, running_server
from sdk_codec_support import (
    APEX,
    CONTEXT,
    FAULTS,
    FakeEngine,
    lab_zone,
    small_library,
    start_fake_engine,
    stop_fake_engine,
)

from codec.library import from_txt_records, header_owner
from sdk import AsyncClient, Client

LEGAL = "legal.semantic.root."
QUESTION = "who pays the deposit"


@pytest.fixture(scope="module")
def shipped() -> Iterator[ServerHandle]:
    with running_server(REPO / "zonefiles") as server:
        yield server


@dataclass
class Lab:
    server: ServerHandle
    good: FakeEngine  # knows the lab library
    stale: FakeEngine  # knows no library

    @property
    def servers(self) -> list[str]:
        return [f"{self.server.host}:{self.server.port}"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    library = small_library()
    good, stale = start_fake_engine({library.dict_id: library}), start_fake_engine({})
    try:
        zones = tmp_path_factory.mktemp("zones")
        (zones / f"{APEX}zone").write_text(lab_zone({"good": good.port, "stale": stale.port}))
        with running_server(zones) as server:
            yield Lab(server, good, stale)
    finally:
        stop_fake_engine(good)
        stop_fake_engine(stale)


@pytest.fixture(autouse=True)
def fresh_engines(request: pytest.FixtureRequest) -> None:
    if "lab" in request.fixturenames:
        lab = request.getfixturevalue("lab")
        for engine in (lab.good, lab.stale):
            engine.received.clear()
            engine.contexts.clear()


def fragment_library(domain: str):
    """The library as the shipped fragment file states it (parsed by dnspython, reassembled)."""
    text = (REPO / "zonefiles" / "codec" / f"{domain}codec").read_text()
    soa = "@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ 3600 IN NS ns1\n"
    zone = dns.zone.from_text(soa + text, origin=domain, relativize=False)
    header = zone.find_rdataset(header_owner(domain), "TXT")[0].strings
    count = int(re.search(rb"chunks=(\d+)", b" ".join(header))[1])
    chunks = [zone.find_rdataset(f"{i}._codec.{domain}", "TXT")[0].strings for i in range(count)]
    return text, from_txt_records(header, chunks)


def test_shipped_legal_library_over_tcp(shipped: ServerHandle) -> None:
    client = Client([f"{shipped.host}:{shipped.port}"])
    library = client.library(LEGAL)
    text, expected = fragment_library(LEGAL)
    assert library is not None
    assert library.data == expected.data and library.dict_id == expected.dict_id
    assert f"sha256={library.sha256}" in text  # the header the fragment file publishes
    assert library.name in text
    assert client.libraries.entry(LEGAL).owner == header_owner(LEGAL)


def test_shipped_subdomain_uses_its_parents_library(shipped: ServerHandle) -> None:
    client = Client([f"{shipped.host}:{shipped.port}"])
    contract = client.library(f"contract.{LEGAL}")
    assert contract is not None and contract == client.library(LEGAL)
    assert client.libraries.entry(f"contract.{LEGAL}").owner == header_owner(LEGAL)
    assert set(client.libraries.by_id) == {contract.dict_id}  # one library, cached once by id


def test_shipped_apex_has_no_library(shipped: ServerHandle, caplog: pytest.LogCaptureFixture) -> None:
    client = Client([f"{shipped.host}:{shipped.port}"])
    with caplog.at_level(logging.WARNING, logger="sdk.library"):
        assert client.library("semantic.root.") is None
    assert not caplog.records  # no library is not a fault
    assert client.libraries.entry("semantic.root.").fault is None


def test_ask_sends_the_context_compressed_with_the_domain_library(lab: Lab) -> None:
    library = small_library()
    answer = Client(lab.servers, zone=f"good.{APEX}").ask(QUESTION, context=CONTEXT)
    assert answer.text == "ok" and answer.failures == ()
    (body,) = lab.good.received
    assert body["semdns_context"]["dict_id"] == library.dict_id
    assert all(m["role"] == "user" for m in body["messages"])  # the context is not sent in clear
    assert lab.good.contexts == [CONTEXT]  # restored byte for byte
    assert answer.context.dict_id == library.dict_id and answer.context.mode == "zstd-dict"
    assert answer.context.ratio > 2


async def test_async_client_compresses_too(lab: Lab) -> None:
    library = small_library()
    async with AsyncClient(lab.servers, zone=f"child.good.{APEX}") as client:
        assert await client.library(f"child.good.{APEX}") == library
        answer = await client.ask(QUESTION, context=CONTEXT)
    assert answer.context.dict_id == library.dict_id
    assert lab.good.contexts == [CONTEXT]


@pytest.mark.parametrize("label", sorted(FAULTS))
def test_faulty_library_falls_back_without_dictionary(lab: Lab, label: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sdk.library"):
        answer = Client(lab.servers, zone=f"{label}.{APEX}").ask(QUESTION, context=CONTEXT)
    assert answer.text == "ok"
    assert [b["semdns_context"]["dict_id"] for b in lab.good.received] == [0]
    assert lab.good.contexts == [CONTEXT]
    assert answer.context.mode == "zstd" and answer.context.dict_id == 0
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "sdk.library"]
    assert f"{label}.{APEX}" in warning and FAULTS[label][1] in warning


def test_dns_failure_of_the_library_falls_back(lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    client = Client([*lab.servers], zone=f"good.{APEX}", timeout=1.0)
    client.servers = [("127.0.0.1", 9)]  # the route resolved, then the server went away
    with caplog.at_level(logging.WARNING, logger="sdk.library"):
        assert client.library(f"good.{APEX}") is None
    assert "127.0.0.1:9" in caplog.text


def test_engine_without_the_dictionary_gets_plain_context_once(lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sdk.steps"):
        answer = Client(lab.servers, zone=f"stale.{APEX}").ask(QUESTION, context=CONTEXT)
    first, second = lab.stale.received
    assert first["semdns_context"]["dict_id"] == small_library().dict_id
    assert "semdns_context" not in second and second["messages"][0] == {"role": "system", "content": CONTEXT}
    assert answer.text == "ok" and answer.context.mode == "plain"
    assert "unknown_dictionary" in answer.failures[0] and "retrying with plain context" in caplog.text


def test_opt_out_sends_plain_text(lab: Lab) -> None:
    answer = Client(lab.servers, zone=f"good.{APEX}", compress_context=False).ask(QUESTION, context=CONTEXT)
    (body,) = lab.good.received
    assert "semdns_context" not in body and body["messages"][0]["content"] == CONTEXT
    assert answer.context.mode == "plain" and answer.context.ratio == 1.0


def semdns_ask(lab: Lab, context_file: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", "ask", QUESTION, "--server", lab.servers[0], "--zone", f"good.{APEX}",
         "--context", str(context_file), *flags],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )


def test_cli_ask_reports_dictionary_and_ratio(lab: Lab, tmp_path: Path) -> None:
    context_file = tmp_path / "context.txt"
    context_file.write_bytes(CONTEXT.encode("utf-8"))
    library = small_library()
    done = semdns_ask(lab, context_file, "--json")
    assert done.returncode == 0, done.stderr
    reported = json.loads(done.stdout)["context"]
    assert reported["dict_id"] == library.dict_id and reported["mode"] == "zstd-dict"
    assert reported["original_octets"] == len(CONTEXT.encode()) and reported["ratio"] > 2
    done = semdns_ask(lab, context_file, "--verbose")
    assert done.returncode == 0, done.stderr
    assert re.search(rf"context: +zstd with dictionary {library.dict_id}: \d+ -> \d+ octets \(ratio \d+\.\d\d\)",
                     done.stdout), done.stdout
    assert lab.good.contexts == [CONTEXT, CONTEXT]  # read_text kept the CRLF: the file travels exactly
