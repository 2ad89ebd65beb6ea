"""Shared by the SDK codec tests: a small generated corpus and library, fragments with faults,
zonefiles that carry them, and a fake engine that decodes `semdns_context` with the codec."""
from __future__ import annotations

import base64
import json
import random
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping

from codec.compress import decompress
from codec.library import PatternLibrary
from codec.train import train_library

SUBJECTS = ("the tenant", "the landlord", "the buyer", "the seller", "the employer", "the contractor",
            "the licensee", "the guarantor", "the court", "the arbitrator")
VERBS = ("shall indemnify", "may terminate", "must notify", "agrees to pay", "waives any claim against",
         "shall not assign", "warrants to")
OBJECTS = ("the other party", "the lessor", "any successor in interest", "the escrow agent", "each affiliate")
CLAUSES = ("within thirty (30) days of written notice", "notwithstanding any provision to the contrary",
           "subject to the limitation of liability set forth in Section 9", "to the fullest extent permitted by law",
           "in accordance with the governing law of the State", "without prejudice to any other remedy")

# a context with what byte-exactness must survive: non-ASCII, CRLF, tabs, trailing spaces
CONTEXT = ("MASTER SERVICES AGREEMENT \u00a7 4.2 \u2014 Indemnification.\r\n\tThe Contractor shall indemnify "
           "the Client \u201cwithout limitation\u201d.  \n" + " ".join(
               f"{s.capitalize()} {v} {o} {c}." for s, v, o, c in zip(SUBJECTS, VERBS * 2, OBJECTS * 2, CLAUSES * 2))
           + "\nSigned: Zo\u00eb M\u00fcller \u2713   \n")


def defined_terms(rng: random.Random, count: int = 400) -> list[str]:
    """Made-up defined terms ("Velorant Holdings"), shared by the documents of the corpus."""
    syllables = ("ar", "bel", "cor", "dan", "el", "fen", "gar", "hol", "ix", "jor", "kel", "lor", "mar", "nor",
                 "or", "pel", "quin", "ras", "sel", "tor", "ul", "ven", "wes", "yor", "zan")
    kinds = ("Holdings", "Partners", "Trust", "Property", "Agreement", "Schedule", "Notice", "Deposit")
    return [f"{''.join(rng.choice(syllables) for _ in range(3)).capitalize()} {rng.choice(kinds)}"
            for _ in range(count)]


def legal_document(rng: random.Random, terms: list[str], sentences: int = 40) -> bytes:
    lines = []
    for _ in range(sentences):
        lines.append(f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
                     f"(the \u201c{rng.choice(terms)}\u201d) {rng.choice(CLAUSES)}.")
    return (f"AGREEMENT No. {rng.randint(1000, 9999)}\n" + " ".join(lines) + "\n").encode()


@lru_cache(maxsize=1)
def small_library() -> PatternLibrary:
    """A deterministic library of 3 chunks (~20 KB) trained on a generated legal-ish corpus."""
    rng = random.Random(6)
    terms = defined_terms(rng)
    return train_library([legal_document(rng, terms) for _ in range(80)], size=20000)


def fragment_blocks(fragment: str) -> list[str]:
    """The records of a `to_zone_fragment` text (header first, then chunk 0, 1 ...), comments dropped."""
    blocks: list[str] = []
    for line in fragment.splitlines():
        if not line or line.startswith(";"):
            continue
        if line[0].isspace():
            blocks[-1] += "\n" + line
        else:
            blocks.append(line)
    return blocks


def faulty_fragment(library: PatternLibrary, domain: str, fault: str | None) -> str:
    """The library's fragment for `domain`, damaged as `fault` says (None: intact)."""
    blocks = fragment_blocks(library.to_zone_fragment(domain))
    header, chunks = blocks[0], blocks[1:]
    if fault == "missing-chunk":
        del chunks[1]
    elif fault == "swapped-chunks":
        a, b = chunks[0], chunks[1]
        chunks[0] = b.replace(f"1._codec.{domain}", f"0._codec.{domain}", 1)
        chunks[1] = a.replace(f"0._codec.{domain}", f"1._codec.{domain}", 1)
    elif fault == "bad-sha256":
        header = re.sub(r"sha256=([0-9a-f])", lambda m: "sha256=" + ("0" if m[1] != "0" else "1"), header)
    elif fault == "bad-version":
        header = re.sub(r'"v=semcodec\d+"', '"v=semcodec9"', header)
    elif fault == "corrupt-data":
        chunks[2] = re.sub(r'"c=2"\n    "(.)', lambda m: '"c=2"\n    "' + ("A" if m[1] != "A" else "B"), chunks[2])
    elif fault is not None:
        raise ValueError(fault)
    return "\n".join([header, *chunks]) + "\n"


FAULTS = {  # domain label -> (fault, a word the warning must contain)
    "nochunk": ("missing-chunk", "missing"),
    "swapped": ("swapped-chunks", "order"),
    "badsha": ("bad-sha256", "sha256"),
    "v2": ("bad-version", "semcodec9"),
    "corrupt": ("corrupt-data", "sha256"),
}
APEX = "sdk.test."


def lab_zone(engine_ports: Mapping[str, int]) -> str:
    """Zone `sdk.test.`: leaf nodes (no routing profiles) with a library each, good or damaged,
    and an engine each (`engine_ports[label]`). `child.good` has no library: it uses good's."""
    lib = small_library()
    lines = [f"$ORIGIN {APEX}", "$TTL 300",
             "@ IN SOA ns1 hostmaster 2026112301 3600 600 86400 60", "@ IN NS ns1", "ns1 IN A 127.0.0.1"]
    nodes = {"good": None, "stale": None, "child.good": "no-library", **{k: v[0] for k, v in FAULTS.items()}}
    for label, fault in nodes.items():
        port = engine_ports.get(label, engine_ports["good"])
        lines += [f"_llm._tcp.{label} IN SRV 0 0 {port} llm1.{label}",
                  f'_llm._tcp.{label} IN TXT "txtvers=1" "model=fake" "api=openai-v1" "codec=zstd-dict" "path=/v1"',
                  f"llm1.{label} IN A 127.0.0.1"]
        if fault != "no-library":
            lines.append(faulty_fragment(lib, f"{label}.{APEX}", fault))
    return "\n".join(lines) + "\n"


@dataclass
class FakeEngine:
    """An OpenAI chat endpoint that decodes `semdns_context` with the codec and the libraries it
    knows; a dictionary it lacks gets the engines' 400 `unknown_dictionary`. Records what it saw."""

    known: Mapping[int, PatternLibrary]
    received: list[dict] = field(default_factory=list)  # request bodies
    contexts: list[str] = field(default_factory=list)  # decoded contexts, in order
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def handle(self, body: dict) -> tuple[int, dict]:
        self.received.append(body)
        field_ = body.get("semdns_context")
        if field_ is not None:
            if field_["dict_id"] and field_["dict_id"] not in self.known:
                return 400, {"error": {"message": f"semdns_context.dict_id {field_['dict_id']} unknown",
                                       "type": "invalid_request_error", "param": "semdns_context.dict_id",
                                       "code": "unknown_dictionary"}}
            self.contexts.append(decompress(base64.b64decode(field_["data"]), self.known).decode("utf-8"))
        elif body["messages"][0]["role"] == "system":
            self.contexts.append(body["messages"][0]["content"])
        return 200, {"object": "chat.completion",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}


def _handler(engine: FakeEngine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, reply = engine.handle(body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def start_fake_engine(known: Mapping[int, PatternLibrary]) -> FakeEngine:
    engine = FakeEngine(known=dict(known))
    engine.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(engine))
    threading.Thread(target=engine.server.serve_forever, daemon=True).start()
    return engine


def stop_fake_engine(engine: FakeEngine) -> None:
    if engine.server is not None:
        engine.server.shutdown()
        engine.server.server_close()
