"""Daemon counters, a fixed-memory latency histogram, a log/report rate limiter and Prometheus metrics.

Threading: each counter has exactly one writer thread (the MQTT network thread or the scoring thread),
so plain `+=` under the GIL loses no updates; readers (heartbeat, metrics endpoint) may see values a
moment old.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.utils import floatToGoString

from edgekit.errors import ConfigError

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
    "empty",  # a text message with no text (messages)
    "not_utf8",  # a text message that is not UTF-8 (messages)
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
    inline: int = 0  # messages scored on the network thread right after it read them (runtime.handoff)
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
        # ufuncs and bincount, not np.errstate/np.clip/np.add.at: ~10x cheaper on a 64-window flush
        i = np.floor((np.log10(np.maximum(ms, 1e-12)) - self.LO) * self.PER_DECADE).astype(np.int64) + 1
        i = np.minimum(np.maximum(i, 0), self.n_buckets - 1)
        # intp: numpy < 2.2.4 on 32-bit ARM refuses to bincount int64 (numpy#23526)
        self.counts += np.bincount(i.astype(np.intp), minlength=self.n_buckets)
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


# HELP texts of the counters the daemon keeps; a counter added later is exported with a generic one.
_COUNTER_HELP = {
    "messages": "MQTT messages received (sensor and command topics)",
    "readings": "sensor readings accepted into a stream",
    "windows": "windows scored by the model",
    "anomalies": "windows scored above the threshold",
    "reports": "anomaly reports handed to the MQTT client",
    "reconnects": "reconnections to the broker",
    "reloads": "bundles hot-reloaded",
    "foreign": "messages for streams another daemon owns (--partition)",
    "inline": "messages scored on the MQTT network thread right after it read them, not by the scoring thread",
    "errors": "refused or lost inputs, by kind (see the errors topic)",
}
_GAUGE_HELP = {
    "queue_depth": "messages waiting in the input queue",
    "streams": "streams with a buffer",
    "unacked": "QoS>0 reports not yet acknowledged by the broker",
    "uptime_s": "seconds since the daemon started",
}


def latency_buckets(h: LatencyHistogram, per_decade: int = 4, lo_s: float = 1e-5, hi_s: float = 10.0) -> list:
    """Cumulative (le in seconds, count) pairs at exact edges of `h`'s fine buckets, ending with +Inf.

    Every `PER_DECADE / per_decade`-th fine edge from `lo_s` to `hi_s`, so each count is the real number of
    observations below that edge; all devices use the same edges, so the buckets sum across devices.
    """
    counts = h.counts.copy()  # one consistent view: the scoring thread keeps adding
    cum = np.cumsum(counts)
    step = h.PER_DECADE // per_decade
    first = round((math.log10(lo_s * 1e3) - h.LO) * h.PER_DECADE)
    last = round((math.log10(hi_s * 1e3) - h.LO) * h.PER_DECADE)
    # fine bucket i (1-based after the underflow one) ends at 10**(LO + i/PER_DECADE) ms
    out = [(10 ** (h.LO + i / h.PER_DECADE) / 1e3, int(cum[i])) for i in range(first, last + 1, step)]
    return [*out, (math.inf, int(cum[-1]))]


def _nan_for_none(v: float | None) -> float:
    return math.nan if v is None else float(v)


class _Snapshot:
    """A prometheus_client collector over one heartbeat snapshot (and the live latency histogram)."""

    def __init__(self, snapshot: dict, device: str, latency: LatencyHistogram | None) -> None:
        self.snapshot, self.device, self.latency = snapshot, device, latency

    def collect(self) -> Iterator[Metric]:
        snap, dev = self.snapshot, [self.device]
        for key, value in snap["counters"].items():
            doc = _COUNTER_HELP.get(key, f"daemon counter {key}")
            if isinstance(value, dict):
                fam = CounterMetricFamily(f"edgekit_{key}", doc, labels=["device", "kind"])
                for kind, n in value.items():
                    fam.add_metric([*dev, kind], n)
            else:
                fam = CounterMetricFamily(f"edgekit_{key}", doc, labels=["device"])
                fam.add_metric(dev, value)
            yield fam
        if self.latency is not None:
            fam = HistogramMetricFamily(
                "edgekit_latency_seconds",
                "reading received to score ready, per window (same buckets on every device)",
                labels=["device"],
            )
            buckets = latency_buckets(self.latency)
            fam.add_metric(dev, [(floatToGoString(le), n) for le, n in buckets], self.latency.total / 1e3)
            yield fam
        lat = snap["latency_ms"]
        fam = SummaryMetricFamily(
            "edgekit_latency_ms",
            "this device's latency percentiles in ms since start (not aggregatable: use edgekit_latency_seconds)",
            labels=["device"],
        )
        n = lat["count"]
        fam.add_metric(dev, count_value=n, sum_value=_nan_for_none(lat.get("mean")) * n if n else 0.0)
        for q in ("50", "90", "99", "99.9"):
            fam.add_sample(
                "edgekit_latency_ms",
                {"device": self.device, "quantile": f"{float(q) / 100:g}"},
                _nan_for_none(lat.get(f"p{q}")),
            )
        yield fam
        for key, doc in _GAUGE_HELP.items():
            if key in snap:
                gauge = GaugeMetricFamily(f"edgekit_{key}", doc, labels=["device"])
                gauge.add_metric(dev, snap[key])
                yield gauge
        yield InfoMetricFamily(
            "edgekit_model",
            "the bundle being served",
            value={
                "device": self.device,
                "model_id": snap["model_id"],
                "model_version": snap["model_version"],
            },
        )
        for key, value in (snap.get("cascade") or {}).items():  # the cascade's counters and gauges
            if key != "mode" and value is not None:
                gauge = GaugeMetricFamily(f"edgekit_cascade_{key}", f"cascade {key}", labels=["device"])
                gauge.add_metric(dev, value)
                yield gauge
        if drift := snap.get("drift"):
            yield from _drift_metrics(drift, dev)
        connected = GaugeMetricFamily(
            "edgekit_connected", "1 while connected to the broker", labels=["device"]
        )
        connected.add_metric(dev, int(snap["connected"]))
        yield connected


def _drift_metrics(drift: dict, dev: list[str]) -> Iterator[Metric]:
    """PSI gauges labelled by channel only (the worst stream's value): cardinality = channels + 1."""
    gauge = GaugeMetricFamily(
        "edgekit_drift_psi",
        "population stability index vs training over the sliding window (worst stream; channel=score: model score)",
        labels=["device", "channel"],
    )
    for channel, value in [*drift["psi"].items(), ("score", drift["score_psi"])]:
        if value is not None:  # before the first full window there is no value
            gauge.add_metric([*dev, channel], value)
    yield gauge
    alerts = CounterMetricFamily(
        "edgekit_drift_alerts", "drift, stuck and out_of_range alerts published", labels=["device", "kind"]
    )
    for kind, n in drift["alerts"].items():
        alerts.add_metric([*dev, kind], n)
    yield alerts


def prometheus_text(snapshot: dict, device: str, latency: LatencyHistogram | None = None) -> str:
    """Prometheus text exposition (0.0.4, written by prometheus_client) of a heartbeat snapshot.

    With `latency` (the daemon's histogram) it includes edgekit_latency_seconds with real bucket counts.
    """
    return generate_latest(_Snapshot(snapshot, device, latency)).decode()  # type: ignore[arg-type]


def start_metrics_server(host: str, port: int, render: Callable[[], str]) -> ThreadingHTTPServer:
    """Serve `render()` at /metrics from a daemon thread (stdlib only). Call .shutdown() to stop.

    Raises ConfigError naming host:port when the port is out of range or cannot be bound.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"metrics port {port!r} must be from 1 to 65535 (0: any free port)")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # scrapes every few seconds would flood the log
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:  # in use, no permission (< 1024), unknown host or address not on this machine
        raise ConfigError(f"metrics endpoint {host}:{port}: cannot listen ({exc.strerror or exc})") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="edgekit-metrics", daemon=True).start()
    return server


def _sum_counters(counters: list[dict]) -> dict:
    out: dict = {}
    for c in counters:
        for key, value in c.items():
            if isinstance(value, dict):
                into = out.setdefault(key, {})
                for kind, n in value.items():
                    into[kind] = into.get(kind, 0) + n
            else:
                out[key] = out.get(key, 0) + value
    return out


def aggregate_snapshots(device: str, snaps: list[dict], uptime_s: float) -> dict:
    """One heartbeat body for the workers of `serve --workers`, same keys as a lone daemon's.

    Counters, queue depths and unacked reports add up; latency count, mean and max are exact; percentiles
    cannot be added, so each is the worst worker's (an upper bound; every worker's own is in its heartbeat).
    """
    first = snaps[0] if snaps else {}
    lats = [s["latency_ms"] for s in snaps if s.get("latency_ms", {}).get("count")]
    n = sum(lat["count"] for lat in lats)
    latency: dict = {"count": n}
    for q in ("p50", "p90", "p99", "p99.9", "max"):
        values = [lat[q] for lat in lats if lat.get(q) is not None]
        latency[q] = max(values) if values else None
    latency["mean"] = sum(lat["mean"] * lat["count"] for lat in lats) / n if n else None
    out = {
        "device": device,
        "ts": time.time(),
        "uptime_s": round(uptime_s, 3),
        **{
            k: first.get(k)
            for k in ("model_id", "model_version", "variant", "provider", "bundle", "verified")
        },
        "threshold": first.get("threshold"),
        "connected": bool(snaps) and all(s.get("connected") for s in snaps),
        "counters": _sum_counters([s["counters"] for s in snaps]),
        "latency_ms": latency,
        "last_reload_error": next(
            (s["last_reload_error"] for s in snaps if s.get("last_reload_error")), None
        ),
    }
    for key in ("queue_depth", "queue_bytes", "streams", "unacked"):
        out[key] = sum(s.get(key, 0) for s in snaps)
    return out
