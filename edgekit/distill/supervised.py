"""Supervised and black-box distillation for K classes: a teacher trained on the labelled windows (or a
teacher's outputs read from a file), a Hinton-KD student on the whole transfer set (soft targets on
every training window, hard labels where they exist), and the same student trained on the labelled
windows alone as the baseline a team without a teacher would have."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekit.data.labels import UNLABELLED
from edgekit.distill.config import DistillConfig
from edgekit.distill.losses import LOSSES, probs_to_logits
from edgekit.distill.prepare import Prepared, tensor
from edgekit.distill.teacher_outputs import smooth_probs
from edgekit.distill.train import TrainConfig, fit, predict
from edgekit.errors import DataError
from edgekit.metrics import best_f1_threshold
from edgekit.models.registry import ModelSpec, build_model
from edgekit.runtime.stages import anomaly_score

SPLITS = ("train", "val", "test")


def tcn_spec(channels: int, window: int, hidden: int, dropout: float, out_dim: int) -> ModelSpec:
    k = 1 if window == 1 else 3
    # enough dilated levels for the last step to see the whole window: 1 + 2(k-1)(2^L - 1) >= window
    levels = 4 if window == 1 else max(2, math.ceil(math.log2((window - 1) / (2 * (k - 1)) + 1)))
    return ModelSpec(
        "tcn",
        {
            "channels": channels,
            "hidden": hidden,
            "levels": levels,
            "kernel_size": k,
            "dropout": dropout,
            "out_dim": out_dim,
        },
    )


def student_spec(channels: int, window: int, hidden: int, out_dim: int) -> ModelSpec:
    """The device student: an MLP for window-1 data (a TCN there is only padded 1x1 convolutions, which
    export as Conv, Pad and shape ops), a TCN over longer windows. The MLP is 4h/2h wide (~2.8k parameters
    at h = 16, the old TCN's size): at h/h it learnt too little in short runs for INT8 to keep its decisions."""
    if window == 1:
        return ModelSpec(
            "mlp", {"channels": channels, "window": 1, "hidden": [4 * hidden, 2 * hidden], "out_dim": out_dim}
        )
    return tcn_spec(channels, window, hidden, 0.0, out_dim)


def _ce_step(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(m(xb), yb)


def _blackbox_teacher(p: Prepared, path: str) -> dict[str, torch.Tensor]:
    """Teacher logits per split from a file of a teacher's per-row outputs (NaN rows where it gave none)."""
    assert p.teacher_probs is not None
    teacher_p = {k: p.teacher_probs[getattr(p, k).end_row] for k in SPLITS}
    for k in ("train", "val"):
        missing = int(np.isnan(teacher_p[k]).any(axis=1).sum())
        if missing:
            raise DataError(
                f"{path}: no teacher output for {missing} {k} windows (every training and validation window needs one)"
            )
    out = {}
    for k, v in teacher_p.items():
        logits = probs_to_logits(tensor(smooth_probs(np.nan_to_num(v, nan=1.0 / v.shape[1]), p.teacher_hard)))
        logits[torch.from_numpy(np.isnan(v).any(axis=1))] = float("nan")
        out[k] = logits
    return out


def train_supervised(p: Prepared, cfg: DistillConfig) -> dict[str, Any]:
    """Teacher (trained or black-box), KD student and no-KD student; class probabilities per split,
    anomaly scores and validation thresholds."""
    c, w, k = p.train.x.shape[2], p.window, len(p.classes)
    x = {s: tensor(getattr(p, s).x) for s in SPLITS}
    ytr = None if p.train.y is None else tensor(p.train.y)
    yva = None if p.val.y is None or not len(p.val.y) else tensor(p.val.y)
    known = torch.from_numpy(p.labelled_train)
    models: dict[str, tuple[nn.Module | None, ModelSpec | None]] = {}
    tcfg = replace(cfg.train, seed=cfg.seed, batch_size=cfg.batch_size)
    student_cfg: TrainConfig = replace(tcfg, epochs=cfg.student_epochs)

    if cfg.teacher_outputs:
        t_logits = _blackbox_teacher(p, cfg.teacher_outputs)
        models["teacher"] = (None, None)
    else:
        assert ytr is not None and yva is not None
        spec = tcn_spec(c, w, cfg.teacher_hidden, 0.1, k)
        teacher = build_model(spec)
        fit(
            teacher,
            x["train"][known],
            ytr[known],
            _ce_step,
            lambda m: F.cross_entropy(predict(m, x["val"]), yva),
            replace(tcfg, epochs=cfg.teacher_epochs),
            "teacher",
        )
        t_logits = {s: predict(teacher, x[s]) for s in SPLITS}
        models["teacher"] = (teacher, spec)

    hinton = LOSSES.get("hinton")
    kd_kwargs = {"temperature": cfg.temperature, "alpha": cfg.alpha}
    # labels ride along with the teacher logits in one target tensor: [label (-1: none), logits...]
    lab_tr = ytr.float()[:, None] if ytr is not None else torch.full((len(x["train"]), 1), float(UNLABELLED))
    targets = torch.cat([lab_tr, t_logits["train"]], dim=1)

    def kd_step(m: nn.Module, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        return hinton(m(xb), tb[:, 1:], None if ytr is None else tb[:, 0].long(), **kd_kwargs)

    def val_loss(m: nn.Module) -> float:
        if yva is not None:
            return float(F.cross_entropy(predict(m, x["val"]), yva))
        return float(hinton(predict(m, x["val"]), t_logits["val"], None, **kd_kwargs))

    s_spec = student_spec(c, w, cfg.student_hidden, k)
    student = build_model(s_spec)
    fit(student, x["train"], targets, kd_step, val_loss, student_cfg, "student (KD)")
    models["student"] = (student, s_spec)
    if ytr is not None and bool(known.any()) and yva is not None:
        baseline = build_model(s_spec)
        fit(baseline, x["train"][known], ytr[known], _ce_step, val_loss, student_cfg, "student (no KD)")
        models["student_no_kd"] = (baseline, s_spec)

    probs: dict[str, dict[str, np.ndarray]] = {
        "teacher": {s: torch.softmax(t_logits[s], dim=1).numpy() for s in ("val", "test")}
    }
    for name in ("student", "student_no_kd"):
        if name in models:
            m = models[name][0]
            probs[name] = {s: torch.softmax(predict(m, x[s]), dim=1).numpy() for s in ("val", "test")}
    scores = {n: {s: anomaly_score(v, p.normal) for s, v in pr.items()} for n, pr in probs.items()}
    thresholds = {}
    for name, sc in scores.items():
        y_anom = None if p.val.y is None or p.normal is None else p.val.y != p.normal
        if y_anom is not None and y_anom.any() and not np.isnan(sc["val"]).any():
            thresholds[name] = best_f1_threshold(y_anom, sc["val"])
        else:
            # no anomaly view (K classes, none normal): every window is reported with its class
            thresholds[name] = 0.5 if p.normal is not None else 0.0
    return {
        "models": models,
        "probs": probs,
        "scores": scores,
        "thresholds": thresholds,
        "score": "softmax",
        "loss": "hinton",
    }
