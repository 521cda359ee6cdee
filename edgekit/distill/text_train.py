"""Text training: fine-tune the MiniLM teacher (a fresh classification head, early stopping on
validation CE), then train students on the same transfer set, with the teacher's soft targets (KD;
for layer-dropped students optionally also its hidden states) and without them: the small BERT from
projected teacher embeddings, DistilBERT-style students from the teacher's own layers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekit.distill.losses import LOSSES
from edgekit.distill.text_config import Init, TextDistillConfig
from edgekit.distill.text_transfer import TransferSet
from edgekit.distill.train import StepLoss, TrainConfig, fit, predict
from edgekit.errors import ConfigError
from edgekit.metrics import macro_f1
from edgekit.models.text import (
    Logits,
    TextStudentConfig,
    build_student,
    layer_dropped_student,
    project_embeddings,
)


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


def hidden_state_mse(
    student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], mask: torch.Tensor
) -> torch.Tensor:
    """Mean over layer pairs of the mean squared difference of hidden states [B, L, H], counted at real
    tokens only (mask [B, L] 1; padding positions carry no meaning and differ freely)."""
    m = mask.unsqueeze(-1).to(student[0].dtype)
    n = m.sum() * student[0].shape[-1]
    return torch.stack([(((s - t) ** 2) * m).sum() / n for s, t in zip(student, teacher, strict=True)]).mean()


def layer_student_name(keep: list[int]) -> str:
    return "student_l" + "_".join(str(i) for i in keep)


@dataclass
class StudentSpec:
    """One student to train: the small BERT (`init` of its embeddings) or a layer-dropped teacher (`keep`)."""

    name: str
    kd: bool
    init: Init = "teacher"
    keep: list[int] | None = None


def student_specs(cfg: TextDistillConfig) -> list[StudentSpec]:
    specs = [
        StudentSpec("student", True, cfg.student_init),
        StudentSpec("student_no_kd", False, cfg.student_init),
    ]
    if cfg.compare_init:
        other: Init = "random" if cfg.student_init == "teacher" else "teacher"
        specs.append(StudentSpec(f"student_{other}_init", True, other))
    for keep in cfg.layer_students:
        name = layer_student_name(keep)
        specs.append(StudentSpec(name, True, keep=list(keep)))
        if cfg.no_kd_students:
            specs.append(StudentSpec(f"{name}_no_kd", False, keep=list(keep)))
    return specs


def train_students(
    cfg: TextDistillConfig,
    s_cfg: TextStudentConfig,
    ts: TransferSet,
    teacher_hf: Any,
    labels: list[str],
    y_val: np.ndarray,
    history: dict[str, Any],
) -> dict[str, nn.Module]:
    """Every student of `student_specs`, trained on the same transfer set; histories go to `history`.
    Early stopping on validation macro-F1, the figure reported (validation CE turns up early while F1
    still improves)."""
    k, L = len(labels), cfg.max_length
    hinton = LOSSES.get("hinton")
    pad = ts.tokenizer.pad_token_id
    to_teacher = torch.as_tensor(ts.kept) if ts.kept is not None else torch.arange(len(ts.tokenizer))
    n_teacher = teacher_hf.config.num_hidden_layers

    def make_student(spec: StudentSpec) -> nn.Module:
        torch.manual_seed(cfg.seed)
        if spec.keep is not None:
            if spec.keep[-1] >= n_teacher:
                raise ConfigError(
                    f"layer_students: {spec.keep} asks for layers the {n_teacher}-layer teacher lacks"
                )
            return Logits(layer_dropped_student(teacher_hf, spec.keep, ts.kept, L), pad)
        m = build_student(s_cfg, len(ts.tokenizer), labels, L)
        if spec.init == "teacher":
            project_embeddings(m, teacher_hf, ts.kept)
        return Logits(m, pad)

    def kd_step(m: nn.Module, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        return hinton(m(xb), tb[:, 1:], tb[:, 0].long(), temperature=cfg.temperature, alpha=cfg.alpha)

    def hidden_kd_step(keep: list[int]) -> StepLoss:
        def step(m: nn.Module, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
            mask = xb != pad
            width = max(1, int(mask.sum(dim=1).max()))
            ids, am = xb[:, :width], mask[:, :width].long()
            out = m.model(input_ids=ids, attention_mask=am, output_hidden_states=True)
            with torch.no_grad():  # the teacher is in eval mode since its fine-tuning ended
                t_states = teacher_hf(input_ids=to_teacher[ids], attention_mask=am, output_hidden_states=True)
            hidden = hidden_state_mse(
                out.hidden_states[1:], [t_states.hidden_states[i + 1] for i in keep], am
            )
            logits = hinton(
                out.logits, tb[:, 1:], tb[:, 0].long(), temperature=cfg.temperature, alpha=cfg.alpha
            )
            return logits + cfg.hidden_kd * hidden

        return step

    def val_f1_loss(m: nn.Module) -> float:
        return 1.0 - macro_f1(y_val, predict(m, ts.x["val"], 256).argmax(1).numpy(), k)

    small = _train_cfg(cfg, cfg.student_epochs, cfg.student_lr, cfg.student_patience, 1e-4)
    layered = _train_cfg(cfg, cfg.layer_student_epochs, cfg.layer_student_lr, cfg.student_patience, 0.01)
    students: dict[str, nn.Module] = {}
    for spec in student_specs(cfg):
        step: StepLoss = _ce_step
        if spec.kd:
            step = hidden_kd_step(spec.keep) if spec.keep is not None and cfg.hidden_kd > 0 else kd_step
        students[spec.name] = make_student(spec)
        history[spec.name] = fit(
            students[spec.name],
            ts.x_train,
            ts.kd_targets if spec.kd else ts.y_train,
            step,
            val_f1_loss,
            layered if spec.keep is not None else small,
            spec.name,
        )
    return students
