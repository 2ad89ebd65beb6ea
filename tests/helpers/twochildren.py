"""A node with two children for the head tests: `example.test.` routing to `alpha` (water words)
and `beta` (car words); `PROFILES` takes `{settings}`, more strings for the node's `_route` TXT."""
from __future__ import annotations

import dns.name

ORIGIN = dns.name.from_text("example.test.")
ALPHA, BETA = (dns.name.from_text(f"{c}.example.test.") for c in ("alpha", "beta"))
WORDS = {0: ["river", "boat", "water", "fish", "bridge", "rain"], 1: ["engine", "wheel", "road", "car", "fuel", "tyre"]}
PROFILES = (
    "$ORIGIN example.test.\n$TTL 300\n"
    "@ IN SOA ns1 hostmaster 2026112301 3600 900 1209600 300\n  IN NS ns1\nns1 IN A 127.0.0.1\n"
    "alpha IN A 127.0.0.2\nbeta IN A 127.0.0.3\n"
    '_route IN TXT "v=semroute1" "th.keyword=0.4" {settings}\n'
    'alpha._route IN TXT "v=semroute1" "desc=water things" "kw=kayak" "ex=a canoe on a calm lake"\n'
    'beta._route IN TXT "v=semroute1" "desc=car things" "kw=gearbox" "ex=the gearbox grinds in second"\n'
)
