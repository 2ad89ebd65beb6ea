"""The query log: one JSON line per answered query (`semdns serve --query-log FILE|-`), written off
the hot path.

    log = QueryLog("queries.jsonl", log_questions=False)
    await log.start()                                      # opens the file, starts the writer task
    log.answered(wire, replies, client, "udp", "semantic", hops, 0.0031)    # per query: no I/O
    await log.stop()                                       # writes what is queued, closes

`answered` only appends raw values (the query's bytes, the replies' RCODE and size) to a bounded
queue; a task hands them, in batches, to a worker thread that formats and writes the lines. When the
queue is full (the disk or the pipe is slower than the queries) the line is dropped and counted
(`dropped`, the metric `semdns_query_log_lines_total{outcome="dropped"}`): the server never waits
for its log.

A line (keys always present; `hops` only for semantic questions, `qname`/`qtype` null for a
packet without a readable question):

    {"time": "2026-12-03T04:05:06.123456Z", "client": "192.0.2.7", "transport": "udp",
     "qname": "<question 3f2a9c1e>.q.semantic.root.", "qtype": "SRV", "rcode": "NOERROR",
     "size": 312, "messages": 1, "handler": "semantic", "ms": 3.1,
     "hops": [{"zone": "semantic.root.", "child": "legal.semantic.root.", "stage": "keyword",
               "confidence": 0.91, "runner_up": "finance.semantic.root.", "ms": 0.04}, ...]}

The question of a semantic name is its QNAME: it is replaced by a hash (`logs.query_name`) unless
the operator runs `--log-questions`, as in every other log line. `size` counts the octets of every
reply message (an AXFR's several); `rcode` is the first reply's (`none`: the packet was dropped).
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Sequence

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype

from common.tasks import cancel_and_wait
from nameserver.logs import query_name
from nameserver.wire import question_end

if TYPE_CHECKING:
    from routing.descend import Hop

QUEUE = 10_000  # lines waiting for the writer at most; more are dropped (and counted)
BATCH = 1_000  # lines written in one go
QUESTION_START = 12
QUESTION_MEMO = 10_000  # question parts remembered (all forgotten when full)
RCODES = {int(rcode): rcode.name for rcode in dns.rcode.Rcode}
RCODES[-1] = "none"

# (time, client, transport, query wire, rcode, size, messages, handler, hops, seconds)
Entry = tuple[float, str, str, bytes, int, int, int, str, Sequence["Hop"], float]


class QueryLog:
    """JSON lines to `target` (a path, appended to; `-`: standard output)."""

    def __init__(self, target: str | Path, *, log_questions: bool = False, max_queue: int = QUEUE) -> None:
        self.target = str(target)
        self.log_questions = log_questions
        self.max_queue = max_queue
        self.written = 0
        self.dropped = 0
        self._queue: deque[Entry] = deque()
        self._wake: asyncio.Event | None = None
        self._idle = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._file: IO[str] | None = None
        self._second, self._second_text = -1, ""  # the writer thread's memo of the time's second
        self._questions: dict[bytes, str] = {}  # the writer thread's memo of question parts, by octets

    def answered(self, wire: bytes, replies: Sequence[bytes], client: tuple[str, int], transport: str,
                 handler: str, hops: Sequence[Hop], seconds: float) -> None:
        """Queue one line (dropped and counted when the queue is full); never blocks."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.dropped += 1
            return
        rcode = replies[0][3] & 0x0F if replies and len(replies[0]) > 3 else -1
        if handler == "edns":
            rcode = int(dns.rcode.BADVERS)
        queue.append((time.time(), client[0], transport, wire, rcode, sum(map(len, replies)), len(replies), handler,
                      hops, seconds))
        if self._idle and self._wake is not None:
            self._idle = False
            self._wake.set()

    async def start(self) -> None:
        if self.target == "-":
            self._file = sys.stdout
        else:
            self._file = open(self.target, "a", encoding="utf-8")
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Write what is queued, then close the file."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=5.0)
            except asyncio.TimeoutError:
                await cancel_and_wait(self._task)
            self._task = None
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()
        self._file = None

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        queue = self._queue
        while True:
            if not queue:
                if self._closing:
                    return
                self._idle = True
                await wake.wait()
                wake.clear()
                continue
            batch = [queue.popleft() for _ in range(min(len(queue), BATCH))]
            await asyncio.to_thread(self._write, batch)
            self.written += len(batch)

    def _write(self, batch: list[Entry]) -> None:
        """Format and write `batch` (in a worker thread: the event loop goes on answering, the
        interpreter switching between the two, instead of waiting for a batch of lines)."""
        file = self._file
        if file is not None:
            file.write("".join(self.line(entry) + "\n" for entry in batch))
            file.flush()

    def line(self, entry: Entry) -> str:
        """The JSON line of one queued entry (built by hand: it runs for every query; the
        question's part, the same for every ask of one name, and the second are memoised)."""
        stamp, client, transport, wire, rcode, size, messages, handler, hops, seconds = entry  # client: an IP
        second = int(stamp)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        end = question_end(wire)  # the memo's key: the question's octets (QNAME as sent, QTYPE, QCLASS)
        key = wire[QUESTION_START:end + 4] if end > 0 and wire[4:6] != b"\x00\x00" else None
        question = self._questions.get(key) if key is not None else None
        if question is None:
            question = self._question(wire, key)
        rcode_text = RCODES.get(rcode) or dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
        text = (f'{{"time":"{self._second_text}.{int((stamp - second) * 1e6):06d}Z","client":"{client}",'
                f'"transport":"{transport}",{question},"rcode":"{rcode_text}","size":{size},"messages":{messages},'
                f'"handler":"{handler}","ms":{round(seconds * 1000, 3)}')
        if hops:
            text += ',"hops":' + json.dumps([_hop(hop) for hop in hops], ensure_ascii=False, separators=(",", ":"))
        return text + "}"

    def _question(self, wire: bytes, key: bytes | None) -> str:
        """`"qname":...,"qtype":...` of a query, remembered by its question's octets (`key`)."""
        qname, qtype = _question(wire)
        name = query_name(qname, self.log_questions) if qname is not None else None
        rdtype = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype)) if qtype >= 0 else None
        text = f'"qname":{json.dumps(name, ensure_ascii=False)},"qtype":{json.dumps(rdtype)}'
        if key is not None:
            if len(self._questions) >= QUESTION_MEMO:
                self._questions.clear()
            self._questions[key] = text
        return text


def _question(wire: bytes) -> tuple[dns.name.Name | None, int]:
    """The QNAME and QTYPE of a query's first question, or (None, -1) when it has none readable."""
    if len(wire) < QUESTION_START or wire[4:6] == b"\x00\x00":
        return None, -1
    try:
        name, used = dns.name.from_wire(wire, QUESTION_START)
    except dns.exception.DNSException:
        return None, -1
    end = QUESTION_START + used
    return name, int.from_bytes(wire[end:end + 2]) if end + 2 <= len(wire) else -1


def _hop(hop: Hop) -> dict[str, Any]:
    decision = hop.decision
    out: dict[str, Any] = {
        "zone": hop.node.to_text(),
        "child": decision.child.to_text() if decision.child is not None else None,
        "stage": decision.stage,
        "confidence": decision.confidence,
        "runner_up": decision.runner_up[0].to_text() if decision.runner_up is not None else None,
        "ms": round(hop.seconds * 1000, 3),
    }
    if hop.shed is not None:
        out["shed"] = hop.shed
    return out
