"""The text report (numpy only): the confidence-escalation policy and the Markdown table; the multi-class
figures themselves (accuracy, macro-F1, per-class P/R/F1, bootstrap intervals) are in `edgekit.metrics`."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.metrics import macro_f1

MODEL_ROWS = ("teacher", "student", "student_no_kd")


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


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _ci(ci: Any) -> str:
    return "-" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def render_text_table(report: dict[str, Any]) -> str:
    """Models side by side, per-class F1, then retention, size, KD verdict and escalation lines."""
    names = [n for n in (*MODEL_ROWS, *sorted(k for k in report.get("extra_rows", []))) if report.get(n)]
    lines = [
        "| model | params | size MB | torch ms | accuracy | accuracy 95% CI | macro-F1 | macro-F1 95% CI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        r = report[n]
        mb = None if r.get("bytes") is None else r["bytes"] / 2**20
        lines.append(
            f"| {n} | {r['params']:,} | {_f(mb, 2)} | {_f(r.get('torch_ms'), 2)} | {_f(r['accuracy'])} | "
            f"{_ci(r.get('accuracy_ci95'))} | {_f(r['macro_f1'])} | {_ci(r.get('macro_f1_ci95'))} |"
        )
    labels = report["labels"]
    lines += [
        "",
        "| class (test support) | " + " | ".join(f"{n} P/R/F1" for n in names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for c in labels:
        sup = report[names[0]]["per_class"][c]["support"]
        cells = [
            "/".join(_f(report[n]["per_class"][c][m], 2) for m in ("precision", "recall", "f1"))
            for n in names
        ]
        lines.append(f"| {c} ({sup}) | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"retention (student macro-F1 / teacher macro-F1): {_f(report.get('retention'))}; "
        f"teacher-student agreement: {_f(report.get('agreement'))}; "
        f"size ratio teacher/student: {_f(report.get('compression'), 1)}x params, {_f(report.get('compression_bytes'), 1)}x bytes"
    )
    verdict = report.get("kd_beats_no_kd")
    if verdict is not None:
        lines.append(
            "distilled student beats the same student without the teacher (macro-F1): "
            + ("yes" if verdict else "NO")
            + f"; difference {_f(report.get('kd_minus_no_kd_macro_f1'))}, paired 95% CI {_ci(report.get('kd_minus_no_kd_macro_f1_ci95'))}"
        )
    esc = report.get("escalation")
    if esc:
        t = esc["test"]
        lines.append(
            f"escalation (student confidence < {esc['threshold']:.3f}, chosen on validation for kept accuracy >= "
            f"{esc['target_accuracy']:.3f}): {t['escalated_fraction']:.1%} of test statements go to the teacher; student accuracy "
            f"{_f(t['student_accuracy_kept'])} on the rest vs {_f(t['student_accuracy_overall'])} overall; "
            f"student+teacher accuracy {_f(t['combined_accuracy'])}, macro-F1 {_f(t['combined_macro_f1'])}"
        )
    return "\n".join(lines)
