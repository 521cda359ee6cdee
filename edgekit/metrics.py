"""Detection metrics in plain numpy (no scikit-learn), shared by training, export gates and benchmarks."""

from __future__ import annotations

import numpy as np


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
    """95% bootstrap interval of a prf() metric over resampled windows."""
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        v = prf(y[idx], pred[idx])[metric]
        if v is not None:
            vals.append(v)
    if not vals:
        return None
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))
