"""Is the MIT-BIH label-free student's recall gap a matter of width? The same distillation with a wider
student, seeds 0-2, against the default-width runs of benchmarks/distill_table.py.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/research/mitdb_student_width.py --hidden 32 \\
        --baseline runs/bench-distill/mitdb/label-free --out /tmp/mitdb-width
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from edgekit.distill.pipeline import DistillConfig, distill


def summary(reports: list[dict]) -> str:
    mean = {
        (m, k): statistics.mean(r[m][k] for r in reports)
        for m in ("teacher", "student")
        for k in ("recall", "roc_auc")
    }
    return (
        f"recall student/teacher {mean['student', 'recall']:.3f}/{mean['teacher', 'recall']:.3f} "
        f"= {mean['student', 'recall'] / mean['teacher', 'recall']:.2f}x; ROC-AUC "
        f"{mean['student', 'roc_auc']:.3f}/{mean['teacher', 'roc_auc']:.3f} "
        f"= {mean['student', 'roc_auc'] / mean['teacher', 'roc_auc']:.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--baseline", type=Path, help="a folder of seedN/report.json at the default width")
    ap.add_argument("--out", type=Path, default=Path("/tmp/mitdb-width"))
    args = ap.parse_args()
    wide = []
    for seed in args.seeds:
        out = args.out / f"seed{seed}"
        distill(DistillConfig(out=str(out), dataset="mitdb", seed=seed, student_hidden=args.hidden))
        wide.append(json.loads((out / "report.json").read_text()))
    print(f"student_hidden {args.hidden}, seeds {args.seeds}: {summary(wide)}")
    if args.baseline:
        base = [json.loads((args.baseline / f"seed{s}" / "report.json").read_text()) for s in args.seeds]
        print(f"default width, same seeds: {summary(base)}")


if __name__ == "__main__":
    main()
