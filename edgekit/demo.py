"""`edgekit demo`: the whole pipeline on real data, with nothing running beforehand.

Stages: (1) distill on the real Shuttle data and print the teacher/student table; (2) export signed
bundles for three targets and install one atomically on a simulated device; (3) run the daemon on the
installed bundle and replay the real test split through MQTT, printing detections and end-to-end
latency against the budget; (4) benchmark: variants side by side (teacher and student, torch and
onnxruntime, FP32/INT8/FP16) and the daemon end to end through the broker, with reports and plots.
Stages 3 and 4 use a private mosquitto unless a broker URL is given.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    broker: str | None = None
    dataset: str = "shuttle"
    quick: bool = False  # small slice and few epochs, for smoke tests


def _say(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run_demo(cfg: DemoConfig) -> dict:
    """Run every stage; returns what each stage produced (paths, reports)."""
    from edgekit.broker import Broker
    from edgekit.distill.pipeline import DistillConfig, distill

    out = Path(cfg.out)
    results: dict = {}
    with ExitStack() as stack:
        if cfg.broker is None:
            broker = stack.enter_context(Broker())
            broker_url = broker.url
            print(f"started a private mosquitto at {broker_url} (pass --broker to use your own)")
        else:
            broker_url = cfg.broker
        results["broker"] = broker_url

        _say(f"1. distill: teacher -> student on the real {cfg.dataset} data")
        dcfg = DistillConfig(out=str(out / "run"), dataset=cfg.dataset)
        if cfg.quick:
            dcfg.max_rows, dcfg.teacher_epochs, dcfg.student_epochs = 4000, 4, 8
        report = distill(dcfg)
        print(report["table"])
        results["run"] = out / "run"
        results["distill"] = report

        _say(
            "2. export: signed bundles for a Raspberry Pi 4 (INT8), a Jetson Orin Nano (FP16), an x86 gateway (FP32)"
        )
        results["bundles"] = _export_stage(out)

        _say("3. serve: the daemon on the installed bundle, the real test split replayed through MQTT")
        results["serve"] = _serve_stage(out, broker_url, quick=cfg.quick)

        _say("4. bench: variants side by side, then end to end through the broker")
        results["bench"] = _bench_stage(out, broker_url, results["bundles"], quick=cfg.quick)
    return results


DEMO_TARGETS = ("raspberry-pi-4", "jetson-orin-nano", "x86-gateway")


def _export_stage(out: Path) -> dict[str, Path]:
    """Key pair, one signed bundle per target, verification, and an atomic install on a simulated device."""
    from edgekit.bundle import keygen, verify_bundle
    from edgekit.bundle.install import install_bundle
    from edgekit.export.pipeline import ExportOptions, export_run

    keys = out / "keys"
    priv, pub = keys / "edgekit.key", keys / "edgekit.pub"
    if not priv.exists():
        keygen(priv, pub)
    bundles: dict[str, Path] = {}
    rows = [
        "| target | quantization | model.onnx KB | test F1 | F1 drop vs FP32 | quality gate | latency gate (this host) |",
        "|---|---|---|---|---|---|---|",
    ]
    for target in DEMO_TARGETS:
        path = export_run(
            out / "run", target, out / "bundles" / target, key=priv, options=ExportOptions(overwrite=True)
        )
        m = verify_bundle(path, pub)
        gate, test = m.metrics["gate"], m.metrics["test"]
        drop, f1 = gate.get("f1_drop"), test.get("f1")
        rows.append(
            f"| {target} | {m.quantization['mode']} | {(path / m.model_file).stat().st_size / 1024:.1f} | "
            f"{'-' if f1 is None else format(f1, '.4f')} | {'-' if drop is None else format(drop, '.4f')} | "
            f"{gate['quality_gate']} | {gate['latency_gate']} |"
        )
        bundles[target] = path
    print("\n".join(rows))
    device_root = out / "device"
    current = install_bundle(bundles["x86-gateway"], device_root, pub)
    print(f"\nall bundles verified (Ed25519 signature + sha256 of every file) with {pub}")
    print(
        f"installed {current.name} atomically under {device_root}/current (rollback: edgekit rollback --root {device_root})"
    )
    return bundles


DEMO_DEVICE = "demo-gw"
REPLAY_RATE = 1000.0  # readings/s


def _serve_stage(out: Path, broker_url: str, quick: bool) -> dict:
    """`edgekit serve` as a real process on out/device/current; the test split replayed at 1,000 readings/s."""
    import json
    import subprocess
    import sys
    import threading
    import time

    import numpy as np
    import paho.mqtt.client as mqtt

    from edgekit.bench.e2e import bench_client
    from edgekit.bench.report import fmt_ms
    from edgekit.errors import EdgekitError
    from edgekit.metrics import percentiles
    from edgekit.profiles import load_profile
    from edgekit.run import load_windows
    from edgekit.runtime.mqtt import Topics, parse_broker_url
    from edgekit.runtime.payloads import encode_reading

    profile = load_profile("x86-gateway")
    topics = Topics(profile.mqtt, DEMO_DEVICE)
    held_out = load_windows(out / "run")
    x, y = held_out.test_x, held_out.test_y
    if x.shape[1] != 1 or y is None:
        raise EdgekitError(
            "the demo replays a labelled window-1 dataset (Shuttle); use `edgekit serve` for others"
        )
    rows, labels = x[:, 0, :], y.astype(int)
    addr = parse_broker_url(broker_url)

    got: dict[str, list] = {"anomalies": [], "heartbeat": [], "errors": [], "status": []}
    arrival: list[float] = []
    lock = threading.Lock()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        kind = msg.topic.rsplit("/", 1)[-1]
        with lock:
            got.setdefault(kind, []).append(json.loads(msg.payload))
            if kind == "anomalies":
                arrival.append(now)

    def client(name: str) -> mqtt.Client:
        c = bench_client(addr.host, addr.port, True, f"{name}-{time.time_ns()}")
        c.loop_start()
        return c

    sub = client("edgekit-demo-sub")
    sub.on_message = on_message
    sub.subscribe([(topics.anomalies, 1), (topics.heartbeat, 0), (topics.errors, 1), (topics.status, 1)])
    cmd = [sys.executable, "-m", "edgekit", "serve", "--bundle", str(out / "device" / "current")]
    cmd += ["--broker", broker_url, "--device", DEMO_DEVICE, "--profile", "x86-gateway"]
    cmd += ["--pubkey", str(out / "keys" / "edgekit.pub"), "--heartbeat-s", "3600"]
    print(
        "$ edgekit serve --bundle",
        out / "device" / "current",
        "--broker",
        broker_url,
        "--device",
        DEMO_DEVICE,
    )
    log_file = open(out / "daemon.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log_file)
    pub = client("edgekit-demo-pub")
    try:
        deadline = time.monotonic() + 30
        while not any(m.get("state") == "online" for m in got["status"]):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise EdgekitError(f"the daemon did not come up; see {out / 'daemon.log'}")
            time.sleep(0.05)
        topic = topics.sensor_topic("shuttle")
        pub.publish(topic, b"{not json", qos=1)  # a bad payload: counted and reported, never a crash
        t0 = time.perf_counter()
        sent_ts: dict[float, int] = {}
        last = 0.0
        for i, row in enumerate(rows):
            delay = t0 + i / REPLAY_RATE - time.perf_counter()
            if delay > 0.0002:
                time.sleep(delay)
            last = max(time.time(), last + 1e-6)
            sent_ts[last] = i
            pub.publish(topic, encode_reading(last, row), qos=0)
        deadline = time.monotonic() + 15
        heartbeat: dict = {}
        while time.monotonic() < deadline:
            n = len(got["heartbeat"])
            pub.publish(topics.cmd, json.dumps({"cmd": "heartbeat"}), qos=1)
            while len(got["heartbeat"]) == n and time.monotonic() < deadline:
                time.sleep(0.02)
            heartbeat = got["heartbeat"][-1] if got["heartbeat"] else {}
            c = heartbeat.get("counters", {})
            if c.get("windows", 0) >= len(rows) and len(got["anomalies"]) >= c.get("anomalies", 0):
                break
            time.sleep(0.1)
    finally:
        proc.terminate()
        rc = proc.wait(15)
        log_file.close()
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()

    reports = got["anomalies"]
    hit = np.zeros(len(rows), dtype=bool)
    for r in reports:  # a report's end_ts is the timestamp of the reading it scored (window 1)
        if (i := sent_ts.get(float(r["end_ts"]))) is not None:
            hit[i] = True
    tp = int((hit & (labels == 1)).sum())
    fp = int((hit & (labels == 0)).sum())
    fn = int((~hit & (labels == 1)).sum())
    e2e = np.array([(a - r["end_ts"]) * 1000.0 for a, r in zip(arrival, reports, strict=True)])
    daemon_ms = np.array([r["latency_ms"] for r in reports])
    budget = profile.latency.budget_ms
    counters = heartbeat.get("counters", {})
    print(
        f"replayed {len(rows)} real test readings ({int(labels.sum())} labelled anomalies) at {REPLAY_RATE:,.0f}/s"
    )
    print(
        f"anomaly reports on {topics.anomalies}: {len(reports)} (daemon counted {counters.get('anomalies')})"
    )
    for r in reports[:3]:
        keep = ("stream", "seq", "end_ts", "score", "threshold", "label", "model_version", "latency_ms")
        print("  ", json.dumps({k: r[k] for k in keep}))
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    print(
        f"vs the test labels: {tp} caught, {fn} missed, {fp} false alarms (precision {prec:.3f}, recall {rec:.3f})"
    )
    print(
        f"bad payloads: malformed {counters.get('errors', {}).get('malformed')} (reported on {topics.errors}); "
        f"dropped {counters.get('errors', {}).get('dropped')}; daemon exit code after SIGTERM {rc}"
    )
    result = {"reports": len(reports), "tp": tp, "fp": fp, "fn": fn, "exit_code": rc, "counters": counters}
    if len(e2e):
        p = percentiles(e2e, (50, 95, 99))
        d = percentiles(daemon_ms, (50, 95, 99))
        verdict = "PASS" if p["p99"] <= budget else "FAIL"
        print(
            f"latency, publisher -> broker -> daemon -> report -> subscriber: p50 {fmt_ms(p['p50'])}, "
            f"p95 {fmt_ms(p['p95'])}, p99 {fmt_ms(p['p99'])} ms (inside the daemon: p50 {fmt_ms(d['p50'])}, "
            f"p99 {fmt_ms(d['p99'])} ms)"
        )
        print(f"{verdict}: p99 {fmt_ms(p['p99'])} ms vs the {budget:g} ms budget of profile x86-gateway")
        print(
            "(publisher and subscriber share this process here; stage 4 times the path with separate processes)"
        )
        result.update(e2e_ms=p, daemon_ms=d, verdict=verdict)
    return result


def _bench_stage(out: Path, broker_url: str, bundles: dict[str, Path], quick: bool) -> dict:
    """Model latency of the variants, interleaved (teacher and student, torch and ORT, FP32/INT8/FP16),
    then the daemon end to end through the broker with the bare-relay baseline."""
    from edgekit.bench import BenchConfig, run_bench
    from edgekit.bench.e2e import E2EConfig, run_e2e, saturation_line
    from edgekit.bench.report import format_table

    run = out / "run"
    compare = [str(bundles["raspberry-pi-4"]), str(bundles["jetson-orin-nano"])]
    compare += [f"torch:{run}#student", f"torch:{run}#teacher"]
    cfg = BenchConfig(
        bundle=str(bundles["x86-gateway"]),
        profile="x86-gateway",
        runs=200 if quick else 2000,
        compare=compare,
        data=f"{run / 'windows.npz'}:test_x",
        out=str(out / "bench" / "model"),
    )
    model = run_bench(cfg, echo=print)
    print(format_table(model))
    print(f"report with plots: {out / 'bench' / 'model' / 'report.md'}\n")
    e2e_cfg = E2EConfig(
        bundle=str(bundles["x86-gateway"]),
        broker=broker_url,
        profile="x86-gateway",
        rates=[100.0] if quick else [100.0, 1000.0, 5000.0],
        duration_s=1.0 if quick else 3.0,
        data=f"{run / 'windows.npz'}:test_x",
        out=str(out / "bench" / "e2e"),
    )
    e2e = run_e2e(e2e_cfg, echo=print)
    print(format_table(e2e))
    print(saturation_line(e2e["e2e"]))
    print(f"report with plots: {out / 'bench' / 'e2e' / 'report.md'}")
    print("(this host is x86; run `edgekit bench` on the board itself for its numbers)")
    return {"model": model, "e2e": e2e}
