"""The numpy work around a sensor model: normalize raw windows before it, turn its outputs into scores after.

One object so that the device Engine and a benchmark's eager-torch variant run exactly the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class WindowStages:
    """`preprocess`: raw windows [B, W, C] -> normalized input; `postprocess`: outputs [B, K] -> scores [B]."""

    def __init__(
        self,
        channels: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        input_dtype: type = np.float32,
        softmax: bool = True,
        normal_index: int | None = None,
    ) -> None:
        self.mean = np.zeros((1, 1, channels), np.float32)
        self.inv_std = np.ones((1, 1, channels), np.float32)
        if mean is not None and std is not None:
            self.mean = np.asarray(mean, dtype=np.float32).reshape(1, 1, channels)
            self.inv_std = (1.0 / np.asarray(std, dtype=np.float32)).reshape(1, 1, channels)
        self.input_dtype = input_dtype
        self.softmax = softmax
        self.normal_index = normal_index

    def preprocess(self, windows: np.ndarray) -> np.ndarray:
        """Raw windows [B, W, C] -> normalized model input in the model's dtype."""
        x = (np.asarray(windows, dtype=np.float32) - self.mean) * self.inv_std
        return x if self.input_dtype is np.float32 else x.astype(self.input_dtype)

    def postprocess(self, out: np.ndarray) -> np.ndarray:
        """Model outputs -> anomaly scores: softmax probability of class 1, or the single output as is."""
        if self.softmax:
            z = out - out.max(axis=1, keepdims=True)
            e = np.exp(z)
            if out.shape[1] == 2 and self.normal_index is None:
                return e[:, 1] / e.sum(axis=1)
            return anomaly_score(e / e.sum(axis=1, keepdims=True), self.normal_index)
        return out[:, 0]

    @staticmethod
    def top_class(out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class logits [B, K] -> the most probable class index and its softmax probability, per window."""
        idx = out.argmax(axis=1)
        z = out - out.max(axis=1, keepdims=True)
        return idx, 1.0 / np.exp(z).sum(axis=1)


def anomaly_score(probs: np.ndarray, normal: int | None) -> np.ndarray:
    """Class probabilities [B, K] -> anomaly score: P(not normal) (for two classes the other class's
    probability), or the top class's probability when no class is normal."""
    if normal is None:
        return probs.max(axis=1)
    if probs.shape[1] == 2:
        return probs[:, 1 - normal]
    return 1.0 - probs[:, normal]
