"""Sensor detection figures of one model on the held-out test split (numpy only; tables: `report`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.metrics import bootstrap_ci, prf, recall_at_far, roc_auc

LOW_FAR = 0.01


def model_metrics(y: np.ndarray | None, score: np.ndarray, threshold: float) -> dict[str, Any]:
    """Quality at the validation-chosen threshold; None for figures that need test labels."""
    out: dict[str, Any] = {"threshold": float(threshold)}
    keys = (
        "f1",
        "precision",
        "recall",
        "accuracy",
        "false_alarm_rate",
        "roc_auc",
        f"recall_at_{LOW_FAR:.0%}_far",
        "f1_ci95",
    )
    if y is None:
        return out | dict.fromkeys(keys)
    pred = score >= threshold
    out |= prf(y, pred)
    out["roc_auc"] = roc_auc(y, score)
    out[f"recall_at_{LOW_FAR:.0%}_far"] = recall_at_far(y, score, LOW_FAR)
    out["f1_ci95"] = bootstrap_ci(y, pred) if y.any() else None
    return out
