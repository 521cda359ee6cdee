"""Supervised and black-box distillation: a TCN teacher trained on labels (or a teacher's outputs read
from a file), a Hinton-KD student, and the same student trained on labels alone as the baseline."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekit.distill.config import DistillConfig
from edgekit.distill.losses import LOSSES, probs_to_logits
from edgekit.distill.prepare import Prepared, tensor
from edgekit.distill.teacher_outputs import load_teacher_outputs, probs_to_two_class
from edgekit.distill.train import TrainConfig, fit, predict
from edgekit.errors import DataError
from edgekit.metrics import best_f1_threshold
from edgekit.models.registry import ModelSpec, build_model


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


def _softmax1(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits, dim=1)[:, 1].numpy()


def _ce_step(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(m(xb), yb)


def _blackbox_teacher(p: Prepared, path: str) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Teacher logits and scores per split from a file of a teacher's per-row outputs."""
    probs, hard = load_teacher_outputs(path, len(p.table))
    teacher_p = {k: probs[s.end_row] for k, s in (("train", p.train), ("val", p.val), ("test", p.test))}
    for k in ("train", "val"):
        missing = int(np.isnan(teacher_p[k]).sum())
        if missing:
            raise DataError(
                f"{path}: no teacher output for {missing} {k} windows (every training and validation window needs one)"
            )
    t_logits = {
        k: probs_to_logits(tensor(probs_to_two_class(np.nan_to_num(v), hard))) for k, v in teacher_p.items()
    }
    return t_logits, {k: np.where(np.isnan(v), np.nan, v) for k, v in teacher_p.items()}


def train_supervised(p: Prepared, cfg: DistillConfig) -> dict[str, Any]:
    """Teacher (trained or black-box), KD student and no-KD student; test scores and val thresholds."""
    c, w = p.train.x.shape[2], p.window
    xtr, xva, xte = (tensor(s.x) for s in (p.train, p.val, p.test))
    ytr = None if p.train.y is None else tensor(p.train.y)
    yva = None if p.val.y is None else tensor(p.val.y)
    models: dict[str, tuple[nn.Module | None, ModelSpec | None]] = {}
    tcfg = replace(cfg.train, seed=cfg.seed, batch_size=cfg.batch_size)
    student_cfg: TrainConfig = replace(tcfg, epochs=cfg.student_epochs)

    if cfg.teacher_outputs:
        t_logits, t_score = _blackbox_teacher(p, cfg.teacher_outputs)
        models["teacher"] = (None, None)
    else:
        spec = tcn_spec(c, w, cfg.teacher_hidden, 0.1, 2)
        teacher = build_model(spec)
        fit(
            teacher,
            xtr,
            ytr,
            _ce_step,
            lambda m: F.cross_entropy(predict(m, xva), yva),
            replace(tcfg, epochs=cfg.teacher_epochs),
            "teacher",
        )
        t_logits = {k: predict(teacher, x) for k, x in (("train", xtr), ("val", xva), ("test", xte))}
        t_score = {k: _softmax1(v) for k, v in t_logits.items()}
        models["teacher"] = (teacher, spec)

    hinton = LOSSES.get("hinton")
    kd_kwargs = {"temperature": cfg.temperature, "alpha": cfg.alpha}
    labelled = ytr is not None and yva is not None
    # labels ride along with the teacher logits in one target tensor: [label, logit0, logit1]
    lab_tr = ytr.float()[:, None] if ytr is not None else torch.full((len(xtr), 1), -1.0)
    targets = torch.cat([lab_tr, t_logits["train"]], dim=1)

    def kd_step(m: nn.Module, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        return hinton(m(xb), tb[:, 1:], tb[:, 0].long() if labelled else None, **kd_kwargs)

    def val_ce(m: nn.Module) -> float:
        if labelled:
            return float(F.cross_entropy(predict(m, xva), yva))
        return float(hinton(predict(m, xva), t_logits["val"], None, **kd_kwargs))

    s_spec = tcn_spec(c, w, cfg.student_hidden, 0.0, 2)
    student = build_model(s_spec)
    fit(student, xtr, targets, kd_step, val_ce, student_cfg, "student (KD)")
    models["student"] = (student, s_spec)
    if labelled:
        baseline = build_model(s_spec)
        fit(baseline, xtr, ytr, _ce_step, val_ce, student_cfg, "student (no KD)")
        models["student_no_kd"] = (baseline, s_spec)

    scores: dict[str, dict[str, np.ndarray]] = {"teacher": t_score}
    for name in ("student", "student_no_kd"):
        if name in models:
            m = models[name][0]
            scores[name] = {k: _softmax1(predict(m, x)) for k, x in (("val", xva), ("test", xte))}
    thresholds = {}
    for name, sc in scores.items():
        if p.val.y is not None and p.val.y.any() and not np.isnan(sc["val"]).any():
            thresholds[name] = best_f1_threshold(p.val.y, sc["val"])
        else:
            thresholds[name] = 0.5
    return {
        "models": models,
        "scores": scores,
        "thresholds": thresholds,
        "score": "softmax",
        "loss": "hinton",
    }
