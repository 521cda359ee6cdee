"""Reproduce the teacher / distilled student / student-without-KD tables on the real datasets.

    .venv/bin/python benchmarks/distill_table.py [--seeds 0 1 2] [--out runs/bench-distill]

Full runs (no row limits); several seeds, because on Shuttle the differences between students are
within seed-to-seed noise. Writes the "distill" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from edgekit.distill.pipeline import DistillConfig, distill


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--datasets", nargs="+", default=["shuttle", "mitdb"])
    ap.add_argument("--out", default="runs/bench-distill")
    args = ap.parse_args()
    body = []
    for ds in args.datasets:
        f1 = {"teacher": [], "student": [], "student_no_kd": []}
        for seed in args.seeds:
            t0 = time.time()
            report = distill(DistillConfig(out=f"{args.out}/{ds}-seed{seed}", dataset=ds, seed=seed))
            wall = time.time() - t0
            print(f"\n## {ds}, seed {seed} ({report['mode']}, {wall:.0f} s)\n\n{report['table']}", flush=True)
            if seed == args.seeds[0]:
                body.append(
                    f"### {ds} ({report['mode']}, window {report['window']}, hop {report['hop']}), seed {seed}, "
                    f"{report['windows']['test']} test windows, training took {wall:.0f} s\n\n{report['table']}\n"
                )
            for k in f1:
                f1[k].append(report[k]["f1"])
        summary = ", ".join(
            f"{k} {statistics.mean(v):.3f} ± {statistics.pstdev(v):.3f}" for k, v in f1.items()
        )
        wins = sum(s > n for s, n in zip(f1["student"], f1["student_no_kd"], strict=True))
        line = f"{ds}: test F1 over seeds {args.seeds} (mean ± sd): {summary}; distilled student beat no-KD in {wins}/{len(args.seeds)} seeds."
        print("\n" + line)
        body.append(line + "\n")
    write_section("distill", "Distillation: teacher vs student vs student without KD", "\n".join(body))


if __name__ == "__main__":
    main()
