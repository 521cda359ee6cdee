"""Detection and classification metrics in plain numpy (no scikit-learn, no torch), shared by training,
export gates and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# the low false-alarm rate at which model_metrics reports recall
LOW_FAR = 0.01


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve via the rank statistic (ties get average ranks). None with one class."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def confusion(y: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)
    tp = int((y & pred).sum())
    fp = int((~y & pred).sum())
    fn = int((y & ~pred).sum())
    tn = int((~y & ~pred).sum())
    return tp, fp, fn, tn


def prf(y: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """Precision, recall, F1 and accuracy; None where undefined (no positives at all)."""
    tp, fp, fn, tn = confusion(y, pred)
    precision = tp / (tp + fp) if tp + fp else (None if tp + fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else None
    f1 = None if recall is None else 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / len(y) if len(y) else None,
        "false_alarm_rate": fp / (fp + tn) if fp + tn else None,
    }


def best_f1_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """Threshold maximizing F1 on (validation) data; decisions are `score >= threshold`."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order]
    tp = np.cumsum(yy)
    fp = np.cumsum(~yy)
    f1 = 2 * tp / (tp + fp + yy.sum())
    # only cut between distinct scores
    distinct = np.r_[s[1:] != s[:-1], True]
    best = int(np.argmax(np.where(distinct, f1, -1)))
    return float(s[best])


def far_threshold(normal_scores: np.ndarray, false_alarm_rate: float) -> float:
    """Threshold at which a fraction `false_alarm_rate` of normal windows would alarm (label-free)."""
    return float(np.quantile(normal_scores, 1.0 - false_alarm_rate, method="higher"))


def recall_at_far(y: np.ndarray, score: np.ndarray, far: float) -> float | None:
    """Recall when the threshold is set so that `far` of the normal test windows alarm."""
    y = np.asarray(y).astype(bool)
    if not y.any() or y.all():
        return None
    thr = far_threshold(score[~y], far)
    return float((score[y] > thr).mean())


def percentiles(samples_ms: np.ndarray, qs: tuple[float, ...] = (50, 90, 95, 99, 99.9)) -> dict[str, float]:
    """Latency percentiles with numpy's default (linear) interpolation, keyed 'p50', 'p99.9', ..."""
    a = np.asarray(samples_ms, dtype=np.float64)
    out = {}
    for q in qs:
        key = f"p{q:g}"
        out[key] = float(np.percentile(a, q)) if len(a) else float("nan")
    return out


def bootstrap_ci(
    y: np.ndarray, pred: np.ndarray, metric: str = "f1", n: int = 500, seed: int = 0
) -> tuple[float, float] | None:
    """95% bootstrap interval of a prf() metric over resampled windows (None when it is never defined)."""
    return bootstrap_interval(len(y), lambda idx: prf(y[idx], pred[idx])[metric], n, seed)


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


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.asarray(a) == np.asarray(b)).mean())


def confusion_matrix(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """[k, k] counts, rows = true class, columns = predicted class."""
    return np.bincount(np.asarray(y) * k + np.asarray(pred), minlength=k * k).reshape(k, k)


def per_class_prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    _p, _r, f1, support = per_class_prf(cm)
    present = (support > 0) | (cm.sum(axis=0) > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def classification_metrics(y: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    k = len(labels)
    cm = confusion_matrix(y, pred, k)
    precision, recall, f1, support = per_class_prf(cm)
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
    n_items: int, stat: Callable[[np.ndarray], float | None], n: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of `stat(idx)` over `n` resamples (with replacement) of item indices;
    resamples where the statistic is undefined (None) are left out, and None is returned if all are."""
    rng = np.random.default_rng(seed)
    vals = [v for v in (stat(rng.integers(0, n_items, n_items)) for _ in range(n)) if v is not None]
    if not vals:
        return None
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))
