"""The lean UDP client of `semdns bench resolve` and how it finds the cluster's resolver."""
from __future__ import annotations

import json
import socket
import threading

from tools.bench_resolve import UdpClient, resolver_pid


def test_the_client_skips_replies_to_other_queries() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5.0)

    def answer() -> None:
        query, peer = server.recvfrom(512)
        server.sendto(b"\x00\x00stale", peer)  # a late reply to an earlier query
        server.sendto(query[:2] + b"fresh", peer)

    thread = threading.Thread(target=answer)
    thread.start()
    client = UdpClient("127.0.0.1", server.getsockname()[1], timeout=5.0)
    try:
        reply, took = client.ask(b"\x12\x34question")
    finally:
        client.close()
        thread.join()
        server.close()
    assert reply == b"\x12\x34fresh" and took >= 0


def test_the_resolver_pid_comes_from_the_cluster_state(tmp_path) -> None:
    assert resolver_pid(tmp_path) is None
    member = {"address": "127.0.0.1", "port": 1, "zones": [], "log": "x"}
    (tmp_path / "cluster.json").write_text(json.dumps([
        {**member, "role": "authority", "pid": 11}, {**member, "role": "resolver", "pid": 22},
    ]))
    assert resolver_pid(tmp_path) == 22
