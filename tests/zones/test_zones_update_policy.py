"""The update policy file (`semdns serve --update-policy FILE`): grants, limits, line-numbered errors."""
from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from zones.update_policy import (
    DEFAULT_PER_KEY,
    DEFAULT_PER_ZONE,
    Grant,
    UpdatePolicyError,
    load_update_policy,
    parse_update_policy,
)

N = dns.name.from_text
LEGAL = N("legal.semantic.root.")
ADMIN = N("admin.legal.semantic.root.")
OPS = N("ops.legal.semantic.root.")

POLICY = """# who may change what
grant admin.legal.semantic.root. zone legal.semantic.root.;   // everything but the SOA and the apex NS
grant ops.legal.semantic.root.
      subdomain _route.legal.semantic.root. TXT;               # a statement may span lines
grant "ops.legal.semantic.root" name contract.legal.semantic.root. NS ds;
grant engine.semantic.root. engine legal.semantic.root.;
limit per-key 10;
"""


def test_grants_and_limits_parse() -> None:
    policy = parse_update_policy(POLICY)
    assert policy.grants[0] == Grant(ADMIN, "zone", LEGAL)
    assert policy.grants[1] == Grant(OPS, "subdomain", N("_route.legal.semantic.root."),
                                     frozenset({dns.rdatatype.TXT}))
    assert policy.grants[2].types == frozenset({dns.rdatatype.NS, dns.rdatatype.DS})
    assert policy.limits.per_key == 10 and policy.limits.per_zone == DEFAULT_PER_ZONE
    assert policy.engine_zones(N("engine.semantic.root.")) == {LEGAL}


def test_what_each_grant_covers() -> None:
    policy = parse_update_policy(POLICY)
    route = N("litigation._route.legal.semantic.root.")
    assert policy.explicit(ADMIN, LEGAL, route, dns.rdatatype.TXT)
    assert not policy.explicit(ADMIN, N("medical.semantic.root."), N("x.medical.semantic.root."), dns.rdatatype.A)
    assert policy.explicit(OPS, LEGAL, route, dns.rdatatype.TXT)
    assert not policy.explicit(OPS, LEGAL, route, dns.rdatatype.A)  # types listed: only those
    assert policy.explicit(OPS, LEGAL, N("contract.legal.semantic.root."), dns.rdatatype.NS)
    assert not policy.explicit(OPS, LEGAL, N("x.contract.legal.semantic.root."), dns.rdatatype.NS)  # name: exact
    assert policy.touches(OPS, LEGAL) and not policy.touches(OPS, N("medical.semantic.root."))


def test_a_subdomain_grant_reaches_the_zones_below_it() -> None:
    policy = parse_update_policy("grant ops. subdomain legal.semantic.root. TXT;\n")
    contract = N("contract.legal.semantic.root.")
    assert policy.touches(N("ops."), contract) and policy.touches(N("ops."), LEGAL)
    assert policy.explicit(N("ops."), contract, N("x.contract.legal.semantic.root."), dns.rdatatype.TXT)
    assert not policy.touches(N("ops."), N("medical.semantic.root."))


def test_no_file_means_no_grant_and_default_limits() -> None:
    policy = parse_update_policy("# nothing granted\n")
    assert policy.grants == () and policy.limits.per_key == DEFAULT_PER_KEY


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("grant a. zone b.;\nallow a. zone b.;\n", 2, "unknown statement 'allow'"),
        ("\n\ngrant a. everywhere b.;\n", 3, "expected 'grant KEY zone|name|subdomain|engine NAME [TYPES];'"),
        ("grant a. zone b. NOPE;\n", 1, "unknown record type 'NOPE'"),
        ("grant a. zone b. SOA;\n", 1, "SOA cannot be granted"),
        ("grant a. engine b. TXT;\n", 1, "an engine grant takes no types"),
        ("limit per-key 0;\n", 1, "whole number >= 1"),
        ("limit per-host 3;\n", 1, "expected 'limit per-key|per-zone N;'"),
        ("grant a. zone b.;\n;\n", 2, "stray ';'"),
        ("grant a. zone b.;\ngrant a.\n  zone c.\n", 2, "does not end with ';'"),
        ("grant a..b zone c.;\n", 1, "bad name 'a..b'"),
    ],
)
def test_a_broken_file_names_its_line(text: str, where: int, says: str) -> None:
    with pytest.raises(UpdatePolicyError) as caught:
        parse_update_policy(text, "policy.conf")
    assert str(caught.value).startswith(f"policy.conf:{where}: ") and says in str(caught.value)


def test_load_reads_a_file_and_names_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "policy.conf"
    path.write_text(POLICY)
    assert len(load_update_policy(path).grants) == 4
    with pytest.raises(UpdatePolicyError, match="cannot read update policy"):
        load_update_policy(tmp_path / "missing.conf")
