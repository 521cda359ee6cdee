"""Latency histogram, rate limiter, Prometheus text, bounded inbox."""

from __future__ import annotations

import threading
import urllib.request

import numpy as np
import pytest

from edgekit.metrics import percentiles
from edgekit.runtime.inbox import Inbox
from edgekit.runtime.stats import (
    Counters,
    LatencyHistogram,
    RateLimiter,
    prometheus_text,
    start_metrics_server,
)


def test_histogram_percentiles_track_exact_ones_within_bucket_width():
    rng = np.random.default_rng(0)
    samples = rng.lognormal(mean=0.0, sigma=1.0, size=20_000)  # ms, spread over decades
    h = LatencyHistogram()
    for chunk in np.array_split(samples[:10_000], 50):
        h.add_many(chunk)
    for v in samples[10_000:].tolist():
        h.add(v)
    exact = percentiles(samples)
    for key in ("p50", "p90", "p99"):
        assert h.summary()[key] == pytest.approx(exact[key], rel=0.03)
    assert h.count == 20_000 and h.summary()["max"] == pytest.approx(samples.max())


def test_histogram_memory_is_fixed():
    h = LatencyHistogram()
    size = h.counts.nbytes
    h.add_many(np.array([1e-9, 1e9, 0.5, 0.0]))
    for v in (1e-9, 1e9, 0.5, 0.0):
        h.add(v)
    assert h.counts.nbytes == size and h.count == 8 and h.counts[0] == 4 and h.counts[-1] == 2


def test_rate_limiter_allows_one_per_interval_and_counts_suppressed():
    rl = RateLimiter(interval_s=3600)
    assert rl.allow("malformed") == (True, 0)
    assert rl.allow("malformed") == (False, 0)
    assert rl.allow("gap") == (True, 0)
    rl.interval_s = 0.0
    assert rl.allow("malformed") == (True, 1)


def test_inbox_overload_policies():
    newest = Inbox(2, "drop-newest")
    assert newest.put(1) and newest.put(2) and not newest.put(3)
    assert newest.get_many(10, 0) == [1, 2]
    oldest = Inbox(2, "drop-oldest")
    assert oldest.put(1) and oldest.put(2) and not oldest.put(3)
    assert oldest.get_many(10, 0) == [2, 3]
    assert oldest.get_many(10, 0.01) == []


def test_inbox_wakes_a_waiting_consumer():
    box: Inbox[int] = Inbox(4)
    got: list[int] = []
    t = threading.Thread(target=lambda: got.extend(box.get_many(4, 5.0)))
    t.start()
    box.put(7)
    t.join(2)
    assert got == [7]


def test_prometheus_endpoint_serves_counters():
    c = Counters(messages=3)
    c.errors["malformed"] = 2
    snap = {
        "counters": {**c.__dict__},
        "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": float("nan"), "p99.9": 3.0, "count": 5},
        "queue_depth": 0,
        "streams": 1,
        "unacked": 0,
        "uptime_s": 1.0,
        "model_id": "m",
        "model_version": "1",
        "connected": True,
    }
    server = start_metrics_server("127.0.0.1", 0, lambda: prometheus_text(snap, "dev1"))
    try:
        port = server.server_address[1]
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'edgekit_messages_total{device="dev1"} 3' in text
    assert 'edgekit_errors_total{device="dev1",kind="malformed"} 2' in text
    assert 'edgekit_latency_ms{device="dev1",quantile="0.99"} NaN' in text
