"""Text training: fine-tune the MiniLM teacher (a fresh classification head, early stopping on
validation CE), then train students from an identical start on the same transfer set, with the
teacher's soft targets (KD) and without them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekit.distill.losses import LOSSES
from edgekit.distill.text_config import Init, TextDistillConfig
from edgekit.distill.text_transfer import TransferSet
from edgekit.distill.train import TrainConfig, fit, predict
from edgekit.metrics import macro_f1
from edgekit.models.text import Logits, TextStudentConfig, build_student, project_embeddings


def _ce_step(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(m(xb), yb)


def _train_cfg(cfg: TextDistillConfig, epochs: int, lr: float, patience: int, wd: float) -> TrainConfig:
    return TrainConfig(
        epochs=epochs, batch_size=cfg.batch_size, lr=lr, weight_decay=wd, patience=patience, seed=cfg.seed
    )


def fine_tune_teacher(
    cfg: TextDistillConfig,
    t_dir: Path,
    pad_id: int,
    labels: list[str],
    x: dict[str, torch.Tensor],
    y: dict[str, torch.Tensor],
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """The teacher as a logits module, its Hugging Face model, and its training history."""
    from transformers import AutoModelForSequenceClassification

    teacher_hf = AutoModelForSequenceClassification.from_pretrained(
        t_dir,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        **({"num_hidden_layers": cfg.teacher_layers} if cfg.teacher_layers else {}),
    )
    teacher_hf.get_input_embeddings().requires_grad_(not cfg.freeze_teacher_embeddings)
    teacher = Logits(teacher_hf, pad_id)
    history = fit(
        teacher, x["train"], y["train"], _ce_step,
        lambda m: float(F.cross_entropy(predict(m, x["val"], 256), y["val"])),
        _train_cfg(cfg, cfg.teacher_epochs, cfg.teacher_lr, cfg.teacher_patience, 0.01), "teacher (fine-tune)",
    )  # fmt: skip
    return teacher, teacher_hf, history


def train_students(
    cfg: TextDistillConfig,
    s_cfg: TextStudentConfig,
    ts: TransferSet,
    teacher_hf: Any,
    labels: list[str],
    y_val: np.ndarray,
    history: dict[str, Any],
) -> dict[str, nn.Module]:
    """KD and no-KD students (plus the other embedding init with `compare_init`); histories go to
    `history`. Early stopping on validation macro-F1, the figure reported (validation CE turns up early
    while F1 still improves)."""
    k, L = len(labels), cfg.max_length
    hinton = LOSSES.get("hinton")

    def make_student(init: Init) -> nn.Module:
        torch.manual_seed(cfg.seed)
        m = build_student(s_cfg, len(ts.tokenizer), labels, L)
        if init == "teacher":
            project_embeddings(m, teacher_hf, ts.kept)
        return Logits(m, ts.tokenizer.pad_token_id)

    def kd_step(m: nn.Module, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        return hinton(m(xb), tb[:, 1:], tb[:, 0].long(), temperature=cfg.temperature, alpha=cfg.alpha)

    def val_f1_loss(m: nn.Module) -> float:
        return 1.0 - macro_f1(y_val, predict(m, ts.x["val"], 256).argmax(1).numpy(), k)

    s_train = _train_cfg(cfg, cfg.student_epochs, cfg.student_lr, cfg.student_patience, 1e-4)
    runs: dict[str, tuple[Init, bool]] = {
        "student": (cfg.student_init, True),
        "student_no_kd": (cfg.student_init, False),
    }
    if cfg.compare_init:
        other: Init = "random" if cfg.student_init == "teacher" else "teacher"
        runs[f"student_{other}_init"] = (other, True)
    students: dict[str, nn.Module] = {}
    for name, (init, kd) in runs.items():
        students[name] = make_student(init)
        history[name] = fit(
            students[name],
            ts.x_train,
            ts.kd_targets if kd else ts.y_train,
            kd_step if kd else _ce_step,
            val_f1_loss,
            s_train,
            name,
        )
    return students
