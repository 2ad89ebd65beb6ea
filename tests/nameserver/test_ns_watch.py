"""`semdns serve --watch`: an edit of the zonefiles (by `semdns zone` or by hand) is served without
SIGHUP; a broken hand edit keeps the old answer and the log says file:line. Plus the debouncer."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
from helpers.dnswire import dig, udp_exchange
from helpers.server import running_server
from helpers.shipped import ZONEFILES, shipped_serial

from nameserver.watch import Debouncer

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20.0
LITIGATION = "_llm._tcp.litigation.legal.semantic.root."


def ask(host: str, port: int, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.message.from_wire(udp_exchange(host, port, query.to_wire()))


def srv_ports(host: str, port: int, name: str) -> list[int]:
    reply = ask(host, port, name, "SRV")
    return sorted(rr.port for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SRV for rr in rrset)


def wait_for(condition, timeout: float = DEADLINE) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def semdns_zone(*args: str) -> None:
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "tools.cli", "zone", *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_watch_serves_semdns_zone_edits_without_sighup(tmp_path: Path) -> None:
    zones = tmp_path / "zonefiles"
    shutil.copytree(ZONEFILES, zones)
    with running_server(zones, ["--no-semantic", "--watch"]) as server:
        h, p = server.host, server.port
        assert srv_ports(h, p, LITIGATION) == [8112]
        semdns_zone("add-engine", str(zones), "litigation.legal.semantic.root", "--port", "8113",
                    "--address", "127.0.0.9")
        assert wait_for(lambda: srv_ports(h, p, LITIGATION) == [8112, 8113]), server.log()
        assert "127.0.0.9" in dig(h, p, "+short", "A", "llm2.litigation.legal.semantic.root")
        # a new delegated zone: a new file in the directory
        semdns_zone("add-domain", str(zones), "travel.semantic.root", "--desc", "Travel and trips", "--kw", "flight",
                    "--delegate", "127.0.0.1", "--engine-port", "8170", "--engine-address", "127.0.0.1")
        assert wait_for(lambda: srv_ports(h, p, "_llm._tcp.travel.semantic.root.") == [8170]), server.log()
        assert "ns1.travel.semantic.root." in dig(h, p, "+norec", "NS", "travel.semantic.root")
        assert server.process.poll() is None
        assert "zone files changed" in server.log()


def test_watch_keeps_the_old_zone_when_a_hand_edit_breaks_it(tmp_path: Path) -> None:
    zones = tmp_path / "zonefiles"
    shutil.copytree(ZONEFILES, zones)
    legal = zones / "legal.semantic.root.zone"
    with running_server(zones, ["--no-semantic", "--watch"]) as server:
        h, p = server.host, server.port
        text = legal.read_text()
        old = shipped_serial("legal.semantic.root.")
        broken = text.replace(f"{old}  ; serial", f"{old + 1}  ; serial").replace(
            "llm1.litigation       300 IN  A   127.0.0.1", "llm1.litigation       300 IN  A   127.0.0.300")
        assert broken != text
        line = text.splitlines().index("llm1.litigation       300 IN  A   127.0.0.1") + 1
        legal.write_text(broken)
        assert wait_for(lambda: "keeping the previous version" in server.log()), server.log()
        assert f"{legal}:{line}:" in server.log()
        reply = ask(h, p, LITIGATION, "SRV")
        assert reply.rcode() == dns.rcode.NOERROR and srv_ports(h, p, LITIGATION) == [8112]
        serial = ask(h, p, "legal.semantic.root.", "SOA").answer[0][0].serial
        assert serial == old  # the old version still serves
        legal.write_text(broken.replace("127.0.0.300", "127.0.0.30"))  # fixed: now it loads
        assert wait_for(lambda: "127.0.0.30" in dig(h, p, "+short", "A", "llm1.litigation.legal.semantic.root"))


def test_debouncer_reloads_once_after_a_quiet_period() -> None:
    d = Debouncer(quiet=0.5)
    a = {"f": (1, 10)}
    b = {"f": (2, 11)}
    c = {"f": (3, 12)}
    assert not d.observe(a, 0.0)  # the baseline
    assert not d.observe(a, 1.0)
    assert not d.observe(b, 1.1)  # a change...
    assert not d.observe(c, 1.3)  # ...and another: the quiet period restarts
    assert not d.observe(c, 1.6)
    assert d.observe(c, 1.8)  # 0.5 s after the last change
    assert not d.observe(c, 3.0)  # once
    d.rebase({"f": (9, 9), "g": (1, 1)})  # a new include appears: watched, no reload for it
    assert d.seen == {"f": (3, 12), "g": (1, 1)}
    assert not d.observe({"f": (3, 12), "g": (1, 1)}, 3.5)
    assert not d.observe({"f": (3, 12), "g": None}, 3.6)  # a file disappears: a change too
    assert d.observe({"f": (3, 12), "g": None}, 4.2)
