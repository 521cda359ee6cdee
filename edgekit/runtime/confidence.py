"""How sure the student is of a window: the confidence measures of the cascade rule (numpy only).

Shared by the device (which escalates windows whose confidence is below the bundle's threshold) and the
training side (which picks the measure and threshold on validation), so both compute the same number.
Higher always means surer.
"""

from __future__ import annotations

import numpy as np

MEASURES = ("max_prob", "margin", "neg_entropy", "score_distance")


def confidence(
    measure: str, probs: np.ndarray | None = None, score: np.ndarray | None = None, threshold: float = 0.5
) -> np.ndarray:
    """Confidence per row. Classifier measures take `probs` [N, K] (rows sum to 1); `score_distance`
    takes label-free `score` [N] and the decision `threshold`."""
    if measure == "score_distance":
        if score is None:
            raise ValueError("score_distance needs the scores")
        return np.abs(np.asarray(score, dtype=np.float64) - threshold)
    if probs is None:
        raise ValueError(f"{measure} needs class probabilities")
    p = np.asarray(probs, dtype=np.float64)
    if measure == "max_prob":
        return p.max(axis=1)
    if measure == "margin":
        if p.shape[1] < 2:
            return np.ones(len(p))
        top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
        return top2[:, 1] - top2[:, 0]
    if measure == "neg_entropy":
        return (p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1)
    raise ValueError(f"unknown confidence measure {measure!r} (known: {', '.join(MEASURES)})")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits [N, K], computed stably (the device's and the exporter's softmax)."""
    z = np.asarray(logits, np.float64) - np.max(logits, axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def severe_in_sight(probs: np.ndarray, severe: np.ndarray, min_probability: float) -> np.ndarray:
    """Rows that escalate whatever the confidence: the top class is one of the `severe` class indices, or
    a severe class has probability >= `min_probability`."""
    if not len(severe):
        return np.zeros(len(probs), bool)
    return np.isin(probs.argmax(axis=1), severe) | (probs[:, severe] >= min_probability).any(axis=1)
