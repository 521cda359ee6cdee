"""Label-free distillation: an autoencoder teacher trained on normal windows (reconstruction error is
the anomaly score), a small autoencoder student that learns the teacher's reconstructions, and the same
student trained on the input alone; thresholds for a false-alarm-rate target on validation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.distill.config import DistillConfig
from edgekit.distill.losses import LOSSES
from edgekit.distill.prepare import Prepared, tensor
from edgekit.distill.train import fit, predict
from edgekit.errors import DataError
from edgekit.metrics import far_threshold
from edgekit.models.registry import ModelSpec, build_model


def train_label_free(p: Prepared, cfg: DistillConfig) -> dict[str, Any]:
    """Teacher, KD student and no-KD student autoencoders; test scores and val thresholds."""
    c, w = p.train.x.shape[2], p.window
    xtr, xva, xte = (tensor(s.x) for s in (p.train, p.val, p.test))
    normal_tr = xtr if p.train.y is None else xtr[tensor(p.train.y == 0)]
    normal_va = xva if p.val.y is None else xva[tensor(p.val.y == 0)]
    if len(normal_tr) < 16:
        raise DataError(f"{p.table.name}: only {len(normal_tr)} normal training windows; need at least 16")
    tcfg = replace(cfg.train, seed=cfg.seed, batch_size=min(cfg.batch_size, 128))
    dummy = torch.zeros(len(normal_tr), 1)

    def val_error(m: nn.Module) -> float:
        return float(m(normal_va).exp().mean())

    def recon_fit(m: nn.Module, epochs: int, desc: str) -> None:
        fit(
            m,
            normal_tr,
            dummy,
            lambda mm, xb, _t: mm(xb).exp().mean(),
            val_error,
            replace(tcfg, epochs=epochs),
            desc,
        )

    t_spec = ModelSpec(
        "autoencoder",
        {
            "channels": c,
            "window": w,
            "hidden": [4 * cfg.teacher_hidden, 2 * cfg.teacher_hidden],
            "bottleneck": 16,
        },
    )
    teacher = build_model(t_spec)
    recon_fit(teacher, cfg.teacher_epochs, "teacher (autoencoder)")
    # Label-free KD: a small autoencoder learns to reproduce the teacher's reconstructions (the teacher's
    # picture of "normal"), blended with its own reconstruction of the input by alpha. Regressing the
    # teacher's score directly fails here: the transfer set holds no anomalies, so a score regressor
    # never sees a high score and cannot extrapolate to one.
    budget_hidden = max(4, cfg.student_hidden * 4)
    s_spec = ModelSpec(
        "autoencoder", {"channels": c, "window": w, "hidden": [budget_hidden], "bottleneck": 4}
    )
    with torch.no_grad():
        t_recon = teacher.reconstruct(normal_tr)
    pairs = torch.stack([normal_tr, t_recon], dim=1)  # [N, 2, W, C]: input and teacher reconstruction
    recon_kd = LOSSES.get("recon-kd")

    def kd_step(m: nn.Module, _xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        return recon_kd(m.reconstruct(tb[:, 0]), tb[:, 1], tb[:, 0], alpha=cfg.alpha)

    student = build_model(s_spec)
    fit(student, pairs, pairs, kd_step, val_error, replace(tcfg, epochs=cfg.student_epochs), "student (KD)")

    baseline = build_model(s_spec)
    recon_fit(baseline, cfg.student_epochs, "student (no KD)")

    models = {"teacher": (teacher, t_spec), "student": (student, s_spec), "student_no_kd": (baseline, s_spec)}
    scores = {
        name: {k: predict(m, x)[:, 0].numpy() for k, x in (("val", xva), ("test", xte))}
        for name, (m, _s) in models.items()
    }
    val_normal = np.ones(len(p.val), bool) if p.val.y is None else p.val.y == 0
    thresholds = {
        name: far_threshold(sc["val"][val_normal], cfg.false_alarm_rate) for name, sc in scores.items()
    }
    return {
        "models": models,
        "scores": scores,
        "thresholds": thresholds,
        "score": "identity",
        "loss": "recon-kd",
    }
