"""`semdns bench soak`: a server under a steady mixed load for minutes (issue 11 item 9).

Starts `semdns serve` (the `--zones`, semantic routing unless `--no-semantic`, response rate
limiting off) on a free port of 127.0.0.1 and drives it at a fixed rate with `dnsperf` from a
generated query file: plain answers of the shipped zones, semantic SRV questions (`QUESTIONS`),
NXDOMAIN names; one dnsperf over UDP at `--qps` and a second over TCP (`-m tcp`) at `--tcp-qps`;
an AXFR of one of the zones (dnspython) every `--axfr-every` seconds. Every `--sample-every`
seconds it reads the server's RSS (`/proc/<pid>/status` VmRSS) and open file descriptors
(`/proc/<pid>/fd`). Prints the rcode counts of both dnsperf runs (SERVFAIL should be 0), the AXFRs,
RSS first/last and its slope (KiB a minute, least squares over all samples and over the second
half), fd min/max and the tracebacks in the server's log. Never asserts.

    semdns bench soak --minutes 5
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.query
import dns.zone

from codec.qname import text_to_qname
from tools.progress import bar
from tools.subserver import serving

RCODES = re.compile(r"Response codes:\s+(.*)")
RCODE = re.compile(r"([A-Z]+) (\d+) \(")
COUNTS = re.compile(r"Queries (sent|completed|lost):\s+(\d+)")
APEX = "semantic.root."
ZONES: tuple[str, ...] = (
    "semantic.root.", "legal.semantic.root.", "contract.legal.semantic.root.", "medical.semantic.root.",
    "diagnosis.medical.semantic.root.", "code.semantic.root.", "science.semantic.root.",
    "creative.semantic.root.", "finance.semantic.root.",
)
PLAIN: tuple[tuple[str, str], ...] = (
    *((zone, "SOA") for zone in ZONES),
    *((zone, "NS") for zone in ZONES),
    ("_llm._tcp.semantic.root.", "SRV"),
    ("_llm._tcp.finance.semantic.root.", "SRV"),
    ("_llm._tcp.tax.finance.semantic.root.", "SRV"),
    ("_llm._tcp.finance.semantic.root.", "TXT"),
    ("llm1.finance.semantic.root.", "A"),
    ("ns1.semantic.root.", "A"),
    ("tax._route.finance.semantic.root.", "TXT"),
    ("legal.semantic.root.", "NS"),
)
QUESTIONS: tuple[str, ...] = (
    "is a verbal agreement legally binding",
    "can my landlord keep my security deposit",
    "what happens if I break my lease early",
    "how do I file a small claims lawsuit",
    "what are the terms of a non-compete agreement",
    "what is a normal dose of ibuprofen",
    "what are the symptoms of strep throat",
    "should I see a doctor for a persistent cough",
    "how do I reverse a linked list in python",
    "why does my rust code not compile",
    "how do I write a sql join",
    "explain quantum entanglement simply",
    "why is the sky blue",
    "how far is the moon from earth",
    "write a short poem about autumn",
    "give me ideas for a fantasy story",
    "how do I lower my taxes",
    "should I invest in index funds",
    "how does compound interest work",
    "what is a good credit score",
    "what is the capital of mongolia",
    "tell me something interesting",
)
NXDOMAIN: tuple[str, ...] = tuple(f"nx-{index}.{zone}" for index in range(4) for zone in ZONES)


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_kib: int
    fds: int


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    parser = bench_subparsers.add_parser("soak", help="mixed dnsperf load for minutes; RSS, fds, rcodes")
    parser.add_argument("--zones", type=Path, default=Path("zonefiles"), help="zones to serve (default zonefiles)")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the run (default 5)")
    parser.add_argument("--qps", type=int, default=400, help="UDP queries a second (dnsperf -Q; default 400)")
    parser.add_argument("--tcp-qps", type=int, default=50, help="TCP queries a second (default 50)")
    parser.add_argument("--axfr-every", type=float, default=10.0, help="seconds between AXFRs (default 10)")
    parser.add_argument("--sample-every", type=float, default=3.0, help="seconds between samples (default 3)")
    parser.add_argument("--no-semantic", action="store_true", help="serve without semantic routing (no encoder)")
    parser.set_defaults(func=run)


def query_lines() -> list[str]:
    """The dnsperf query file: plain answers, semantic SRV questions and NXDOMAIN names, mixed."""
    semantic = [f"{text_to_qname(text, APEX)} SRV" for text in QUESTIONS]
    plain = [f"{name} {rdtype}" for name, rdtype in PLAIN]
    missing = [f"{name} A" for name in NXDOMAIN]
    lines = []
    for index in range(max(len(semantic), len(plain), len(missing))):
        for group in (plain, semantic, missing):
            lines.append(group[index % len(group)])
    return lines


def sample(pid: int, start: float) -> Sample:
    """The RSS (KiB) and open file descriptors of process `pid` now."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return Sample(time.monotonic() - start, int(match[1]) if match else 0, len(os.listdir(f"/proc/{pid}/fd")))


def slope(samples: list[Sample]) -> float:
    """RSS growth in KiB a minute, least squares."""
    if len(samples) < 2:
        return float("nan")
    xs = [s.seconds / 60 for s in samples]
    ys = [float(s.rss_kib) for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread if spread else float("nan")


def dnsperf(port: int, queries: Path, seconds: int, qps: int, mode: str, clients: int) -> subprocess.Popen:
    return subprocess.Popen(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds), "-Q", str(qps),
         "-m", mode, "-c", str(clients), "-t", "5", "-q", str(max(100, qps))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )


def dnsperf_result(output: str) -> tuple[Counter[str], dict[str, int]]:
    """The rcode counts and the sent/completed/lost counts of one dnsperf run."""
    rcodes: Counter[str] = Counter()
    match = RCODES.search(output)
    if match:
        for name, count in RCODE.findall(match[1]):
            rcodes[name] += int(count)
    return rcodes, {kind: int(count) for kind, count in COUNTS.findall(output)}


def axfr(port: int, zone: str) -> int:
    """The records of one AXFR of `zone` (0 when it failed)."""
    try:
        received = dns.zone.Zone(zone)
        dns.query.inbound_xfr("127.0.0.1", received, port=port, timeout=10, lifetime=30)
    except (dns.exception.DNSException, OSError):
        return 0
    return sum(len(rdataset) for _, rdataset in received.iterate_rdatasets())


def run(args: argparse.Namespace) -> int:
    if shutil.which("dnsperf") is None:
        print("bench soak needs dnsperf (Debian package dnsperf)", file=sys.stderr)
        return 2
    seconds = max(1, round(args.minutes * 60))
    with tempfile.TemporaryDirectory(prefix="semdns-soak-") as tmp:
        queries = Path(tmp) / "queries.txt"
        lines = query_lines()
        queries.write_text("\n".join(lines) + "\n")
        log = Path(tmp) / "server.log"
        print(f"soak: {seconds} s; dnsperf UDP {args.qps} q/s + TCP {args.tcp_qps} q/s over {len(lines)} queries "
              f"(plain, semantic SRV, NXDOMAIN); AXFR every {args.axfr_every:g} s; "
              f"semantic {'off' if args.no_semantic else 'on'}, rrl off")
        with serving(args.zones, log, semantic=not args.no_semantic) as (port, proc):
            start = time.monotonic()
            samples = [sample(proc.pid, start)]
            runs = [dnsperf(port, queries, seconds, args.qps, "udp", 4),
                    dnsperf(port, queries, seconds, args.tcp_qps, "tcp", 2)]
            transfers: list[int] = []
            next_sample, next_axfr = start + args.sample_every, start + args.axfr_every
            elapsed = bar(args=args, total=seconds, desc="soak", unit="s")
            while time.monotonic() - start < seconds:
                now = time.monotonic()
                elapsed.update(int(now - start) - elapsed.n)
                if now >= next_axfr:
                    transfers.append(axfr(port, ZONES[len(transfers) % len(ZONES)]))
                    next_axfr += args.axfr_every
                if now >= next_sample:
                    samples.append(sample(proc.pid, start))
                    next_sample += args.sample_every
                time.sleep(0.05)
            elapsed.close()
            outputs = [process.communicate(timeout=seconds + 60)[0] for process in runs]
            samples.append(sample(proc.pid, start))
            alive = proc.poll() is None
        text = log.read_text(errors="replace")
    rcodes: Counter[str] = Counter()
    for output, mode in zip(outputs, ("udp", "tcp")):
        counts_of, counts = dnsperf_result(output)
        rcodes += counts_of
        print(f"dnsperf {mode}: sent {counts.get('sent', 0)}  completed {counts.get('completed', 0)}  "
              f"lost {counts.get('lost', 0)}  ({counts.get('completed', 0) / seconds:.0f} q/s answered)")
    print("rcodes  " + "  ".join(f"{name} {count}" for name, count in rcodes.most_common()))
    print(f"SERVFAIL {rcodes['SERVFAIL']}")
    complete = sum(1 for records in transfers if records)
    print(f"AXFR {len(transfers)}: {complete} complete, {len(transfers) - complete} failed")
    half = samples[len(samples) // 2 :]
    rss = [s.rss_kib for s in samples]
    print(f"RSS first {rss[0]} KiB  last {rss[-1]} KiB  max {max(rss)} KiB"
          f"  slope {slope(samples):.0f} KiB/min (second half {slope(half):.0f} KiB/min; {len(samples)} samples)")
    print(f"fds min {min(s.fds for s in samples)}  max {max(s.fds for s in samples)}")
    print(f"server log: Traceback {text.count('Traceback')}  'handler failed' {text.count('handler failed')}")
    print(f"server alive at the end: {'yes' if alive else 'NO'}")
    return 0
