"""Hostile pattern libraries (issue 12): a header announcing 10^8 chunks is refused after one
query, against a real `semdns serve`; a hanging or slow DNS server cannot outlast the deadline."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Iterator

import dns.message
import pytest
from helpers.server import ServerHandle, running_server
from sdk_codec_support import APEX, small_library
from test_sdk_codec_unit import ZoneExchange

from codec.library import LibraryLimits
from sdk import AsyncClient, Client
from sdk.errors import LibraryTimeout, LibraryTooLarge, SdkError
from sdk.library import Deadline, LibraryCache, load_library

SHA = "ab" * 32
HOSTILE = {  # label -> header strings
    "huge": f'"v=semcodec1" "id=40000" "size=1000000000" "sha256={SHA}" "chunks=100000000"',
    "manychunks": f'"v=semcodec1" "id=40000" "size=8192" "sha256={SHA}" "chunks=100000000"',
}


def hostile_zone() -> str:
    lines = [f"$ORIGIN {APEX}", "$TTL 300", "@ IN SOA ns1 hostmaster 2026120301 3600 600 86400 60", "@ IN NS ns1",
             "ns1 IN A 127.0.0.1"]
    lines += [f"_codec.{label} IN TXT {strings}" for label, strings in HOSTILE.items()]
    lines += [f'{i}._codec.huge IN TXT "c={i}" "AAAA"' for i in range(3)]  # bait: must never be asked for
    lines.append(small_library().to_zone_fragment(f"good.{APEX}"))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    zones = tmp_path_factory.mktemp("zones")
    (zones / f"{APEX}zone").write_text(hostile_zone())
    with running_server(zones, ["--no-semantic"]) as server:
        yield server


class Counting(Client):
    """A `Client` that records the owners of its TCP queries."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.asked: list[str] = []

    def _exchange_tcp(self, query: dns.message.Message, deadline: Deadline | None = None) -> dns.message.Message:
        self.asked.append(query.question[0].name.to_text())
        return super()._exchange_tcp(query, deadline)


@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_hostile_header_is_refused_after_one_query(hostile: ServerHandle, label: str) -> None:
    client = Counting([f"{hostile.host}:{hostile.port}"])
    assert client.library(f"{label}.{APEX}") is None
    assert client.asked == [f"_codec.{label}.{APEX}"]
    entry = client.libraries.entry(f"{label}.{APEX}")
    assert entry is not None and "over this reader's limit" in str(entry.fault)


def test_the_good_library_next_door_is_still_fetched(hostile: ServerHandle) -> None:
    client = Counting([f"{hostile.host}:{hostile.port}"])
    assert client.library(f"good.{APEX}") == small_library()
    assert len(client.asked) == 1 + small_library().header.chunks


def test_limits_below_a_library_refuse_it(hostile: ServerHandle) -> None:
    client = Counting([f"{hostile.host}:{hostile.port}"], library_limits=LibraryLimits(chunks=2))
    assert client.library(f"good.{APEX}") is None
    assert len(client.asked) == 1


async def test_async_client_refuses_too(hostile: ServerHandle) -> None:
    async with AsyncClient([f"{hostile.host}:{hostile.port}"]) as client:
        assert await client.library(f"huge.{APEX}") is None
        entry = client.libraries.entry(f"huge.{APEX}")
        assert entry is not None and "size=1000000000" in str(entry.fault)


def test_too_large_is_an_sdk_error() -> None:
    assert issubclass(LibraryTooLarge, SdkError) and issubclass(LibraryTimeout, SdkError)


@pytest.fixture
def hanging() -> Iterator[tuple[str, int]]:
    """A TCP listener that accepts and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[:2]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_deadline_fires_on_a_hanging_server(hanging: tuple[str, int]) -> None:
    host, port = hanging
    client = Client([f"{host}:{port}"], timeout=30, library_deadline=0.5)
    started = time.monotonic()
    assert client.library(f"good.{APEX}") is None
    assert time.monotonic() - started < 10  # the 30 s query timeout did not run out
    entry = client.libraries.entry(f"good.{APEX}")
    assert entry is not None and entry.fault is not None


async def test_async_deadline_fires_on_a_hanging_server(hanging: tuple[str, int]) -> None:
    host, port = hanging
    async with AsyncClient([f"{host}:{port}"], timeout=30, library_deadline=0.5) as client:
        assert await asyncio.wait_for(client.library(f"good.{APEX}"), 10) is None
        entry = client.libraries.entry(f"good.{APEX}")
        assert entry is not None and "deadline" in str(entry.fault)


def test_deadline_counts_every_query_of_a_slow_server() -> None:
    """Each answer takes 1 s of a fake clock; a 2.5 s deadline stops the fetch at the third query."""
    now = [0.0]
    zone = small_library().to_zone_fragment(f"good.{APEX}")
    soa = f"$ORIGIN {APEX}\n@ 300 IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ 300 IN NS ns1\n"
    answer = ZoneExchange(soa + zone)

    def slow(query: dns.message.Message) -> dns.message.Message:
        now[0] += 1.0
        return answer(query)

    cache = LibraryCache(apex=APEX, deadline=2.5)
    deadline = Deadline(2.5, clock=lambda: now[0])
    assert load_library(cache, f"good.{APEX}", slow, deadline) is None
    assert len(answer.asked) == 3
    entry = cache.entry(f"good.{APEX}")
    assert entry is not None and "deadline" in str(entry.fault)


def test_deadline_must_be_positive() -> None:
    with pytest.raises(SdkError):
        LibraryCache(deadline=0)


