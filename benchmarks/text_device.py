"""Text bundles on the device: the ARM check under qemu and `edgekit bench` (model-only and e2e) of a real text bundle.

    .venv/bin/python benchmarks/text_device.py [--run RUN_DIR] [--ort 1.27.0] [--out runs/text-device]

Without --run, makes one quick real chatterbot distillation (one-layer MiniLM teacher, short training: a
bundle to prove the device path, not a quality figure). Exports it fp32 (x86-gateway) and int8-dynamic
(raspberry-pi-4), runs scripts/arm_check.sh on both (golden ids through the model, tokenizer.json against
the exporter's ids, texts padded to the batch's longest), then benches the fp32 bundle on this host at
batch 1 and 32 and end to end through a private mosquitto. Writes the "arm-check-text" and "text-bench"
sections of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from edgekit.bench import BenchConfig, E2EConfig, run_bench, run_e2e
from edgekit.distill.text import TextDistillConfig, distill_text
from edgekit.errors import EdgekitError
from edgekit.export.pipeline import ExportOptions, export_run

REPO = Path(__file__).resolve().parents[1]
QUICK = {
    "max_statements": 600,
    "max_length": 16,
    "teacher_layers": 1,
    "teacher_epochs": 2,
    "teacher_lr": 3e-4,
    "student_epochs": 5,
    "bootstrap": 20,
}


def quick_run(out: Path) -> Path:
    run_dir = out / "run-chatterbot"
    if not (run_dir / "run.json").exists():
        distill_text(TextDistillConfig(out=str(run_dir), **QUICK))
    return run_dir


def arm_section(bundles: list[Path], versions: list[str]) -> None:
    cache = Path(os.environ.get("EDGEKIT_ARM_CACHE", REPO / ".arm"))
    heads, rows = [], []
    for ver in versions:
        env = {**os.environ, "EDGEKIT_ARM_ORT": ver}
        cmd = [str(REPO / "scripts" / "arm_check.sh"), *map(str, bundles)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        print(proc.stdout + proc.stderr, flush=True)
        if proc.returncode == 2:
            heads.append(f"- onnxruntime {ver}: could not run ({proc.stderr.strip().splitlines()[-1]})")
            continue
        versions_line = next((ln.strip() for ln in proc.stdout.splitlines() if "tokenizers " in ln), "")
        heads.append(f"- onnxruntime {ver}: `arm_check.sh` exit {proc.returncode}; {versions_line}")
        for r in (json.loads(ln) for ln in (cache / "last_results.jsonl").read_text().splitlines()):
            q = r.get("quantization") or {}
            diff = f"{r['max_abs_diff']:.3g}" if "max_abs_diff" in r else "-"
            note = "" if r["status"] == "PASS" else r.get("reason", "")[:110].replace("|", "/")
            rows.append(
                f"| {ver} | {Path(r['bundle']).name} | {q.get('mode', '?')} | **{r['status']}** | {diff} "
                f"| {r.get('atol', '-')} | {r.get('tokenizer', '-')} | {r.get('n', '-')} | {note} |"
            )
    qemu = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True).stdout
    body = "\n".join(
        [
            f"Text bundles' golden pairs run by an aarch64 CPython 3.11 under {qemu.splitlines()[0]}, with the",
            "aarch64 `tokenizers` wheel (cp310-abi3: one wheel for CPython 3.10-3.12). Three checks per bundle: the",
            "golden token ids through the model; tokenizer.json gives the exporter's ids for the golden texts; those",
            "texts padded to the batch's longest (as the daemon pads) reproduce the golden outputs. Correctness only.",
            "",
            *heads,
            "",
            "| aarch64 onnxruntime | bundle | quantization | result | max abs diff | atol | tokenizer + padding | golden texts | reason |",
            "|---|---|---|---|---:|---:|---|---:|---|",
            *rows,
        ]
    )
    write_section("arm-check-text", "ARM check of text bundles (qemu-user)", body)


def bench_section(bundle: Path, out: Path) -> None:
    lines = [
        "Model only: `edgekit bench` of the fp32 text bundle (x86-gateway profile, 1 intra-op thread), on the",
        "bundle's golden (held-out chatterbot) texts, 2000 runs after 100 warm-up. Times in ms per call;",
        "preprocess = tokenize with tokenizer.json and pad to the batch's longest (<= max_length 16).",
        "",
        "| batch | tokenize p50 | infer p50 | softmax p50 | total p50 | total p99 | texts/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for batch in (1, 32):
        rep = run_bench(
            BenchConfig(
                str(bundle), runs=2000, warmup=100, batch=batch, out=str(out / f"bench-b{batch}"), plots=False
            )
        )
        v = rep["variants"][0]
        lines.append(
            f"| {batch} | {v['preprocess']['p50']:.3f} | {v['infer']['p50']:.3f} | {v['postprocess']['p50']:.4f} "
            f"| {v['total']['p50']:.3f} | {v['total']['p99']:.3f} | {v['throughput_windows_per_s']:.0f} |"
        )
    rep = run_e2e(
        E2EConfig(str(bundle), rates=[100.0, 1000.0], duration_s=3.0, out=str(out / "e2e"), plots=False)
    )
    lines += [
        "",
        "End to end: publisher -> private mosquitto -> `edgekit serve` (text bundle) -> classification report ->",
        "subscriber, one JSON text message {text, ts} each, over 4 streams; latency = report arrival - ts. The bare",
        "relay republishes the same messages without a model.",
        "",
        "| path | msgs/s | received/expected | p50 ms | p99 ms | sustained |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rep["e2e"]["rows"]:
        lat = r["latency_ms"] or {}
        lines.append(
            f"| {r['path']} | {r['rate']:g} | {r['received']}/{r['expected_reports']} | {lat.get('p50', float('nan')):.2f} "
            f"| {lat.get('p99', float('nan')):.2f} | {'yes' if r['sustained'] else 'no'} |"
        )
    write_section("text-bench", "Text bundle latency on this host (edgekit bench)", "\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, help="an existing text RUN_DIR (default: one quick real run)")
    ap.add_argument("--ort", nargs="+", default=["1.27.0"], help="aarch64 onnxruntime versions")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "text-device")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = args.run or quick_run(args.out)
    opts = ExportOptions(overwrite=True, latency_runs=50)
    bundles = []
    for profile in ("x86-gateway", "raspberry-pi-4"):
        try:
            bundles.append(export_run(run_dir, profile, args.out / f"chatterbot-{profile}", options=opts))
        except EdgekitError as exc:  # a release gate may refuse the INT8 export: say so, check the rest
            print(f"export for {profile} refused: {exc}", flush=True)
    arm_section(bundles, args.ort)
    bench_section(bundles[0], args.out)


if __name__ == "__main__":
    main()
