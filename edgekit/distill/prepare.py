"""Sensor data preparation: load, split without leakage, normalize on training rows, window each split.

Labels are class indices (-1: unlabelled). Unlabelled training windows stay in the transfer set (the
teacher labels them); validation and test keep only labelled windows, since they choose thresholds and
measure quality.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from edgekit.data import Normalizer, SensorTable, WindowSet, load_csv, load_dataset, make_windows, split_table
from edgekit.data.labels import BINARY_CLASSES, UNLABELLED, keep_labels, resolve_normal
from edgekit.distill.config import DATASET_DEFAULTS, DistillConfig, Mode
from edgekit.distill.teacher_outputs import load_teacher_outputs
from edgekit.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    table: SensorTable
    mode: Mode
    window: int
    hop: int
    norm: Normalizer
    train: WindowSet
    val: WindowSet
    test: WindowSet
    classes: list[str] = field(default_factory=lambda: list(BINARY_CLASSES))
    # index of the normal class (anomaly = any other class); None: K > 2 classes without one
    normal: int | None = 0
    # a black-box teacher's class probabilities per data row (NaN where it gave none)
    teacher_probs: np.ndarray | None = None
    teacher_hard: bool = False
    # the .ts problem (e.g. "PLAID") when windows come from labelled series; `end_row` is then the series
    series_problem: str | None = None

    @property
    def labelled_train(self) -> np.ndarray:
        """Mask of training windows that carry a label."""
        if self.train.y is None:
            return np.zeros(len(self.train), bool)
        return self.train.y != UNLABELLED


def tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def _load(cfg: DistillConfig) -> SensorTable:
    if bool(cfg.dataset) == bool(cfg.csv):
        raise DataError("give exactly one of --dataset or --csv")
    if cfg.dataset:
        table = load_dataset(cfg.dataset)
    else:
        table = load_csv(
            cfg.csv,
            label_column=cfg.label_column,
            timestamp_column=cfg.timestamp_column,
            channels=cfg.channels,
        )
    if cfg.max_rows and cfg.max_rows < len(table):
        if table.ordered:
            table = table.take(slice(0, cfg.max_rows))
        else:
            rng = np.random.default_rng(cfg.seed)
            table = table.take(np.sort(rng.choice(len(table), cfg.max_rows, replace=False)))
    return table


def prepare(cfg: DistillConfig) -> Prepared:
    """Load, split (no leakage), fit normalization on train rows only, and window each split separately."""
    table = _load(cfg)
    defaults = DATASET_DEFAULTS.get(cfg.dataset or "", {})
    window = cfg.window or defaults.get("window", 1 if not table.ordered else 32)
    hop = cfg.hop or defaults.get("hop", max(1, window // 4))
    if not table.ordered and window != 1:
        raise DataError(
            f"{table.name}: rows are independent readings, so windows must have length 1 (got {window})"
        )
    has_labels = table.labels is not None or cfg.teacher_outputs is not None
    mode: Mode = cfg.mode or defaults.get("mode") or ("supervised" if has_labels else "unsupervised")
    if mode == "supervised" and not has_labels:
        raise DataError(
            "supervised mode needs a --label-column or --teacher-outputs; use --mode unsupervised for unlabelled data"
        )
    teacher_probs, hard = None, False
    if cfg.teacher_outputs:
        labelled = table.labels is not None
        teacher_probs, hard = load_teacher_outputs(
            cfg.teacher_outputs, len(table), table.classes if labelled else None
        )
        if not labelled and teacher_probs.shape[1] != 2:
            table.classes = [str(i) for i in range(teacher_probs.shape[1])]
    normal = resolve_normal(table.classes, cfg.normal_class, table.name)
    splits = split_table(table, cfg.fractions, seed=cfg.seed)
    if cfg.label_fraction < 1.0 and splits.train.labels is not None:
        splits.train.labels = keep_labels(splits.train.labels, cfg.label_fraction, cfg.seed)
    norm = Normalizer.fit(splits.train.values)
    # The training split is windowed densely (hop 1): every extra window is free transfer data for
    # the student, since the teacher labels it. Validation and test use the deployed hop.
    ws = [make_windows(splits.train, window, 1 if table.ordered else hop)] + [
        make_windows(s, window, hop) for s in (splits.val, splits.test)
    ]
    for w in ws:
        w.x = norm(w.x)
    for i in (1, 2):
        if ws[i].y is not None and (ws[i].y == UNLABELLED).any():
            keep = ws[i].y != UNLABELLED
            ws[i] = WindowSet(ws[i].x[keep], ws[i].y[keep], ws[i].end_row[keep])
    if mode == "supervised" and cfg.teacher_outputs is None and not (ws[0].y != UNLABELLED).any():
        raise DataError(f"{table.name}: no labelled training rows and no --teacher-outputs to learn from")
    if mode == "supervised" and cfg.teacher_outputs is None and len(table.classes) == 2:
        for name, w in zip(("training", "validation", "test"), ws, strict=True):
            if w.y is None or not (w.y == 1 - (normal or 0)).any():
                raise DataError(
                    f"{table.name}: the {name} split has no anomalies to {'learn from' if name == 'training' else 'evaluate on'}"
                    + (
                        " (they all fall in one time segment; try --mode unsupervised)"
                        if table.ordered
                        else ""
                    )
                )
    if mode == "supervised":
        check_labelled(table, ws[0], cfg.teacher_outputs is not None)
    return Prepared(table, mode, window, hop, norm, *ws, list(table.classes), normal, teacher_probs, hard)


def check_labelled(table: SensorTable, train: WindowSet, blackbox: bool, warn_only: bool = False) -> None:
    """Enough labelled training windows per class; a class with fewer than 2 is named (warned about
    while the others suffice or `warn_only`, refused otherwise)."""
    y = np.zeros(0, np.int64) if train.y is None else train.y[train.y != UNLABELLED]
    if blackbox:
        return
    if len(y) == 0:
        raise DataError(f"{table.name}: no labelled training rows and no --teacher-outputs to learn from")
    counts = np.bincount(y, minlength=len(table.classes))
    scarce = [f"'{c}' ({n})" for c, n in zip(table.classes, counts, strict=True) if n < 2]
    if not scarce:
        return
    if (counts >= 2).sum() < 2 and not warn_only:
        raise DataError(
            f"{table.name}: class {', '.join(scarce)} has fewer than 2 labelled training windows, "
            "and fewer than 2 classes have enough"
        )
    log.warning("%s: class %s has fewer than 2 labelled training windows", table.name, ", ".join(scarce))
