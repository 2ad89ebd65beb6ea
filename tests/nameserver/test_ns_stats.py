"""`semdns stats` (issue 15 item 5): the table from two scrapes of a real server's endpoint, the
quantiles from histogram buckets, and the command itself (once, and `--watch` into a pipe)."""
from __future__ import annotations

import re
import subprocess

import dns.message
import dns.query
import pytest
from helpers.processes import read_until, stop_process
from helpers.server import REPO, running_server, semdns_command
from helpers.shipped import shipped_serial

from nameserver.metrics import ServerMetrics
from tools.cmd_stats import Snapshot, normalise_url, parse, quantile, quantiles, scrape, table

ZONES = REPO / "zonefiles"
APEX = "semantic.root."


def test_quantile_interpolates_within_a_bucket() -> None:
    buckets = [(0.001, 50.0), (0.01, 90.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.001)
    assert quantile(0.7, buckets) == pytest.approx(0.001 + 0.009 * 20 / 40)
    assert quantile(0.99, buckets) == pytest.approx(0.01 + 0.09 * 9 / 10)
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == 0.1  # in the open bucket: the last bound


def test_table_reports_the_interval_between_two_scrapes() -> None:
    metrics = ServerMetrics()
    reply = dns.message.make_response(dns.message.make_query(APEX, "SOA")).to_wire()
    metrics.answered("udp", reply, 6, "authority", 0.0002)
    before = Snapshot(parse(metrics.render()), 10.0)
    for _ in range(30):
        metrics.answered("udp", reply, 6, "authority", 0.0002)
    for _ in range(10):
        metrics.answered("tcp", reply, 6, "wirecache", 0.00002)
    after = Snapshot(parse(metrics.render()), 12.0)
    report = table(before, after)
    assert "20.0 queries/s (40 queries)" in report
    assert "tcp 5.0/s" in report and "udp 15.0/s" in report and "NOERROR 40 (100%)" in report
    rows = quantiles(parse(metrics.render()), "semdns_query_duration_seconds", "handler")
    assert rows["authority"][0] == 31 and 0.0001 < (rows["authority"][1] or 0) <= 0.00025


def test_urls() -> None:
    assert normalise_url("127.0.0.1:9153") == "http://127.0.0.1:9153/metrics"
    assert normalise_url("http://h:1/metrics") == "http://h:1/metrics"
    assert normalise_url("http://h:1/other") == "http://h:1/other"


def test_stats_of_a_running_server() -> None:
    with running_server(ZONES, ("--no-semantic", "--metrics", "127.0.0.1:0")) as server:
        url = next(line.split(" ", 1)[1] for line in server.stdout_lines if line.startswith("metrics: "))
        before = scrape(url)
        for _ in range(12):
            dns.query.udp(dns.message.make_query(APEX, "SOA"), server.host, port=server.port, timeout=5)
        report = table(before, scrape(url))
        assert "(12 queries)" in report and "wire cache hit rate 91.7% (11 of 12)" in report
        assert "authority" in report and "wirecache" in report
        once = subprocess.run([*semdns_command(), "stats", "--metrics", url, "--interval", "0.1"],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        assert once.returncode == 0, once.stderr
        assert "queries/s" in once.stdout and re.search(rf"^  {APEX} +{shipped_serial(APEX)}$", once.stdout, re.M)
        watch = subprocess.Popen([*semdns_command(), "stats", "--metrics", url, "--interval", "0.2", "--watch"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
        output: list[str] = []
        reports = iter(range(2, 0, -1))
        try:  # the second report's first line
            second = read_until(watch, lambda line: "queries/s" in line and next(reports) == 1, 60.0, output)
        finally:
            stop_process(watch, 10.0)
        assert second is not None, output
        assert not any("\x1b[" in line for line in output)  # a pipe: one report after the other, no redraw
