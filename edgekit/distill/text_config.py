"""What a text distillation run is asked to do (`TextDistillConfig`) and its checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edgekit.data.text import MIN_CLASS_SIZE
from edgekit.distill.config import TEXT_DATASETS, TEXT_MAX_LENGTH, TEXT_STUDENT_EPOCHS, TEXT_TEACHER_EPOCHS
from edgekit.errors import ConfigError
from edgekit.models.text import TextStudentConfig

Init = Literal["teacher", "random"]


@dataclass
class TextDistillConfig:
    out: str
    dataset: str = "chatterbot"
    min_class_size: int = MIN_CLASS_SIZE
    classes: list[str] | None = None
    max_statements: int | None = None
    max_length: int = TEXT_MAX_LENGTH
    teacher_dir: str | None = None  # default: the installed all-MiniLM-L6-v2
    teacher_layers: int | None = None  # keep only the first N encoder layers (quick runs)
    teacher_epochs: int = TEXT_TEACHER_EPOCHS
    teacher_lr: float = 1e-4
    teacher_patience: int = 2
    # Frozen word embeddings: ~6x faster steps on CPU (the 30522x384 matrix dominates backward and
    # AdamW) and a common choice when fine-tuning on ~1k examples.
    freeze_teacher_embeddings: bool = True
    student_epochs: int = TEXT_STUDENT_EPOCHS
    student_lr: float = 1e-3
    student_patience: int = 8
    batch_size: int = 32
    temperature: float = 4.0
    alpha: float = 0.5
    student: TextStudentConfig | None = None  # default: TextStudentConfig()
    student_init: Init = "teacher"
    # DistilBERT-style students: each entry lists the fine-tuned teacher's encoder layers a student keeps
    # (e.g. [0, 2, 5] and [0, 5]); weights copied from the teacher, vocabulary shrunk like the small student's
    layer_students: list[list[int]] = field(default_factory=list)
    layer_student_lr: float = 1e-4  # they start from fine-tuned weights: a fine-tuning rate, not 1e-3
    layer_student_epochs: int = 10
    # weight of the hidden-state loss for layer students: MSE between each kept layer's output and the
    # output of the teacher layer it was copied from (0: logits KD only)
    hidden_kd: float = 0.0
    no_kd_students: bool = True  # also train every student without KD (the KD vs no-KD comparison)
    shrink_vocab: bool = True
    augment_copies: int = 2  # perturbed copies of the training set in the transfer set (0: none)
    augment_p_delete: float = 0.1
    augment_p_mask: float = 0.1
    # replace a one-piece word by one drawn from the training set's one-piece words (Tang et al. 2019
    # replace by part of speech; no tagger is installed, so the draw follows unigram frequency alone)
    augment_p_replace: float = 0.0
    compare_init: bool = False  # also distil a student with the other embedding init (extra report row)
    escalation_target: float | None = None  # default: the teacher's validation accuracy
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    bootstrap: int = 1000
    seed: int = 0


def check_text_config(cfg: TextDistillConfig) -> None:
    if cfg.dataset not in TEXT_DATASETS:
        raise ConfigError(
            f"dataset: {cfg.dataset!r} is not a text dataset (choose from {list(TEXT_DATASETS)})"
        )
    if cfg.max_length < 4:
        raise ConfigError(f"max_length must be >= 4 tokens, got {cfg.max_length}")
    if not 0.0 <= cfg.alpha <= 1.0 or cfg.temperature <= 0:
        raise ConfigError(f"alpha must be in [0, 1] and temperature > 0 (got {cfg.alpha}, {cfg.temperature})")
    if cfg.student_init not in ("teacher", "random"):
        raise ConfigError(f"student_init must be 'teacher' or 'random', got {cfg.student_init!r}")
    probs = (cfg.augment_p_delete, cfg.augment_p_mask, cfg.augment_p_replace)
    if cfg.augment_copies < 0 or min(probs) < 0 or sum(probs) > 1:
        raise ConfigError(
            "augment_copies must be >= 0 and augment_p_delete, augment_p_mask, augment_p_replace >= 0 "
            "with a sum <= 1"
        )
    for keep in cfg.layer_students:
        if not keep or sorted(set(keep)) != list(keep) or keep[0] < 0:
            raise ConfigError(f"layer_students: {keep} must list increasing teacher layer indices")
    if cfg.hidden_kd < 0:
        raise ConfigError(f"hidden_kd must be >= 0, got {cfg.hidden_kd}")
