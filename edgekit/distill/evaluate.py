"""Teacher / student / student-without-KD evaluation on the held-out test split, as JSON and a table."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.metrics import LOW_FAR


def torch_latency_ms(model: nn.Module, example: torch.Tensor, runs: int = 200) -> float:
    """Median single-window eager-torch latency; a quick side-by-side figure (see `edgekit bench`)."""
    x = example[:1]
    with torch.no_grad():
        for _ in range(20):
            model(x)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def render_table(report: dict[str, Any]) -> str:
    """The report's models side by side, as a Markdown table (readable in a terminal too)."""
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
    lines = ["| " + " | ".join(c for c, _ in cols) + " |", "|" + "---|" * len(cols)]
    for name in ("teacher", "student", "student_no_kd"):
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
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"retention (student F1 / teacher F1): {_fmt(report.get('retention'))}; "
        f"teacher-student agreement: {_fmt(report.get('agreement'))}; "
        f"size ratio teacher/student: {_fmt(report.get('compression'))}x"
    )
    verdict = report.get("kd_beats_no_kd")
    if verdict is not None:
        lines.append(
            "distilled student beats the same student without the teacher (F1): "
            + ("yes" if verdict else "NO")
        )
    return "\n".join(lines)
