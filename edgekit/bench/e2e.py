"""`edgekit bench --e2e`: latency through a real MQTT broker, publisher -> broker -> daemon -> report -> subscriber.

Method (recorded in every report):
- The daemon under test is a real `edgekit serve` process with the bundle and profile, a bench-only
  device id (a production daemon on the same broker is not disturbed) and `--threshold=-inf`, so that
  EVERY window yields a report (in production only anomalies are reported).
- Each reading carries its publish time (`ts`, unix seconds). A subscriber in its own process takes
  `now - end_ts` of each report (end_ts is the ts of the window's last reading): the latency a consumer
  of anomaly reports sees, broker hops included.
- The bare relay is a paho client that republishes every reading without parsing or a model, over the
  same broker at the same rates, so `daemon p50 / relay p50` is the daemon's own cost.
- Rates are swept upward, each with fresh stream names (fresh ring buffers, so the number of windows
  to expect is exact). A rate is *sustained* when every expected report arrived, the daemon dropped
  nothing, the publisher reached >= 95 % of the rate and the latency at the verdict percentile stayed
  within the budget. The sweep stops at the first rate that is not; the saturation point is the
  highest sustained rate.
- The verdict is taken at the highest swept rate <= `verdict_rate` (default 1,000 readings/s).

Pieces: `rig` (daemon process, MQTT clients), `traffic` (publisher, subscriber, relay), `sweep` (the
rates and the verdict), `report` (files). Device side: numpy and paho-mqtt (matplotlib optional).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

import edgekit.bench.latency as latency
from edgekit.bench.machine import machine_info
from edgekit.bench.report import write_report
from edgekit.bench.resolve import mark_host, report_header, resolve_budget, resolve_profile
from edgekit.bench.rig import DaemonProcess, pin, process_tree, rss_mb
from edgekit.bench.sweep import E2EConfig, Judge, expected_windows, summarize_e2e, sweep
from edgekit.bench.traffic import Traffic
from edgekit.bench.variants import bundle_variant, load_windows
from edgekit.broker import Broker
from edgekit.errors import ConfigError
from edgekit.profiles import TargetProfile
from edgekit.runtime.install import opened_bundle
from edgekit.runtime.mqtt import Topics, parse_broker_url
from edgekit.runtime.profiling import ENV as PROFILE_ENV
from edgekit.runtime.profiling import top_entries
from edgekit.runtime.text import TextEngine

__all__ = ["E2EConfig", "expected_windows", "run_e2e", "summarize_e2e"]


def _daemon_args(cfg: E2EConfig, profile: str) -> list[str]:
    args = ["--profile", profile, "--heartbeat-s", "3600", "--gap-factor", "0"]
    if cfg.workers > 1:
        args += ["--workers", str(cfg.workers)]
    if cfg.report_qos is not None:
        args += ["--report-qos", str(cfg.report_qos)]
    if cfg.reports is not None:
        args += ["--reports", cfg.reports]
    args += cfg.daemon_args
    args += ["--tcp-nodelay" if cfg.nodelay else "--no-tcp-nodelay", "--mqtt-version", cfg.mqtt_version]
    if cfg.every_window:
        args.append("--threshold=-inf")
    return args


def replay_rows(windows: np.ndarray, text: bool) -> np.ndarray:
    """What the publisher replays: a sensor set's readings in their order (windows are cut from them), or a
    text set's texts in a seeded random order, so a run shorter than the file samples all of it and not
    the head of a file grouped by source (bench.latency.make_batches does the same for the model-only bench)."""
    if text:
        return windows[np.random.default_rng(0).permutation(len(windows))]
    return windows.reshape(-1, windows.shape[-1])


def _check(cfg: E2EConfig, text: bool = False) -> None:
    if not cfg.rates or any(r <= 0 for r in cfg.rates):
        raise ConfigError("--rates must be positive readings/s")
    if cfg.streams < 1 or cfg.batch < 1 or cfg.duration_s <= 0:
        raise ConfigError("--streams, --batch and --duration must be positive")
    if text and cfg.batch != 1:
        raise ConfigError("--e2e with a text bundle sends one text per message: leave --batch at 1")


def run_e2e(cfg: E2EConfig, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Sweep the daemon (and the bare relay) over cfg.rates through a broker; returns the report."""
    say = echo or (lambda _msg: None)
    rates = sorted(cfg.rates)
    with ExitStack() as stack:
        bundle = stack.enter_context(opened_bundle(cfg.bundle))
        profile = resolve_profile(bundle, cfg.profile)
        q, budget = resolve_budget(profile, cfg.percentile, cfg.budget_ms)
        variant = bundle_variant(bundle, profile)
        eng = variant.engine
        assert eng is not None
        text = isinstance(eng, TextEngine)
        _check(cfg, text)
        window, hop = (1, 1) if text else (eng.window, eng.hop)  # type: ignore[union-attr]
        windows, source = load_windows(variant, cfg.data)
        own = stack.enter_context(Broker(tcp_nodelay=cfg.nodelay)) if cfg.broker is None else None
        if own is not None and cfg.cpus:
            pin(own.proc.pid, cfg.cpus[1])  # type: ignore[union-attr]
        url = own.url if own is not None else cfg.broker
        assert url is not None
        say(
            f"e2e bench of {Path(cfg.bundle).name} through {'a private mosquitto' if own else url}: rates "
            f"{', '.join(f'{r:g}' for r in rates)} readings/s over {cfg.streams} streams, batch {cfg.batch}, "
            f"~{cfg.duration_s:g} s each, daemon then bare relay"
        )
        if cfg.cpus and hasattr(os, "sched_getaffinity"):
            old_affinity = os.sched_getaffinity(0)
            stack.callback(os.sched_setaffinity, 0, old_affinity)
            pin(0, cfg.cpus[1])
        judge = Judge(window, hop, q, budget)
        rows = replay_rows(windows, text)
        broker_pid = own.proc.pid if own is not None and own.proc is not None else cfg.broker_pid
        watch = {"broker": broker_pid} if broker_pid else {}
        results, arrays, extra = _measure(cfg, bundle, profile, url, rows, rates, judge, text, watch)
    e2e = summarize_e2e(results, q, budget, cfg.verdict_rate)
    e2e.update(extra)
    report: dict[str, Any] = {
        **report_header("e2e", cfg.bundle, profile, q, budget, cfg.budget_ms, cfg.percentile),
        "method": {
            "path": "publisher -> broker -> edgekit serve (--threshold=-inf: every window reported) -> broker -> subscriber"
            if cfg.every_window
            else "publisher -> broker -> edgekit serve (real threshold: anomaly reports only) -> broker -> subscriber",
            "broker": "private mosquitto (embedded)" if own else url,
            "rates_per_s": rates,
            "duration_s": cfg.duration_s,
            "warmup_s": cfg.warmup_s,
            "streams": cfg.streams,
            "batch": cfg.batch,
            "readings_qos": cfg.qos,
            "reports_qos": next(
                (q for q in (cfg.report_qos, profile.daemon.report_qos) if q is not None), profile.daemon.qos
            ),
            "workers": cfg.workers,
            "reports": cfg.reports or profile.daemon.reports,
            "tcp_nodelay": cfg.nodelay,
            "daemon_mqtt": cfg.mqtt_version,
            "window": window,
            "hop": hop,
            "input": "text messages {text, ts}, one classification report each"
            if text
            else "sensor readings",
            "inputs": source,
            "input_order": "texts in a seeded random order (seed 0)" if text else "readings in file order",
            "baseline": "bare paho relay (subscribe + republish, no parsing, no model), same broker and rates",
            "sustained": "all expected reports arrived, none dropped, publisher >= 95 % of the rate, "
            f"{latency.percentile_key(q)} <= budget",
            "pinned_cpus": list(cfg.cpus) if cfg.cpus else None,
        },
        "machine": machine_info(variant.providers),
        "e2e": e2e,
        "verdict": e2e["verdict"],
        "notes": [],
    }
    mark_host(report, profile)
    if cfg.out:
        report["files"] = write_report(cfg.out, report, arrays, plots=cfg.plots)
    return report


def _measure(
    cfg: E2EConfig,
    bundle: Path,
    profile: TargetProfile,
    url: str,
    rows: np.ndarray,
    rates: list[float],
    judge: Judge,
    text: bool = False,
    watch: dict[str, int] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """The daemon's sweep, then the bare relay's at the rates the daemon reached; (rows, samples, extras:
    daemon_rss_mb (peak of the largest process), daemon_rss_per_process_mb, daemon_exit_code,
    daemon_profile). `watch` names further processes (the broker) whose CPU use each rate records."""
    device = f"edgekit-bench-{uuid.uuid4().hex[:8]}"
    prof = Path(tempfile.mkdtemp(prefix="edgekit-prof-")) / "daemon.prof" if cfg.profile_daemon else None
    topics = Topics(profile.mqtt, device)
    addr = parse_broker_url(url)
    traffic = Traffic(addr.host, addr.port, topics, rows, cfg.batch, cfg.qos, cfg.nodelay, cfg.cpus, text)
    traffic.watch.update(watch or {})
    daemon = DaemonProcess(
        bundle,
        url,
        device,
        _daemon_args(cfg, cfg.profile or profile.name),
        status_topic=topics.status,
        log_path=Path(cfg.out) / "daemon.log" if cfg.out else None,
        # workers spread over every core (not the bench CPU this process is pinned to, which they'd inherit)
        cpu=(cfg.cpus[0] if cfg.workers <= 1 else set(range(os.cpu_count() or 1))) if cfg.cpus else None,
        env={**os.environ, **(cfg.daemon_env or {}), **({PROFILE_ENV: str(prof)} if prof else {})},
    )
    results: list[dict[str, Any]] = []
    arrays: dict[str, dict[str, np.ndarray]] = {}
    extra: dict[str, Any] = {}
    try:
        with daemon:
            traffic.watch["daemon"] = daemon.pid
            if text:  # every message is reported, with the sender's ts echoed
                traffic.start_subscriber(topics.classifications, "ts")
            else:
                traffic.start_subscriber(topics.anomalies, "end_ts")
            d_rows, d_arr = sweep(traffic, cfg, "daemon", rates, judge)
            results += d_rows
            arrays.update(d_arr)
            per_proc = {str(p): rss_mb(p) for p in process_tree(daemon.pid)}
            extra["daemon_rss_per_process_mb"] = {k: v for k, v in per_proc.items() if v}
            extra["daemon_rss_mb"] = max(
                extra["daemon_rss_per_process_mb"].values(), key=lambda v: v["peak"], default=None
            )
            traffic.watch.pop("daemon")
            traffic.stop_subscriber()
        if cfg.relay:
            out_topic = f"{topics.cmd}/bench-relay-out"
            traffic.start_relay(out_topic)
            traffic.start_subscriber(out_topic, "ts")
            relay_judge = Judge(1, 1, judge.q, judge.budget)
            relay_rates = rates if cfg.relay_all_rates else [r["rate"] for r in results]
            r_rows, r_arr = sweep(traffic, cfg, "relay", relay_rates, relay_judge)
            results += r_rows
            arrays.update(r_arr)
    finally:
        traffic.close()
    extra["daemon_exit_code"] = daemon.returncode
    if prof is not None and prof.exists():
        extra["daemon_profile"] = top_entries(str(prof), 15)
    return results, arrays, extra
