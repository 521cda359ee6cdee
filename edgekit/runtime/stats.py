"""Daemon counters, a fixed-memory latency histogram, a log/report rate limiter and Prometheus text.

Threading: each counter has exactly one writer thread (the MQTT network thread or the scoring thread),
so plain `+=` under the GIL loses no updates; readers (heartbeat, metrics endpoint) may see values a
moment old.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

# Every kind of refused or lost input; the errors topic and the heartbeat use these names.
ERROR_KINDS = (
    "malformed",  # not JSON, unknown format, strings/nulls where numbers belong (messages)
    "wrong_channels",  # channel count or SenML names do not match the model (messages)
    "non_finite",  # NaN or inf in a value or timestamp (readings)
    "out_of_order",  # timestamp older than the stream's last one (readings)
    "clock_skew",  # timestamp beyond daemon.max_clock_skew_s ahead of the daemon's clock (readings)
    "duplicate",  # timestamp equal to the stream's last one (readings)
    "gap",  # gap > gap_factor x median period: the stream's buffer was reset (events)
    "oversized",  # payload larger than daemon.max_payload_bytes (messages)
    "unknown_topic",  # a topic that is neither a sensor stream nor the command topic (messages)
    "dropped",  # input queue full: message dropped per the overload policy (messages)
    "stream_limit",  # a new stream beyond --max-streams, none idle long enough to evict (messages)
    "stream_evicted",  # an idle stream dropped to make room for a new one (events)
    "bad_command",  # unparseable, oversized or unknown command on the cmd topic (messages)
    "command_dropped",  # a valid command refused because too many were waiting (messages)
    "reload_failed",  # a new bundle was refused; the old model keeps scoring (events)
    "report_lost",  # the MQTT client's outgoing queue was full (reports)
    "inference_failed",  # onnxruntime raised on a batch; its windows are skipped (batches)
    "connect_refused",  # the broker refused our CONNECT (bad credentials, ...) (attempts)
    "connect_failed",  # no connection: refused port, unknown host, TLS verification failed (attempts)
    "internal_error",  # a bug caught in the scoring loop; the daemon carries on (events)
)


@dataclass
class Counters:
    messages: int = 0
    readings: int = 0
    windows: int = 0
    anomalies: int = 0
    reports: int = 0
    reconnects: int = 0
    reloads: int = 0
    foreign: int = 0  # messages for streams another daemon owns (--partition)
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))


class LatencyHistogram:
    """Log-spaced buckets from 1 µs to 100 s, 100 per decade (2.3 % wide): constant memory for months."""

    LO = -3.0  # log10(ms) of the first bucket edge
    PER_DECADE = 100
    DECADES = 8

    def __init__(self) -> None:
        self.n_buckets = self.PER_DECADE * self.DECADES + 2  # + underflow and overflow
        self.counts = np.zeros(self.n_buckets, np.int64)
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def add(self, ms: float) -> None:
        i = int((math.log10(ms) - self.LO) * self.PER_DECADE) + 1 if ms > 0.0 else 0
        self.counts[0 if i < 0 else i if i < self.n_buckets else self.n_buckets - 1] += 1
        self.count += 1
        self.total += ms
        if ms > self.max:
            self.max = ms
        if ms < self.min:
            self.min = ms

    def add_many(self, ms: np.ndarray) -> None:
        if len(ms) == 0:
            return
        with np.errstate(divide="ignore"):
            i = np.floor((np.log10(np.maximum(ms, 1e-12)) - self.LO) * self.PER_DECADE).astype(np.int64) + 1
        np.add.at(self.counts, np.clip(i, 0, self.n_buckets - 1), 1)
        self.count += len(ms)
        self.total += float(ms.sum())
        self.min = min(self.min, float(ms.min()))
        self.max = max(self.max, float(ms.max()))

    def percentile(self, q: float) -> float:
        """Approximate q-th percentile (ms): geometric middle of the bucket holding it, clamped to min/max."""
        if self.count == 0:
            return float("nan")
        rank = q / 100.0 * (self.count - 1)
        i = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        lo = 10 ** (self.LO + (i - 1) / self.PER_DECADE)
        mid = lo * 10 ** (0.5 / self.PER_DECADE)
        return float(min(max(mid, self.min), self.max))

    def summary(self) -> dict[str, float]:
        out = {f"p{q:g}": self.percentile(q) for q in (50, 90, 99, 99.9)}
        out["mean"] = self.total / self.count if self.count else float("nan")
        out["max"] = self.max if self.count else float("nan")
        out["count"] = self.count
        return out


class RateLimiter:
    """At most one event per `interval_s` per key; tells the caller how many were suppressed since."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str) -> tuple[bool, int]:
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) >= self.interval_s:
            self._last[key] = now
            return True, self._suppressed.pop(key, 0)
        self._suppressed[key] = self._suppressed.get(key, 0) + 1
        return False, 0


def prometheus_text(snapshot: dict, device: str) -> str:
    """Prometheus text exposition (version 0.0.4) of a heartbeat snapshot."""
    lab = f'device="{device}"'
    lines = []
    for key in (
        "messages",
        "readings",
        "windows",
        "anomalies",
        "reports",
        "reconnects",
        "reloads",
        "foreign",
    ):
        lines += [
            f"# TYPE edgekit_{key}_total counter",
            f"edgekit_{key}_total{{{lab}}} {snapshot['counters'][key]}",
        ]
    lines.append("# TYPE edgekit_errors_total counter")
    for kind, n in snapshot["counters"]["errors"].items():
        lines.append(f'edgekit_errors_total{{{lab},kind="{kind}"}} {n}')
    lines.append("# TYPE edgekit_latency_ms summary")
    lat = snapshot["latency_ms"]
    for q in ("50", "90", "99", "99.9"):
        v = lat.get(f"p{q}")
        lines.append(f'edgekit_latency_ms{{{lab},quantile="{float(q) / 100:g}"}} {v if v == v else "NaN"}')
    lines.append(f"edgekit_latency_ms_count{{{lab}}} {lat['count']}")
    for key in ("queue_depth", "streams", "unacked", "uptime_s"):
        lines += [f"# TYPE edgekit_{key} gauge", f"edgekit_{key}{{{lab}}} {snapshot[key]}"]
    lines.append(
        f'edgekit_model_info{{{lab},model_id="{snapshot["model_id"]}",model_version="{snapshot["model_version"]}"}} 1'
    )
    lines.append(f"edgekit_connected{{{lab}}} {int(snapshot['connected'])}")
    return "\n".join(lines) + "\n"


def start_metrics_server(host: str, port: int, render: Callable[[], str]) -> ThreadingHTTPServer:
    """Serve `render()` at /metrics from a daemon thread (stdlib only). Call .shutdown() to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # scrapes every few seconds would flood the log
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="edgekit-metrics", daemon=True).start()
    return server
