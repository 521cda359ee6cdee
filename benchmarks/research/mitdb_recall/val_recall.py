"""Validation-side check of transfer_variants.py runs, so that a choice between variants rests on
validation, not on the test figures. MIT-BIH's validation split holds normal windows only (the split is
by time), so the check is label-free: the Spearman rank correlation between the student's and the
teacher's scores on ONE fixed validation transfer set (the clean validation windows and 2 perturbed copies
of each, seed + 1: what edgekit builds by default), the same set for every variant; and the same over the
windows the teacher ranks in its top 10% (where a threshold at a low false-alarm rate sits).

    .venv/bin/python benchmarks/research/mitdb_recall/val_recall.py /tmp/mitdb-recall/base-w1-c2 /tmp/mitdb-recall/base-w1-c6
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from edgekit.data import Normalizer
from edgekit.models.registry import ModelSpec, build_model, load_weights
from edgekit.run import load_run


def val_metrics(run_dir: Path) -> tuple[float, float]:
    from edgekit.distill.label_free import spearman
    from edgekit.distill.perturb import perturb_windows

    run = load_run(run_dir)
    w = run.windows()
    norm = Normalizer(np.asarray(run.info.normalization.mean, np.float32), np.asarray(run.info.normalization.std, np.float32))
    clean = norm(w.val_x[w.val_y == 0])
    x = np.concatenate([clean, perturb_windows(clean, 2, run.info.seed + 1).x]).astype(np.float32)
    scores = {}
    for name in ("teacher", "student"):
        arch = run.info.models[name]
        m = load_weights(build_model(ModelSpec(arch.arch, dict(arch.kwargs))), str(run.checkpoint(name)))
        with torch.no_grad():
            scores[name] = torch.cat([m(torch.from_numpy(x[i : i + 256])) for i in range(0, len(x), 256)])[:, 0].numpy()
    t, s = scores["teacher"], scores["student"]
    top = t >= np.quantile(t, 0.9)
    return spearman(s, t), spearman(s[top], t[top])


def main() -> None:
    for d in sys.argv[1:]:
        res = np.array([val_metrics(s) for s in sorted(Path(d).glob("seed*"))])
        print(
            f"{d}: VAL Spearman with the teacher {res[:, 0].mean():.4f} (per seed {np.round(res[:, 0], 4).tolist()}); "
            f"in the teacher's top 10% {res[:, 1].mean():.4f} (per seed {np.round(res[:, 1], 4).tolist()})"
        )


if __name__ == "__main__":
    main()
