"""The shipped hierarchy as tests use it: where its zonefiles are and its apex."""
from __future__ import annotations

from pathlib import Path

import dns.name

ZONEFILES = Path(__file__).resolve().parents[2] / "zonefiles"
APEX = dns.name.from_text("semantic.root.")
