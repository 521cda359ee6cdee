"""Multi-class figures for the text report (numpy only): accuracy, macro-F1, per-class P/R/F1, bootstrap
intervals and the confidence-escalation policy (the table is laid out in `report`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def confusion_matrix(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """[k, k] counts, rows = true class, columns = predicted class."""
    return np.bincount(np.asarray(y) * k + np.asarray(pred), minlength=k * k).reshape(k, k)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = support + predicted
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    return precision, recall, f1, support


def macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Unweighted mean F1 over the classes that occur in `y` or in `pred` (scikit-learn's convention)."""
    cm = confusion_matrix(y, pred, k)
    _p, _r, f1, support = _per_class(cm)
    present = (support > 0) | (cm.sum(axis=0) > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def classification_metrics(y: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    k = len(labels)
    cm = confusion_matrix(y, pred, k)
    precision, recall, f1, support = _per_class(cm)
    return {
        "accuracy": float((np.asarray(y) == np.asarray(pred)).mean()),
        "macro_f1": macro_f1(y, pred, k),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "confusion": cm.tolist(),
    }


def bootstrap_interval(
    n_items: int, stat: Callable[[np.ndarray], float], n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of `stat(idx)` over `n` resamples (with replacement) of item indices."""
    rng = np.random.default_rng(seed)
    vals = [stat(rng.integers(0, n_items, n_items)) for _ in range(n)]
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def escalation_threshold(confidence: np.ndarray, correct: np.ndarray, target_accuracy: float) -> float:
    """Lowest confidence threshold at which the statements kept (confidence >= threshold) are answered
    with at least `target_accuracy`, i.e. the policy that escalates the fewest statements. 0.0 when
    nothing needs escalating; above every confidence when no threshold reaches the target."""
    order = np.argsort(-confidence, kind="mergesort")
    conf, ok = confidence[order], np.asarray(correct, dtype=np.float64)[order]
    kept_accuracy = np.cumsum(ok) / np.arange(1, len(ok) + 1)
    distinct = np.r_[conf[1:] != conf[:-1], True]  # a cut must keep all statements of equal confidence
    feasible = np.flatnonzero(distinct & (kept_accuracy >= target_accuracy - 1e-12))
    if not feasible.size:
        return float(conf[0]) + 1e-6
    k = int(feasible.max())
    return 0.0 if k == len(conf) - 1 else float(conf[k])


def escalation_view(
    confidence: np.ndarray,
    student_pred: np.ndarray,
    teacher_pred: np.ndarray,
    y: np.ndarray,
    threshold: float,
    k: int,
) -> dict[str, float | None]:
    """What the 'route low-confidence statements to the teacher' policy does on one split."""
    escalate = confidence < threshold
    kept = ~escalate
    combined = np.where(escalate, teacher_pred, student_pred)
    return {
        "escalated_fraction": float(escalate.mean()),
        "student_accuracy_overall": float((student_pred == y).mean()),
        "student_accuracy_kept": float((student_pred[kept] == y[kept]).mean()) if kept.any() else None,
        "teacher_accuracy_on_escalated": float((teacher_pred[escalate] == y[escalate]).mean())
        if escalate.any()
        else None,
        "combined_accuracy": float((combined == y).mean()),
        "combined_macro_f1": macro_f1(y, combined, k),
    }
