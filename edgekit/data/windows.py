"""Windowing, per-channel normalization fitted on training data only, and leakage-free splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.data.table import SensorTable
from edgekit.errors import DataError

STD_FLOOR = 1e-6


@dataclass
class WindowSet:
    """Raw (unnormalized) windows [M, window, channels], one class index per window (-1: unlabelled; or
    None), and the source row that ends each window."""

    x: np.ndarray
    y: np.ndarray | None
    end_row: np.ndarray

    def __len__(self) -> int:
        return self.x.shape[0]


def make_windows(table: SensorTable, window: int, hop: int) -> WindowSet:
    """Slice rows into windows of `window` rows every `hop` rows.

    Binary: a window's label is 1 when any reading that arrived since the previous window (its last
    `min(hop, window)` rows) is anomalous, so each labelled reading is attributed to the window that
    first sees it, as on the device; it is -1 (unlabelled) when none of those readings has a label.
    K > 2 classes: the label of the window's last reading (the fault type when it is scored).
    """
    if window < 1 or hop < 1:
        raise DataError(f"window ({window}) and hop ({hop}) must be >= 1")
    n = len(table)
    if n < window:
        raise DataError(f"{table.name}: {n} rows is fewer than one window of {window}")
    view = np.lib.stride_tricks.sliding_window_view(table.values, window, axis=0)[::hop]  # [M, C, W]
    x = np.ascontiguousarray(view.transpose(0, 2, 1))
    y = None
    if table.labels is not None and len(table.classes) > 2:
        y = table.labels[window - 1 :: hop][: len(x)].copy()
    elif table.labels is not None:
        fresh = min(hop, window)
        lab = np.lib.stride_tricks.sliding_window_view(table.labels, window)[::hop, window - fresh :]
        y = lab.max(axis=1).astype(np.int64)
    end_row = table.rows[window - 1 :: hop][: len(x)]
    return WindowSet(x=x, y=y, end_row=end_row)


@dataclass
class Normalizer:
    """Per-channel z-score; the statistics travel with the model in the bundle manifest."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Normalizer:
        flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
        std = flat.std(axis=0)
        std[std < STD_FLOOR] = 1.0  # constant channels pass through unscaled
        return cls(mean=flat.mean(axis=0).astype(np.float32), std=std.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


@dataclass
class Splits:
    train: SensorTable
    val: SensorTable
    test: SensorTable


def split_table(
    table: SensorTable, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 0
) -> Splits:
    """Disjoint train/val/test rows: contiguous in time for time series, stratified for independent rows."""
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) <= 0:
        raise DataError(f"split fractions {fractions} must be positive and sum to 1")
    n = len(table)
    if table.ordered:
        a = round(n * fractions[0])
        b = a + round(n * fractions[1])
        parts = [np.arange(0, a), np.arange(a, b), np.arange(b, n)]
    else:
        rng = np.random.default_rng(seed)
        classes = np.zeros(n, dtype=np.int64) if table.labels is None else table.labels
        parts_lists: list[list[np.ndarray]] = [[], [], []]
        for c in np.unique(classes):
            idx = rng.permutation(np.flatnonzero(classes == c))
            a = round(len(idx) * fractions[0])
            b = a + round(len(idx) * fractions[1])
            for k, chunk in enumerate((idx[:a], idx[a:b], idx[b:])):
                parts_lists[k].append(chunk)
        parts = [np.sort(np.concatenate(p)) for p in parts_lists]
    for name, idx in zip(("train", "validation", "test"), parts, strict=True):
        if len(idx) == 0:
            raise DataError(f"{table.name}: the {name} split is empty ({n} rows is too few)")
    return Splits(
        *(table.take(idx, f"[{k}]") for k, idx in zip(("train", "val", "test"), parts, strict=True))
    )
