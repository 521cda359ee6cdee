"""The distillation report for both kinds: teacher / student / student-without-KD side by side as a
Markdown table (readable in a terminal too), the summary lines, and report.json / report.md.

The figures themselves are computed elsewhere (`edgekit.metrics`: `model_metrics`, accuracy, macro-F1,
bootstrap intervals; `escalation`: the text escalation policy); this module only lays them out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.metrics import LOW_FAR

MODEL_ROWS = ("teacher", "student", "student_no_kd")


def torch_latency_ms(
    model: nn.Module, example: torch.Tensor, runs: int = 200, budget_s: float = 2.0
) -> float:
    """Median single-input eager-torch latency; a quick side-by-side figure (see `edgekit bench`). Stops
    after `budget_s` seconds of timed runs (at least 5), so a slow teacher does not dominate the run."""
    x = example[:1]
    with torch.no_grad():
        for _ in range(5):
            model(x)
        times: list[float] = []
        while len(times) < runs and (len(times) < 5 or sum(times) < budget_s):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _ci(ci: Any) -> str:
    return "-" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


def _summary(report: dict[str, Any], metric: str, size: str) -> str:
    return (
        f"retention (student {metric} / teacher {metric}): {_fmt(report.get('retention'))}; "
        f"teacher-student agreement: {_fmt(report.get('agreement'))}; "
        f"size ratio teacher/student: {size}"
    )


def _verdict(report: dict[str, Any], metric: str) -> str | None:
    verdict = report.get("kd_beats_no_kd")
    if verdict is None:
        return None
    return f"distilled student beats the same student without the teacher ({metric}): " + (
        "yes" if verdict else "NO"
    )


def render_table(report: dict[str, Any]) -> str:
    """A sensor report's models side by side, then retention, agreement, size and the KD verdict."""
    cols = [
        ("model", None),
        ("params", "params"),
        ("size KB", "bytes"),
        ("torch ms", "torch_ms"),
        ("F1", "f1"),
        ("precision", "precision"),
        ("anomaly recall", "recall"),
        ("ROC-AUC", "roc_auc"),
        (f"recall@{LOW_FAR:.0%}FAR", f"recall_at_{LOW_FAR:.0%}_far"),
    ]
    if report.get("classes"):
        cols.insert(4, ("macro-F1", "macro_f1"))
    rows = []
    for name in MODEL_ROWS:
        row = report.get(name)
        if not row:
            continue
        cells = [name]
        for _, key in cols[1:]:
            v = row.get(key)
            if key == "bytes" and v is not None:
                v = f"{v / 1024:.1f}"
            elif key == "torch_ms" and v is not None:
                v = f"{v:.3f}"
            cells.append(_fmt(v))
        rows.append(cells)
    lines = _table([c for c, _ in cols], rows)
    names = [n for n in MODEL_ROWS if report.get(n, {}).get("per_class")]
    classes = report.get("classes") or []
    if names:
        lines += ["", *_per_class_table(report, names, classes, ("precision", "recall"))]
        lines += ["", *_confusion_lines(report, names, classes)]
    for c in report.get("rare_classes") or []:
        recalls = ", ".join(f"{n} {_fmt(report[n]['per_class'][c]['recall'])}" for n in names)
        sup = report[names[0]]["per_class"][c]["support"]
        lines.append(f"rare class '{c}' (test support {sup}): recall {recalls}")
    published = report.get("published_accuracy")
    if published is not None:
        ours = ", ".join(f"{n} {_fmt(report[n].get('series_accuracy'))}" for n in names)
        theirs = ", ".join(f"{k} {v:.3f}" for k, v in published.items()) or "none shipped"
        lines.append(f"test accuracy per series: {ours}; published (aeon, official split): {theirs}")
    metric = "macro-F1" if report.get("quality_metric") == "macro_f1" else "F1"
    lines += ["", _summary(report, metric, f"{_fmt(report.get('compression'))}x")]
    if report.get("classes"):
        lines.append(
            f"labelled training windows: {report['labelled_rows']} of {report['windows']['train']} "
            f"({_fmt(report['labelled_fraction'])}); KD gain (macro-F1, student - student_no_kd): "
            f"{_fmt(report.get('kd_gain'))}"
        )
    aug = report.get("augment")
    if aug and aug.get("mode") != "none":
        lines.append(
            f"transfer set: {report['transfer_rows']} rows ({aug['views']} augmented views per training window, "
            f"teacher queried on each); no-KD baseline: {report.get('no_kd_rows')} rows"
        )
    tune = report.get("tune")
    if tune:
        lines.append(
            f"--tune: T {tune['temperature']:g}, alpha {tune['alpha']:g} chosen by {tune['metric']} "
            f"over {len(tune['grid'])} grid points"
        )
    verdict = _verdict(report, metric)
    if verdict is not None:
        lines.append(verdict)
    return "\n".join(lines)


def _per_class_table(
    report: dict[str, Any], names: Sequence[str], classes: Sequence[str], metrics: Sequence[str]
) -> list[str]:
    """One row per class: test support, then each model's figures ("P/R" or "P/R/F1")."""
    rows = []
    for c in classes:
        sup = report[names[0]]["per_class"][c]["support"]
        cells = ["/".join(_fmt(report[n]["per_class"][c][m], 2) for m in metrics) for n in names]
        rows.append([f"{c} ({sup})", *cells])
    tag = "/".join({"precision": "P", "recall": "R", "f1": "F1"}[m] for m in metrics)
    return _table(["class (test support)", *(f"{n} {tag}" for n in names)], rows)


def _confusion_lines(report: dict[str, Any], names: Sequence[str], classes: Sequence[str]) -> list[str]:
    """Each model's confusion matrix (rows: true class, columns: predicted), compact."""
    out = []
    for n in names:
        cm = report[n]["confusion"]
        out.append(f"{n} confusion (rows true, columns predicted; {', '.join(classes)}):")
        out += ["  " + " ".join(f"{v:>5d}" for v in row) for row in cm]
    return out


def render_text_table(report: dict[str, Any]) -> str:
    """A text report's models side by side, per-class F1, then retention, size, KD verdict and escalation."""
    names = [n for n in (*MODEL_ROWS, *sorted(k for k in report.get("extra_rows", []))) if report.get(n)]
    header = [
        "model",
        "params",
        "size MB",
        "torch ms",
        "accuracy",
        "accuracy 95% CI",
        "macro-F1",
        "macro-F1 95% CI",
    ]
    rows = []
    for n in names:
        r = report[n]
        mb = None if r.get("bytes") is None else r["bytes"] / 2**20
        rows.append(
            [
                n,
                f"{r['params']:,}",
                _fmt(mb, 2),
                _fmt(r.get("torch_ms"), 2),
                _fmt(r["accuracy"]),
                _ci(r.get("accuracy_ci95")),
                _fmt(r["macro_f1"]),
                _ci(r.get("macro_f1_ci95")),
            ]
        )
    lines = _table(header, rows)
    per_class = _per_class_table(report, names, report["labels"], ("precision", "recall", "f1"))
    lines += ["", *per_class, ""]
    size = f"{_fmt(report.get('compression'), 1)}x params, {_fmt(report.get('compression_bytes'), 1)}x bytes"
    lines.append(_summary(report, "macro-F1", size))
    verdict = _verdict(report, "macro-F1")
    if verdict is not None:
        lines.append(
            verdict
            + f"; difference {_fmt(report.get('kd_minus_no_kd_macro_f1'))}, paired 95% CI {_ci(report.get('kd_minus_no_kd_macro_f1_ci95'))}"
        )
    esc = report.get("escalation")
    if esc:
        t = esc["test"]
        lines.append(
            f"escalation (student confidence < {esc['threshold']:.3f}, chosen on validation for kept accuracy >= "
            f"{esc['target_accuracy']:.3f}): {t['escalated_fraction']:.1%} of test statements go to the teacher; student accuracy "
            f"{_fmt(t['student_accuracy_kept'])} on the rest vs {_fmt(t['student_accuracy_overall'])} overall; "
            f"student+teacher accuracy {_fmt(t['combined_accuracy'])}, macro-F1 {_fmt(t['combined_macro_f1'])}"
        )
    return "\n".join(lines)


def write_report(out: Path, report: dict[str, Any], table: str, title: str) -> None:
    """report.json (every figure) and report.md (the table under a title) in RUN_DIR."""
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(f"# Distillation report: {title}\n\n{table}\n")
