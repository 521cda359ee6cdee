"""Sensor data preparation: load, split without leakage, normalize on training rows, window each split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edgekit.data import Normalizer, SensorTable, WindowSet, load_csv, load_dataset, make_windows, split_table
from edgekit.distill.config import DATASET_DEFAULTS, DistillConfig, Mode
from edgekit.errors import DataError


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
    splits = split_table(table, cfg.fractions, seed=cfg.seed)
    norm = Normalizer.fit(splits.train.values)
    # The training split is windowed densely (hop 1): every extra window is free transfer data for
    # the student, since the teacher labels it. Validation and test use the deployed hop.
    ws = [make_windows(splits.train, window, 1 if table.ordered else hop)] + [
        make_windows(s, window, hop) for s in (splits.val, splits.test)
    ]
    for w in ws:
        w.x = norm(w.x)
    if mode == "supervised" and cfg.teacher_outputs is None:
        for name, w in zip(("training", "validation", "test"), ws, strict=True):
            if w.y is None or not w.y.any():
                raise DataError(
                    f"{table.name}: the {name} split has no anomalies to {'learn from' if name == 'training' else 'evaluate on'}"
                    + (
                        " (they all fall in one time segment; try --mode unsupervised)"
                        if table.ordered
                        else ""
                    )
                )
    return Prepared(table, mode, window, hop, norm, *ws)
