"""Interleaved `edgekit bench` of real bundles on this host: FP32 vs INT8 (dynamic, static QDQ) vs eager torch.

    .venv/bin/python benchmarks/bench_table.py [--runs RUN_DIR ...] [--batches 1 32] [--duration 10]

Without --runs, uses the quick real runs of benchmarks/arm_table.py (Shuttle TCN, MIT-BIH autoencoder),
exporting the same bundles. One process per run and batch size, every variant interleaved round-robin
in random order. The host is the x86 export machine, not a board: these figures say how the variants
compare here, and `edgekit bench` on the device is what decides a deployment. Writes the "bench"
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section
from arm_table import REPO, export_variants, quick_runs

from edgekit.bench import BenchConfig, run_bench
from edgekit.bench.format import format_table, md_table, model_rows
from edgekit.bench.machine import describe


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--runs", nargs="+", type=Path, help="existing RUN_DIRs (default: the quick runs of arm_table.py)"
    )
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of interleaved timing per table")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-table")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    body = []
    for run_dir in args.runs or quick_runs(REPO / "runs" / "arm-check"):
        # fp32, int8-dynamic (QUInt8), int8-static-qdq; the QInt8 variant is a correctness case, not a candidate.
        bundles = export_variants(run_dir, args.out)[:3]
        for batch in args.batches:
            out = args.out / f"{run_dir.name}-b{batch}"
            cfg = BenchConfig(
                bundle=str(bundles[0]),
                profile="x86-gateway",
                duration_s=args.duration,
                batch=batch,
                compare=[*map(str, bundles[1:]), f"torch:{run_dir}"],
                data=str(run_dir / "windows.npz"),
                out=str(out),
            )
            report = run_bench(cfg, echo=print)
            print(format_table(report), flush=True)
            body += [
                f"### {run_dir.name}, batch {batch}, {args.duration:g} s interleaved (report: `{out.relative_to(REPO)}/report.md`)",
                "",
                md_table(*model_rows(report)),
                "",
            ]
    body.insert(
        0, f"Host: {describe(report['machine'])}. Times in ms per call; x = ratio vs the FP32 bundle.\n"
    )
    write_section("bench", "Model latency on the export host (interleaved edgekit bench)", "\n".join(body))


if __name__ == "__main__":
    main()
