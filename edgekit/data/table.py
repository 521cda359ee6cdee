"""The in-memory form of a sensor recording: rows of channels, optional labels and timestamps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SensorTable:
    """`values` is [rows, channels] float32; `labels` a class index per row (-1: unlabelled) or None;
    rows are time-ordered if `ordered`."""

    name: str
    values: np.ndarray
    channels: list[str]
    labels: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    # False for independent readings (e.g. Shuttle): splits are stratified, not time-ordered.
    ordered: bool = True
    # 0-based row numbers in the source data (kept through splits, so outputs can be matched to rows).
    rows: np.ndarray | None = None
    # class names indexed by `labels`; binary tables are normal (0) / anomaly (1)
    classes: list[str] = field(default_factory=lambda: ["normal", "anomaly"])

    def __post_init__(self) -> None:
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        if self.values.ndim != 2 or self.values.shape[1] != len(self.channels):
            raise ValueError(f"values must be [rows, {len(self.channels)}], got {self.values.shape}")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self),):
                raise ValueError("labels must have one entry per row")
        if self.rows is None:
            self.rows = np.arange(len(self), dtype=np.int64)

    def __len__(self) -> int:
        return self.values.shape[0]

    def take(self, index: np.ndarray | slice, suffix: str = "") -> SensorTable:
        return SensorTable(
            name=self.name + suffix,
            values=self.values[index],
            channels=list(self.channels),
            labels=None if self.labels is None else self.labels[index],
            timestamps=None if self.timestamps is None else self.timestamps[index],
            ordered=self.ordered,
            rows=self.rows[index],
            classes=list(self.classes),
        )

    @property
    def anomaly_rate(self) -> float | None:
        if self.labels is None:
            return None
        known = self.labels[self.labels >= 0]
        return float((known != 0).mean()) if len(known) else 0.0
