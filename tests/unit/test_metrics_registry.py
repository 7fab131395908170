"""The metrics registry, its text exposition, and the HTTP endpoint (a real socket on 127.0.0.1)."""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.metrics import CONTENT_TYPE, MetricsEndpoint, Registry
from server.observe import ServerMetrics, reject_reason

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$')


def parse_exposition(text: str) -> dict[str, float]:
    """Sample line -> value; fails on a line that is not valid text format."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def test_counters_gauges_and_labels_are_exposed() -> None:
    r = Registry()
    c = r.counter("things_total", "Things.", ("kind",))
    g = r.gauge("level", "A level.")
    c.labels("a").inc()
    c.labels("a").inc(2)
    c.labels('b"\\\n').inc()
    g.labels().set(-1.5)
    text = r.expose()
    assert "# TYPE things_total counter" in text and "# TYPE level gauge" in text
    samples = parse_exposition(text)
    assert samples['things_total{kind="a"}'] == 3
    assert samples['things_total{kind="b\\"\\\\\\n"}'] == 1
    assert samples["level"] == -1.5


def test_a_metric_name_is_registered_once_and_labels_must_match() -> None:
    r = Registry()
    c = r.counter("x_total", "X.", ("a",))
    with pytest.raises(KeyError):
        r.counter("x_total", "again")
    with pytest.raises(KeyError):
        c.labels("a", "b")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=40))
def test_histogram_buckets_are_cumulative_and_match_the_observations(values: list[float]) -> None:
    r = Registry()
    h = r.histogram("lat_seconds", "Latency.", ("m",), buckets=(0.1, 1.0, 10.0))
    h.labels("x")  # exposed at zero from its first use
    for v in values:
        h.labels("x").observe(v)
    samples = parse_exposition(r.expose())
    for bound in ("0.1", "1", "10"):
        assert samples[f'lat_seconds_bucket{{m="x",le="{bound}"}}'] == sum(v <= float(bound) for v in values)
    assert samples['lat_seconds_bucket{m="x",le="+Inf"}'] == len(values)
    assert samples['lat_seconds_count{m="x"}'] == len(values)
    assert math.isclose(samples['lat_seconds_sum{m="x"}'], sum(values), rel_tol=1e-9, abs_tol=1e-9)


def test_collectors_run_at_each_scrape() -> None:
    r = Registry()
    g = r.gauge("calls", "Collections so far.")
    calls = iter(range(1, 10))
    r.collector(lambda: g.labels().set(next(calls)))
    assert parse_exposition(r.expose())["calls"] == 1
    assert parse_exposition(r.expose())["calls"] == 2


def test_server_metrics_expose_the_catalogue_with_process_memory() -> None:
    m = ServerMetrics()
    m.started.labels("unary", "segmentd.v1.Segmentd", "GetContact").inc()
    samples = parse_exposition(m.registry.expose())
    assert samples["process_resident_memory_bytes"] > 0
    assert samples['grpc_server_started_total{grpc_type="unary",grpc_service="segmentd.v1.Segmentd",'
                   'grpc_method="GetContact"}'] == 1
    for name in ("grpc_server_handled_total", "grpc_server_handling_seconds", "grpc_server_msg_received_total",
                 "grpc_server_msg_sent_total", "segmentd_events_total", "segmentd_wal_fsync_seconds"):
        assert name in m.registry.names()


def test_timed_fsync_observes_each_call() -> None:
    m = ServerMetrics()
    calls: list[int] = []
    m.timed_fsync(calls.append)(7)
    assert calls == [7] and m.wal_fsync.labels().count == 1


def test_reject_reasons_are_a_bounded_set() -> None:
    assert reject_reason("params[2].value") == "params"
    assert reject_reason("jsonl[17]") == "jsonl"
    assert reject_reason("timestamp") == "timestamp"
    assert reject_reason("something.new") == "other"
    assert reject_reason("") == "other"


def test_the_endpoint_serves_metrics_and_nothing_else() -> None:
    r = Registry()
    r.counter("hits_total", "Hits.").labels().inc()
    endpoint = MetricsEndpoint(r, "127.0.0.1:0")
    endpoint.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=5) as reply:
            assert reply.headers["Content-Type"] == CONTENT_TYPE
            assert parse_exposition(reply.read().decode())["hits_total"] == 1
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/other", timeout=5)
        assert caught.value.code == 404
    finally:
        endpoint.stop()
