"""End-to-end latency and throughput of `edgekit serve` against a bare MQTT relay, Nagle on and off.

    .venv/bin/python benchmarks/e2e_latency.py [--bundle DIR --rows-from RUN_DIR] [--quick]

Every measurement is `edgekit bench --e2e` (edgekit.bench.e2e.run_e2e; its docstring has the method):
publisher -> mosquitto -> daemon (parse, ring buffer, onnxruntime, report) -> mosquitto -> subscriber,
timed at the subscriber from the publish time in each reading, and the same through a bare paho relay.
The daemon and the relay are pinned to CPU 1; mosquitto, publisher and subscriber share CPU 0.

1. Latency at 100, 1,000 and 10,000 readings/s with TCP_NODELAY on (broker `set_tcp_nodelay` and
   every client) and off, daemon with `--threshold=-inf` so every window is reported.
2. Throughput: single-reading messages and 100-reading batches at stepped rates, daemon with the
   bundle's real threshold (reports for anomalies only); a step passes when every reading was scored,
   none dropped, the publisher kept up and the anomaly reports' p99 stayed within 100 ms. Daemon
   speaking MQTT 5 and 3.1.1.
Data: real Shuttle test rows. Writes the "e2e-latency" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from edgekit.bench import E2EConfig, fmt_ms, run_e2e
from edgekit.broker import Broker

REPO = Path(__file__).resolve().parent.parent
CPUS = (1, 0) if (os.cpu_count() or 1) >= 2 else None


def prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    """(bundle, npz of RAW test windows whose rows are replayed)."""
    if args.bundle:
        return Path(args.bundle), Path(args.rows_from) / "windows.npz"
    from edgekit.distill.pipeline import DistillConfig, distill
    from edgekit.export.pipeline import ExportOptions, export_run

    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    run = work / "run"
    print("building a quick real Shuttle bundle (distill + export) ...", flush=True)
    distill(DistillConfig(out=str(run), dataset="shuttle", max_rows=4000, teacher_epochs=3, student_epochs=5))
    bundle = export_run(run, "x86-gateway", work / "bundle", options=ExportOptions(latency_runs=50))
    return bundle, run / "windows.npz"


def e2e(bundle: Path, data: Path, out: Path, **kw: object) -> dict:
    """One run_e2e against a fresh private broker pinned to the bench CPU."""
    nodelay = bool(kw.get("nodelay", True))
    with Broker(tcp_nodelay=nodelay) as broker:
        if CPUS and broker.proc is not None:
            os.sched_setaffinity(broker.proc.pid, {CPUS[1]})
        cfg = E2EConfig(
            bundle=str(bundle),
            broker=broker.url,
            profile="x86-gateway",
            data=f"{data}:test_x",
            out=str(out),
            cpus=CPUS,
            **kw,  # type: ignore[arg-type]
        )
        report = run_e2e(cfg, echo=print)
    for r in report["e2e"]["rows"]:
        lat = r["latency_ms"] or {}
        print(
            f"  {r['path']:<6} {r['rate']:>8,.0f}/s: p50 {fmt_ms(lat.get('p50'))} p99 {fmt_ms(lat.get('p99'))} ms, "
            f"received {r['received']}/{r['expected_reports']}, scored {r.get('scored', '-')}, "
            f"dropped {r.get('dropped', '-')}, achieved {r['achieved_per_s']:,.0f}/s -> "
            f"{'sustained' if r['sustained'] else 'NOT sustained'}",
            flush=True,
        )
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", help="sensor bundle (default: build a quick real Shuttle one)")
    ap.add_argument("--rows-from", help="RUN_DIR whose windows.npz test rows are replayed (with --bundle)")
    ap.add_argument("--quick", action="store_true", help="shorter runs (a smoke test, not for RESULTS.md)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-e2e")
    args = ap.parse_args()
    bundle, data = prepare(args)
    scale = 0.3 if args.quick else 1.0
    load = os.getloadavg()

    latency = {}
    for nodelay in (True, False):
        latency[nodelay] = e2e(
            bundle,
            data,
            args.out / f"latency-nodelay-{'on' if nodelay else 'off'}",
            rates=[100.0, 1000.0, 10000.0],
            duration_s=3.0 * scale,
            nodelay=nodelay,
        )

    d = 1.5 if args.quick else 3.0
    single_rates = [5000.0, 10000.0, 15000.0, 20000.0, 25000.0, 30000.0, 40000.0]
    batch_rates = [25000.0, 50000.0, 100000.0, 150000.0, 200000.0, 300000.0]
    thr = {}
    for name, rates, batch, version in (
        ("single, MQTT 5", single_rates, 1, "5"),
        ("single, MQTT 3.1.1", single_rates, 1, "3.1.1"),
        ("batch 100, MQTT 5", batch_rates, 100, "5"),
    ):
        tag = name.replace(", ", "-").replace(" ", "").replace(".", "")
        print(f"throughput: {name}", flush=True)
        thr[name] = e2e(
            bundle,
            data,
            args.out / f"throughput-{tag}",
            rates=rates,
            duration_s=d,
            batch=batch,
            mqtt_version=version,
            every_window=False,
            relay=False,
        )
    text = report(latency, thr, load)
    print("\n" + text)
    if not args.quick:
        write_section("e2e-latency", "End-to-end MQTT latency and throughput (daemon vs bare relay)", text)


def report(latency: dict[bool, dict], thr: dict[str, dict], load: tuple[float, float, float]) -> str:
    lines = [
        "| TCP_NODELAY | readings/s | path | p50 ms | p95 ms | p99 ms | received/sent | daemon p50 / relay p50 |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    rows: dict[tuple[bool, str, float], dict] = {}
    for nodelay, rep in latency.items():
        for r in rep["e2e"]["rows"]:
            rows[(nodelay, r["path"], r["rate"])] = r
            lat = r["latency_ms"] or {}
            ratio = f"{r['relay_p50_ratio']:.2f}x" if "relay_p50_ratio" in r else ""
            lines.append(
                f"| {'on' if nodelay else 'off'} | {r['rate']:,.0f} | {r['path']} | {fmt_ms(lat.get('p50'))} | "
                f"{fmt_ms(lat.get('p95'))} | {fmt_ms(lat.get('p99'))} | {r['received']}/{r['expected_reports']} | {ratio} |"
            )
    thr_lines = [
        "| form | daemon MQTT | target readings/s | achieved | scored/sent | dropped | p99 of anomaly reports ms | pass |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    best: dict[str, float] = {}
    for name, rep in thr.items():
        form, version = name.split(", MQTT ")
        ok = [r["achieved_per_s"] for r in rep["e2e"]["rows"] if r["sustained"]]
        best[name] = max(ok, default=0.0)
        for r in rep["e2e"]["rows"]:
            lat = r["latency_ms"] or {}
            thr_lines.append(
                f"| {form} | {version} | {r['rate']:,.0f} | {r['achieved_per_s']:,.0f} | {r['scored']}/{r['readings']} | "
                f"{r['dropped']} | {fmt_ms(lat.get('p99'))} | {'yes' if r['sustained'] else 'no'} |"
            )
    d1000 = rows.get((True, "daemon", 1000.0), {}).get("latency_ms") or {"p99": float("inf")}
    ratios = [
        r["relay_p50_ratio"]
        for (nd, p, _), r in rows.items()
        if nd and p == "daemon" and "relay_p50_ratio" in r
    ]
    ratio = max(ratios, default=float("inf"))
    all_reports = [latency[True], latency[False], *thr.values()]
    rss = {
        name: rep["e2e"]["daemon_rss_mb"]
        for name, rep in zip(["latency, NODELAY on", "latency, NODELAY off", *thr], all_reports, strict=True)
        if rep["e2e"]["daemon_rss_mb"]
    }
    rss_max = max((v["peak"] for v in rss.values()), default=float("nan"))
    exit_codes = sorted({rep["e2e"]["daemon_exit_code"] for rep in all_reports})
    targets = [
        ("p99 < 5 ms at 1,000 readings/s (TCP_NODELAY on)", f"{d1000['p99']:.2f} ms", d1000["p99"] < 5),
        (
            "daemon median within 1.5x of the bare relay (worst rate, NODELAY on)",
            f"{ratio:.2f}x",
            ratio <= 1.5,
        ),
        (
            ">= 10,000 single-reading messages/s sustained, no drops",
            f"{best['single, MQTT 5']:,.0f}/s",
            best["single, MQTT 5"] >= 10000,
        ),
        (
            ">= 50,000 readings/s sustained in 100-reading batches",
            f"{best['batch 100, MQTT 5']:,.0f}/s",
            best["batch 100, MQTT 5"] >= 50000,
        ),
        ("daemon RSS < 120 MB (peak VmHWM)", f"{rss_max:.0f} MB", rss_max < 120),
    ]
    m = latency[True]["machine"]
    body = [
        "Publisher -> mosquitto -> `edgekit serve` (real Shuttle bundle, FP32, x86-gateway profile, 4 streams, "
        "`--threshold=-inf` so every window is reported) -> mosquitto -> subscriber, timed at the subscriber from "
        "the publish time in each reading (`edgekit bench --e2e`). Relay = paho subscribe-and-republish without "
        "parsing or a model, same broker, same rates. Daemon/relay pinned to CPU 1; broker, publisher and "
        "subscriber on CPU 0. Readings at QoS 0 (with QoS 1 the Python publisher itself cannot keep 10,000 "
        "messages/s flowing); reports and relayed messages at QoS 1. Daemon and relay speak MQTT 5.",
        f"Machine: {m['cpu_model']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}. Load average when the "
        f"run started (shared machine): {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}.",
        "",
        *lines,
        "",
        "Sustained throughput (real threshold; a step passes when every reading was scored, none dropped, the "
        "publisher reached >= 95 % of the target and the p99 of the anomaly reports stayed within 100 ms; "
        "stepping stops at the first failing step):",
        "",
        *thr_lines,
        "",
        f"Highest passing single-reading rate: {best['single, MQTT 5']:,.0f}/s with MQTT 5, "
        f"{best['single, MQTT 3.1.1']:,.0f}/s with MQTT 3.1.1 (`--mqtt-version 3.1.1`: paho decodes no MQTT 5 "
        "properties per packet).",
        "Daemon RSS (VmRSS / peak VmHWM, MB): "
        + ", ".join(f"{k} {v['rss']:.0f} / {v['peak']:.0f}" for k, v in rss.items()),
        f"Daemon exit codes after SIGTERM: {exit_codes}.",
        "",
        "| target | measured | met |",
        "|---|---:|---|",
        *[f"| {t} | {v} | {'yes' if ok else 'NO'} |" for t, v, ok in targets],
    ]
    return "\n".join(body)


if __name__ == "__main__":
    main()
