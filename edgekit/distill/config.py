"""What a distillation run is asked to do: typed configs for both kinds, the run file (`--config`) and
the effective config each run writes into RUN_DIR so `--config RUN_DIR/config.yaml` repeats it.

Imports no torch, so the CLI can read configs and defaults on a device install.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from edgekit.config import from_dict, load_yaml, to_dict
from edgekit.errors import ConfigError

C = TypeVar("C")

Mode = Literal["supervised", "unsupervised"]
TEXT_DATASETS = ("chatterbot", "rotten_tomatoes")
SENSOR_DATASETS = ("shuttle", "mitdb", "daphnet", "plaid", "acsf1")
# Text defaults that the CLI's help quotes without importing transformers (TextDistillConfig uses them).
TEXT_TEACHER_EPOCHS = 5
TEXT_STUDENT_EPOCHS = 30
TEXT_MAX_LENGTH = 32
CONFIG_FILE = "config.yaml"
# Fields holding paths: written absolute into RUN_DIR/config.yaml, so the copy works from any directory.
PATH_FIELDS = ("csv", "teacher_outputs", "teacher_dir")

# Window, hop and mode that suit each shipped dataset (Shuttle rows are independent readings).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "shuttle": {"window": 1, "hop": 1, "mode": "supervised"},
    "mitdb": {"window": 256, "hop": 8, "mode": "unsupervised"},
    "daphnet": {"window": 64, "hop": 16, "mode": "unsupervised"},
    # labelled series (.ts files): windows cut from each series. A PLAID series is about one mains cycle
    # of current (100 to 1,344 readings), so a window spans the shortest series whole
    "plaid": {"window": 100, "hop": 25, "mode": "supervised"},
    "acsf1": {"window": 128, "hop": 64, "mode": "supervised"},
}


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
    temperature: float = 4.0
    alpha: float = 0.5
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


def check_kd(cfg: Any, name: Any = None) -> None:
    """KD settings in range; `name(field)` says where a value came from (a flag or a file's field)."""
    name = name or (lambda f: f)
    if not 0.0 <= cfg.alpha <= 1.0:
        raise ConfigError(f"{name('alpha')} must be in [0, 1], got {cfg.alpha}")
    if not 0.0 < getattr(cfg, "label_fraction", 1.0) <= 1.0:
        raise ConfigError(f"{name('label_fraction')} must be in (0, 1], got {cfg.label_fraction}")
    if cfg.temperature <= 0:
        raise ConfigError(f"{name('temperature')} must be > 0, got {cfg.temperature}")


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
