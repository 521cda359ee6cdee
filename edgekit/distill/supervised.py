"""Supervised and black-box distillation for K classes: a teacher trained on the labelled windows (or a
teacher's outputs read from a file), a Hinton-KD student on the whole transfer set (soft targets on
every training window and, with `--augment`, on augmented views the teacher is queried on; hard labels
where they exist), and the same student trained on the labelled windows (and their views) alone as the
baseline a team without a teacher would have."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekit.distill.augment import transfer_set
from edgekit.distill.config import DistillConfig
from edgekit.distill.losses import LOSSES, probs_to_logits
from edgekit.distill.prepare import Prepared, tensor
from edgekit.distill.teacher_outputs import smooth_probs
from edgekit.distill.train import fit, fit_steps, predict
from edgekit.distill.tune import choose_kd
from edgekit.errors import ConfigError, DataError
from edgekit.metrics import best_f1_threshold
from edgekit.models.registry import ModelSpec, build_model
from edgekit.models.rocket import HOST_BATCH, KERNEL_LENGTH, RocketTeacher
from edgekit.runtime.stages import anomaly_score

SPLITS = ("train", "val", "test")
# windows per teacher forward pass: the rocket teacher's PPV comparison is memory-hungry
QUERY_BATCH = {"tcn": 4096, "rocket": HOST_BATCH}
# --tune trains each grid point for this share of the student's budget
TUNE_SHARE = 4
# a batch of this size for step-based students (the recipe's)
STEP_BATCH = 64


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


def student_spec(
    channels: int, window: int, hidden: int, out_dim: int, shape_channel: bool = False
) -> ModelSpec:
    """The device student: an MLP for window-1 data (a convolution there is only padded 1x1 kernels, which
    export as Conv, Pad and shape ops), `cnn-small` (three strided convolutions, ~6k parameters) over
    longer windows. The MLP is 4h/2h wide (~2.8k parameters at h = 16): at h/h it learnt too little in
    short runs for INT8 to keep its decisions. `shape_channel` adds the per-window z-normalised copy of
    each channel inside the model (labelled series)."""
    if window == 1:
        return ModelSpec(
            "mlp", {"channels": channels, "window": 1, "hidden": [4 * hidden, 2 * hidden], "out_dim": out_dim}
        )
    return ModelSpec("cnn-small", {"channels": channels, "out_dim": out_dim, "shape_channel": shape_channel})


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


def _train_teacher(
    p: Prepared, cfg: DistillConfig, x: dict[str, torch.Tensor], y: torch.Tensor, known: torch.Tensor
) -> tuple[nn.Module, ModelSpec]:
    """The white-box teacher of kind `cfg.teacher`: a TCN trained by gradient on the labelled windows
    (early stopping on validation loss), or a rocket teacher (thresholds from every training window,
    head from the labelled ones)."""
    c, w, k = p.train.x.shape[2], p.window, len(p.classes)
    if cfg.teacher == "rocket":
        if w < KERNEL_LENGTH:
            raise ConfigError(f"--teacher rocket needs windows of >= {KERNEL_LENGTH} readings, got {w}")
        spec = ModelSpec(
            "rocket",
            {"channels": c, "window": w, "out_dim": k, "shape_channel": p.series_problem is not None},
        )
        model = build_model(spec)
        assert isinstance(model, RocketTeacher)
        return model.fit(x["train"], y, known, cfg.seed, self_train=cfg.teacher_self_train), spec
    spec = tcn_spec(c, w, cfg.teacher_hidden, 0.1, k)
    teacher = build_model(spec)
    y_val = tensor(p.val.y)
    fit(
        teacher,
        x["train"][known],
        y[known],
        _ce_step,
        lambda m: F.cross_entropy(predict(m, x["val"]), y_val),
        replace(cfg.train, seed=cfg.seed, batch_size=cfg.batch_size, epochs=cfg.teacher_epochs),
        "teacher",
    )
    return teacher, spec


@dataclass
class _Transfer:
    """What a student trains on: inputs, [N, K] (mixed) one-hot targets (all-zero rows: no label) and,
    for the KD student, teacher logits."""

    x: torch.Tensor
    hard: torch.Tensor | None
    teacher: torch.Tensor | None = None


def _onehot(y: np.ndarray, k: int) -> torch.Tensor:
    out = np.zeros((len(y), k), np.float32)
    out[y >= 0, y[y >= 0]] = 1.0
    return torch.from_numpy(out)


def _transfer_sets(
    p: Prepared, cfg: DistillConfig, query: Any, train_logits: torch.Tensor
) -> tuple[_Transfer, _Transfer | None]:
    """The KD student's transfer set (every training window, plus `cfg.augment_views` augmented views of
    each with the teacher `query`-ed on exactly those views) and the no-KD student's (the labelled
    windows, plus their views with mixup among labelled windows only)."""
    k = len(p.classes)
    y = p.train.y
    known = p.labelled_train
    if cfg.augment == "none":
        kd = _Transfer(tensor(p.train.x), None if y is None else _onehot(y, k), train_logits)
        base = (
            None
            if y is None or not known.any()
            else _Transfer(tensor(p.train.x[known]), _onehot(y[known], k))
        )
        return kd, base
    assert query is not None, "config.resolve refuses --augment with --teacher-outputs"
    rng = np.random.default_rng(cfg.seed)
    ts = transfer_set(p.train.x, cfg.augment_views, rng)
    hard, _ = ts.targets(y, k)
    views = tensor(ts.x[len(p.train) :])
    kd = _Transfer(tensor(ts.x), torch.from_numpy(hard), torch.cat([train_logits, query(views)]))
    if not known.any():
        return kd, None
    bs = transfer_set(p.train.x[known], cfg.augment_views, rng)
    b_hard, _ = bs.targets(y[known], k)
    return kd, _Transfer(tensor(bs.x), torch.from_numpy(b_hard))


def train_supervised(p: Prepared, cfg: DistillConfig) -> dict[str, Any]:
    """Teacher (trained or black-box), KD student and no-KD student; class probabilities per split,
    anomaly scores and validation thresholds."""
    c, w, k = p.train.x.shape[2], p.window, len(p.classes)
    x = {s: tensor(getattr(p, s).x) for s in SPLITS}
    ytr = None if p.train.y is None else tensor(p.train.y)
    yva = None if p.val.y is None or not len(p.val.y) else tensor(p.val.y)
    known = torch.from_numpy(p.labelled_train)
    models: dict[str, tuple[nn.Module | None, ModelSpec | None]] = {}
    student_cfg = replace(cfg.train, seed=cfg.seed, batch_size=cfg.batch_size, epochs=cfg.student_epochs)

    query = None
    if cfg.teacher_outputs:
        t_logits = _blackbox_teacher(p, cfg.teacher_outputs)
        models["teacher"] = (None, None)
    else:
        assert ytr is not None and yva is not None
        teacher, t_spec = _train_teacher(p, cfg, x, ytr, known)
        query = lambda xs: predict(teacher, xs, QUERY_BATCH[t_spec.arch])  # noqa: E731
        t_logits = {s: query(x[s]) for s in SPLITS}
        models["teacher"] = (teacher, t_spec)
    kd_set, base_set = _transfer_sets(p, cfg, query, t_logits["train"])

    hinton = LOSSES.get("hinton")
    s_spec = student_spec(c, w, cfg.student_hidden, k, shape_channel=p.series_problem is not None)
    # hard targets ride along with the teacher logits in one target tensor: [hard (K), logits (K)]
    kd_targets = kd_set.teacher if kd_set.hard is None else torch.cat([kd_set.hard, kd_set.teacher], dim=1)

    def val_loss_for(t: float, a: float) -> Any:
        def val_loss(m: nn.Module) -> float:
            if yva is not None:
                return float(F.cross_entropy(predict(m, x["val"]), yva))
            return float(hinton(predict(m, x["val"]), t_logits["val"], None, temperature=t, alpha=a))

        return val_loss

    def train_kd(t: float, a: float, budget: int = 1) -> nn.Module:
        """The KD student at temperature t and alpha a; `budget` > 1 divides its training (--tune)."""

        def kd_step(m: nn.Module, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
            hard = None if kd_set.hard is None else tb[:, :k]
            return hinton(m(xb), tb[:, -k:], hard, temperature=t, alpha=a)

        student = build_model(s_spec)
        if cfg.student_steps:
            steps = max(1, cfg.student_steps // budget)
            return fit_steps(student, kd_set.x, kd_targets, kd_step, steps, STEP_BATCH, seed=cfg.seed)
        epochs = max(1, cfg.student_epochs // budget)
        fit(
            student,
            kd_set.x,
            kd_targets,
            kd_step,
            val_loss_for(t, a),
            replace(student_cfg, epochs=epochs),
            "student (KD)",
        )
        return student

    temperature, alpha, tuned = cfg.temperature, cfg.alpha, None
    if cfg.tune:
        if yva is None:
            raise DataError(
                f"{p.table.name}: --tune chooses on labelled validation windows, and there are none"
            )
        tuned = choose_kd(lambda t, a: train_kd(t, a, TUNE_SHARE), x["val"], p.val.y, k)
        temperature, alpha = tuned["temperature"], tuned["alpha"]
    assert temperature is not None and alpha is not None
    models["student"] = (train_kd(temperature, alpha), s_spec)
    if base_set is not None and yva is not None:
        assert base_set.hard is not None
        baseline = build_model(s_spec)
        if cfg.student_steps:
            ce = lambda m, xb, tb: F.cross_entropy(m(xb), tb)  # noqa: E731  (mixed one-hot targets)
            fit_steps(baseline, base_set.x, base_set.hard, ce, cfg.student_steps, STEP_BATCH, seed=cfg.seed)
        else:
            y_base = base_set.hard.argmax(dim=1)
            fit(
                baseline,
                base_set.x,
                y_base,
                _ce_step,
                val_loss_for(temperature, alpha),
                student_cfg,
                "student (no KD)",
            )
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
        "temperature": temperature,
        "alpha": alpha,
        "tune": tuned,
        "transfer_rows": len(kd_set.x),
        "no_kd_rows": None if base_set is None else len(base_set.x),
    }
