"""Issue 11 research: can the MIT-BIH label-free student reach 0.8x the teacher's recall at the
validation threshold? (benchmarks/distill_table.py, 5 seeds: 0.614 vs 0.823, 0.75x.)

Variants of edgekit.distill.label_free.train_label_free's transfer set, the rest unchanged:
- `base`: normal training windows + 2 perturbed copies of each (what edgekit does now);
- `all`: every training window, anomalous ones included, unlabelled (a fleet's own unlabelled readings:
  the teacher scores them, no label is read) + the perturbed copies of the normal ones;
- `--copies N`: N perturbed copies per clean window (edgekit's default was 2 when this ran; 10 since), in
  both transfer sets;
- `--tail-weight W`: the regression loss weights windows whose teacher score lies above the teacher's
  95th percentile of clean normal training scores W times (the region the threshold sits in).
The validation transfer set and the no-KD baseline are the same in every variant.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/research/mitdb_recall/transfer_variants.py \
        --variant all --seeds 0 1 2 --out /tmp/mitdb-recall
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import textwrap
from pathlib import Path

import torch

import edgekit.distill.label_free as lf
from edgekit.distill.pipeline import DistillConfig, distill

VARIANT = {"transfer": "base", "tail_weight": 1.0}


def patch() -> None:
    src = textwrap.dedent(inspect.getsource(lf.train_label_free))
    old = "    x_tr, n_pert = _transfer(normal_tr, cfg.perturbed_copies, cfg.seed)\n"
    assert old in src
    src = src.replace(
        old,
        old
        + "    if VARIANT['transfer'] == 'all':\n"
        + "        x_tr = torch.cat([tensor(p.train.x), x_tr[len(normal_tr):]])\n",
    )
    old_loss = "            lambda mm, xb, tb: loss(mm(xb), tb, alpha=cfg.alpha),\n"
    assert old_loss in src
    src = src.replace(
        old_loss,
        "            (lambda mm, xb, tb: loss(mm(xb), tb, alpha=cfg.alpha)) if VARIANT['tail_weight'] == 1.0 else\n"
        "            (lambda mm, xb, tb: (((mm(xb) - tb) ** 2) * (1.0 + (VARIANT['tail_weight'] - 1.0) * (tb > TAIL[0]).float())).mean()),\n",
    )
    old_z = "    z_tr, z_va = (t_tr - mean) / std, (t_va - mean) / std\n"
    assert old_z in src
    src = src.replace(
        old_z,
        old_z
        + "    TAIL[0] = float(torch.quantile(((predict(teacher, normal_tr)[:, 0] - mean) / std), 0.95))\n",
    )
    ns = dict(vars(lf))
    ns.update(VARIANT=VARIANT, TAIL=[0.0], torch=torch)
    exec(compile(src, lf.__file__, "exec"), ns)
    lf.train_label_free = ns["train_label_free"]
    import edgekit.distill.pipeline as pipe

    for mod in (pipe,):
        if hasattr(mod, "train_label_free"):
            mod.train_label_free = ns["train_label_free"]


def summary(reports: list[dict]) -> str:
    mean = {
        (m, k): statistics.mean(r[m][k] for r in reports)
        for m in ("teacher", "student", "student_no_kd")
        for k in ("recall", "roc_auc", "f1")
    }
    per = [round(r["student"]["recall"] / r["teacher"]["recall"], 3) for r in reports]
    return (
        f"recall student/teacher {mean['student', 'recall']:.3f}/{mean['teacher', 'recall']:.3f} "
        f"= {mean['student', 'recall'] / mean['teacher', 'recall']:.3f}x (per seed {per}); ROC-AUC "
        f"{mean['student', 'roc_auc']:.3f}/{mean['teacher', 'roc_auc']:.3f} "
        f"= {mean['student', 'roc_auc'] / mean['teacher', 'roc_auc']:.3f}x; F1 student {mean['student', 'f1']:.3f}, "
        f"no-KD {mean['student_no_kd', 'f1']:.3f}, teacher {mean['teacher', 'f1']:.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=["base", "all"], default="all")
    ap.add_argument("--tail-weight", type=float, default=1.0)
    ap.add_argument("--copies", type=int, default=2, help="perturbed copies per window (edgekit's default then)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("/tmp/mitdb-recall"))
    args = ap.parse_args()
    VARIANT.update(transfer=args.variant, tail_weight=args.tail_weight)
    patch()
    torch.set_num_threads(1)
    reports = []
    for seed in args.seeds:
        out = args.out / f"{args.variant}-w{args.tail_weight:g}-c{args.copies}" / f"seed{seed}"
        distill(DistillConfig(out=str(out), dataset="mitdb", seed=seed, perturbed_copies=args.copies))
        reports.append(json.loads((out / "report.json").read_text()))
        print(f"seed {seed}: {summary(reports[-1:])}", flush=True)
    print(
        f"variant {args.variant}, tail weight {args.tail_weight:g}, copies {args.copies}, seeds {args.seeds}: "
        f"{summary(reports)}"
    )


if __name__ == "__main__":
    main()
