"""Export one full Shuttle distillation for four targets and compare the bundles on this machine.

    .venv/bin/python benchmarks/export_table.py [--run RUN_DIR] [--out runs/bench-export] [--runs 2000]

RUN_DIR: a full (non-sliced) `edgekit distill --dataset shuttle` run; distilled here when absent.
Bundles: fp32 (x86-gateway), int8-dynamic (raspberry-pi-4), int8-static-qdq (raspberry-pi-5) and
fp16 (jetson-orin-nano). Quality is each bundle's own test-split figures (threshold re-chosen on
validation by the export); latency is batch 1, all bundles interleaved in one loop through the runtime
Engine on this machine's CPU, one intra-op thread each (so the FP16 row is a CPU figure, not a Jetson
one). A refused export is reported as refused, with the gate's message. Writes the "export" section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from edgekit.bundle.manifest import Manifest
from edgekit.bundle.signing import keygen
from edgekit.errors import GateError
from edgekit.export.gate import engine_runner, interleaved_latency
from edgekit.export.package import tarball_path
from edgekit.export.pipeline import ExportOptions, export_run
from edgekit.profiles import load_profile
from edgekit.runtime.engine import Engine

TARGETS = [
    ("fp32", "x86-gateway"),
    ("int8-dynamic", "raspberry-pi-4"),
    ("int8-static-qdq", "raspberry-pi-5"),
    ("fp16", "jetson-orin-nano"),
]


def ensure_run(run_dir: Path) -> Path:
    if not (run_dir / "run.json").is_file():
        from edgekit.distill.pipeline import DistillConfig, distill

        print(f"no run at {run_dir}: distilling full Shuttle there first", flush=True)
        distill(DistillConfig(out=str(run_dir), dataset="shuttle"))
    return run_dir


def fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--run", default="runs/bench-export/shuttle", help="full shuttle RUN_DIR (distilled when absent)"
    )
    ap.add_argument("--out", default="runs/bench-export", help="folder for the bundles")
    ap.add_argument("--runs", type=int, default=2000, help="timed batch-1 runs per bundle")
    args = ap.parse_args()
    run = ensure_run(Path(args.run))
    out = Path(args.out)
    key = keygen(Path(tempfile.mkdtemp()) / "bench.key")[0]

    bundles: dict[str, Path] = {}
    refused: dict[str, str] = {}
    for mode, profile in TARGETS:
        try:
            bundles[mode] = export_run(
                run, profile, out / f"bundle-{profile}", key=key, options=ExportOptions(overwrite=True)
            )
        except GateError as exc:
            refused[mode] = str(exc)
            print(f"REFUSED {mode} ({profile}): {exc}", flush=True)

    cpu = load_profile("x86-gateway")  # same CPU provider and one thread for every row
    engines = {mode: Engine(path, cpu) for mode, path in bundles.items()}
    with np.load(run / "windows.npz") as w:
        test_x = w["test_x"]
    lat = interleaved_latency(
        {m: engine_runner(e, test_x) for m, e in engines.items()}, runs=args.runs, warmup=200
    )

    base_size = (bundles["fp32"] / "model.onnx").stat().st_size if "fp32" in bundles else None
    base_lat = lat.get("fp32")
    rows = [
        "| bundle (profile) | model.onnx KB | bundle .tar.gz KB | size vs FP32 | test F1 | test ROC-AUC | F1 drop vs FP32 "
        "| p50 ms | p99 ms | p50 vs FP32 | p99 vs FP32 | export latency gate |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, profile in TARGETS:
        if mode in refused:
            rows.append(f"| {mode} ({profile}) | REFUSED: {refused[mode]} |" + " |" * 10)
            continue
        b = bundles[mode]
        m = Manifest.load(b)
        size = (b / "model.onnx").stat().st_size
        test, gate = m.metrics["test"], m.metrics["gate"]
        drop = gate.get("f1_drop")
        lm = lat[mode]
        rows.append(
            f"| {mode} ({profile}) | {size / 1024:.1f} | {tarball_path(b).stat().st_size / 1024:.1f} | "
            f"{size / base_size:.2f}x | {fmt(test.get('f1'))} | {fmt(test.get('roc_auc'))} | {fmt(drop)} | "
            f"{lm['p50']:.4f} | {lm['p99']:.4f} | {lm['p50'] / base_lat['p50']:.2f}x | {lm['p99'] / base_lat['p99']:.2f}x | "
            f"{gate['latency_gate']} |"
        )
    m0 = Manifest.load(next(iter(bundles.values())))
    notes = [
        f"Run: `{run}` (full Shuttle, {len(test_x)} test windows); student {m0.metrics['distilled'].get('params')} parameters.",
        f"Latency: batch 1, {args.runs} interleaved runs per bundle after 200 warm-up, raw window -> score through the "
        "runtime Engine, CPUExecutionProvider, 1 intra-op thread, on this (shared) machine; the FP16 row runs on the CPU "
        "and says nothing about a Jetson's TensorRT.",
        "F1 / ROC-AUC: each bundle's test-split figures at its own validation-chosen threshold (from the export's gate).",
    ]
    table = "\n".join(rows)
    body = table + "\n\n" + "\n".join(f"- {n}" for n in notes)
    for mode, msg in refused.items():
        body += f"\n- refused {mode}: {msg}"
    print("\n" + body)
    write_section(
        "export", "Export: FP32 vs INT8 (dynamic, static QDQ) vs FP16 bundles (Shuttle student)", body
    )


if __name__ == "__main__":
    main()
