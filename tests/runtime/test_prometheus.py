"""The metrics endpoint: Prometheus text that prometheus_client's own parser reads back from a real `edgekit
serve` process (HELP/TYPE, a latency histogram in seconds with real bucket counts, escaped label values),
and one clear line when the metrics port is out of range or taken."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgekit.bench.rig import DaemonProcess
from edgekit.broker import free_port
from edgekit.errors import ConfigError
from edgekit.runtime.payloads import encode_reading
from edgekit.runtime.stats import LatencyHistogram, latency_buckets, prometheus_text, start_metrics_server

T0 = 1_700_000_000.0
GOOD = [1.0] * 9
EDGEKIT = [sys.executable, "-m", "edgekit"]


def serve_cmd(bundle, broker_url: str, device: str, *extra: str) -> list[str]:
    return [*EDGEKIT, "serve", "--bundle", str(bundle), "--broker", broker_url, "--device", device, *extra]


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def test_buckets_are_real_counts_at_exact_edges():
    rng = np.random.default_rng(1)
    ms = rng.lognormal(mean=1.0, sigma=2.0, size=5000)
    h = LatencyHistogram()
    h.add_many(ms[:2500])
    for v in ms[2500:].tolist():
        h.add(v)
    buckets = latency_buckets(h)
    assert buckets[-1] == (float("inf"), 5000)
    les = [le for le, _ in buckets]
    assert les == sorted(les) and les[0] == pytest.approx(1e-5) and les[-2] == pytest.approx(10.0)
    for le, n in buckets[:-1]:
        # an observation exactly on an edge is measure-zero; away from edges the count is exact
        assert n == int(np.sum(ms / 1e3 < le)), le


def test_daemon_scrape_parses_with_prometheus_client(broker, mqtt_io, sensor_bundle):
    """Before: a summary in ms, no HELP lines, and a device id with a quote broke the scrape."""
    _listen, publish = mqtt_io
    device = 'plant "7"\\line'  # quote and backslash must be escaped in label values (MQTT refuses \n)
    port = free_port()
    daemon = DaemonProcess(
        sensor_bundle, broker.url, device, ["--metrics-port", str(port), "--threshold=-inf"]
    )
    daemon.start()
    try:
        # connected is set before the broker acknowledges the subscription, so publish until scored
        deadline, sent, pub = time.monotonic() + 60, 0, None
        windows = 0.0
        while time.monotonic() < deadline and windows < 30:
            try:
                families = {f.name: f for f in text_string_to_metric_families(scrape(port))}
            except OSError:  # not listening yet
                time.sleep(0.2)
                continue
            windows = families["edgekit_windows"].samples[0].value
            if families["edgekit_connected"].samples[0].value == 1:
                pub = pub or publish()
                pub.send(f"edgekit/{device}/sensors/s", encode_reading(T0 + sent, GOOD))
                sent += 1
            time.sleep(0.05)
        text = scrape(port)
    finally:
        daemon.stop()
        log = daemon.log
    families = {f.name: f for f in text_string_to_metric_families(text)}
    windows = families["edgekit_windows"].samples[0].value
    assert 30 <= windows <= sent, log
    for fam in families.values():
        assert fam.documentation, fam.name  # every family has a HELP line
        assert fam.type in ("counter", "gauge", "histogram", "summary", "info"), fam.name
        for s in fam.samples:
            assert s.labels["device"] == device  # escaped on the wire, exact after parsing
    assert "# HELP edgekit_latency_seconds " in text and "# TYPE edgekit_latency_seconds histogram" in text
    hist = families["edgekit_latency_seconds"]
    assert hist.type == "histogram"
    by_name: dict[str, list] = {}
    for s in hist.samples:
        by_name.setdefault(s.name, []).append(s)
    buckets = [(float(s.labels["le"]), s.value) for s in by_name["edgekit_latency_seconds_bucket"]]
    les, counts = zip(*buckets, strict=True)
    assert les[-1] == float("inf") and list(les) == sorted(les) and len(les) > 10
    assert list(counts) == sorted(counts) and counts[-1] == windows  # cumulative, one per scored window
    assert by_name["edgekit_latency_seconds_count"][0].value == windows
    total_s = by_name["edgekit_latency_seconds_sum"][0].value
    assert 0 < total_s < windows * 10  # seconds, not milliseconds: windows scored on a local broker
    assert counts[les.index(10.0)] == windows  # none of them took 10 s
    errors = {s.labels["kind"]: s.value for s in families["edgekit_errors"].samples}
    assert errors["malformed"] == 0 and "internal_error" in errors


def test_label_values_with_newlines_are_escaped():
    snap = {
        "counters": {"messages": 3, "errors": {"malformed": 1}},
        "latency_ms": {"p50": None, "p90": None, "p99": None, "p99.9": None, "mean": None, "count": 0},
        "model_id": 'm"1',
        "model_version": "1\n2\\3",
        "connected": False,
    }
    text = prometheus_text(snap, "a\nb", LatencyHistogram())
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    info = fams["edgekit_model_info"].samples[0].labels
    assert info == {"device": "a\nb", "model_id": 'm"1', "model_version": "1\n2\\3"}
    assert fams["edgekit_messages"].samples[0].value == 3
    assert fams["edgekit_latency_seconds"].samples[-1].value == 0  # _sum of an empty histogram


def serve_error_line(bundle, broker_url: str, port: str) -> str:
    """Run `edgekit serve --metrics-port PORT`; it must fail with one line and no traceback."""
    cmd = serve_cmd(bundle, broker_url, "d1", "--metrics-port", port)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_metrics_port_out_of_range_is_one_line(broker, sensor_bundle, port):
    """Before: OverflowError traceback from bind()."""
    assert f"metrics port {port} must be from 1 to 65535" in serve_error_line(sensor_bundle, broker.url, port)


def test_metrics_port_in_use_is_one_line_naming_host_and_port(broker, sensor_bundle):
    """Before: OSError traceback (Address already in use)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = serve_error_line(sensor_bundle, broker.url, str(port))
    assert f"metrics endpoint 127.0.0.1:{port}: cannot listen ({os.strerror(errno.EADDRINUSE)})" in line


def test_start_metrics_server_refuses_bad_ports_as_config_errors():
    with pytest.raises(ConfigError, match="must be from 1 to 65535"):
        start_metrics_server("127.0.0.1", 70000, str)
    with pytest.raises(ConfigError, match=r"metrics endpoint no-such-host\.invalid:9100: cannot listen"):
        start_metrics_server("no-such-host.invalid", 9100, str)
