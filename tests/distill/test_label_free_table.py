"""benchmarks/distill_table.py's statistics and latency floor (the label-free row and the KD-gain CI):
the paired bootstrap keeps pairs, summaries count wins and retention, the Identity floor is a real
onnxruntime model, and the formatter states each target."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from distill_format import render, verdicts
from distill_table import DistillTable, Latency, SeedResult, _identity_model, paired_gain_ci, summarize


def _seed(
    seed: int, y: np.ndarray, student: np.ndarray, no_kd: np.ndarray, teacher: np.ndarray
) -> SeedResult:
    report = {"mode": "unsupervised", "classes": ["normal", "anomaly"]}
    report |= {n: {"params": p} for n, p in (("teacher", 1000), ("student", 10), ("student_no_kd", 10))}
    return SeedResult(seed, y, {"teacher": teacher, "student": student, "student_no_kd": no_kd}, report)


def test_paired_bootstrap_keeps_pairs():
    """A student that fixes a few of the no-KD student's errors and changes nothing else gains a small
    amount on every draw: a paired CI excludes 0 although both students' own CIs would overlap."""
    rng = np.random.default_rng(0)
    results = []
    for s in range(5):
        y = rng.integers(0, 2, 2000)
        no_kd = np.where(rng.random(2000) < 0.3, 1 - y, y)
        student = no_kd.copy()
        wrong = np.flatnonzero(student != y)
        student[wrong[: len(wrong) // 20]] = y[wrong[: len(wrong) // 20]]
        results.append(_seed(s, y, student, no_kd, y))
    lo, hi = paired_gain_ci(results, 2)
    assert 0 < lo < hi < 0.05
    same = [_seed(r.seed, r.y, r.pred["student_no_kd"], r.pred["student_no_kd"], r.y) for r in results]
    assert paired_gain_ci(same, 2) == (0.0, 0.0)


def test_summarize_counts_wins_retention_and_rare_recall():
    y = np.array([0, 0, 0, 1, 1])
    a = _seed(0, y, np.array([0, 0, 0, 1, 1]), np.array([0, 0, 0, 0, 1]), y)
    b = _seed(1, y, np.array([0, 0, 0, 0, 1]), np.array([0, 0, 0, 0, 1]), y)
    row = summarize("mitdb", None, [a, b], {})
    assert row.kd_wins == 1 and row.param_ratio == 100
    assert row.rare_recall["anomaly"] == {"teacher": 1.0, "student": 0.75, "student_no_kd": 0.5}
    assert row.retention == pytest.approx(np.mean(row.metrics["student"]["macro_f1"]))
    assert row.kd_gain == pytest.approx(
        np.mean(row.metrics["student"]["macro_f1"]) - np.mean(row.metrics["student_no_kd"]["macro_f1"])
    )


def test_identity_floor_is_a_real_onnxruntime_model(tmp_path):
    path = _identity_model(tmp_path / "floor.onnx", [32, 3])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(7, 32, 3)).astype(np.float32)
    assert np.array_equal(sess.run(None, {"x": x})[0], x)


def test_verdicts_state_each_target_in_plain_words():
    y = np.array([0, 0, 0, 1, 1])
    row = summarize("mitdb", None, [_seed(0, y, y, y, y)], {})
    row.metrics["teacher"] |= {"roc_auc": [0.9], "recall": [0.8]}
    row.metrics["student"] |= {"roc_auc": [0.85], "recall": [0.6]}
    lat = Latency(
        "mitdb",
        [256, 1],
        {"floor": {1: 4.0, 256: 20.0}, "student": {1: 7.0, 256: 100.0}, "teacher": {1: 50.0, 256: 900.0}},
        {1: 100, 256: 10},
    )
    data = DistillTable([row], [lat], [0], False, "test machine", 1.0).to_dict()
    said = verdicts(data)
    assert any(
        "ROC-AUC 0.850 = 0.94x" in v and "(MET" in v and "recall" in v and "NOT MET" in v for v in said
    )
    assert any(
        "1.75x the runtime's per-call floor (MET" in v and "9.0x as many windows" in v and "NOT MET" in v
        for v in said
    )
    assert "| mitdb | none (label-free) | 1 |" in render(data)
