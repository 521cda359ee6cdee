"""The e2e rate sweep: publish at each rate, count and time the reports, judge each rate and the verdict.

Measurement only: rows of numbers (see `summarize_e2e`); tables and plots are made from them in
`edgekit.bench.format` and `edgekit.bench.plots`.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import edgekit.bench.latency as latency
from edgekit.bench.rig import cpu_seconds, peak_rss_per_process, reset_peak_rss
from edgekit.bench.traffic import Traffic

log = logging.getLogger(__name__)

DEFAULT_RATES = [100.0, 1000.0, 10000.0]


@dataclass
class E2EConfig:
    bundle: str  # a bundle folder or a .tar.gz of one
    broker: str | None = None  # None: a private mosquitto on a free loopback port, stopped afterwards
    profile: str | None = None  # default: the profile the bundle was exported for
    rates: list[float] = field(default_factory=lambda: list(DEFAULT_RATES))  # readings/s, swept upward
    duration_s: float = 3.0  # per rate (longer when a windowed model needs more readings)
    warmup_s: float = 1.0
    streams: int = 4
    batch: int = 1  # readings per message (1: the single-reading form; >1: the batch form)
    qos: int = 0  # QoS of the readings (reports are published at the profile's QoS)
    percentile: str | None = None
    budget_ms: float | None = None
    verdict_rate: float = 1000.0
    relay: bool = True
    keep_going: bool = False  # go on past an unsustained rate (a hiccup on a shared machine ends no sweep)
    relay_all_rates: bool = False  # sweep the relay over every rate, not only those the daemon reached
    every_window: bool = True  # --threshold=-inf; False: real threshold, latency of anomaly reports only
    nodelay: bool = True  # TCP_NODELAY on the daemon, relay and bench clients
    mqtt_version: str = "5"  # the daemon's MQTT version ("5" or "3.1.1")
    data: str | None = None  # npz of RAW windows whose rows are replayed; default: golden inputs
    drain_s: float = 10.0  # how long to wait for the last reports of a rate
    out: str | None = None
    plots: bool = True
    cpus: tuple[int, int] | None = None  # (daemon/relay CPU, bench/subscriber CPU): pin them (2+ cores)
    workers: int = 1  # `edgekit serve --workers N` (N > 1: the daemon is not pinned to one CPU)
    broker_pid: int | None = None  # a broker process on this machine whose CPU use is recorded
    report_qos: int | None = None  # --report-qos (None: the profile's)
    reports: str | None = None  # --reports each|batch (None: the profile's)
    daemon_args: list[str] = field(default_factory=list)  # more `edgekit serve` flags (--share-group G, ...)
    daemon_env: dict[str, str] | None = None  # extra environment of the daemon (EDGEKIT_JSON=stdlib, ...)
    profile_daemon: bool = False  # run the daemon under cProfile (slower) and report its top functions


@dataclass
class Judge:
    """What a rate is judged by: windows of the model, and the percentile and budget of the verdict."""

    window: int
    hop: int
    q: float
    budget: float


def expected_windows(n_readings: int, window: int, hop: int) -> int:
    """Windows a fresh stream of n readings yields (the first at `window` readings, then one per hop)."""
    return 0 if n_readings < window else (n_readings - window) // hop + 1


def _split(n: int, k: int) -> list[int]:
    """Readings per stream when n readings go round-robin over k streams."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _drain(traffic: Traffic, cfg: E2EConfig, expected: int, before: dict[str, Any] | None) -> None:
    """Wait for the last reports (or, when only anomalies are reported, for the last window to be scored);
    give up once the drain time is over and nothing has moved for a second."""
    start = time.monotonic()
    last, last_change = -1, start
    while True:
        got = traffic.counters()["windows"] - before["windows"] if before else traffic.ask("count")
        now = time.monotonic()
        if got != last:
            last, last_change = got, now
        if (
            got >= expected
            or (now - start > cfg.drain_s and now - last_change > 1)
            or now - start > 6 * cfg.drain_s
        ):
            return
        time.sleep(0.05)


def _step(
    traffic: Traffic, cfg: E2EConfig, path: str, rate: float, n_readings: int, streams: list[str], j: Judge
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    daemon = path == "daemon"
    before = traffic.counters() if daemon else None
    traffic.ask("reset")
    pids = traffic.cpu_pids()
    peak_reset = daemon and "daemon" in pids and reset_peak_rss(pids["daemon"])
    cpu0, wall0 = {k: cpu_seconds(p, k == "daemon") for k, p in pids.items()}, time.perf_counter()
    sent, msgs, achieved = traffic.publish(rate, n_readings, streams)
    per_stream = _split(msgs, len(streams))
    expected = sum(expected_windows(n * cfg.batch, j.window, j.hop) for n in per_stream) if daemon else msgs
    count_scored = daemon and not cfg.every_window
    _drain(traffic, cfg, expected, before if count_scored else None)
    if count_scored:
        time.sleep(0.2)  # the reports of the last anomalies are on their way
    wall = time.perf_counter() - wall0
    # share of one core each process took while this rate was published and drained (100 = one core)
    used = {k: cpu_seconds(p, k == "daemon") - cpu0[k] for k, p in pids.items()}
    cpu = {k: round(100.0 * v / wall, 1) for k, v in used.items()}
    # peak RSS of the daemon's busiest process during this rate (VmHWM reset when the rate began)
    peak = max(peak_rss_per_process(pids["daemon"]).values(), default=None) if peak_reset else None
    _, arrival, lat, inner = traffic.ask("collect")
    row: dict[str, Any] = {
        "path": path,
        "rate": rate,
        "readings": sent,
        "messages": msgs,
        "achieved_per_s": achieved,
        "expected_reports": expected if (cfg.every_window or not daemon) else None,
        "received": len(lat),
        "cpu_pct": cpu,
        "daemon_peak_rss_mb": peak,
        # CPU time per message: unlike latency, hardly moved by other load on a shared machine
        "cpu_us_per_message": {k: round(1e6 * v / msgs, 2) for k, v in used.items()},
        "load_avg": list(os.getloadavg()),
    }
    if before is not None:
        after = traffic.counters()
        errs = {k: after["errors"][k] - before["errors"].get(k, 0) for k in after["errors"]}
        row["scored"] = after["windows"] - before["windows"]
        row["expected_windows"] = expected
        row["dropped"] = errs.get("dropped", 0)
        row["errors"] = {k: v for k, v in errs.items() if v}
    key = latency.percentile_key(j.q)
    qs = tuple(sorted({*latency.DEFAULT_QS, j.q}))
    row["latency_ms"] = latency.stage_stats(lat, qs) if len(lat) else None
    # the daemon's own share (receipt to report, the reports' latency_ms): what the rest of the path adds
    own = inner[np.isfinite(inner)] if len(inner) else inner
    row["daemon_latency_ms"] = latency.stage_stats(own, qs) if len(own) else None
    complete = row["received"] >= expected if row["expected_reports"] is not None else True
    if daemon:
        complete = complete and row["scored"] >= expected and row["dropped"] == 0
    row["complete"] = bool(complete)
    if row["latency_ms"] is not None:
        within = row["latency_ms"][key] <= j.budget
    else:  # no report at all is a failure, unless only anomalies are reported and none occurred
        within = daemon and not cfg.every_window
    row["sustained"] = bool(complete and achieved >= 0.95 * rate and (within or not daemon))
    t0 = arrival[0] if len(arrival) else 0.0
    return row, {"latency_ms": lat, "arrival_s": arrival - t0}


def _readings_for(cfg: E2EConfig, rate: float, window: int, hop: int) -> int:
    """Readings for one rate: duration x rate, but at least 20 windows per stream for windowed models."""
    per_stream = window + 19 * hop if window > 1 else 1
    return max(int(rate * cfg.duration_s), per_stream * cfg.streams, cfg.streams * cfg.batch)


def sweep(
    traffic: Traffic, cfg: E2EConfig, path: str, rates: list[float], j: Judge
) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """One row per rate (upward) through `path` ("daemon" or "relay"), stopping at the first unsustained rate."""
    rows, arrays = [], {}
    tag = uuid.uuid4().hex[:6]
    warm = [f"w{tag}s{k}" for k in range(cfg.streams)]
    traffic.publish(rates[0], max(int(rates[0] * cfg.warmup_s), cfg.streams), warm)  # untimed
    time.sleep(0.3)
    for i, rate in enumerate(rates):
        streams = [f"r{i}{tag}s{k}" for k in range(cfg.streams)]  # fresh buffers: exact expectations
        n = _readings_for(cfg, rate, j.window, j.hop)
        row, arr = _step(traffic, cfg, path, rate, n, streams, j)
        rows.append(row)
        arrays[f"{path}@{rate:g}"] = arr
        lat = row["latency_ms"] or {}
        log.info(
            "%s %g readings/s: p50 %.3g p99 %.3g ms, %d/%s received, %.0f/s achieved%s",
            path,
            rate,
            lat.get("p50", math.nan),
            lat.get("p99", math.nan),
            row["received"],
            row["expected_reports"],
            row["achieved_per_s"],
            "" if row["sustained"] else " -> not sustained" + ("" if cfg.keep_going else ", sweep stops"),
        )
        if not row["sustained"] and not cfg.keep_going:
            break
    return rows, arrays


def summarize_e2e(
    results: list[dict[str, Any]], q: float, budget: float, verdict_rate: float
) -> dict[str, Any]:
    """Ratios, saturation point and the verdict from the per-rate rows."""
    key = latency.percentile_key(q)
    daemon = [r for r in results if r["path"] == "daemon"]
    relay = {r["rate"]: r for r in results if r["path"] == "relay"}
    for r in daemon:
        b = relay.get(r["rate"])
        if b and b["latency_ms"] and r["latency_ms"]:
            r["relay_p50_ratio"] = r["latency_ms"]["p50"] / b["latency_ms"]["p50"]
    sustained = [r["rate"] for r in daemon if r["sustained"]]
    failed = next((r["rate"] for r in daemon if not r["sustained"]), None)
    at = [r for r in daemon if r["rate"] <= verdict_rate] or daemon[:1]
    judged = at[-1]
    value = judged["latency_ms"][key] if judged["latency_ms"] else math.inf
    passed = bool(value <= budget and judged["complete"])
    verdict = {
        "variant": f"daemon e2e at {judged['rate']:g} readings/s",
        "percentile": key,
        "value_ms": value,
        "budget_ms": budget,
        "headroom_ms": budget - value,
        "passed": passed,
        "result": "PASS" if passed else "FAIL",
        "measured": "publisher -> broker -> daemon -> report -> subscriber, per window",
        "complete": judged["complete"],
    }
    return {
        "rows": results,
        "saturation_per_s": max(sustained) if sustained else None,
        "first_unsustained_per_s": failed,
        "verdict": verdict,
    }
