"""What the local cascade costs end to end: `edgekit bench --e2e` with the bundle's cascade off and local.

    .venv/bin/python benchmarks/cascade_e2e.py [--escalate-rate 0.1] [--quick]

A quick real Shuttle run is distilled; its student and its teacher are exported for x86-gateway (the teacher as
an ordinary bundle), and the teacher's ONNX and golden pairs are put beside the student as the cascade's
teacher, with the escalation threshold at the `--escalate-rate` quantile of the student's max probability on
the replayed test rows (measure max_prob, no severe class). The same bundle is then served twice through a
private mosquitto, every window reported (`--threshold=-inf`): with a profile saying `daemon.cascade: off`
and one saying `local`. Latency is publish -> report at the subscriber (edgekit.bench.e2e's method).
Writes the "cascade-e2e" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from edgekit.bench import E2EConfig, fmt_ms, run_e2e
from edgekit.bundle.manifest import Cascade, Manifest, Variant, hash_files
from edgekit.bundle.signing import keygen, sign_bundle
from edgekit.profiles import list_profiles, load_profile
from edgekit.runtime.engine import Engine

REPO = Path(__file__).resolve().parent.parent
CPUS = (1, 0) if (os.cpu_count() or 1) >= 2 else None


def build(work: Path, rate: float) -> tuple[Path, Path, float]:
    """(cascade bundle, windows.npz of the run, measured escalation share of the replayed test rows)."""
    from edgekit.distill.pipeline import DistillConfig, distill
    from edgekit.export.pipeline import ExportOptions, export_run

    run = work / "run"
    print("distilling a quick real Shuttle run ...", flush=True)
    distill(DistillConfig(out=str(run), dataset="shuttle", max_rows=4000, teacher_epochs=3, student_epochs=5))
    key, _pub = keygen(work / "k.key", work / "k.pub")
    student = export_run(
        run, "x86-gateway", work / "student", key=key, options=ExportOptions(latency_runs=50)
    )
    teacher = export_run(
        run, "x86-gateway", work / "teacher", key=key, options=ExportOptions(model="teacher", latency_runs=50)
    )
    with np.load(run / "windows.npz") as w:
        x = w["test_x"]
    e = Engine(student)
    out = e.infer(e.preprocess(x))
    p = np.exp(out - out.max(axis=1, keepdims=True))
    maxp = (p / p.sum(axis=1, keepdims=True)).max(axis=1)
    threshold = float(np.quantile(maxp, rate))
    bundle = work / "cascade"
    shutil.copytree(student, bundle)
    t = Manifest.load(teacher)
    shutil.copy(teacher / t.model_file, bundle / "teacher.onnx")
    shutil.copy(teacher / t.golden.file, bundle / "teacher_golden.npz")
    m = Manifest.load(bundle)
    golden = replace(t.golden, file="teacher_golden.npz")
    m.cascade = Cascade(
        "local",
        "max_prob",
        threshold,
        teacher=Variant("teacher", "fp32", "teacher.onnx", golden, t.threshold),
    )
    m.files = hash_files(bundle)
    m.save(bundle)
    sign_bundle(bundle, key)
    return bundle, run / "windows.npz", float((maxp < threshold).mean())


COUNTED = ("escalated", "teacher_windows", "cascade_fallback_remote", "remote_escalations", "escalation_rate")


def cascade_log(path: Path) -> dict | None:
    """The cascade state the daemon logged when it stopped (the last such line), or None."""
    lines = [ln for ln in path.read_text().splitlines() if "cascade: {" in ln]
    if not lines:
        return None
    state = json.loads(lines[-1].split("cascade: ", 1)[1])
    state["escalation_rate"] = round(state["escalation_rate"], 3)
    return state


class _NullSink:
    def report(self, payload: str, anomaly: bool, stream: str) -> None:
        pass

    def error(self, kind: str, detail: str, stream: str | None = None, n: int = 1) -> None:
        pass


def scoring_cost(bundle: Path, data: Path, repeats: int = 5) -> dict[str, float]:
    """In-process cost of the daemon's scoring path (parse, ring buffer, micro-batch of 64, student, rule,
    teacher, report encoding) per window in µs, cascade off vs local: best of `repeats` over the test rows.
    No broker, so far less exposed to a busy machine than the end-to-end figures."""
    from edgekit.runtime.cascade import CascadeCounters, SensorCascade, load_teacher
    from edgekit.runtime.payloads import encode_reading
    from edgekit.runtime.scoring import Scorer
    from edgekit.runtime.stats import Counters, LatencyHistogram

    prof = load_profile("x86-gateway")  # the daemon's session options (one intra-op thread)
    engine = Engine.load(bundle, prof)
    teacher = load_teacher(engine, "local", prof)
    with np.load(data) as w:
        x = np.tile(w["test_x"][:, 0, :], (4, 1))  # the test rows four times over: ~6,400 windows
    payloads = [encode_reading(1.7e9 + i * 0.01, row) for i, row in enumerate(x)]
    out = {"off": float("inf"), "local": float("inf")}
    for _ in range(repeats):  # the modes take turns, so a busy spell on the machine hits both
        for mode in out:
            scorer = Scorer(
                engine, _NullSink(), Counters(), LatencyHistogram(), device="bench", threshold=-np.inf
            )
            if mode == "local":
                scorer.cascade = SensorCascade(
                    engine,
                    "local",
                    teacher,
                    budget_ms=1e9,
                    device="bench",
                    escalate=lambda b: None,
                    counters=CascadeCounters(),
                )
            t0 = time.perf_counter()
            for p in payloads:
                scorer.handle("s", p, time.perf_counter())
            scorer.flush()
            out[mode] = min(out[mode], (time.perf_counter() - t0) / len(payloads) * 1e6)
    return out


def profile(work: Path, cascade: str) -> Path:
    data = yaml.safe_load(list_profiles()["x86-gateway"].read_text())
    data.setdefault("daemon", {})["cascade"] = cascade
    path = work / f"x86-gateway-cascade-{cascade}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--escalate-rate", type=float, default=0.1)
    ap.add_argument("--quick", action="store_true", help="shorter runs (a smoke test, not for RESULTS.md)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-cascade")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgekit-cascade-bench-"))
    bundle, data, share = build(work, args.escalate_rate)
    load = os.getloadavg()
    rows, counts = [], []
    for mode in ("off", "local"):
        rep = run_e2e(
            E2EConfig(
                bundle=str(bundle),
                profile=str(profile(work, mode)),
                rates=[100.0, 1000.0],
                duration_s=2.0 if args.quick else 5.0,
                data=f"{data}:test_x",
                out=str(args.out / mode),
                relay=False,
                cpus=CPUS,
            ),
            echo=print,
        )
        cascade = cascade_log(args.out / mode / "daemon.log")
        for r in rep["e2e"]["rows"]:
            lat = r["latency_ms"] or {}
            rows.append(
                (
                    mode,
                    r["rate"],
                    lat.get("mean"),
                    lat.get("p50"),
                    lat.get("p99"),
                    r["received"],
                    r["expected_reports"],
                )
            )
        counts.append((mode, cascade))
    lines = [
        f"Shuttle student with a local cascade (teacher = the run's teacher, x86-gateway FP32), escalation threshold at "
        f"the {args.escalate_rate:.0%} quantile of the student's max probability: {share:.1%} of the replayed test "
        "rows escalate. Every window reported (`--threshold=-inf`), 4 streams, daemon pinned to CPU 1. "
        f"Load average at start (shared 2-core machine): {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}.",
        "",
        "| cascade | readings/s | mean ms | p50 ms | p99 ms | received/expected |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {m} | {rate:,.0f} | {fmt_ms(mean)} | {fmt_ms(p50)} | {fmt_ms(p99)} | {got}/{exp} |"
            for m, rate, mean, p50, p99, got, exp in rows
        ],
        "",
        "What the daemon's cascade did over both rates (its `cascade:` log line at exit): "
        + "; ".join(
            f"{m}: " + (", ".join(f"{k} {c[k]}" for k in COUNTED) if c else "no cascade") for m, c in counts
        )
        + ".",
    ]
    cost = scoring_cost(bundle, data)
    lines += [
        "",
        "In-process scoring path (`scoring_cost` in this script: parse, ring buffer, micro-batches of 64, student, "
        "rule, teacher on the escalated windows, report encoding; no broker; best of 5, off and local taking turns, over "
        "the test rows four times): "
        f"{cost['off']:.1f} µs per window with the cascade off, {cost['local']:.1f} µs local "
        f"({cost['local'] / cost['off']:.2f}x).",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if not args.quick:
        write_section("cascade-e2e", "End-to-end latency with the local cascade (off vs local)", text)


if __name__ == "__main__":
    main()
