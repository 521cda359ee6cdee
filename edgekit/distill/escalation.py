"""The text confidence-escalation policy (numpy only): statements the student is unsure of go to the
teacher. The multi-class figures (accuracy, macro-F1, per-class P/R/F1, bootstrap intervals) are in
`edgekit.metrics`; tables in `edgekit.distill.report`."""

from __future__ import annotations

import numpy as np

from edgekit.metrics import macro_f1


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
