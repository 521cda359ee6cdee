"""What a distillation run is asked to do: typed configs for both kinds, the run file (`--config`) and
the effective config each run writes into RUN_DIR so `--config RUN_DIR/config.yaml` repeats it.

Imports no torch, so the CLI can read configs and defaults on a device install.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from edgekit.config import from_dict, load_yaml, to_dict
from edgekit.errors import ConfigError

C = TypeVar("C")

Mode = Literal["supervised", "unsupervised"]
TEXT_DATASETS = ("chatterbot", "rotten_tomatoes")
SENSOR_DATASETS = ("shuttle", "mitdb", "daphnet", "plaid", "acsf1", "japanesevowels")
# Text defaults that the CLI's help quotes without importing transformers (TextDistillConfig uses them).
TEXT_TEACHER_EPOCHS = 5
TEXT_STUDENT_EPOCHS = 30
TEXT_MAX_LENGTH = 32
CONFIG_FILE = "config.yaml"
# Fields holding paths: written absolute into RUN_DIR/config.yaml, so the copy works from any directory.
PATH_FIELDS = ("csv", "teacher_outputs", "teacher_dir")

# The label-scarce recipe of benchmarks/research/kd_label_scarce for labelled series: a rocket teacher,
# an augmented transfer set, T 2, alpha 0.3.
SERIES_RECIPE: dict[str, Any] = {"teacher": "rocket", "augment": "default", "temperature": 2.0, "alpha": 0.3}
# Window, hop, mode and training recipe that suit each shipped dataset (Shuttle rows are independent
# readings). Keys beyond window/hop/mode fill DistillConfig fields left at None (see `resolve`).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "shuttle": {"window": 1, "hop": 1, "mode": "supervised"},
    "mitdb": {"window": 256, "hop": 8, "mode": "unsupervised"},
    "daphnet": {"window": 64, "hop": 16, "mode": "unsupervised"},
    # labelled series (.ts files): each series resampled to one window of this length (PLAID: about one
    # mains cycle of current, 100 to 1,344 readings; ACSF1: 1,460 power readings)
    "plaid": {"window": 256, "hop": 256, "mode": "supervised", **SERIES_RECIPE},
    "acsf1": {"window": 512, "hop": 512, "mode": "supervised", **SERIES_RECIPE},
    # 12 channels, 7 to 29 frames per utterance: stretched to 32, the next power of two
    "japanesevowels": {"window": 32, "hop": 32, "mode": "supervised", **SERIES_RECIPE},
}
# what a field left at None becomes when the dataset names nothing (CSV data, Shuttle, MIT-BIH)
GENERAL_DEFAULTS: dict[str, Any] = {"teacher": "tcn", "augment": "none", "temperature": 4.0, "alpha": 0.5}
# optimizer steps of each student when the transfer set is augmented (epochs mean little over views;
# equal steps give the KD and no-KD students the same budget)
AUGMENTED_STEPS = 2000
Augment = Literal["none", "default"]
TEACHERS = ("tcn", "rocket")


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 6
    seed: int = 0


@dataclass
class DistillConfig:
    out: str
    dataset: str | None = None
    csv: str | None = None
    label_column: str | None = None
    timestamp_column: str | None = None
    channels: list[str] | None = None
    window: int | None = None
    hop: int | None = None
    mode: Mode | None = None
    teacher_outputs: str | None = None
    # the class whose absence is an anomaly (K-class labels); defaults to a class named "normal"
    normal_class: str | None = None
    # keep the labels of this share of training rows (seeded), hide the rest: label-scarce experiments
    label_fraction: float = 1.0
    # None: the dataset's recipe (DATASET_DEFAULTS), else GENERAL_DEFAULTS; `resolve` fills them in
    temperature: float | None = None
    alpha: float | None = None
    # teacher kind: "tcn" (trained by gradient) or "rocket" (random convolutions + linear head)
    teacher: str | None = None
    # augmented views of every training window in the student's transfer set ("default": augment_views)
    augment: Augment | None = None
    augment_views: int = 10
    # --mode unsupervised: graded perturbed copies of each normal window in the student's transfer set
    # (edgekit.distill.perturb); MIT-BIH: 2 -> 10 raised the student's validation rank agreement with the
    # teacher from 0.81 to 0.88 (benchmarks/research/mitdb_recall)
    perturbed_copies: int = 10
    # student optimizer steps (None: epochs with early stopping, or AUGMENTED_STEPS when augmenting)
    student_steps: int | None = None
    # choose temperature and alpha on validation from a small grid (edgekit.distill.tune)
    tune: bool = False
    # rocket teacher: refit its head with unlabelled series it predicts at least this confidently (0: off)
    teacher_self_train: float = 0.0
    false_alarm_rate: float = 0.01
    seed: int = 0
    max_rows: int | None = None
    teacher_epochs: int = 40
    student_epochs: int = 60
    batch_size: int = 256
    teacher_hidden: int = 192
    student_hidden: int = 16
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    train: TrainConfig = field(default_factory=TrainConfig)
    # the cascade rule (edgekit.escalation): an escalation rate or a share of the teacher's quality
    # on validation (neither: rate 0.1), and classes whose windows always escalate
    escalate_rate: float | None = None
    escalate_for_quality: float | None = None
    severe_classes: list[str] = field(default_factory=list)


def check_kd(cfg: Any, name: Any = None) -> None:
    """KD settings in range; `name(field)` says where a value came from (a flag or a file's field)."""
    name = name or (lambda f: f)
    if cfg.alpha is not None and not 0.0 <= cfg.alpha <= 1.0:
        raise ConfigError(f"{name('alpha')} must be in [0, 1], got {cfg.alpha}")
    if not 0.0 < getattr(cfg, "label_fraction", 1.0) <= 1.0:
        raise ConfigError(f"{name('label_fraction')} must be in (0, 1], got {cfg.label_fraction}")
    if cfg.temperature is not None and cfg.temperature <= 0:
        raise ConfigError(f"{name('temperature')} must be > 0, got {cfg.temperature}")
    if getattr(cfg, "teacher", None) not in (None, *TEACHERS):
        raise ConfigError(f"{name('teacher')} must be one of {', '.join(TEACHERS)}, got {cfg.teacher!r}")
    if getattr(cfg, "augment_views", 1) < 1:
        raise ConfigError(f"{name('augment_views')} must be >= 1, got {cfg.augment_views}")
    if getattr(cfg, "perturbed_copies", 1) < 1:
        raise ConfigError(f"{name('perturbed_copies')} must be >= 1, got {cfg.perturbed_copies}")


def resolve(cfg: DistillConfig) -> DistillConfig:
    """`cfg` with every field left at None that has a recipe default filled in: the dataset's
    (DATASET_DEFAULTS), else the general one; the student's steps when the transfer set is augmented."""
    recipe = {**GENERAL_DEFAULTS, **DATASET_DEFAULTS.get(cfg.dataset or "", {})}
    filled = {k: recipe[k] for k in GENERAL_DEFAULTS if getattr(cfg, k) is None}
    out = replace(cfg, **filled)
    if out.teacher_outputs and out.augment != "none":
        raise ConfigError(
            f"--augment {out.augment}: the teacher is queried on each augmented view, and --teacher-outputs "
            "holds outputs for the real rows only; use --augment none with a black-box teacher"
        )
    if out.student_steps is None and out.augment != "none":
        out = replace(out, student_steps=AUGMENTED_STEPS)
    check_kd(out)
    return out


def is_text(dataset: Any) -> bool:
    return dataset in TEXT_DATASETS


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """The settings in a run file (`--config`), {} without one; ConfigError names the file."""
    if path is None:
        return {}
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of settings, got {type(data).__name__}")
    return data


def build_config(cls: type[C], data: dict[str, Any], where: str, overrides: dict[str, Any]) -> C:
    """`cls` (DistillConfig or TextDistillConfig) from a run file's `data` with `overrides` (flags given
    on the command line, by field name) taking precedence; errors name the flag or the file's field."""
    merged = {**data, **overrides}
    if "out" not in merged:
        raise ConfigError(f"{where}: no output folder (give --out, or 'out:' in a config file)")
    cfg = from_dict(cls, merged, where=where)

    def name(f: str) -> str:
        return f"--{f.replace('_', '-')}" if f in overrides else f"{where}: field '{f}'"

    check_kd(cfg, name)
    return cfg


def write_config(out: Path, cfg: Any) -> Path:
    """Write the run's effective config to RUN_DIR/config.yaml (without `out`: a repeat names its own)."""
    data = to_dict(cfg)
    data.pop("out", None)
    for key in PATH_FIELDS:
        if data.get(key):
            data[key] = str(Path(data[key]).resolve())
    path = Path(out) / CONFIG_FILE
    header = (
        "# The effective config of this run (defaults filled in). Repeat it with:\n"
        f"#   edgekit distill --config {path} --out NEW_RUN_DIR\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
