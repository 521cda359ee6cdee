"""The label-scarce recipe as built into edgekit, over seeds: `edgekit.distill.pipeline.distill` with
`DistillConfig(out, dataset, label_fraction, seed, **overrides)` per seed, then the KD gain with a paired
bootstrap 95% CI (seeds and TEST series resampled jointly, KD and no-KD of one seed and series kept
paired), retention and the parameter ratio. Validation figures are printed first and apart: choices
between variants are made on them (see REPORT.md), never on the test figures below them.

Run:  OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 python benchmarks/research/kd_label_scarce/edgekit_recipe.py \
          --dataset plaid --label-fraction 0.1 --seeds 5 --out /tmp/recipe
Extra DistillConfig fields: --set teacher_self_train=0.9 (values parsed as YAML).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from edgekit.data import Normalizer
from edgekit.distill.pipeline import DistillConfig, distill
from edgekit.metrics import macro_f1
from edgekit.models.registry import ModelSpec, build_model, load_weights
from edgekit.run import load_run

MODELS = ("teacher", "student", "student_no_kd")


def predictions(run_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """Class predictions of each model on the run's validation and test windows (from its checkpoints)."""
    run = load_run(run_dir)
    w = run.windows()
    norm = Normalizer(
        np.asarray(run.info.normalization.mean, np.float32),
        np.asarray(run.info.normalization.std, np.float32),
    )
    out: dict[str, dict[str, np.ndarray]] = {"y": {"val": w.val_y, "test": w.test_y}}
    for name in MODELS:
        arch = run.info.models[name]
        m = load_weights(build_model(ModelSpec(arch.arch, dict(arch.kwargs))), str(run.checkpoint(name)))
        with torch.no_grad():
            out[name] = {
                s: torch.cat([m(torch.from_numpy(norm(x[i : i + 32]))) for i in range(0, len(x), 32)])
                .argmax(1)
                .numpy()
                for s, x in (("val", w.val_x), ("test", w.test_x))
            }
    return out


def paired_gain_ci(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, k: int, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over seeds of macro-F1(a) - macro-F1(b) on TEST and its 95% CI; a, b: [seeds, series]."""
    rng = np.random.default_rng(seed)
    gain = lambda ss, ii: np.mean([macro_f1(y[ii], a[s][ii], k) - macro_f1(y[ii], b[s][ii], k) for s in ss])  # noqa: E731
    point = gain(range(len(a)), np.arange(len(y)))
    boots = [gain(rng.integers(0, len(a), len(a)), rng.integers(0, len(y), len(y))) for _ in range(n_boot)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(point), float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="plaid")
    ap.add_argument("--label-fraction", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="/tmp/edgekit_recipe")
    ap.add_argument("--set", action="append", default=[], help="FIELD=VALUE for DistillConfig")
    ap.add_argument("--reuse", action="store_true", help="reuse seeds whose run folder holds a finished run")
    args = ap.parse_args()
    extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    t0 = time.time()
    runs, reports = [], []
    for s in range(args.seeds):
        out = Path(args.out) / f"{args.dataset}_{args.label_fraction:g}_seed{s}"
        # config.yaml is the last file distill() writes: its presence means the run finished
        rep = (
            json.loads((out / "report.json").read_text())
            if args.reuse and (out / "config.yaml").is_file()
            else distill(
                DistillConfig(
                    out=str(out), dataset=args.dataset, label_fraction=args.label_fraction, seed=s, **extra
                )
            )
        )
        reports.append(rep)
        runs.append(predictions(out))
        print(
            f"seed {s}: labelled {rep['labelled_rows']}, transfer rows {rep['transfer_rows']}, "
            f"{time.time() - t0:.0f}s",
            flush=True,
        )
    k = len(reports[0]["classes"])
    print(
        f"\n== {args.dataset} label fraction {args.label_fraction:g}, {args.seeds} seeds, overrides {extra}"
    )
    f1 = {
        sp: {n: np.array([macro_f1(r["y"][sp], r[n][sp], k) for r in runs]) for n in MODELS}
        for sp in ("val", "test")
    }
    for sp in ("val", "test"):
        cells = ", ".join(f"{n} {f1[sp][n].mean():.3f}±{f1[sp][n].std(ddof=1):.3f}" for n in MODELS)
        ret = f1[sp]["student"] / f1[sp]["teacher"]
        print(f"{sp.upper():5} macro-F1 {cells}; retention {ret.mean():.3f}±{ret.std(ddof=1):.3f}")
    y = runs[0]["y"]["test"]
    gain, lo, hi = paired_gain_ci(
        y,
        np.stack([r["student"]["test"] for r in runs]),
        np.stack([r["student_no_kd"]["test"] for r in runs]),
        k,
    )
    acc = {n: np.mean([(r[n]["test"] == y).mean() for r in runs]) for n in MODELS}
    ratio = reports[0]["teacher"]["params"] / reports[0]["student"]["params"]
    print(
        f"TEST  KD gain {gain:+.3f} paired 95% CI [{lo:+.3f}, {hi:+.3f}] (per seed "
        f"{np.round(f1['test']['student'] - f1['test']['student_no_kd'], 3).tolist()}); "
        f"accuracy {', '.join(f'{n} {v:.3f}' for n, v in acc.items())}"
    )
    print(
        f"params teacher {reports[0]['teacher']['params']} student {reports[0]['student']['params']} "
        f"ratio {ratio:.1f}x; published {reports[0].get('published_accuracy')}; wall {time.time() - t0:.0f}s"
    )
    summary = {
        "args": vars(args),
        "val": {n: f1["val"][n].tolist() for n in MODELS},
        "test": {n: f1["test"][n].tolist() for n in MODELS},
        "gain": [gain, lo, hi],
        "ratio": ratio,
    }
    (Path(args.out) / f"{args.dataset}_{args.label_fraction:g}_summary.json").write_text(
        json.dumps(summary, indent=2)
    )


if __name__ == "__main__":
    main()
