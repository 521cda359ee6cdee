"""ARM correctness table: export real bundles, run scripts/arm_check.sh on them under qemu, record the results.

    .venv/bin/python benchmarks/arm_table.py [--runs RUN_DIR ...] [--ort 1.28.0 1.27.0 1.26.0 1.22.0] [--out runs/arm-check]

Without --runs, makes two quick real distillation runs (Shuttle TCN, MIT-BIH autoencoder). Each run is
exported four ways: fp32 (x86-gateway), int8-dynamic with QUInt8 weights (raspberry-pi-4),
int8-static-qdq (raspberry-pi-5), and int8-dynamic with QInt8 weights (raspberry-pi-4 with one setting
changed, the variant shared/ARM.md saw fail on aarch64). Writes the "arm-check" section of
benchmarks/RESULTS.md. Correctness only: emulated timings are meaningless and are not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from edgekit.distill.pipeline import DistillConfig, distill
from edgekit.export.pipeline import ExportOptions, export_run
from edgekit.profiles import list_profiles

REPO = Path(__file__).resolve().parents[1]
QUICK_RUNS = {
    "shuttle": {"dataset": "shuttle", "max_rows": 4000, "teacher_epochs": 3, "student_epochs": 5},
    "mitdb": {"dataset": "mitdb", "max_rows": 30000, "teacher_epochs": 2, "student_epochs": 3},
}


def qint8_profile(out: Path) -> Path:
    """raspberry-pi-4 with signed (QInt8) weights: the setting under suspicion."""
    data = yaml.safe_load(list_profiles()["raspberry-pi-4"].read_text())
    data["name"] = "raspberry-pi-4-qint8"
    data["quantization"]["weight_type"] = "QInt8"
    path = out / "raspberry-pi-4-qint8.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def quick_runs(out: Path) -> list[Path]:
    """The two quick real runs (reused when already there)."""
    runs = []
    for name, kw in QUICK_RUNS.items():
        run_dir = out / f"run-{name}"
        if not (run_dir / "run.json").exists():
            distill(DistillConfig(out=str(run_dir), **kw))
        runs.append(run_dir)
    return runs


def export_variants(run_dir: Path, out: Path) -> list[Path]:
    """fp32, int8-dynamic QUInt8, int8-static-qdq and int8-dynamic QInt8 bundles of one run."""
    profiles = ["x86-gateway", "raspberry-pi-4", "raspberry-pi-5", str(qint8_profile(out))]
    opts = ExportOptions(overwrite=True, latency_runs=50)
    return [export_run(run_dir, p, out / f"{run_dir.name}-{Path(p).stem}", options=opts) for p in profiles]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", type=Path, help="existing RUN_DIRs (default: two quick real runs)")
    ap.add_argument(
        "--ort",
        nargs="+",
        default=["1.28.0", "1.27.0", "1.26.0", "1.22.0"],
        help="aarch64 onnxruntime versions",
    )
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "arm-check")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bundles = [b for run_dir in args.runs or quick_runs(args.out) for b in export_variants(run_dir, args.out)]

    cache = Path(os.environ.get("EDGEKIT_ARM_CACHE", REPO / ".arm"))
    rows, heads, numpy_seen = [], [], set()
    for ver in args.ort:
        env = {**os.environ, "EDGEKIT_ARM_ORT": ver}
        proc = subprocess.run(
            [str(REPO / "scripts" / "arm_check.sh"), *map(str, bundles)],
            env=env,
            capture_output=True,
            text=True,
        )
        print(proc.stdout + proc.stderr, flush=True)
        if proc.returncode == 2:
            heads.append(f"- onnxruntime {ver}: could not run ({proc.stderr.strip().splitlines()[-1]})")
            continue
        results = [json.loads(line) for line in (cache / "last_results.jsonl").read_text().splitlines()]
        counts = {st: sum(r["status"] == st for r in results) for st in ("PASS", "FAIL", "ERROR", "SKIP")}
        tally = ", ".join(f"{n} {st}" for st, n in counts.items() if n)
        heads.append(f"- onnxruntime {ver}: `arm_check.sh` exit {proc.returncode} ({tally})")
        for r in results:
            numpy_seen.add(r["numpy"])
            q = r.get("quantization") or {}
            diff = f"{r['max_abs_diff']:.3g}" if "max_abs_diff" in r else "-"
            note = "" if r["status"] == "PASS" else r.get("reason", "")[:110].replace("|", "/")
            rows.append(
                f"| {ver} | {Path(r['bundle']).name} | {q.get('mode', '?')} | {q.get('weight_type') or '-'} "
                f"| **{r['status']}** | {diff} | {r.get('atol', '-')} | {note} |"
            )
    qemu = subprocess.run(
        ["qemu-aarch64-static", "--version"], capture_output=True, text=True
    ).stdout.splitlines()[0]
    body = "\n".join(
        [
            f"Golden pairs of real exported bundles run by an aarch64 CPython 3.11 (Debian arm64 packages) under {qemu}.",
            "Correctness only: emulated timings are meaningless and were not measured. Bundle names are RUN-PROFILE;",
            "`raspberry-pi-4-qint8` is raspberry-pi-4 with `weight_type: QInt8` (signed dynamic-INT8 weights, which the",
            "shipped raspberry-pi-4 profile avoids). Emulated numpy: " + ", ".join(sorted(numpy_seen)) + ".",
            "",
            *heads,
            "",
            "| aarch64 onnxruntime | bundle | quantization | weights | result | max abs diff | atol | reason |",
            "|---|---|---|---|---|---:|---:|---|",
            *rows,
        ]
    )
    write_section("arm-check", "ARM check (qemu-user)", body)


if __name__ == "__main__":
    main()
