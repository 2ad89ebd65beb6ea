"""The namespaced cluster's layout, configuration and report as values (no namespace is made)."""
from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from tools import cluster_netns as netns
from tools import cluster_render as render
from tools.cluster_isolated import zone_plans
from tools.cluster_probe import Propagation
from tools.cluster_report import format_propagation

KEY = render.Key("xfr.ab12.cluster", "hmac-sha256", "c2VjcmV0")


def test_every_node_has_its_own_namespace_and_a_private_address() -> None:
    layout = netns.plan("ab12", ["p0", "s0", "k0"])
    assert layout.hub == "sdnsab12-hub"
    assert [n.namespace for n in layout.nodes] == ["sdnsab12-p0", "sdnsab12-s0", "sdnsab12-k0"]
    assert [n.address for n in layout.nodes] == ["10.53.1.1", "10.53.1.2", "10.53.1.3"]
    assert all(IPv4Address(n.address) in netns.NETWORK for n in layout.nodes)
    assert all(len(n.host_veth) <= 15 for n in layout.nodes)  # IFNAMSIZ


def test_the_commands_touch_only_the_clusters_namespaces() -> None:
    layout = netns.plan("ab12", ["p0", "s0"])
    for argv in layout.up_commands():
        assert argv[:3] == ["ip", "netns", "add"] and argv[3] in layout.namespaces \
            or argv[:2] == ["ip", "-n"] and argv[2] in layout.namespaces, argv
    assert layout.down_commands() == [["ip", "netns", "delete", ns] for ns in
                                      ("sdnsab12-p0", "sdnsab12-s0", "sdnsab12-hub")]
    assert layout.partition_commands("s0") == [["ip", "-n", "sdnsab12-hub", "link", "set", "sab12-1", "down"]]


@pytest.mark.parametrize(("cid", "names"), [("AB12", ["a"]), ("ab1", ["a"]), ("ab12", ["a", "a"]),
                                            ("ab12", ["toolongname"]), ("ab12", ["x-y"])])
def test_a_bad_layout_is_refused(cid: str, names: list[str]) -> None:
    with pytest.raises(netns.LayoutError):
        netns.plan(cid, names)


def test_zones_alternate_knot_and_nsd() -> None:
    plans = zone_plans(["semantic.root.", "legal.semantic.root.", "contract.legal.semantic.root."])
    assert [(p.primary, p.ours, p.third, p.third_kind) for p in plans] == [
        ("p0", "s0", "k0", "knot"), ("p1", "s1", "k1", "nsd"), ("p2", "s2", "k2", "knot")]


def test_the_secondaries_are_keyed_both_ways() -> None:
    knot = render.knot_secondary("/w", "10.53.1.3", "legal.semantic.root.", "10.53.1.1", KEY)
    assert "address: 10.53.1.1@53\n    key: xfr.ab12.cluster" in knot  # SOA queries and IXFR signed
    assert "action: notify" in knot and "listen: 10.53.1.3@53" in knot
    nsd = render.nsd_secondary("/w", "10.53.1.6", "legal.semantic.root.", "10.53.1.4", KEY)
    assert "request-xfr: 10.53.1.4@53 xfr.ab12.cluster" in nsd  # no AXFR keyword: IXFR first
    assert "allow-notify: 10.53.1.4 xfr.ab12.cluster" in nsd


def test_the_primary_transfers_and_notifies_only_with_the_key() -> None:
    args = render.primary_args("/z", "10.53.1.1", "/k/t", "/k/u", "/k/p", "/j", [("10.53.1.2", 5353)],
                               "xfr.ab12.cluster", "10.53.0.0/16", semantic=False)
    assert args[args.index("--allow-transfer") + 1] == "10.53.0.0/16+key:xfr.ab12.cluster"
    assert args[args.index("--notify") + 1] == "10.53.1.2:5353+key:xfr.ab12.cluster"
    assert "--no-semantic" in args
    assert render.update_policy({"update.legal.semantic.root": "legal.semantic.root."}) == \
        "grant update.legal.semantic.root. zone legal.semantic.root.;\n"


def test_the_report_gives_p50_and_max_per_kind_of_secondary() -> None:
    results = [Propagation("legal.semantic.root.", 2, 3.0, {"s1": 200.0, "k1": 30.0}),
               Propagation("legal.semantic.root.", 3, 3.0, {"s1": 300.0, "k1": None})]
    text = format_propagation(results, {"s1": "semdns", "k1": "nsd"})
    assert "nsd           1     30.0     30.0" in text
    assert "semdns        2    250.0    300.0" in text
    assert "not served in time: legal.semantic.root. k1" in text


def test_the_zonefile_moves_only_the_name_server_glue() -> None:
    text = "ns1     IN  A   127.0.0.2\nllm1       300 IN  A   127.0.0.1\nns1.contract     IN  A   127.0.0.8\n"
    out = render.rewrite_zone(text, {"127.0.0.2": "10.53.1.4", "127.0.0.8": "10.53.1.7", "127.0.0.1": "X"},
                              render.ns_records("legal.semantic.root.", [("ns2", "10.53.1.5")]))
    assert "ns1     IN  A   10.53.1.4\n" in out and "ns1.contract     IN  A   10.53.1.7\n" in out
    assert "llm1       300 IN  A   127.0.0.1\n" in out  # an engine's address is not a name server's
    assert out.endswith("legal.semantic.root. 3600 IN NS ns2.legal.semantic.root.\n"
                        "ns2.legal.semantic.root. 3600 IN A 10.53.1.5\n")
    unbound = render.unbound_config("/w", "10.53.1.10", "semantic.root.", ["10.53.1.1", "10.53.1.2"], "10.53.0.0/16")
    assert "stub-addr: 10.53.1.1@53\n    stub-addr: 10.53.1.2@53\n" in unbound
