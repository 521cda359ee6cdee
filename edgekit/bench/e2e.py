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

Device side: numpy and paho-mqtt (matplotlib optional for plots), like the daemon it measures.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgekit.bench import latency
from edgekit.bench.machine import machine_info
from edgekit.bench.report import _budget_line, _save, cdf_figure, fmt_ms, md_table, over_time_figure
from edgekit.bench.runner import report_header, resolve_budget, resolve_profile
from edgekit.bench.variants import bundle_variant, load_windows
from edgekit.errors import ConfigError, EdgekitError
from edgekit.runtime.mqtt import Topics, parse_broker_url, set_nodelay

log = logging.getLogger(__name__)

DEFAULT_RATES = [100.0, 1000.0, 10000.0]
READY_TIMEOUT_S = 30.0


@dataclass
class E2EConfig:
    bundle: str
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
    every_window: bool = True  # --threshold=-inf; False: real threshold, latency of anomaly reports only
    nodelay: bool = True  # TCP_NODELAY on the daemon, relay and bench clients
    mqtt_version: str = "5"  # the daemon's MQTT version ("5" or "3.1.1")
    data: str | None = None  # npz of RAW windows whose rows are replayed; default: golden inputs
    drain_s: float = 10.0  # how long to wait for the last reports of a rate
    out: str | None = None
    plots: bool = True
    cpus: tuple[int, int] | None = None  # (daemon/relay CPU, bench/subscriber CPU): pin them (2+ cores)


# -- helper processes ---------------------------------------------------------------------------------
def bench_client(host: str, port: int, nodelay: bool, name: str = "") -> mqtt.Client:
    """A connected MQTT 5 client for publishing/subscribing test traffic (no network loop started)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    if nodelay:
        c.on_socket_open = lambda _c, _u, s: set_nodelay(s)
    c.max_inflight_messages_set(0)  # unlimited: QoS 1 pacing must not be throttled by the client
    c.connect(host, port)
    return c


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(pid, {cpu})


def _sent_ts(payload: bytes, key: str) -> float:
    ts = json.loads(payload)[key]
    return float(ts[-1] if isinstance(ts, list) else ts)


def _subscriber(
    host: str, port: int, nodelay: bool, topic: str, key: str, cpu: int | None, conn: Any
) -> None:
    """Records (arrival s, now - sent ts in ms) of every message on `topic` until told to quit."""
    _pin(0, cpu)
    arrival: list[float] = []
    lat: list[float] = []

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        try:
            sent = _sent_ts(msg.payload, key)
        except (ValueError, KeyError, TypeError, IndexError):
            return
        arrival.append(now)
        lat.append((now - sent) * 1000.0)

    c = bench_client(host, port, nodelay, f"edgekit-bench-sub-{uuid.uuid4().hex[:8]}")
    c.on_message = on_message
    c.on_subscribe = lambda *_a: conn.send("ready")
    c.subscribe(topic, qos=1)
    c.loop_start()
    while (cmd := conn.recv()) != "quit":
        if cmd == "reset":
            arrival.clear()
            lat.clear()
            conn.send("ok")
        elif cmd == "collect":
            conn.send((len(lat), np.asarray(arrival), np.asarray(lat)))
        elif cmd == "count":
            conn.send(len(lat))
    c.disconnect()
    c.loop_stop()


def _relay(host: str, port: int, nodelay: bool, sub: str, out: str, ready: str, cpu: int | None) -> None:
    """The baseline: subscribe and republish every message, no parsing, no model."""
    _pin(0, cpu)
    c = bench_client(host, port, nodelay, f"edgekit-bench-relay-{uuid.uuid4().hex[:8]}")
    c.on_message = lambda cl, _u, m: cl.publish(out, m.payload, qos=1)
    c.on_subscribe = lambda cl, *_a: cl.publish(ready, b"1", qos=1)
    c.subscribe(sub, qos=1)
    c.loop_forever()


# -- the bench side -----------------------------------------------------------------------------------
class _Rig:
    """Publisher and control client on the broker, plus the subscriber process."""

    def __init__(self, cfg: E2EConfig, host: str, port: int, topics: Topics, rows: np.ndarray) -> None:
        self.cfg, self.host, self.port, self.topics = cfg, host, port, topics
        self.vals = [json.dumps([float(v) for v in r]) for r in rows]
        self.pub = bench_client(host, port, cfg.nodelay, f"edgekit-bench-pub-{uuid.uuid4().hex[:8]}")
        self.pub.loop_start()
        self.inbox: list[tuple[str, bytes]] = []
        self.ctl = bench_client(host, port, True, f"edgekit-bench-ctl-{uuid.uuid4().hex[:8]}")
        self.ctl.on_message = lambda _c, _u, m: self.inbox.append((m.topic, m.payload))
        self.ready_topic = f"{topics.cmd}/bench-relay-ready"
        self.ctl.subscribe([(topics.heartbeat, 0), (topics.status, 1), (self.ready_topic, 1)])
        self.ctl.loop_start()
        self.last_ts = 0.0
        self.k = 0
        self.sub_proc: Any = None
        self.sub_conn: Any = None

    def start_subscriber(self, topic: str, key: str) -> None:
        ctx = mp.get_context("spawn")
        self.sub_conn, child = ctx.Pipe()
        cpu = self.cfg.cpus[1] if self.cfg.cpus else None
        args = (self.host, self.port, self.cfg.nodelay, topic, key, cpu, child)
        self.sub_proc = ctx.Process(target=_subscriber, args=args, daemon=True)
        self.sub_proc.start()
        if not self.sub_conn.poll(READY_TIMEOUT_S):
            raise EdgekitError("the bench subscriber did not come up")
        self.sub_conn.recv()

    def stop_subscriber(self) -> None:
        if self.sub_proc is not None:
            self.sub_conn.send("quit")
            self.sub_proc.join(5)
            if self.sub_proc.is_alive():
                self.sub_proc.terminate()
            self.sub_proc = None

    def ask(self, cmd: str) -> Any:
        self.sub_conn.send(cmd)
        return self.sub_conn.recv()

    def wait_for(self, pred: Callable[[str, bytes], bool], what: str, proc: Any = None) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen = 0
        while time.monotonic() < deadline:
            for topic, payload in self.inbox[seen:]:
                if pred(topic, payload):
                    return
            seen = len(self.inbox)
            if proc is not None and _exited(proc):
                raise EdgekitError(f"{what} exited early (see its log)")
            time.sleep(0.02)
        raise EdgekitError(f"{what} did not come up within {READY_TIMEOUT_S:g} s")

    def counters(self) -> dict[str, Any]:
        """Ask the daemon for a heartbeat and return its counters."""
        n = len(self.inbox)
        self.pub.publish(self.topics.cmd, json.dumps({"cmd": "heartbeat"}), qos=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for topic, payload in self.inbox[n:]:
                if topic == self.topics.heartbeat:
                    return json.loads(payload)["counters"]
            time.sleep(0.01)
        raise EdgekitError("no heartbeat from the daemon under test within 10 s")

    def publish(self, rate: float, n_readings: int, streams: list[str]) -> tuple[int, int, float]:
        """Paced readings round-robin over `streams`; returns (readings, messages, achieved readings/s)."""
        batch = self.cfg.batch
        msgs = max(1, n_readings // batch)
        topics = [self.topics.sensor_topic(s) for s in streams]
        t0 = time.perf_counter()
        for i in range(msgs):
            delay = t0 + i * batch / rate - time.perf_counter()
            if delay > 0.0002:
                time.sleep(delay)
            ts = max(time.time(), self.last_ts + 1e-6)
            if batch == 1:
                body = '{"ts": %r, "values": %s}' % (ts, self.vals[self.k % len(self.vals)])  # noqa: UP031
            else:
                tss = [ts + j * 1e-6 for j in range(batch)]
                ts = tss[-1]
                vals = ", ".join(self.vals[(self.k + j) % len(self.vals)] for j in range(batch))
                body = '{"ts": %s, "values": [%s]}' % (json.dumps(tss), vals)  # noqa: UP031
            self.last_ts = ts
            self.k += batch
            self.pub.publish(topics[i % len(topics)], body, qos=self.cfg.qos)
        elapsed = time.perf_counter() - t0
        return msgs * batch, msgs, msgs * batch / elapsed if elapsed > 0 else float("inf")

    def close(self) -> None:
        self.stop_subscriber()
        for c in (self.pub, self.ctl):
            c.disconnect()
            c.loop_stop()


def _exited(proc: Any) -> bool:
    return proc.poll() is not None if isinstance(proc, subprocess.Popen) else not proc.is_alive()


def expected_windows(n_readings: int, window: int, hop: int) -> int:
    """Windows a fresh stream of n readings yields (the first at `window` readings, then one per hop)."""
    return 0 if n_readings < window else (n_readings - window) // hop + 1


def _split(n: int, k: int) -> list[int]:
    """Readings per stream when n readings go round-robin over k streams."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def rss_mb(pid: int) -> dict[str, float] | None:
    """VmRSS and peak VmHWM of a process in MB (Linux), or None."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    f = dict(line.split(":", 1) for line in lines if ":" in line)
    return {"rss": int(f["VmRSS"].split()[0]) / 1024, "peak": int(f["VmHWM"].split()[0]) / 1024}


def _daemon_cmd(cfg: E2EConfig, bundle: Path, profile: str, url: str, device: str) -> list[str]:
    cmd = [sys.executable, "-m", "edgekit", "serve", "--bundle", str(bundle), "--broker", url]
    cmd += ["--device", device, "--profile", profile, "--heartbeat-s", "3600", "--gap-factor", "0"]
    cmd += ["--tcp-nodelay" if cfg.nodelay else "--no-tcp-nodelay", "--mqtt-version", cfg.mqtt_version]
    if cfg.every_window:
        cmd.append("--threshold=-inf")
    return cmd


def _step(
    rig: _Rig,
    cfg: E2EConfig,
    path: str,
    rate: float,
    n_readings: int,
    streams: list[str],
    window: int,
    hop: int,
    q: float,
    budget: float,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    daemon = path == "daemon"
    before = rig.counters() if daemon else None
    rig.ask("reset")
    sent, msgs, achieved = rig.publish(rate, n_readings, streams)
    per_stream = _split(msgs, len(streams))
    expected = sum(expected_windows(n * cfg.batch, window, hop) for n in per_stream) if daemon else msgs
    # Wait for the last reports (or, when only anomalies are reported, for the last window to be scored);
    # give up once the drain time is over and nothing has moved for a second.
    count_scored = daemon and not cfg.every_window
    start = time.monotonic()
    last, last_change = -1, start
    while True:
        got = rig.counters()["windows"] - before["windows"] if count_scored else rig.ask("count")  # type: ignore[index]
        now = time.monotonic()
        if got != last:
            last, last_change = got, now
        if (
            got >= expected
            or (now - start > cfg.drain_s and now - last_change > 1)
            or now - start > 6 * cfg.drain_s
        ):
            break
        time.sleep(0.05)
    if count_scored:
        time.sleep(0.2)  # the reports of the last anomalies are on their way
    _, arrival, lat = rig.ask("collect")
    row: dict[str, Any] = {
        "path": path,
        "rate": rate,
        "readings": sent,
        "messages": msgs,
        "achieved_per_s": achieved,
        "expected_reports": expected if (cfg.every_window or not daemon) else None,
        "received": len(lat),
    }
    if daemon:
        after = rig.counters()
        errs = {k: after["errors"][k] - before["errors"].get(k, 0) for k in after["errors"]}  # type: ignore[union-attr]
        row["scored"] = after["windows"] - before["windows"]  # type: ignore[index]
        row["expected_windows"] = expected
        row["dropped"] = errs.get("dropped", 0)
        row["errors"] = {k: v for k, v in errs.items() if v}
    key = latency.percentile_key(q)
    qs = tuple(sorted({*latency.DEFAULT_QS, q}))
    row["latency_ms"] = latency.stage_stats(lat, qs) if len(lat) else None
    complete = row["received"] >= expected if row["expected_reports"] is not None else True
    if daemon:
        complete = complete and row["scored"] >= expected and row["dropped"] == 0
    row["complete"] = bool(complete)
    if row["latency_ms"] is not None:
        within = row["latency_ms"][key] <= budget
    else:  # no report at all is a failure, unless only anomalies are reported and none occurred
        within = daemon and not cfg.every_window
    row["sustained"] = bool(complete and achieved >= 0.95 * rate and (within or not daemon))
    t0 = arrival[0] if len(arrival) else 0.0
    return row, {"latency_ms": lat, "arrival_s": arrival - t0}


def _readings_for(cfg: E2EConfig, rate: float, window: int, hop: int) -> int:
    """Readings for one rate: duration x rate, but at least 20 windows per stream for windowed models."""
    per_stream = window + 19 * hop if window > 1 else 1
    return max(int(rate * cfg.duration_s), per_stream * cfg.streams, cfg.streams * cfg.batch)


def _sweep(
    rig: _Rig, cfg: E2EConfig, path: str, rates: list[float], window: int, hop: int, q: float, budget: float
) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    rows, arrays = [], {}
    tag = uuid.uuid4().hex[:6]
    warm = [f"w{tag}s{j}" for j in range(cfg.streams)]
    rig.publish(rates[0], max(int(rates[0] * cfg.warmup_s), cfg.streams), warm)  # untimed
    time.sleep(0.3)
    for i, rate in enumerate(rates):
        streams = [f"r{i}{tag}s{j}" for j in range(cfg.streams)]  # fresh buffers: exact expectations
        row, arr = _step(
            rig, cfg, path, rate, _readings_for(cfg, rate, window, hop), streams, window, hop, q, budget
        )
        rows.append(row)
        arrays[f"{path}@{rate:g}"] = arr
        lat = row["latency_ms"] or {}
        log.info(
            "%s %g readings/s: p50 %s p99 %s ms, %d/%s received, %.0f/s achieved%s",
            path,
            rate,
            fmt_ms(lat.get("p50")),
            fmt_ms(lat.get("p99")),
            row["received"],
            row["expected_reports"],
            row["achieved_per_s"],
            "" if row["sustained"] else " -> not sustained, sweep stops",
        )
        if not row["sustained"]:
            break
    return rows, arrays


def run_e2e(cfg: E2EConfig, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Sweep the daemon (and the bare relay) over cfg.rates through a broker; returns the report."""
    from edgekit.broker import Broker

    say = echo or (lambda _msg: None)
    if not cfg.rates or any(r <= 0 for r in cfg.rates):
        raise ConfigError("--rates must be positive readings/s")
    if cfg.streams < 1 or cfg.batch < 1 or cfg.duration_s <= 0:
        raise ConfigError("--streams, --batch and --duration must be positive")
    rates = sorted(cfg.rates)
    profile = resolve_profile(cfg.bundle, cfg.profile)
    q, budget = resolve_budget(profile, cfg.percentile, cfg.budget_ms)
    variant = bundle_variant(cfg.bundle, profile)
    eng = variant.engine
    assert eng is not None
    windows, source = load_windows(variant, cfg.data)
    rows = windows.reshape(-1, windows.shape[-1])
    device = f"edgekit-bench-{uuid.uuid4().hex[:8]}"
    topics = Topics(profile.mqtt, device)
    profile_arg = cfg.profile or profile.name
    own = Broker(tcp_nodelay=cfg.nodelay) if cfg.broker is None else None
    if own is not None:
        own.start()
        if cfg.cpus:
            _pin(own.proc.pid, cfg.cpus[1])
    url = own.url if own is not None else cfg.broker
    assert url is not None
    addr = parse_broker_url(url)
    say(
        f"e2e bench of {Path(cfg.bundle).name} through {'a private mosquitto' if own else url}: rates "
        f"{', '.join(f'{r:g}' for r in rates)} readings/s over {cfg.streams} streams, batch {cfg.batch}, "
        f"~{cfg.duration_s:g} s each, daemon then bare relay"
    )
    old_affinity = os.sched_getaffinity(0) if cfg.cpus and hasattr(os, "sched_getaffinity") else None
    if old_affinity is not None:
        _pin(0, cfg.cpus[1])  # type: ignore[index]
    results: list[dict[str, Any]] = []
    arrays: dict[str, dict[str, np.ndarray]] = {}
    rss = None
    daemon_rc = None
    log_path = Path(cfg.out) / "daemon.log" if cfg.out else None
    try:
        rig = _Rig(cfg, addr.host, addr.port, topics, rows)
        try:
            # -- the daemon
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
            err = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
            proc = subprocess.Popen(
                _daemon_cmd(cfg, Path(cfg.bundle), profile_arg, url, device),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            try:
                _pin(proc.pid, cfg.cpus[0] if cfg.cpus else None)
                rig.start_subscriber(topics.anomalies, "end_ts")
                rig.wait_for(
                    lambda t, p: t == topics.status and b'"online"' in p, "the daemon under test", proc
                )
                time.sleep(0.3)
                d_rows, d_arr = _sweep(rig, cfg, "daemon", rates, eng.window, eng.hop, q, budget)
                results += d_rows
                arrays.update(d_arr)
                rss = rss_mb(proc.pid)
            finally:
                rig.stop_subscriber()
                proc.terminate()
                try:
                    daemon_rc = proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    daemon_rc = proc.wait()
                if err is not subprocess.DEVNULL:
                    err.close()
            # -- the bare relay, same broker, same rates
            if cfg.relay:
                out_topic = f"{topics.cmd}/bench-relay-out"
                ctx = mp.get_context("spawn")
                cpu = cfg.cpus[0] if cfg.cpus else None
                relay = ctx.Process(
                    target=_relay,
                    args=(
                        addr.host,
                        addr.port,
                        cfg.nodelay,
                        topics.sensors_filter,
                        out_topic,
                        rig.ready_topic,
                        cpu,
                    ),
                    daemon=True,
                )
                relay.start()
                try:
                    rig.start_subscriber(out_topic, "ts")
                    rig.wait_for(lambda t, _p: t == rig.ready_topic, "the bare relay", relay)
                    ran = [r["rate"] for r in results]
                    r_rows, r_arr = _sweep(rig, cfg, "relay", ran, 1, 1, q, budget)
                    results += r_rows
                    arrays.update(r_arr)
                finally:
                    rig.stop_subscriber()
                    relay.terminate()
                    relay.join(5)
        finally:
            rig.close()
    finally:
        if old_affinity is not None:
            os.sched_setaffinity(0, old_affinity)
        if own is not None:
            own.stop()
    e2e = summarize_e2e(results, q, budget, cfg.verdict_rate)
    e2e.update(daemon_rss_mb=rss, daemon_exit_code=daemon_rc)
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
            "reports_qos": profile.daemon.qos,
            "tcp_nodelay": cfg.nodelay,
            "daemon_mqtt": cfg.mqtt_version,
            "window": eng.window,
            "hop": eng.hop,
            "inputs": source,
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
    if cfg.out:
        from edgekit.bench.report import write_report

        report["files"] = write_report(cfg.out, report, arrays, plots=cfg.plots)
    return report


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


# -- output (report.py calls these for reports with an "e2e" section) --------------------------------
def e2e_rows(e2e: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    key = e2e["verdict"]["percentile"]
    cols = ["p50", "p95", "p99"] + ([key] if key not in ("p50", "p95", "p99") else [])
    headers = [
        "path",
        "readings/s",
        "achieved/s",
        "received/expected",
        *cols,
        "max",
        "dropped",
        "x relay p50",
        "sustained",
    ]
    rows = []
    for r in e2e["rows"]:
        lat = r["latency_ms"] or {}
        exp = r["expected_reports"]
        rows.append(
            [
                r["path"],
                f"{r['rate']:,.0f}",
                f"{r['achieved_per_s']:,.0f}",
                f"{r['received']}/{exp if exp is not None else '-'}",
                *[fmt_ms(lat.get(c)) for c in cols],
                fmt_ms(lat.get("max")),
                str(r.get("dropped", "-")),
                f"{r['relay_p50_ratio']:.2f}" if "relay_p50_ratio" in r else "",
                "yes" if r["sustained"] else "NO",
            ]
        )
    return headers, rows


def saturation_line(e2e: dict[str, Any]) -> str:
    sat, fail = e2e["saturation_per_s"], e2e["first_unsustained_per_s"]
    text = (
        f"saturation point: {sat:,.0f} readings/s sustained" if sat else "saturation point: no rate sustained"
    )
    return text + (
        f"; {fail:,.0f}/s was not" if fail else "; every swept rate was (sweep higher to find the limit)"
    )


def e2e_markdown(e2e: dict[str, Any]) -> str:
    return "\n".join(
        [
            "## End to end through the broker (ms)",
            "",
            md_table(*e2e_rows(e2e)),
            "",
            saturation_line(e2e) + ". x relay p50 = daemon p50 / bare-relay p50 at the same rate.",
            f"Daemon peak RSS: {e2e['daemon_rss_mb']['peak']:.0f} MB." if e2e.get("daemon_rss_mb") else "",
        ]
    )


def plot_e2e(
    out: Path, e2e: dict[str, Any], samples: dict[str, dict[str, np.ndarray]], plt: Any
) -> dict[str, str]:
    """rate_sweep.png, e2e_latency_cdf.png and e2e_latency_over_time.png."""
    budget = e2e["verdict"]["budget_ms"]
    key = e2e["verdict"]["percentile"]
    files = {}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    hi = 0.0
    for path, color in (("daemon", "#dd8452"), ("relay", "#4c72b0")):
        rs = [r for r in e2e["rows"] if r["path"] == path and r["latency_ms"]]
        if not rs:
            continue
        x = [r["rate"] for r in rs]
        for stat, ls in (("p50", "-"), (key, "--")):
            y = [r["latency_ms"][stat] for r in rs]
            hi = max(hi, *y)
            ax.plot(x, y, ls, marker="o", color=color, label=f"{path} {stat}")
        for r in rs:
            if not r["sustained"]:
                ax.plot([r["rate"]], [r["latency_ms"][key]], "x", color="crimson", ms=10, mew=2)
    _budget_line(ax, budget, hi, vertical=False)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (readings/s, log scale)")
    ax.set_ylabel("end-to-end latency (ms, log scale)")
    ax.set_title("Rate sweep: daemon vs bare relay (x = not sustained)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    files["rate_sweep"] = _save(fig, out / "rate_sweep.png", plt)

    daemon = {k: v for k, v in samples.items() if k.startswith("daemon@") and len(v["latency_ms"])}
    if daemon:
        fig = cdf_figure(
            plt,
            {f"{name.split('@')[1]} readings/s": a["latency_ms"] for name, a in daemon.items()},
            budget,
            xlabel="publisher -> report at subscriber (ms, log scale)",
            title="Daemon end-to-end latency distribution per rate",
        )
        files["e2e_latency_cdf"] = _save(fig, out / "e2e_latency_cdf.png", plt)

        series, offset = {}, 0.0
        for name, a in daemon.items():  # rates back to back on one time axis
            series[name.split("@")[1] + "/s"] = (a["arrival_s"] + offset, a["latency_ms"])
            offset += float(a["arrival_s"][-1]) + 0.5
        fig = over_time_figure(
            plt,
            series,
            budget,
            xlabel="time (s, rates back to back)",
            title="Daemon latency over time (backlog shows as a ramp)",
        )
        files["e2e_latency_over_time"] = _save(fig, out / "e2e_latency_over_time.png", plt)
    return files
